"""Writing spec files for tests (on pytest's pythonpath: ``from spec_files import write_spec``)."""
from __future__ import annotations

from pathlib import Path

import yaml


def write_spec(path: Path, raw: dict) -> Path:
    """Write ``raw`` as the YAML spec ``path`` (parents created, key order kept); returns it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True))
    return path
