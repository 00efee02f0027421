"""Checkpoint files: written atomically and durably, read without unpickling code.

A reader never sees a half-written file (temporary file + fsync + ``os.replace`` + fsync of
the folder), and a file that cannot be read is moved aside (never deleted) so that the run
starts again instead of failing the same way forever.
"""

from __future__ import annotations

import datetime as _dt
import os
import tempfile
from pathlib import Path

import torch


class UnreadableCheckpoint(RuntimeError):
    """A checkpoint that exists but cannot be loaded; the message names it."""


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_atomic(obj, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load(path: Path, map_location="cpu"):
    """Load one of our files (tensors, dicts, lists, numbers, strings): ``weights_only=True``
    refuses anything else. Raises ``UnreadableCheckpoint`` naming the file if it is truncated,
    corrupt or holds objects we never write."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as err:  # zip/pickle errors of every kind: the file is not usable
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise UnreadableCheckpoint(f"{path}: unreadable ({type(err).__name__}: {first[:200]})") \
            from err


def move_aside(path: Path, why: str) -> Path:
    """Rename an unusable file to ``<name>.<reason>-<time>`` next to it; returns the new path."""
    path = Path(path)
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    dest = path.with_name(f"{path.name}.{why}-{stamp}")
    os.replace(path, dest)
    return dest


def clean_temporary(folder: Path, max_age_s: float = 3600) -> int:
    """Remove checkpoint temporary files left by killed writers (older than ``max_age_s``)."""
    import time

    removed = 0
    for tmp in Path(folder).glob(".*.tmp"):
        try:
            if time.time() - tmp.stat().st_mtime > max_age_s:
                tmp.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed
