"""Table specs: load and validate ``experiments/<paper>/<table>.yaml`` (no torch, no code run).

A spec says what the paper printed and how to recompute each cell at each scale. See
``experiments/README.md`` for the format. Every error names the file, the field and what is
allowed.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from repro.data import DATASET_INFO
from repro.eval import PROTOCOLS
from repro.methods import METHODS

PAPERS = ("carl", "pauc", "pcl", "propos")
EXECUTORS = ("debug", "local", "slurm")
PRECISIONS = ("fp32", "bf16", "fp16")


class SpecError(ValueError):
    """A malformed spec; the message names the file, the field and the allowed values."""


@dataclass
class Column:
    id: str
    label: str
    eval: str | None  # None: a descriptive column (architecture, epochs)
    metric: str | None = None
    scale_factor: float = 1.0  # e.g. 100 to print fractions as %
    digits: int = 1


@dataclass
class Row:
    name: str
    recipe: str | None  # None: reference-only (quoted from other work)
    paper: dict[str, str]  # column id -> the value exactly as printed
    info: dict[str, str] = field(default_factory=dict)
    # Result columns computed for this row (trained rows only). Default: every result column
    # whose printed value is not "" ("" = the paper's table has no such cell for this row).
    evaluate: list[str] = field(default_factory=list)


@dataclass
class Table:
    path: Path
    paper: str
    table: str
    title: str
    columns: list[Column]
    rows: list[Row]
    recipes: dict[str, dict]  # recipe id -> {scale -> recipe}
    evals: dict[str, dict]  # eval id -> {protocol, encoder, features, scales}
    scales: dict[str, dict]  # scale -> {seeds, description, resources, data}
    notes: list[str] = field(default_factory=list)
    command: str = ""

    @property
    def result_path(self) -> Path:
        return Path("results") / self.paper / f"{self.table}.md"

    def recipe_at(self, recipe_id: str, scale: str) -> dict:
        return self.recipes[recipe_id][scale]

    def eval_at(self, eval_id: str, scale: str) -> dict:
        ev = self.evals[eval_id]
        resolved = {k: v for k, v in ev.items() if k != "scales"}
        resolved.update(ev["scales"][scale])
        return resolved


_TOP = {
    "paper": str, "table": str, "title": str, "command": str, "notes": list,
    "columns": list, "rows": list, "recipes": dict, "evals": dict, "scales": dict,
    "recipe_defaults": dict, "include": list,
}
# What a shared file pulled in with `include:` may define (the including spec overrides it).
_INCLUDABLE = {"recipes": dict, "recipe_defaults": dict, "evals": dict, "scales": dict,
               "notes": list}
_REQUIRED_TOP = ("paper", "table", "title", "columns", "rows", "scales")
_COLUMN = {"id": str, "label": str, "eval": str, "metric": str, "scale_factor": (int, float),
           "digits": int}
_ROW = {"name": str, "recipe": str, "paper": dict, "info": dict, "evaluate": list}
_SCALE = {"seeds": list, "description": str, "resources": dict, "data": str}
_RECIPE = {"method": str, "params": dict, "backbone": dict, "data": dict, "views": dict,
           "optim": dict, "runtime": dict}
_EVAL = {"protocol": str, "encoder": str, "features": dict, "scales": dict}
_EVAL_AT_SCALE = {"train": dict, "test": dict, "params": dict, "protocol": str, "encoder": str,
                  "features": dict}
_DATA_REF = {"dataset": str, "split": str, "subset": int}
_RESOURCES = {"gpus_per_node": int, "nodes": int, "cpus_per_task": int, "mem_gb": (int, float),
              "timeout_min": int, "partition": str, "constraint": str, "account": str,
              "qos": str, "array_parallelism": int}


def _type_name(t) -> str:
    if isinstance(t, tuple):
        return " or ".join(x.__name__ for x in t)
    return t.__name__


def _check_keys(path: Path, where: str, obj: Any, schema: dict, required=()) -> None:
    if not isinstance(obj, dict):
        raise SpecError(f"{path}: {where}: expected a mapping, got {type(obj).__name__}")
    for key, value in obj.items():
        if key not in schema:
            raise SpecError(f"{path}: {where}.{key}: unknown key; allowed: "
                            f"{', '.join(sorted(schema))}")
        expected = schema[key]
        bad_type = expected is not None and not isinstance(value, expected)
        bool_as_number = isinstance(value, bool) and expected in (int, float, (int, float))
        if bad_type or bool_as_number:
            raise SpecError(f"{path}: {where}.{key}: expected {_type_name(expected)}, got "
                            f"{type(value).__name__} ({value!r})")
    for key in required:
        if key not in obj:
            raise SpecError(f"{path}: {where}.{key}: required key is missing")


def _check_name(path: Path, where: str, value: str, allowed, kind: str) -> None:
    if value not in allowed:
        names = allowed.names() if hasattr(allowed, "names") else sorted(allowed)
        raise SpecError(f"{path}: {where}: unknown {kind} {value!r}; allowed: {', '.join(names)}")


def deep_merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _check_data_ref(path: Path, where: str, ref: dict) -> None:
    _check_keys(path, where, ref, _DATA_REF, required=("dataset",))
    _check_name(path, f"{where}.dataset", ref["dataset"], DATASET_INFO, "dataset")
    splits = DATASET_INFO[ref["dataset"]].splits
    split = ref.get("split")
    if split is not None and split not in splits:
        raise SpecError(f"{path}: {where}.split: unknown split {split!r} of {ref['dataset']}; "
                        f"allowed: {', '.join(splits)}")


def _check_recipe(path: Path, where: str, recipe: dict) -> None:
    _check_keys(path, where, recipe, _RECIPE,
                required=("method", "backbone", "data", "views", "optim"))
    _check_name(path, f"{where}.method", recipe["method"], METHODS, "method")
    _check_data_ref(path, f"{where}.data", recipe["data"])
    optim = recipe["optim"]
    for key in ("lr", "batch_size", "epochs"):
        if key not in optim:
            raise SpecError(f"{path}: {where}.optim.{key}: required key is missing")
    precision = recipe.get("runtime", {}).get("precision", "fp32")
    if precision not in PRECISIONS:
        raise SpecError(f"{path}: {where}.runtime.precision: {precision!r}; allowed: "
                        f"{', '.join(PRECISIONS)}")


def _with_includes(path: Path, raw: dict) -> dict:
    """Merge ``include:`` files (paths relative to the spec) under the spec's own keys."""
    if not isinstance(raw, dict) or "include" not in raw:
        return raw
    merged: dict = {}
    for i, rel in enumerate(raw["include"] if isinstance(raw["include"], list) else [None]):
        if not isinstance(rel, str):
            raise SpecError(f"{path}: include: expected a list of file paths")
        inc = (path.parent / rel).resolve()
        if not inc.exists():
            raise SpecError(f"{path}: include[{i}]: no such file {inc}")
        try:
            body = yaml.safe_load(inc.read_text()) or {}
        except yaml.YAMLError as err:
            raise SpecError(f"{inc}: not valid YAML: {err}") from None
        _check_keys(inc, "<top>", body, _INCLUDABLE)
        for key, value in body.items():
            if key == "notes":
                merged["notes"] = merged.get("notes", []) + value
            else:
                merged[key] = deep_merge(merged.get(key, {}), value)
    own = {k: v for k, v in raw.items() if k != "include"}
    for key, value in own.items():
        if key == "notes" and "notes" in merged:
            merged["notes"] = merged["notes"] + value
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_table(path: str | Path) -> Table:
    """Parse and validate a spec. YAML is read with ``safe_load``: no code runs."""
    path = Path(path)
    if not path.exists():
        raise SpecError(f"{path}: no such spec file")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise SpecError(f"{path}: not valid YAML: {err}") from None
    raw = _with_includes(path, raw)
    _check_keys(path, "<top>", raw, _TOP, required=_REQUIRED_TOP)
    if raw["paper"] not in PAPERS:
        raise SpecError(f"{path}: paper: {raw['paper']!r}; allowed: {', '.join(PAPERS)}")

    scales = {}
    for name, scale in raw["scales"].items():
        _check_keys(path, f"scales.{name}", scale, _SCALE, required=("seeds",))
        if not scale["seeds"] or not all(
                isinstance(s, int) and not isinstance(s, bool) for s in scale["seeds"]):
            raise SpecError(f"{path}: scales.{name}.seeds: expected a non-empty list of integers")
        for kind, res in scale.get("resources", {}).items():
            if kind not in ("pretrain", "eval"):
                raise SpecError(f"{path}: scales.{name}.resources.{kind}: unknown key; "
                                "allowed: eval, pretrain")
            _check_keys(path, f"scales.{name}.resources.{kind}", res, _RESOURCES)
        scales[name] = scale

    defaults = raw.get("recipe_defaults", {})
    for name in defaults:
        if name not in scales:
            raise SpecError(f"{path}: recipe_defaults.{name}: unknown scale; allowed: "
                            f"{', '.join(scales)}")
    recipes = {}
    for rid, rec in raw.get("recipes", {}).items():
        if not isinstance(rec, dict) or set(rec) - {"scales"} or "scales" not in rec:
            raise SpecError(f"{path}: recipes.{rid}: expected a mapping with only 'scales'")
        recipes[rid] = {}
        for scale in scales:
            if scale not in rec["scales"]:
                raise SpecError(f"{path}: recipes.{rid}.scales.{scale}: missing; every recipe "
                                f"needs every scale ({', '.join(scales)})")
        for scale, body in rec["scales"].items():
            if scale not in scales:
                raise SpecError(f"{path}: recipes.{rid}.scales.{scale}: unknown scale; "
                                f"allowed: {', '.join(scales)}")
            merged = deep_merge(defaults.get(scale, {}), body)
            _check_recipe(path, f"recipes.{rid}.scales.{scale}", merged)
            recipes[rid][scale] = merged

    evals = {}
    for eid, ev in raw.get("evals", {}).items():
        _check_keys(path, f"evals.{eid}", ev, _EVAL, required=("protocol", "scales"))
        _check_name(path, f"evals.{eid}.protocol", ev["protocol"], PROTOCOLS, "protocol")
        for scale in scales:
            if scale not in ev["scales"]:
                raise SpecError(f"{path}: evals.{eid}.scales.{scale}: missing; allowed scales "
                                f"need an entry each ({', '.join(scales)})")
        for scale, body in ev["scales"].items():
            where = f"evals.{eid}.scales.{scale}"
            if scale not in scales:
                raise SpecError(f"{path}: {where}: unknown scale; allowed: {', '.join(scales)}")
            _check_keys(path, where, body, _EVAL_AT_SCALE, required=("train", "test"))
            if "protocol" in body:
                _check_name(path, f"{where}.protocol", body["protocol"], PROTOCOLS, "protocol")
            _check_data_ref(path, f"{where}.train", body["train"])
            _check_data_ref(path, f"{where}.test", body["test"])
        evals[eid] = ev

    columns = []
    for i, col in enumerate(raw["columns"]):
        _check_keys(path, f"columns[{i}]", col, _COLUMN, required=("id", "label"))
        if "eval" in col:
            _check_name(path, f"columns[{i}].eval", col["eval"], evals, "eval")
            if "metric" not in col:
                raise SpecError(f"{path}: columns[{i}].metric: required with 'eval'")
        columns.append(Column(id=col["id"], label=col["label"], eval=col.get("eval"),
                              metric=col.get("metric"),
                              scale_factor=col.get("scale_factor", 1.0),
                              digits=col.get("digits", 1)))
    col_ids = [c.id for c in columns]
    if len(set(col_ids)) != len(col_ids):
        raise SpecError(f"{path}: columns: duplicate id")

    rows = []
    for i, row in enumerate(raw["rows"]):
        _check_keys(path, f"rows[{i}]", row, _ROW, required=("name", "paper"))
        if "recipe" in row:
            _check_name(path, f"rows[{i}].recipe", row["recipe"], recipes, "recipe")
        for key in list(row["paper"]) + list(row.get("info", {})):
            if key not in col_ids:
                raise SpecError(f"{path}: rows[{i}] ({row['name']}): unknown column {key!r}; "
                                f"allowed: {', '.join(col_ids)}")
        if row.get("recipe") and any(r.name == row["name"] and r.recipe for r in rows):
            raise SpecError(f"{path}: rows[{i}].name: {row['name']!r} is used twice")
        paper = {k: str(v) for k, v in row["paper"].items()}
        eval_ids = [c.id for c in columns if c.eval]
        evaluate = row.get("evaluate")
        if evaluate is None:
            evaluate = [c for c in eval_ids if paper.get(c) != ""]
        for key in evaluate:
            if key not in eval_ids:
                raise SpecError(f"{path}: rows[{i}].evaluate: {key!r} is not a result column; "
                                f"allowed: {', '.join(eval_ids)}")
        rows.append(Row(name=row["name"], recipe=row.get("recipe"), paper=paper,
                        info={k: str(v) for k, v in row.get("info", {}).items()},
                        evaluate=list(evaluate) if row.get("recipe") else []))
    return Table(path=path, paper=raw["paper"], table=raw["table"], title=raw["title"],
                 columns=columns, rows=rows, recipes=recipes, evals=evals, scales=scales,
                 notes=list(raw.get("notes", [])), command=raw.get("command", ""))


_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")


def paper_number(printed: str) -> float | None:
    """The number in a printed cell ("79.2*" -> 79.2, "60.2†" -> 60.2, "-" -> None)."""
    match = _NUMBER.search(printed or "")
    return float(match.group()) if match else None


def find_specs(root: str | Path = "experiments") -> list[Path]:
    return sorted(Path(root).glob("*/*.yaml"))
