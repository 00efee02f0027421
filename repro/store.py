"""The result store: one JSON record per job key, written atomically (no torch).

Layout: ``<store>/<key[:2]>/<key>.json``. A record is written once, complete, by
``os.replace`` of a temporary file in the same folder, so concurrent writers never leave a
partial or interleaved file and a reader sees either no record or a whole one. Records of
failed jobs are never written.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import os
import socket
import subprocess
import tempfile
from pathlib import Path

STORE_ENV = "REPRO_STORE"
DEFAULT_STORE = Path("results") / "store"
TRACKED_PACKAGES = ("repro", "torch", "torchvision", "faiss-cpu", "faiss-gpu", "numpy",
                    "scikit-learn", "liblinear-official", "submitit", "POT")


def store_root(root: str | Path | None = None) -> Path:
    return Path(root or os.environ.get(STORE_ENV) or DEFAULT_STORE)


def record_path(key: str, root: str | Path | None = None) -> Path:
    return store_root(root) / key[:2] / f"{key}.json"


def has(key: str, root: str | Path | None = None) -> bool:
    return record_path(key, root).exists()


def get(key: str, root: str | Path | None = None) -> dict | None:
    path = record_path(key, root)
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: corrupt record ({err}); delete it to recompute the job") \
            from None


def put(record: dict, root: str | Path | None = None) -> Path:
    """Write ``record`` (which must carry ``key``) atomically; returns its path."""
    key = record["key"]
    path = record_path(key, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(record, indent=1, sort_keys=True, allow_nan=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{key}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def all_records(root: str | Path | None = None):
    for path in sorted(store_root(root).glob("*/*.json")):
        yield json.loads(path.read_text())


def git_state(cwd: str | Path | None = None) -> dict:
    """Commit and dirty flag of the checkout the code runs from (None outside git)."""
    cwd = cwd or Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=cwd, capture_output=True, text=True, check=True).stdout
        return {"commit": commit, "dirty": bool(dirty.strip())}
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}


def package_versions() -> dict:
    out = {}
    for name in TRACKED_PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def provenance() -> dict:
    return {
        "git": git_state(),
        "versions": package_versions(),
        "host": socket.gethostname(),
        "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
