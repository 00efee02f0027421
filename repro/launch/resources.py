"""What each resource field of a job may hold (no torch, no submitit).

Resources end up as ``#SBATCH`` lines of a generated script (``repro.launch.slurm``): a newline
or a shell metacharacter in a value would become a line, or a command, of that script. Each
field is therefore checked against what Slurm expects there, by ``repro.spec`` (a spec's
``scales.<s>.resources``), by the ``repro launch`` resource flags, and by
``slurm_parameters`` before any script is written.
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable

# partition / account / qos: a name, or a comma-separated list of names (sbatch -p a,b)
_NAMES = re.compile(r"[A-Za-z0-9_.-]+(,[A-Za-z0-9_.-]+)*")
# --constraint: features joined by & | , with [..] groups and *count; no blanks or quotes
_CONSTRAINT = re.compile(r"[A-Za-z0-9_.&|,\[\]*:-]+")
_JOB_NAME = re.compile(r"[A-Za-z0-9_.-]+")
MAX_TEXT = 256
MAX_INT = 2**31 - 1
MIN_MEM_GB = 0.001  # below 1 MB sbatch reads "--mem=0" as "all the memory of the node"


class ResourceError(ValueError):
    """A resource value Slurm would not accept or that could alter the generated script."""

    def __init__(self, key: str, detail: str):
        self.key, self.detail = key, detail
        super().__init__(f"{key}: {detail}")


def _integer(low: int) -> Callable[[Any], bool]:
    def ok(value: Any) -> bool:
        return type(value) is int and low <= value <= MAX_INT
    return ok


def _memory(value: Any) -> bool:
    return (type(value) in (int, float) and math.isfinite(value)
            and MIN_MEM_GB <= value <= MAX_INT)


def _text(pattern: re.Pattern) -> Callable[[Any], bool]:
    def ok(value: Any) -> bool:
        return (isinstance(value, str) and len(value) <= MAX_TEXT
                and pattern.fullmatch(value) is not None)
    return ok


_NAME_RULE = (_text(_NAMES), "names of letters, digits, '_', '.', '-', separated by ','")
# field -> (test, what is allowed)
FIELDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "gpus_per_node": (_integer(0), "an integer >= 0"),
    "nodes": (_integer(1), "an integer >= 1"),
    "cpus_per_task": (_integer(1), "an integer >= 1"),
    "mem_gb": (_memory, f"a finite number of GB >= {MIN_MEM_GB}"),
    "timeout_min": (_integer(1), "an integer number of minutes >= 1"),
    "array_parallelism": (_integer(1), "an integer >= 1"),
    "signal_delay_s": (_integer(10), "an integer number of seconds >= 10"),
    "partition": _NAME_RULE,
    "account": _NAME_RULE,
    "qos": _NAME_RULE,
    "constraint": (_text(_CONSTRAINT),
                   "letters, digits and _ . - & | , [ ] * : (no blanks, quotes or newlines)"),
}


def short_repr(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def check_value(key: str, value: Any) -> None:
    if key not in FIELDS:
        raise ResourceError(key, f"unknown key; allowed: {', '.join(FIELDS)}")
    ok, allowed = FIELDS[key]
    if not ok(value):
        raise ResourceError(key, f"invalid value {short_repr(value)}; allowed: {allowed}")


def check_resources(resources: dict) -> dict:
    """``resources`` unchanged if every field is known and valid; else ``ResourceError``."""
    if not isinstance(resources, dict):
        raise ResourceError("resources", f"expected a mapping, got {short_repr(resources)}")
    for key, value in resources.items():
        check_value(str(key), value)
    return resources


def check_job_name(name: Any) -> None:
    if not (isinstance(name, str) and len(name) <= MAX_TEXT and _JOB_NAME.fullmatch(name)):
        raise ResourceError("job_name", f"invalid value {short_repr(name)}; allowed: "
                                        "letters, digits, '_', '.', '-'")
