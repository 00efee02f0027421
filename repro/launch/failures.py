"""Why jobs failed: the cause (the exception line) and the log, kept per table and scale.

``failures.json`` in the table's log folder maps a job key to its last failure on the local
or debug executors (Slurm failures come from ``sacct`` and the job's stderr). ``repro status``
shows it, and the next ``repro launch`` says it before running the job again. A job that
later succeeds is removed from it. No torch.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import tempfile
from pathlib import Path

FAILURES = "failures.json"
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Loss|Input|"
                             r"Checkpoint|Dataset|Name|Warning)\b.*")
_TRACE_END = "----------------------"


def cause_of(err: BaseException) -> str:
    """The exception line of a failed job: for submitit's ``FailedJobError`` the last line
    of the worker's traceback (``NonFiniteLoss: moco: loss is nan ...``), else the error."""
    text = str(err).strip()
    lines = text.splitlines()
    if _TRACE_END in lines:  # submitit: "...trace:\n----\n<traceback>\n----\nYou can check..."
        start = lines.index(_TRACE_END)
        end = lines.index(_TRACE_END, start + 1) if _TRACE_END in lines[start + 1:] else None
        trace = [ln for ln in lines[start + 1:end] if ln.strip()]
        for line in reversed(trace):
            if _EXCEPTION_LINE.match(line.strip()):
                return line.strip()
        if trace:
            return trace[-1].strip()
    first = lines[0] if lines else ""
    return f"{type(err).__name__}: {first}" if first else type(err).__name__


def cause_from_log(path: str | Path | None, tail_bytes: int = 65536) -> str | None:
    """The last exception line in a job's stderr log (None if unreadable or none there)."""
    if not path:
        return None
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - tail_bytes))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return None
    for line in reversed(text.splitlines()):
        if _EXCEPTION_LINE.match(line.strip()):
            return line.strip()
    return None


def read_failures(folder: Path) -> dict[str, dict]:
    path = Path(folder) / FAILURES
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        return {}  # an unreadable history only loses the hints, never a result
    return data if isinstance(data, dict) else {}


def update_failures(folder: Path, failed: dict[str, dict], succeeded) -> Path:
    """Add ``failed`` ({key: {label, cause, log}}) and forget ``succeeded`` keys, atomically."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    merged = {k: v for k, v in read_failures(folder).items() if k not in set(succeeded)}
    merged.update({k: {**v, "time": now} for k, v in failed.items()})
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{FAILURES}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(merged, f, indent=1, sort_keys=True)
    os.replace(tmp, folder / FAILURES)
    return folder / FAILURES
