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
import sys
import tempfile
import time
from pathlib import Path

STORE_ENV = "REPRO_STORE"
DEFAULT_STORE = Path("results") / "store"
TRACKED_PACKAGES = ("repro", "torch", "torchvision", "faiss-cpu", "faiss-gpu", "numpy",
                    "scikit-learn", "liblinear-official", "submitit", "POT")


def store_root(root: str | Path | None = None) -> Path:
    return Path(root or os.environ.get(STORE_ENV) or DEFAULT_STORE)


def record_path(key: str, root: str | Path | None = None) -> Path:
    return store_root(root) / key[:2] / f"{key}.json"


CORRUPT_DIR = "_corrupt"  # unreadable records are moved here (suffix .corrupt: never read)
TMP_MAX_AGE_S = 600  # a record's temporary file older than this belongs to a dead writer


def _warn(msg: str) -> None:
    print(f"WARNING: {msg}", file=sys.stderr, flush=True)


def quarantine(path: Path, why: str, root: str | Path | None = None) -> Path:
    """Move an unreadable file aside (never delete it) and say so; returns its new path."""
    dest_dir = store_root(root) / CORRUPT_DIR
    dest_dir.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    dest = dest_dir / f"{path.stem}.{stamp}.json.corrupt"
    os.replace(path, dest)
    _warn(f"{path}: unreadable record ({why}); moved to {dest}; its job counts as missing")
    return dest


def _parse(path: Path, key: str) -> dict:
    record = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(record, dict) or record.get("key") != key \
            or not isinstance(record.get("metrics", {}), dict):
        raise ValueError(f"not a record of key {key} (a JSON object with that 'key' and a "
                         "'metrics' mapping)")
    return record


def get(key: str, root: str | Path | None = None) -> dict | None:
    """The record of ``key``, or None. An unreadable record is moved aside with a warning
    (``<store>/_corrupt/``) and reads as missing, so its job is recomputed."""
    path = record_path(key, root)
    try:
        return _parse(path, key)
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, ValueError) as err:  # JSONDecodeError is a ValueError
        try:
            quarantine(path, f"{type(err).__name__}: {err}", root)
        except FileNotFoundError:  # another reader moved it first
            pass
        return None


def has(key: str, root: str | Path | None = None) -> bool:
    return get(key, root) is not None


def clean_temporary(root: str | Path | None = None, max_age_s: float = TMP_MAX_AGE_S) -> int:
    """Remove temporary record files left by killed writers (older than ``max_age_s``)."""
    now, removed = time.time(), 0
    for tmp in store_root(root).glob("*/.*.tmp"):
        try:
            if now - tmp.stat().st_mtime > max_age_s:
                tmp.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    if removed:
        _warn(f"removed {removed} temporary record file(s) left by interrupted writers "
              f"under {store_root(root)}")
    return removed


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
        record = get(path.stem, root)
        if record is not None:
            yield record


def git_state(cwd: str | Path | None = None) -> dict:
    """Commit and dirty flag of the checkout the code runs from (None outside git).

    ``results/`` is left out of the dirty check: it is what the harness writes (a launch
    renders its table there), not code, so a second launch is not "dirty" because of the
    first one's table."""
    cwd = cwd or Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                                ":(top)", ":(top,exclude)results"],
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
