"""The detectron2 configs shipped with the package, readable without detectron2."""

from __future__ import annotations

import ast
from pathlib import Path

import yaml

CONFIG_DIR = Path(__file__).parent / "configs"


def config_names() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml") if not p.stem.startswith("Base-"))


def config_path(name: str) -> Path:
    path = CONFIG_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"detection config {name!r} not found in {CONFIG_DIR}; allowed: "
                         f"{', '.join(config_names())}")
    return path


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(
            out.get(key), dict) else value
    return out


def _literals(node):
    """detectron2 reads '(480, 512)' strings as Python literals; do the same."""
    if isinstance(node, dict):
        return {k: _literals(v) for k, v in node.items()}
    if isinstance(node, str) and node.startswith("(") and node.endswith(")"):
        return ast.literal_eval(node)
    return node


def load_config(name_or_path: str | Path) -> dict:
    """The config as a nested dict, ``_BASE_`` files merged underneath (as detectron2 does)."""
    path = Path(name_or_path)
    if not path.is_file():
        path = config_path(str(name_or_path))
    cfg = yaml.safe_load(path.read_text()) or {}
    base = cfg.pop("_BASE_", None)
    if base is not None:
        cfg = _merge(load_config(path.parent / base), cfg)
    return _literals(cfg)
