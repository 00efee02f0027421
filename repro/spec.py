"""Table specs: load and validate ``experiments/<paper>/<table>.yaml`` (no torch, no code run).

A spec says what the paper printed and how to recompute each cell at each scale. See
``experiments/README.md`` for the format. A spec is checked completely when it is loaded, before
any job exists: every block and key, every name, every range. Method ``params`` are checked
against the method's ``Config`` and evaluation ``params`` against the protocol's keyword
arguments, both read from source (``repro.introspect``). An error is one line:

    <file>[ (included from <spec>)]: <field.path>: <problem> <bad value>; allowed: <...>
"""

from __future__ import annotations

import ast
import copy
import functools
import itertools
import math
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import yaml

from repro import introspect
from repro.data import DATASET_INFO
from repro.eval import PROTOCOLS
from repro.methods import METHODS
from repro.models import BACKBONES

PAPERS = ("carl", "pauc", "pcl", "propos")
EXECUTORS = ("debug", "local", "slurm")
PRECISIONS = ("fp32", "bf16", "fp16")

MAX_SPEC_BYTES = 1 << 20  # per file (a spec or an include); the largest shipped one is ~90 KB
MAX_INCLUDES = 8
MAX_YAML_DEPTH = 32  # nesting, counting what aliases expand to
MAX_YAML_NODES = 100_000  # nodes after alias expansion (a "billion laughs" file has 10^9)
MAX_TEXT = 2000
TABLE_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")  # a file name under results/<paper>/
NAME_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")  # scales, recipes, evals, columns
RECIPE_KEY = re.compile(r"[A-Za-z0-9{][A-Za-z0-9_{}-]{0,127}")  # a recipe id or a grid's pattern
AXIS_ID = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}")  # a grid axis: {axis} in the pattern
VALUE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")  # what {axis} becomes in an id
DOTTED = re.compile(r"[A-Za-z0-9_]{1,64}(\.[A-Za-z0-9_]{1,64}){0,7}")  # optim.lr
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
REF_ID = re.compile(r"[a-z][a-z0-9_-]{0,47}")  # a short name under ``references``
MAX_GRID = 1000  # recipes one grid expands to
DEVICE = re.compile(r"cpu|cuda(:\d{1,2})?|mps")


def one_line(text: str) -> str:
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


class SpecError(ValueError):
    """A malformed spec; the one-line message names the file, the field and what is allowed."""

    def __init__(self, message: str):
        super().__init__(one_line(message))


@dataclass
class Column:
    id: str
    label: str
    eval: str | None  # None: a descriptive column (architecture, epochs)
    metric: str | None = None
    scale_factor: float = 1.0  # e.g. 100 to print fractions as %
    digits: int = 1
    # A key of REGISTRY_FIELDS: a descriptive column whose printed cell is set beside what our
    # registry says for the row's ``dataset`` (a table of datasets, e.g. ProPos Table 1).
    registry: str | None = None
    # A key of SUMMARIES: ``metric`` names a list-valued result (e.g. the clustering's
    # ``cluster_sizes``, read from the record's metrics or else its artifacts) and the cell is
    # this summary of it, per seed (``repro.tables``); a histogram panel draws the list itself.
    summary: str | None = None


# A column's ``summary`` of a list-valued result x (numpy; ``repro.tables.SUMMARY_FNS``).
SUMMARIES = {
    "mean": "mean of x",
    "std": "standard deviation of x (ddof 0: over the whole list, e.g. every cluster)",
    "cv": "std / mean (coefficient of variation)",
    "min": "smallest value",
    "max": "largest value",
    "median": "median of x",
    "max_over_mean": "largest value / mean",
    "share_below_half_mean": "fraction of the values below half the mean (e.g. clusters smaller "
                             "than half the average cluster)",
}


# What a registry column shows for a row's dataset {name, split, eval}.
REGISTRY_FIELDS = {
    "split": "our name of the split (repro.data.DATASET_INFO[name].splits)",
    "samples": "images in the split (repro.launch.cost.SPLIT_SIZES, official counts; a split "
               "a+b without its own entry: the sum of its parts)",
    "classes": "repro.data.DATASET_INFO[name].num_classes",
    "image_size": "features.image_size of the row's eval (<table>/<eval id> of the same paper) "
                  "at the paper scale",
}


# Where the numbers of a row without a recipe come from (a row with a recipe is ours: we train
# it). The spec must say which: a reader must not take the paper's own run for a cited number.
ORIGINS = {
    "quoted": "the paper quoted it from other work",
    "paper": "the paper's own run, not rerun",
}


@dataclass
class Row:
    name: str
    recipe: str | None  # None: not rerun; ``origin`` says whose numbers they are
    paper: dict[str, str]  # column id -> the value exactly as printed
    info: dict[str, str] = field(default_factory=dict)
    # Result columns computed for this row (trained rows only). Default: every result column
    # whose printed value is not "" ("" = the paper's table has no such cell for this row).
    evaluate: list[str] = field(default_factory=list)
    origin: str | None = None  # rows without a recipe: a key of ORIGINS; None when trained
    reason: str = ""  # origin "paper": why we do not rerun it ("" = the spec gives none)
    # scale -> recipe id, overriding ``recipe`` at that scale. A row with only these (no
    # ``recipe``) is a reference row of those scales (e.g. raw pixels on real data): it exists
    # at those scales only and needs no ``origin``.
    recipe_by_scale: dict[str, str] = field(default_factory=dict)
    # A row of a table of datasets (one with registry columns): {name, split, eval} as written,
    # plus ``image_size`` read from ``eval``. None: the dataset is not in our registry.
    dataset: dict | None = None
    # axis -> value of a row made by ``for`` (a point of a figure's sweep); {} otherwise
    point: dict = field(default_factory=dict)
    point_ids: dict = field(default_factory=dict)  # axis -> the value's id (recipe, evaluate)


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
    # claims of the paper checked at each scale: {better, worse, columns, source}
    claims: list[dict] = field(default_factory=list)
    # reference rows every trained method of the paper must beat where it learns anything:
    # {row, columns} (checked by the renderer on real data, like the claims)
    baselines: list[dict] = field(default_factory=list)
    # a figure spec's plot: {caption, panels: [{id, title, x, y, series, log_x} | {id, kind:
    # histogram, title, values, series, bins, log_x, log_y}]}; None: a table
    figure: dict | None = None
    # recipe id -> scale -> the bodies it is merged from, bottom first (``recipe_sources``)
    recipe_layers: dict = field(default_factory=dict, repr=False, compare=False)
    references: dict[str, str] = field(default_factory=dict)  # short name -> full citation
    recipe_files: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def result_path(self) -> Path:
        if self.paper not in PAPERS or not TABLE_ID.fullmatch(self.table):
            raise SpecError(f"{self.path}: table: {self.table!r} of paper {self.paper!r} is "
                            f"not a file name under results/; allowed: {TABLE_ID.pattern}")
        return Path("results") / self.paper / f"{self.table}.md"

    def result_path_at(self, scale: str) -> Path:
        """Where the table of ``scale`` goes: ``result_path``, or ``<table>.<scale>.md`` for a
        partial scale (its rows and columns differ from the paper's table)."""
        path = self.result_path
        return path.with_name(f"{self.table}.{scale}.md") if self.is_partial(scale) else path

    def is_partial(self, scale: str) -> bool:
        return bool(self.scales[scale].get("partial"))

    def column(self, col_id: str) -> Column:
        """The column with id ``col_id`` (spec validation guarantees the ids a spec names)."""
        for col in self.columns:
            if col.id == col_id:
                return col
        raise KeyError(f"{self.path}: no column {col_id!r}; columns: "
                       f"{', '.join(c.id for c in self.columns)}")

    def recipe_at(self, recipe_id: str, scale: str) -> dict:
        return self.recipes[recipe_id][scale]

    def row_recipe(self, row: Row, scale: str) -> str | None:
        """The recipe ``row`` trains at ``scale``; None: not trained there."""
        rid = row.recipe_by_scale.get(scale, row.recipe)
        return rid if rid is not None and scale in self.recipes[rid] else None

    def row_at(self, row: Row, scale: str) -> bool:
        """Whether ``row`` belongs in the table of ``scale``: every row at a full scale except
        the reference rows of other scales; at a partial scale, only rows trained there."""
        if self.is_partial(scale):
            return self.row_recipe(row, scale) is not None
        return row.recipe is not None or not row.recipe_by_scale or scale in row.recipe_by_scale

    def has_eval(self, eval_id: str, scale: str) -> bool:
        return scale in self.evals[eval_id]["scales"]

    def eval_at(self, eval_id: str, scale: str) -> dict:
        ev = self.evals[eval_id]
        resolved = {k: v for k, v in ev.items() if k != "scales"}
        resolved.update(ev["scales"][scale])
        return resolved


# ---------------------------------------------------------------------------------------------
# Reading YAML: a bounded regular UTF-8 file, no duplicate keys, bounded aliases, no code.

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Refused(yaml.YAMLError):
    """Well-formed YAML that ``_SpecLoader`` will not build."""

    def __init__(self, path: tuple, problem: str, node):
        mark = node.start_mark
        super().__init__(f"{_fmt(path)}: {problem} (line {mark.line + 1}, "
                         f"column {mark.column + 1})")


class _SpecLoader(_BaseLoader):
    """``SafeLoader`` that, before building anything, refuses duplicate, merge and non-string
    keys, nesting deeper than ``MAX_YAML_DEPTH`` and documents of more than ``MAX_YAML_NODES``
    values once aliases are expanded (a "billion laughs" file)."""

    def get_single_node(self):
        node = super().get_single_node()
        if node is not None:
            _measure(node, (), 0, {}, set())
        return node


def _children(node, path: tuple) -> list[tuple[tuple, Any]]:
    if isinstance(node, yaml.SequenceNode):
        return [(path + (i,), item) for i, item in enumerate(node.value)]
    if not isinstance(node, yaml.MappingNode):
        return []
    children, first_line = [], {}
    for key, value in node.value:
        if key.tag == _MERGE_TAG:
            raise _Refused(path, "merge keys ('<<') are not supported", key)
        if not isinstance(key, yaml.ScalarNode) or key.tag != _STR_TAG:
            shown = _short(key.value) if isinstance(key, yaml.ScalarNode) else "a collection"
            raise _Refused(path, f"key {shown} is not a string; allowed: string keys (quote "
                                 "it)", key)
        if key.value in first_line:
            raise _Refused(path + (key.value,), f"duplicate key; first at line "
                                                f"{first_line[key.value]}", key)
        first_line[key.value] = key.start_mark.line + 1
        children.append((path + (key.value,), value))
    return children


def _measure(node, path: tuple, depth: int, memo: dict, active: set) -> tuple[int, int]:
    """(values, height) of ``node`` with every alias expanded; refuses what exceeds the bounds.
    An alias is the same node object met again: ``memo`` counts it without walking it twice."""
    if depth > MAX_YAML_DEPTH:
        raise _Refused(path, f"nested deeper than {MAX_YAML_DEPTH} levels", node)
    if id(node) in active:
        raise _Refused(path, "recursive alias", node)
    if id(node) not in memo:
        active.add(id(node))
        results = [_measure(child, where, depth + 1, memo, active)
                   for where, child in _children(node, path)]
        active.discard(id(node))
        memo[id(node)] = (1 + sum(r[0] for r in results),
                          1 + max((r[1] for r in results), default=0))
    size, height = memo[id(node)]
    if size > MAX_YAML_NODES:
        raise _Refused(path, f"more than {MAX_YAML_NODES} values once aliases are expanded",
                       node)
    if depth + height > MAX_YAML_DEPTH + 1:
        raise _Refused(path, f"nested deeper than {MAX_YAML_DEPTH} levels", node)
    return size, height


def _read_bytes(path: Path, shown: str) -> bytes:
    try:  # O_NONBLOCK: opening a FIFO must not wait for a writer
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise SpecError(f"{shown}: no such file") from None
    except OSError as err:
        raise SpecError(f"{shown}: cannot be opened: {err.strerror}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = "a directory" if stat.S_ISDIR(mode) else "a device, pipe or socket"
            raise SpecError(f"{shown}: not a regular file ({kind}); allowed: a YAML file")
        chunks, left = [], MAX_SPEC_BYTES + 1
        while left > 0 and (chunk := os.read(fd, min(left, 1 << 16))):
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as err:
        raise SpecError(f"{shown}: cannot be read: {err.strerror}") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > MAX_SPEC_BYTES:
        raise SpecError(f"{shown}: larger than {MAX_SPEC_BYTES} bytes; allowed: a spec of at "
                        f"most {MAX_SPEC_BYTES // 1024} KiB")
    return data


def _yaml_problem(err: yaml.YAMLError) -> str:
    if isinstance(err, yaml.reader.ReaderError):
        char = chr(err.character) if isinstance(err.character, int) else err.character
        return (f"character {char!r} at offset {err.position}: {err.reason}; "
                "allowed: printable characters")
    if isinstance(err, yaml.MarkedYAMLError):
        mark = err.problem_mark or err.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        context = f"{err.context}: " if err.context and err.problem else ""
        return f"{where}{context}{err.problem or err.context}"
    return str(err).split("\n")[0]


def read_yaml(path: Path, shown: str | None = None) -> Any:
    """Parse one spec file; ``shown`` names it in errors (default: the path)."""
    shown = shown or str(path)
    data = _read_bytes(path, shown)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise SpecError(f"{shown}: not UTF-8 text (byte {data[err.start]:#04x} at offset "
                        f"{err.start}); allowed: a UTF-8 YAML file") from None
    loader = _SpecLoader(text)
    try:
        node = loader.get_single_node()
        return None if node is None else loader.construct_document(node)
    except _Refused as err:
        raise SpecError(f"{shown}: {err}") from None
    except yaml.YAMLError as err:
        raise SpecError(f"{shown}: not valid YAML: {_yaml_problem(err)}") from None
    except RecursionError:
        raise SpecError(f"{shown}: not valid YAML: nested too deeply") from None
    finally:
        loader.dispose()


# ---------------------------------------------------------------------------------------------
# Rules: each checks one value and raises ``_Invalid(path, text)``; ``load_table`` adds the file.

FieldPath = tuple  # keys (str) and list positions (int)


class _Invalid(Exception):
    """``file``: the file that wrote the value, when the merged spec cannot tell (a file's own
    ``file_defaults``, which are not merged)."""

    def __init__(self, path: FieldPath, text: str, note: str = "", file: str | None = None):
        super().__init__(text)
        self.path, self.text, self.note, self.file = path, text, note, file


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _fmt(path: FieldPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<top>"


def _bad(path: FieldPath, value: Any, allowed: str, problem: str = "invalid value") -> _Invalid:
    return _Invalid(path, f"{problem} {_short(value)}; allowed: {allowed}")


def _number_kind(value: Any) -> bool:
    return type(value) in (int, float)


@dataclass(frozen=True)
class Number:
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a finite number"
        if self.low is not None and self.high is not None:
            return (f"{kind} in {'(' if self.low_open else '['}{self.low}, {self.high}"
                    f"{')' if self.high_open else ']'}")
        if self.low is not None:
            return f"{kind} {'>' if self.low_open else '>='} {self.low}"
        return kind

    def __call__(self, value: Any, path: FieldPath) -> None:
        ok = type(value) is int if self.integer else _number_kind(value)
        ok = ok and math.isfinite(value)
        if ok and self.low is not None:
            ok = value > self.low if self.low_open else value >= self.low
        if ok and self.high is not None:
            ok = value < self.high if self.high_open else value <= self.high
        if not ok:
            raise _bad(path, value, self.describe())


@dataclass(frozen=True)
class Text:
    pattern: re.Pattern | None = None
    single_line: bool = True

    def describe(self) -> str:
        if self.pattern is not None:
            return f"a string matching {self.pattern.pattern}"
        return "a single-line string" if self.single_line else "a string"

    def __call__(self, value: Any, path: FieldPath) -> None:
        ok = isinstance(value, str) and len(value) <= MAX_TEXT
        if ok and self.single_line:
            ok = len(value.splitlines()) <= 1 and not value.endswith(("\n", "\r"))
        if ok and self.pattern is not None:
            ok = self.pattern.fullmatch(value) is not None
        if not ok:
            raise _bad(path, value, self.describe())


class _Flag:
    def describe(self) -> str:
        return "true or false"

    def __call__(self, value: Any, path: FieldPath) -> None:
        if not isinstance(value, bool):
            raise _bad(path, value, self.describe())


class _Null:
    def describe(self) -> str:
        return "null"

    def __call__(self, value: Any, path: FieldPath) -> None:
        if value is not None:
            raise _bad(path, value, self.describe())


Flag, Null = _Flag(), _Null()


@dataclass(frozen=True)
class OneOf:
    kind: str
    names: Callable[[], Iterable[str]]  # called when checking: registries and source-read lists

    def describe(self) -> str:
        return ", ".join(self.names())

    def __call__(self, value: Any, path: FieldPath) -> None:
        if not isinstance(value, str) or value not in set(self.names()):
            raise _bad(path, value, self.describe(), f"unknown {self.kind}")


@dataclass(frozen=True)
class AnyOf:
    rules: tuple

    def describe(self) -> str:
        return " or ".join(r.describe() for r in self.rules)

    def __call__(self, value: Any, path: FieldPath) -> None:
        for rule in self.rules:
            try:
                return rule(value, path)
            except _Invalid:
                continue
        raise _bad(path, value, self.describe())


@dataclass(frozen=True)
class ListOf:
    item: Callable
    nonempty: bool = False
    distinct: bool = False
    increasing: bool = False
    max_len: int = 1000

    def describe(self) -> str:
        extra = [w for w, on in (("non-empty", self.nonempty), ("distinct", self.distinct),
                                 ("increasing", self.increasing)) if on]
        extra += [f"at most {self.max_len}"] if self.max_len < ListOf.max_len else []
        return f"a list{' (' + ', '.join(extra) + ')' if extra else ''} of: {self.item.describe()}"

    def __call__(self, value: Any, path: FieldPath) -> None:
        if not isinstance(value, list) or (self.nonempty and not value) \
                or len(value) > self.max_len:
            raise _bad(path, value, self.describe())
        for i, item in enumerate(value):
            self.item(item, path + (i,))
            if self.distinct and item in value[:i]:
                raise _bad(path + (i,), item, self.describe(), "duplicate")
            if self.increasing and i and not item > value[i - 1]:
                raise _bad(path + (i,), item, self.describe(), "not increasing")


@dataclass(frozen=True)
class Mapping:
    """A mapping with free keys (ids matching ``keys``) whose values pass ``values``."""

    keys: re.Pattern | None = None
    values: Callable | None = None
    nonempty: bool = False

    def describe(self) -> str:
        return "a mapping"

    def __call__(self, value: Any, path: FieldPath) -> None:
        _require_mapping(value, path)
        if self.nonempty and not value:
            raise _bad(path, value, "a non-empty mapping")
        for key, item in value.items():
            if self.keys is not None and not self.keys.fullmatch(key):
                raise _bad(path + (key,), key, f"ids matching {self.keys.pattern}", "bad id")
            if self.values is not None:
                self.values(item, path + (key,))


def _require_mapping(value: Any, path: FieldPath) -> None:
    if not isinstance(value, dict):
        raise _Invalid(path, f"expected a mapping, got {type(value).__name__} {_short(value)}")


@dataclass(frozen=True)
class Block:
    """A mapping with a fixed set of keys, each with its rule; ``then`` checks across keys."""

    fields: dict
    required: tuple = ()
    then: Callable[[dict, FieldPath], None] | None = None

    def describe(self) -> str:
        return f"a mapping with keys {', '.join(self.fields)}"

    def __call__(self, value: Any, path: FieldPath) -> None:
        _require_mapping(value, path)
        for key, item in value.items():
            if key not in self.fields:
                raise _Invalid(path + (key,), f"unknown key; allowed: {', '.join(self.fields)}")
            self.fields[key](item, path + (key,))
        for key in self.required:
            if key not in value:
                raise _Invalid(path + (key,), "required key is missing")
        if self.then is not None:
            self.then(value, path)


# ---------------------------------------------------------------------------------------------
# Names the training code accepts, read from its source (it imports torch).

@functools.lru_cache(maxsize=None)
def view_recipes() -> tuple[str, ...]:
    return introspect.literal_names("repro.data.transforms", "RECIPES")


@functools.lru_cache(maxsize=None)
def optimizers() -> tuple[str, ...]:
    return introspect.compared_names("repro.train.pretrain", "build_optimizer", "name")


@functools.lru_cache(maxsize=None)
def schedules() -> tuple[str, ...]:
    return introspect.compared_names("repro.train.schedules", "lr_factor", "name")


@functools.lru_cache(maxsize=None)
def feature_layers() -> tuple[str, ...]:
    return introspect.literal_names("repro.features", "LAYERS")


@functools.lru_cache(maxsize=None)
def data_policies() -> tuple[str, ...]:
    return introspect.literal_names("repro.launch.data", "POLICIES")


@functools.lru_cache(maxsize=None)
def encoders_of(method: str) -> tuple[str, ...]:
    return introspect.encoder_names(METHODS.target(method))


def all_encoders() -> set[str]:
    return {name for method in METHODS.names() for name in encoders_of(method)}


@functools.lru_cache(maxsize=None)
def method_params(method: str) -> dict[str, introspect.Param]:
    return introspect.config_fields(METHODS.target(method))


@functools.lru_cache(maxsize=None)
def protocol_params(protocol: str) -> dict[str, introspect.Param]:
    """What a spec may pass: the keyword arguments except ``seed`` (the worker passes it)."""
    params = introspect.keyword_params(PROTOCOLS.target(protocol))
    return {name: p for name, p in params.items() if name != "seed"}


# ---------------------------------------------------------------------------------------------
# Method and protocol params: names from the source, types from the annotations.

_SEQUENCES = {"list", "List", "Sequence", "tuple", "Tuple", "Iterable"}
# Ranges of parameters that mean the same in every method and protocol that has them.
_PARAM_RANGES = {
    "epochs": Number(low=0, low_open=True),
    "batch_size": Number(low=1),
    "lr": Number(low=0, low_open=True),
    "lr_backbone": Number(low=0, low_open=True),
    "lr_head": Number(low=0, low_open=True),
    "weight_decay": Number(low=0),
    "momentum": Number(0, 1),
    "temperature": Number(low=0, low_open=True),
    "label_fraction": Number(0, 1, low_open=True),
}


def _rule_of(node: ast.expr) -> Callable | None:
    """The rule for a type annotation; None when it is not one we can read (then: anything)."""
    if isinstance(node, ast.Constant) and node.value is None:
        return Null
    if isinstance(node, ast.Name):
        return {"int": Number(integer=True), "float": Number(), "bool": Flag, "str":
                Text(single_line=False), "dict": Mapping(), "None": Null}.get(node.id)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        parts = (_rule_of(node.left), _rule_of(node.right))
        return None if None in parts else AnyOf(parts)
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
        inner = node.slice.elts[0] if isinstance(node.slice, ast.Tuple) else node.slice
        rule = _rule_of(inner)
        if rule is None:
            return None
        if node.value.id == "Optional":
            return AnyOf((rule, Null))
        return ListOf(rule) if node.value.id in _SEQUENCES else None
    return None



@functools.lru_cache(maxsize=None)
def annotation_rule(annotation: str) -> Callable | None:
    if not annotation:
        return None
    try:
        return _rule_of(ast.parse(annotation, mode="eval").body)
    except SyntaxError:
        return None


def _finite(value: Any, path: FieldPath) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise _bad(path, value, "a finite number")
    if isinstance(value, list):
        for i, item in enumerate(value):
            _finite(item, path + (i,))
    if isinstance(value, dict):
        for key, item in value.items():
            _finite(item, path + (key,))


def _check_params(params: dict, path: FieldPath, allowed: dict, owner: str) -> None:
    for key, value in params.items():
        if key not in allowed:
            raise _Invalid(path + (key,), f"unknown parameter of {owner}; allowed: "
                                          f"{', '.join(allowed)}")
        rule = annotation_rule(allowed[key].annotation)
        if rule is not None:
            rule(value, path + (key,))
        _finite(value, path + (key,))
        if key in _PARAM_RANGES and _number_kind(value):
            _PARAM_RANGES[key](value, path + (key,))
    missing = [name for name, p in allowed.items() if p.required and name not in params]
    if missing:
        raise _Invalid(path, f"missing required parameter(s) {', '.join(missing)} of {owner}")


def check_protocol_params(protocol: str, params: dict, where: str = "params") -> None:
    """Check ``params`` of ``protocol`` as a spec's evaluation is checked (``repro eval``)."""
    try:
        _check_params(params, (), protocol_params(protocol), f"protocol {protocol}")
    except _Invalid as bad:
        at = f"{where} {_fmt(bad.path)}" if bad.path else where
        raise SpecError(f"{at}: {bad.text}") from None


# ---------------------------------------------------------------------------------------------
# Schemas of the blocks (keys and values as the consuming code reads them).

def _int(low: int, high: int | None = None) -> Number:
    return Number(low, high, integer=True)


def _split_of_dataset(ref: dict, path: FieldPath) -> None:
    splits = DATASET_INFO[ref["dataset"]].splits
    if "split" in ref and ref["split"] not in splits:
        raise _bad(path + ("split",), ref["split"], ", ".join(splits),
                   f"unknown split of {ref['dataset']}")


def _resources(value: Any, path: FieldPath) -> None:
    from repro.launch.resources import ResourceError, check_resources

    _require_mapping(value, path)
    try:
        check_resources(value)
    except ResourceError as err:
        raise _Invalid(path + (err.key,), err.detail) from None


def _features_layer(features: dict, path: FieldPath) -> None:
    if "pool" in features and features.get("layer", "pooled") != "conv5_avgpool":
        raise _bad(path + ("pool",), features["pool"], "pool only with layer: conv5_avgpool",
                   "not used by layer " + repr(features.get("layer", "pooled")))


_SCHEDULE_KEYS = {"milestones": "step", "gamma": "step", "final_lr_fraction": "cosine",
                  "per_step": "cosine"}


def _optim_consistency(optim: dict, path: FieldPath) -> None:
    schedule = optim.get("schedule", "constant")
    for key, needs in _SCHEDULE_KEYS.items():
        if key in optim and schedule != needs:
            raise _bad(path + (key,), optim[key], f"{key} only with schedule: {needs}",
                       f"not used by schedule {schedule!r}:")
    epochs = optim["epochs"]
    for i, milestone in enumerate(optim.get("milestones", [])):
        if milestone >= epochs:
            raise _bad(path + ("milestones", i), milestone, f"epochs < {epochs}",
                       "milestone never reached")
    if optim.get("warmup_start_lr") is not None and not optim.get("warmup_epochs", 0):
        raise _bad(path + ("warmup_start_lr",), optim["warmup_start_lr"],
                   "warmup_start_lr only with warmup_epochs > 0", "no warm-up to start:")
    if optim.get("warmup_epochs", 0) > epochs:
        raise _bad(path + ("warmup_epochs",), optim["warmup_epochs"], f"at most {epochs}",
                   "longer than the run:")


def _recipe_consistency(recipe: dict, path: FieldPath) -> None:
    _check_params(recipe.get("params", {}), path + ("params",),
                  method_params(recipe["method"]), f"method {recipe['method']}")
    if recipe["method"] == "supervised":  # it reads its labels itself (repro.methods.supervised)
        params, data = recipe.get("params", {}), recipe["data"]
        for key, default, value in (("dataset", "", data["dataset"]),
                                    ("split", "train", data.get("split", "train")),
                                    ("subset", 0, data.get("subset") or 0)):
            if params.get(key, default) != value:
                raise _bad(path + ("params", key), params.get(key, default),
                           f"{value!r} (data.{key}: the labels must be those of the images "
                           "it trains on)", "differs from the recipe's data:")
    subset, batch = recipe["data"].get("subset"), recipe["optim"]["batch_size"]
    if subset is not None and batch > subset:
        raise _bad(path + ("optim", "batch_size"), batch, f"at most data.subset ({subset})",
                   "larger than the training set:")


DATA_REF = Block({"dataset": OneOf("dataset", DATASET_INFO.keys), "split": Text(),
                  "subset": _int(1)}, required=("dataset",), then=_split_of_dataset)
IMAGE_SIZE = _int(1, 4096)
BACKBONE = Block({"arch": OneOf("architecture", BACKBONES.names), "cifar_stem": Flag},
                 required=("arch",))
VIEWS = Block({
    "name": OneOf("view recipe", view_recipes), "image_size": IMAGE_SIZE,
    # keyword arguments of repro.data.transforms.build_views
    "options": Block({"n_views": _int(1, 64), "blur": AnyOf((Flag, Null)),
                      "dataset": OneOf("dataset", DATASET_INFO.keys)}),
}, required=("name", "image_size"))
OPTIM = Block({
    "name": OneOf("optimiser", optimizers), "lr": Number(low=0, low_open=True),
    "batch_size": _int(1), "epochs": _int(1), "momentum": Number(0, 1, high_open=True),
    "weight_decay": Number(low=0), "schedule": OneOf("schedule", schedules),
    "milestones": ListOf(_int(0), increasing=True), "gamma": Number(low=0, low_open=True),
    "warmup_epochs": Number(low=0), "warmup_start_lr": AnyOf((Number(low=0), Null)),
    "per_step": Flag, "final_lr_fraction": Number(0, 1),
}, required=("lr", "batch_size", "epochs"), then=_optim_consistency)
RUNTIME = Block({"threads": _int(1), "num_workers": _int(0),
                 "precision": OneOf("precision", lambda: PRECISIONS), "device": Text(DEVICE),
                 "channels_last": Flag})
# an optional kNN monitor after each (every-th) epoch: repro/train/monitor.py
MONITOR = Block({"knn": Block({"train": DATA_REF, "test": DATA_REF, "k": _int(1),
                               "temperature": Number(low=0, low_open=True), "every": _int(1)},
                              required=("train", "test"))})
RECIPE = Block({"method": OneOf("method", METHODS.names), "params": Mapping(),
                "backbone": BACKBONE, "data": DATA_REF, "views": VIEWS, "optim": OPTIM,
                "runtime": RUNTIME, "monitor": MONITOR},
               required=("method", "backbone", "data", "views", "optim"),
               then=_recipe_consistency)
FEATURES = Block({"layer": OneOf("feature layer", feature_layers), "pool": _int(1, 64),
                  "image_size": IMAGE_SIZE, "device": Text(DEVICE)}, then=_features_layer)
PROTOCOL = OneOf("protocol", PROTOCOLS.names)
ENCODER = OneOf("encoder", all_encoders)
EVAL = Block({"protocol": PROTOCOL, "encoder": ENCODER, "features": FEATURES,
              "scales": Mapping(nonempty=True)}, required=("protocol", "scales"))
EVAL_AT_SCALE = Block({"train": DATA_REF, "test": DATA_REF, "params": Mapping(),
                       "protocol": PROTOCOL, "encoder": ENCODER, "features": FEATURES},
                      required=("train", "test"))
SCALE = Block({
    "seeds": ListOf(_int(0, 2**31 - 1), nonempty=True, distinct=True, max_len=100),
    "partial": Flag,
    "description": Text(), "data": OneOf("data policy", data_policies),
    "resources": Block({"pretrain": _resources, "eval": _resources}),
}, required=("seeds",))
CELL = AnyOf((Text(), Number()))
COLUMN = Block({"id": Text(NAME_ID), "label": Text(), "eval": Text(), "metric": Text(),
                "scale_factor": Number(low=0, low_open=True), "digits": _int(0, 10),
                "registry": OneOf("registry field", REGISTRY_FIELDS.keys),
                "summary": OneOf("summary", SUMMARIES.keys)},
               required=("id", "label"))
EVAL_REF = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}/[A-Za-z0-9][A-Za-z0-9_-]{0,63}")  # table2/cl_c10
DATASET_ROW = Block({"name": OneOf("dataset", DATASET_INFO.keys), "split": Text(),
                     "eval": Text(EVAL_REF)}, required=("name", "split"),
                    then=lambda ref, path: _split_of_dataset({"dataset": ref["name"],
                                                             "split": ref["split"]}, path))
# ``for: {<axis>: [values] | {<id>: value}}`` makes one row per value (per combination),
# ``{axis}`` filled in name and info with the value, in recipe, recipe_by_scale and evaluate
# with its id
# (the value itself in the list form); ``paper_at: {<value>: {<column>: printed}}`` gives the
# paper's cells of single points (one-axis rows), over ``paper``. Used by figure specs.
ROW = Block({"name": Text(), "recipe": Text(), "recipe_by_scale": Mapping(NAME_ID, values=Text()),
             "for": Mapping(AXIS_ID, values=lambda v, p: _sweep_values(v, p), nonempty=True),
             "paper_at": Mapping(values=Mapping(values=CELL)),
             "origin": OneOf("row origin", ORIGINS.keys),
             "reason": Text(), "paper": Mapping(values=CELL), "info": Mapping(values=CELL),
             "evaluate": ListOf(Text(), distinct=True), "dataset": DATASET_ROW},
            required=("name", "paper"))
# What one file may hold; the spec's own keys override those of its includes, except
# ``file_defaults``, which stay with the file that writes them (see ``_recipes``).
INCLUDABLE = {"recipes": Mapping(RECIPE_KEY), "recipe_defaults": Mapping(NAME_ID),
              "references": Mapping(REF_ID, values=Text()),
              "file_defaults": Mapping(NAME_ID, values=Mapping()),
              "evals": Mapping(NAME_ID), "scales": Mapping(NAME_ID, nonempty=True),
              "notes": ListOf(Text())}
# A figure of the paper (``experiments/<paper>/figN.yaml``): a table spec whose rows are the points
# of its sweeps (``for`` rows), plus how to plot them: per panel, x = an axis of the rows' ``for``,
# y = a result column, one line per series (a row-name pattern with the axis placeholders).
# a series: a row-name pattern, or {rows: pattern, y: column} for a series on another column
# (y: a result column, or a pattern of one with the rows' axes, e.g. nmi_k{K}: per point)
SERIES = AnyOf((Text(), Block({"rows": Text(), "y": Text()}, required=("rows", "y"))))
LINE_PANEL = Block({"id": Text(NAME_ID), "kind": OneOf("panel kind", lambda: ["line"]),
                    "title": Text(), "x": Text(AXIS_ID), "y": Text(),
                    "series": Mapping(values=SERIES, nonempty=True), "log_x": Flag,
                    "ylabel": Text()},
                   required=("id", "title", "x", "y", "series"))
# A histogram of a list-valued result per seed (e.g. PCL Fig. 3(a): cluster sizes): ``values``
# = a result column with a ``summary`` (the list it summarises is drawn), one series per row
# (label -> row name), on common bins; ours as the mean count per bin over seeds.
HISTOGRAM_PANEL = Block({"id": Text(NAME_ID), "kind": OneOf("panel kind", lambda: ["histogram"]),
                         "title": Text(), "values": Text(),
                         "series": Mapping(values=Text(), nonempty=True),
                         "bins": _int(1, 1000), "log_x": Flag, "log_y": Flag,
                         "xlabel": Text(), "ylabel": Text()},
                        required=("id", "kind", "title", "values", "series"))
PANEL_KINDS = {"line": LINE_PANEL, "histogram": HISTOGRAM_PANEL}


class _Panel:
    """A panel, checked by the block of its ``kind`` (default ``line``)."""

    def describe(self) -> str:
        return f"a panel mapping whose kind is one of {', '.join(PANEL_KINDS)}"

    def __call__(self, value: Any, path: FieldPath) -> None:
        _require_mapping(value, path)
        kind = value.get("kind", "line")
        OneOf("panel kind", PANEL_KINDS.keys)(kind, path + ("kind",))
        PANEL_KINDS[kind](value, path)


PANEL = _Panel()
FIGURE = Block({"caption": Text(), "panels": ListOf(PANEL, nonempty=True, max_len=16)},
               required=("caption", "panels"))
SPEC_FILE = Block({
    "paper": OneOf("paper", lambda: PAPERS), "table": Text(TABLE_ID), "title": Text(),
    "figure": FIGURE,
    "command": Text(), "columns": ListOf(Mapping(), nonempty=True),
    "rows": ListOf(Mapping(), nonempty=True), "claims": ListOf(Mapping()),
    "baselines": ListOf(Mapping()),
    "include": ListOf(Text(), nonempty=True, distinct=True, max_len=MAX_INCLUDES),
    **INCLUDABLE,
})
INCLUDE_FILE = Block(INCLUDABLE)
REQUIRED_TOP = ("paper", "table", "title", "columns", "rows", "scales")


def deep_merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


# ---------------------------------------------------------------------------------------------
# Includes: shared files under the experiments root, merged under the spec's own keys.

def experiments_root(spec: Path) -> Path:
    """Where the includes of ``spec`` must live: the folder that holds its paper folder
    (``experiments/`` for ``experiments/<paper>/<table>.yaml``), symlinks resolved."""
    return spec.resolve().parent.parent


def _include_path(spec: Path, i: int, rel: str) -> tuple[Path, str]:
    """The include's resolved path and how errors name it."""
    root = experiments_root(spec)
    where = f"{spec}: include[{i}]"
    if Path(rel).is_absolute():
        raise SpecError(f"{where}: absolute path {_short(rel)}; allowed: a path relative to "
                        f"the spec, inside {root}")
    try:
        target = (spec.parent / rel).resolve()
    except (OSError, RuntimeError) as err:  # e.g. a symlink loop
        raise SpecError(f"{where}: {_short(rel)} cannot be resolved: {err}") from None
    if not target.is_relative_to(root):
        raise SpecError(f"{where}: {_short(rel)} resolves outside {root}; allowed: files "
                        f"under {root}")
    return target, f"{os.path.normpath(spec.parent / rel)} (included from {spec})"


def _merge(into: dict, body: dict, shown: str, origins: dict, at: FieldPath = ()) -> None:
    """Deep-merge ``body`` into ``into``; ``origins`` records which file set each subtree."""
    for key, value in body.items():
        here = at + (key,)
        if key == "notes" and not at:
            into["notes"] = into.get("notes", []) + value
        elif isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value, shown, origins, here)
        else:
            into[key] = copy.deepcopy(value)
            for old in [p for p in origins if p[:len(here)] == here]:
                del origins[old]
            origins[here] = shown


def _origin(origins: dict, path: FieldPath, spec: str) -> str:
    for n in range(len(path), 0, -1):
        if path[:n] in origins:
            return origins[path[:n]]
    return spec


def _check_file(body: Any, schema: Block, shown: str) -> None:
    if body is None:
        raise SpecError(f"{shown}: empty file; allowed: a YAML mapping of "
                        f"{', '.join(schema.fields)}")
    try:
        schema(body, ())
    except _Invalid as bad:
        raise SpecError(f"{shown}: {_fmt(bad.path)}: {bad.text}") from None


@dataclass
class _Local:
    """What the merged spec forgets: each file's ``file_defaults`` and which file first defined
    each recipe key (the file whose ``file_defaults`` that recipe gets)."""

    files: list[tuple[str, dict]] = field(default_factory=list)  # (shown, file_defaults)
    home: dict[str, int] = field(default_factory=dict)  # recipe key -> index into files


def load_table(path: str | Path) -> Table:
    """Parse and validate a spec and its includes; raises ``SpecError`` (one line)."""
    path = Path(path)
    own = read_yaml(path)
    _check_file(own, SPEC_FILE, str(path))
    merged: dict = {}
    origins: dict[FieldPath, str] = {}
    local = _Local()

    def add(body: dict, shown: str) -> None:
        for ref, text in body.get("references", {}).items():  # one meaning per name
            if merged.get("references", {}).get(ref, text) != text:
                raise SpecError(f"{shown}: references.{ref}: {_short(text)} differs from "
                                f"{_short(merged['references'][ref])} (set in "
                                f"{_origin(origins, ('references', ref), str(path))}); allowed: "
                                "the same text for a name, or another name")
        for key in body.get("recipes", {}):
            local.home.setdefault(key, len(local.files))
        local.files.append((shown, body.get("file_defaults", {})))
        _merge(merged, {k: v for k, v in body.items() if k not in ("include", "file_defaults")},
               shown, origins)

    for i, rel in enumerate(own.get("include", [])):
        target, shown = _include_path(path, i, rel)
        body = read_yaml(target, shown)
        _check_file(body, INCLUDE_FILE, shown)
        add(body, shown)
    add(own, str(path))
    try:
        table = _table(path, merged, local)
        table.recipe_files = {key: _origin(origins, ("recipes", key), str(path))
                              for key in merged.get("recipes", {})}
        return table
    except _Invalid as bad:
        raise SpecError(f"{bad.file or _origin(origins, bad.path, str(path))}: "
                        f"{_fmt(bad.path)}{bad.note}: {bad.text}") from None


# ---------------------------------------------------------------------------------------------
# The merged spec, block by block.

def _full_scales(scales: dict) -> list[str]:
    return [s for s, body in scales.items() if not body.get("partial")]


def _every_scale(entries: dict, path: FieldPath, scales: dict, required=None) -> None:
    """Every key of ``entries`` is a scale; every scale of ``required`` (default: the full
    scales) has an entry. A partial scale covers only what defines it."""
    for scale in entries:
        if scale not in scales:
            raise _bad(path + (scale,), scale, ", ".join(scales), "unknown scale")
    full = _full_scales(scales)
    for scale in full if required is None else required:
        if scale not in entries:
            raise _Invalid(path + (scale,), f"missing; every full scale needs an entry "
                                            f"({', '.join(full)})")


def _sets(tree: Any, rel: FieldPath) -> bool:
    """Whether ``tree`` sets the value at ``rel`` (itself or a non-mapping above it)."""
    for key in rel:
        if not isinstance(tree, dict) or key not in tree:
            return False
        tree = tree[key]
        if not isinstance(tree, dict):
            return True
    return True


# ---------------------------------------------------------------------------------------------
# Recipes. The body of recipe <id> at a scale is deep-merged from layers, top one winning:
#   its grid values (last axis on top), its own ``scales.<scale>`` body, then its base: the
#   parent's resolved body at that scale (``extends``), or, where there is no parent there, the
#   ``file_defaults.<scale>`` of the file that defines the recipe; last the spec-wide
#   ``recipe_defaults.<scale>``. An error names the layer that wrote the bad value.

@dataclass
class _Layer:
    scale: str | None  # None: every scale of the recipe (a grid ``set`` without scales)
    body: dict
    at: FieldPath  # where ``body`` is written
    file: str | None = None  # set when the merged spec's origins cannot tell
    fixed: bool = False  # a swept value: errors inside it name ``at`` itself
    # dotted path -> where its value comes from (see ``recipe_sources``); a body's ``sources``
    # key is moved here, so it never reaches the recipe
    sources: dict = field(default_factory=dict)

    def __post_init__(self):
        if isinstance(self.body, dict) and "sources" in self.body:
            self.sources = self.body["sources"]
            self.body = {k: v for k, v in self.body.items() if k != "sources"}

    def where(self, rel: FieldPath) -> FieldPath:
        return self.at if self.fixed else self.at + rel


@dataclass
class _Draft:
    """One recipe id before resolution: a recipe entry, or one combination of a grid."""

    key: str  # its entry under ``recipes`` (the id, or the grid's pattern)
    parent: str | None
    own: dict  # scale -> body
    grid: list[_Layer]
    home: int | None


def _fragment(value: Any, path: FieldPath) -> None:
    """A grid value's overrides: ``{<scale>: <partial body>}``, or a list of them (merged in
    order; e.g. a YAML alias of a shared value and what this grid adds)."""
    rule = Mapping(NAME_ID, values=Mapping())
    if isinstance(value, list):
        ListOf(rule, nonempty=True, max_len=8)(value, path)
    else:
        rule(value, path)


SCALAR = AnyOf((Number(), Text()))


def _sweep_values(value: Any, path: FieldPath) -> None:
    if isinstance(value, dict):
        Mapping(VALUE_NAME, values=SCALAR, nonempty=True)(value, path)
    else:
        ListOf(SCALAR, nonempty=True, distinct=True, max_len=MAX_GRID)(value, path)


SWEEP = Block({"set": AnyOf((Text(DOTTED), Mapping(NAME_ID, values=Text(DOTTED),
                                                    nonempty=True))),
               "values": _sweep_values, "source": Text()}, required=("set", "values"))


def _axis(value: Any, path: FieldPath) -> None:
    """``{set: <path> | {<scale>: <path>}, values: [v, ...] | {name: v}}`` (one value swept),
    or ``{<name>: <overrides>}``."""
    _require_mapping(value, path)
    if "set" in value or "values" in value:
        SWEEP(value, path)
    else:
        Mapping(VALUE_NAME, values=_fragment, nonempty=True)(value, path)


def _entry_shape(entry: dict, path: FieldPath) -> None:
    key = path[-1]
    names = PLACEHOLDER.findall(key)
    if "grid" not in entry:
        if names or not NAME_ID.fullmatch(key):
            raise _bad(path, key, f"ids matching {NAME_ID.pattern} ({{axis}} only in a recipe "
                       "with grid)", "bad id")
        if "extends" in entry and not NAME_ID.fullmatch(entry["extends"]):
            raise _bad(path + ("extends",), entry["extends"], "a recipe id ({axis} only in a "
                       "recipe with grid)")
        if "scales" not in entry and "extends" not in entry:
            raise _Invalid(path + ("scales",), "required key is missing (or extends)")
        return
    axes = list(entry["grid"])
    if sorted(names) != sorted(axes):
        raise _bad(path, key, f"an id pattern naming each grid axis once: "
                   f"{', '.join('{' + a + '}' for a in axes)}", "bad grid pattern")
    for name in PLACEHOLDER.findall(entry.get("extends", "")):
        if name not in axes:
            raise _bad(path + ("extends",), entry["extends"], f"a recipe id or a pattern of the "
                       f"grid's axes ({', '.join(axes)})", f"unknown axis {{{name}}} in")


RECIPE_ENTRY = Block({"scales": Mapping(values=Mapping()), "extends": Text(RECIPE_KEY),
                      "grid": Mapping(AXIS_ID, values=_axis, nonempty=True)},
                     then=_entry_shape)


def _nest(dotted: str, value: Any) -> dict:
    out: Any = value
    for key in reversed(dotted.split(".")):
        out = {key: out}
    return out


def _choices(axis: str, spec: dict, at: FieldPath, scales: dict) -> list[tuple[str, list]]:
    """(value name, its layers) for each value of one grid axis."""
    at = at + ("grid", axis)
    out = []
    if "set" not in spec:
        for name, value in spec.items():
            parts = value if isinstance(value, list) else [value]
            layers = []
            for i, part in enumerate(parts):
                where = at + ((name, i) if isinstance(value, list) else (name,))
                for scale, body in part.items():
                    if scale not in scales:
                        raise _bad(where + (scale,), scale, ", ".join(scales), "unknown scale")
                    layers.append(_Layer(scale, body, where + (scale,)))
            out.append((name, layers))
        return out
    targets = spec["set"] if isinstance(spec["set"], dict) else {None: spec["set"]}
    for scale in targets:
        if scale is not None and scale not in scales:
            raise _bad(at + ("set", scale), scale, ", ".join(scales), "unknown scale")
    values = spec["values"]
    named = values.items() if isinstance(values, dict) else [(str(v), v) for v in values]
    for i, (name, value) in enumerate(named):
        where = at + ("values", name if isinstance(values, dict) else i)
        out.append((name, [_Layer(scale, _nest(dotted, value), where, fixed=True,
                                  sources={dotted: spec["source"]} if "source" in spec else {})
                           for scale, dotted in targets.items()]))
    return out


def _fill(pattern: str, values: dict[str, str]) -> str:
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], pattern)


def _drafts(entries: dict, scales: dict, local: _Local) -> dict[str, _Draft]:
    drafts: dict[str, _Draft] = {}
    for key, entry in entries.items():
        at = ("recipes", key)
        RECIPE_ENTRY(entry, at)
        _every_scale(entry.get("scales", {}), at + ("scales",), scales, required=())
        home = local.home.get(key)
        if "grid" not in entry:
            combos = [((), [])]
        else:
            axes = [(axis, _choices(axis, spec, at, scales))
                    for axis, spec in entry["grid"].items()]
            if math.prod(len(c) for _, c in axes) > MAX_GRID:
                raise _bad(at + ("grid",), {a: [n for n, _ in c] for a, c in axes},
                           f"at most {MAX_GRID} combinations", "too many recipes:")
            combos = [((), [])]
            for axis, choices in axes:
                combos = [(names + ((axis, name),), layers + more)
                          for names, layers in combos for name, more in choices]
        for names, layers in combos:
            values = dict(names)
            rid = _fill(key, values)
            if not NAME_ID.fullmatch(rid):
                raise _bad(at, rid, f"ids matching {NAME_ID.pattern} (a value that cannot be "
                           "part of an id needs a name: values: {<name>: <value>})",
                           "expands to a bad id")
            if rid in drafts:
                raise _Invalid(at, f"defines recipe {rid!r} again (also recipes."
                                   f"{drafts[rid].key}); allowed: distinct recipe ids")
            parent = _fill(entry["extends"], values) if "extends" in entry else None
            drafts[rid] = _Draft(key, parent, entry.get("scales", {}), layers, home)
    return drafts


def _resolve(drafts: dict[str, _Draft], scales: dict,
             local: _Local) -> dict[str, dict[str, list[_Layer]]]:
    """recipe id -> scale -> its layers, bottom first (``recipe_defaults`` not included);
    parents come before their children."""
    resolved: dict[str, dict[str, list[_Layer]]] = {}
    for rid in drafts:
        chain = [rid]  # rid, its parent, ... up to a resolved one or a root
        while chain[-1] not in resolved and drafts[chain[-1]].parent is not None:
            draft = drafts[chain[-1]]
            at = ("recipes", draft.key, "extends")
            if draft.parent not in drafts:
                raise _bad(at, draft.parent, ", ".join(drafts), "unknown recipe")
            if draft.parent in chain:
                loop = chain[chain.index(draft.parent):] + [draft.parent]
                raise _Invalid(at, f"cycle {' -> '.join(loop)}; allowed: a chain of recipes "
                                   "that ends in one without extends")
            chain.append(draft.parent)
        for cur in reversed(chain):
            if cur in resolved:
                continue
            draft = drafts[cur]
            above = resolved[draft.parent] if draft.parent is not None else {}
            named = set(above) | set(draft.own) | {g.scale for g in draft.grid}
            own_file, defaults = local.files[draft.home] if draft.home is not None else ("", {})
            out = {}
            for scale in (s for s in scales if s in named):
                if scale in above:
                    layers = list(above[scale])
                elif scale in defaults:
                    layers = [_Layer(scale, defaults[scale], ("file_defaults", scale), own_file)]
                else:
                    layers = []
                if scale in draft.own:
                    layers.append(_Layer(scale, draft.own[scale],
                                         ("recipes", draft.key, "scales", scale)))
                layers += [g for g in draft.grid if g.scale in (scale, None)]
                out[scale] = layers
            resolved[cur] = out
    return resolved


def _unused_defaults(resolved: dict, local: _Local, scales: dict) -> None:
    """Every ``file_defaults.<scale>`` reaches a recipe (so each of its keys is checked)."""
    used = {(layer.file, layer.at[1]) for by_scale in resolved.values()
            for layers in by_scale.values() for layer in layers if layer.at[0] == "file_defaults"}
    for shown, defaults in local.files:
        for scale in defaults:
            if scale not in scales:
                raise _Invalid(("file_defaults", scale), f"unknown scale {scale!r}; allowed: "
                               f"{', '.join(scales)}", file=shown)
            if (shown, scale) not in used:
                raise _Invalid(("file_defaults", scale), "reaches no recipe; allowed: defaults "
                               "of a scale that a recipe of this file (one without extends, "
                               "or whose parent lacks the scale) defines", file=shown)


def _check_recipe(rid: str, draft: _Draft, scale: str, layers: list[_Layer]) -> dict:
    recipe: dict = {}
    for layer in layers:
        recipe = deep_merge(recipe, layer.body)
    natural = ("recipes", rid, "scales", scale)
    at = ("recipes", draft.key, "scales", scale)
    try:
        RECIPE(recipe, at)
    except _Invalid as bad:  # name the key where it is written: maybe a default or a parent
        rel = bad.path[len(at):]
        for layer in reversed(layers):
            if rel and _sets(layer.body, rel):
                where = layer.where(rel)
                note = "" if where[:len(natural)] == natural else \
                    f" (merged into {_fmt(natural)})"
                raise _Invalid(where, bad.text, note, layer.file) from None
        if at != natural:
            raise _Invalid(bad.path, bad.text, f" (merged into {_fmt(natural)})") from None
        raise
    return recipe


def _recipes(raw: dict, scales: dict, local: _Local,
             layers_out: dict | None = None) -> dict[str, dict]:
    defaults = raw.get("recipe_defaults", {})
    for scale, body in defaults.items():
        if scale not in scales:
            raise _bad(("recipe_defaults", scale), scale, ", ".join(scales), "unknown scale")
        _require_mapping(body, ("recipe_defaults", scale))
    drafts = _drafts(raw.get("recipes", {}), scales, local)
    resolved = _resolve(drafts, scales, local)
    _unused_defaults(resolved, local, scales)
    checked: dict[str, dict] = {}
    seen: set[int] = set()
    for rid, by_scale in resolved.items():  # parents first: an error names the parent
        checked[rid] = {}
        for scale, layers in by_scale.items():
            spec_wide = [_Layer(scale, defaults[scale], ("recipe_defaults", scale))] \
                if scale in defaults else []
            checked[rid][scale] = _check_recipe(rid, drafts[rid], scale, spec_wide + layers)
            for layer in spec_wide + layers:
                if id(layer) not in seen:
                    seen.add(id(layer))
                    _check_sources(layer, raw.get("references", {}))
            if layers_out is not None:
                layers_out.setdefault(rid, {})[scale] = spec_wide + layers
    return {rid: checked[rid] for rid in drafts}


# ---------------------------------------------------------------------------------------------
# Sources: where each value of a recipe comes from. Any body a recipe is merged from (a
# ``file_defaults.<scale>``, a recipe's ``scales.<scale>``, a grid value) may carry
# ``sources: {<dotted path>: <source>}`` for the values that same body sets (a path names a
# value or a subtree of them); a swept grid axis carries ``source:``. A source is ``<ref>`` or
# ``<ref>: <detail>`` (several joined by "; "), <ref> a key of the spec's ``references`` (the
# paper, the authors' repository at a commit, their issue tracker), or ``ours: <reason>`` for our
# own choice. A value inherits no source from a body it overrides: whoever changes a value says
# where the new one comes from. tests/test_recipe_sources.py requires one for every value of
# every paper-scale recipe.

OURS = "ours"


def check_source(text: str, references: dict) -> str | None:
    """Why ``text`` is not a valid source (None when it is)."""
    parts = [p.strip() for p in text.split(";")]
    for part in parts:
        ref, colon, detail = part.partition(":")
        ref = ref.strip()
        if ref == OURS:
            if not detail.strip():
                return f"{OURS!r} needs a reason ('{OURS}: <why>')"
        elif ref not in references:
            known = ", ".join(sorted(references)) or "none defined"
            return (f"unknown reference {ref!r} (references: {known}; or '{OURS}: <reason>')")
    return None


def _check_sources(layer: _Layer, references: dict) -> None:
    if not layer.sources:
        return
    at = layer.at if layer.fixed else layer.at + ("sources",)
    Mapping(DOTTED, values=Text())(layer.sources, at)
    for dotted, text in layer.sources.items():
        here = at if layer.fixed else at + (dotted,)
        if not _sets(layer.body, tuple(dotted.split("."))):
            raise _Invalid(here, f"source for {dotted!r}, which this body does not set; "
                                 "allowed: paths of values set beside it", file=layer.file)
        problem = check_source(text, references)
        if problem:
            raise _Invalid(here, f"bad source {_short(text)}: {problem}", file=layer.file)


def _leaves(tree: dict, prefix: tuple = ()) -> list[tuple[tuple, Any]]:
    out = []
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out += _leaves(value, prefix + (key,))
        elif not isinstance(value, dict):
            out.append((prefix + (key,), value))
    return out


@dataclass
class Sourced:
    """One value of a resolved recipe, with the body that set it and that body's source."""

    path: str  # dotted
    value: Any
    source: str | None  # None: the body that sets it gives none
    written: str  # where the winning body is written (file: dotted location)


def recipe_sources(table: Table, recipe_id: str, scale: str) -> list[Sourced]:
    """Every value of recipe ``recipe_id`` at ``scale``, with its source."""
    layers = table.recipe_layers[recipe_id][scale]
    recipe = table.recipes[recipe_id][scale]
    out = []
    for path, value in _leaves(recipe):
        for layer in reversed(layers):
            if _sets(layer.body, path):
                break
        else:  # pragma: no cover - every leaf comes from some layer
            raise AssertionError(path)
        dotted = ".".join(path)
        source = None
        for n in range(len(path), 0, -1):  # the longest path that names it (or its subtree)
            key = ".".join(path[:n])
            if key in layer.sources:
                source = layer.sources[key]
                break
        file = layer.file or (table.recipe_files.get(layer.at[1]) if layer.at[0] == "recipes"
                              else None) or str(table.path)
        out.append(Sourced(dotted, value, source, f"{file}: {_fmt(layer.at)}"))
    return out


def _evals(evals: dict, scales: dict) -> dict[str, dict]:
    for eid, ev in evals.items():
        EVAL(ev, ("evals", eid))
        _every_scale(ev["scales"], ("evals", eid, "scales"), scales)
        for scale, body in ev["scales"].items():
            at = ("evals", eid, "scales", scale)
            EVAL_AT_SCALE(body, at)
            protocol = body.get("protocol", ev["protocol"])
            _check_params(body.get("params", {}), at + ("params",), protocol_params(protocol),
                          f"protocol {protocol}")
    return evals


def _columns(raw: list, evals: dict) -> list[Column]:
    columns: list[Column] = []
    for i, col in enumerate(raw):
        at = ("columns", i)
        COLUMN(col, at)
        if "eval" in col:
            OneOf("eval", evals.keys)(col["eval"], at + ("eval",))
            if "metric" not in col:
                raise _Invalid(at + ("metric",), "required with 'eval'")
        if "registry" in col and "eval" in col:
            raise _bad(at + ("registry",), col["registry"], "registry only in descriptive "
                       "columns (without eval)", "not used with eval:")
        for key in ("metric", "scale_factor", "digits", "summary"):
            if key in col and "eval" not in col:
                raise _bad(at + (key,), col[key], f"{key} only in result columns (with eval)",
                           "not used without eval:")
        if any(c.id == col["id"] for c in columns):
            raise _bad(at + ("id",), col["id"], "distinct column ids", "duplicate")
        columns.append(Column(id=col["id"], label=col["label"], eval=col.get("eval"),
                              metric=col.get("metric"),
                              scale_factor=col.get("scale_factor", 1.0),
                              digits=col.get("digits", 1), registry=col.get("registry"),
                              summary=col.get("summary")))
    return columns


def _row_columns(row: dict, at: FieldPath, columns: list[Column]) -> None:
    col_ids = [c.id for c in columns]
    for part in ("paper", "info"):
        for key in row.get(part, {}):
            if key not in col_ids:
                raise _bad(at + (part, key), key, ", ".join(col_ids), "unknown column")
    eval_ids = [c.id for c in columns if c.eval]
    for j, key in enumerate(row.get("evaluate", [])):
        if "recipe" not in row and "recipe_by_scale" not in row:
            raise _bad(at + ("evaluate",), row["evaluate"], "evaluate only in rows with a "
                       "recipe", "not used without recipe:")
        if key not in eval_ids:
            raise _bad(at + ("evaluate", j), key, ", ".join(eval_ids), "not a result column:")


def _row_origin(row: dict, at: FieldPath) -> None:
    """A row without a recipe says whose numbers it shows; a trained row (ours) says nothing."""
    allowed = " or ".join(f"{k} ({v})" for k, v in ORIGINS.items())
    if "recipe" in row or "recipe_by_scale" in row:
        for key in ("origin", "reason"):
            if key in row:
                raise _bad(at + (key,), row[key], f"{key} only in rows without a recipe (a "
                           "row with a recipe is trained by us)", "not used with recipe:")
        return
    if "origin" not in row:
        raise _Invalid(at + ("origin",), f"required in a row without recipe; allowed: {allowed}")
    if "reason" in row and row["origin"] != "paper":
        raise _bad(at + ("reason",), row["reason"], "reason only with origin: paper (why we do "
                   "not rerun the paper's own run)", f"not used with origin {row['origin']!r}:")


def _row_recipes(row: dict, at: FieldPath, recipes: dict, scales: dict) -> None:
    """The recipes a row names exist and define the scales the row is trained at: every full
    scale for ``recipe`` (a partial scale only if the recipe has it), each scale of
    ``recipe_by_scale``."""
    if "recipe" in row:
        OneOf("recipe", recipes.keys)(row["recipe"], at + ("recipe",))
        for scale in _full_scales(scales):
            if scale not in row.get("recipe_by_scale", {}) and scale not in recipes[row["recipe"]]:
                raise _Invalid(at + ("recipe",), f"recipe {row['recipe']!r} has no entry for "
                                                 f"scale {scale!r} (give one, or name another "
                                                 f"recipe in recipe_by_scale.{scale})")
    for scale, rid in row.get("recipe_by_scale", {}).items():
        here = at + ("recipe_by_scale", scale)
        OneOf("scale", scales.keys)(scale, here)
        OneOf("recipe", recipes.keys)(rid, here)
        if scale not in recipes[rid]:
            raise _bad(here, rid, ", ".join(r for r in recipes if scale in recipes[r]),
                       f"has no entry for scale {scale!r}:")


def _expand_for(raw: list) -> list[tuple[FieldPath, dict, dict]]:
    """(where, row, point) per row, a ``for`` row expanded into one row per value."""
    out = []
    for i, row in enumerate(raw):
        at = ("rows", i)
        ROW(row, at)
        if "for" not in row:
            if "paper_at" in row:
                raise _bad(at + ("paper_at",), row["paper_at"], "paper_at only with for",
                           "not used here:")
            out.append((at, row, ({}, {})))
            continue
        axes = row["for"]
        for name in PLACEHOLDER.findall(row["name"]):
            if name not in axes:
                raise _bad(at + ("name",), row["name"], f"placeholders of the axes of for "
                           f"({', '.join(axes)})", f"unknown axis {{{name}}} in")
        if not all("{" + a + "}" in row["name"] for a in axes):
            raise _bad(at + ("name",), row["name"], "a name naming every axis of for: "
                       + ", ".join("{" + a + "}" for a in axes), "rows would share a name:")
        named = {a: (list(v.items()) if isinstance(v, dict) else [(str(x), x) for x in v])
                 for a, v in axes.items()}
        values = [str(v) for _, v in next(iter(named.values()))] if len(axes) == 1 else []
        for key in row.get("paper_at", {}):
            if str(key) not in values:
                raise _bad(at + ("paper_at", key), key, "a value of the (single) axis of for: "
                           + ", ".join(values), "not a point of this row:")
        for combo in itertools.product(*named.values()):
            point = {a: v for a, (_, v) in zip(axes, combo)}
            fill = {a: str(v) for a, v in point.items()}
            ids = {a: name for a, (name, _) in zip(axes, combo)}
            one = {k: v for k, v in row.items() if k not in ("for", "paper_at")}
            one["name"] = _fill(row["name"], fill)
            if "recipe" in row:
                one["recipe"] = _fill(row["recipe"], ids)
            if "recipe_by_scale" in row:
                one["recipe_by_scale"] = {k: _fill(v, ids)
                                          for k, v in row["recipe_by_scale"].items()}
            if "evaluate" in row:  # e.g. the column of the point's own k
                one["evaluate"] = [_fill(c, ids) for c in row["evaluate"]]
            if "info" in row:
                one["info"] = {k: _fill(v, fill) if isinstance(v, str) else v
                               for k, v in row["info"].items()}
            if len(axes) == 1:
                extra = {str(k): v for k, v in row.get("paper_at", {}).items()}
                one["paper"] = {**row["paper"], **extra.get(fill[next(iter(axes))], {})}
            out.append((at, one, (point, ids)))
    return out


def _rows(raw: list, columns: list[Column], recipes: dict, scales: dict) -> list[Row]:
    rows: list[Row] = []
    eval_ids = [c.id for c in columns if c.eval]
    datasets = any(c.registry for c in columns)
    for at, row, (point, point_ids) in _expand_for(raw):
        if datasets:
            _dataset_row(row, at, columns)
        else:
            if "dataset" in row:
                raise _bad(at + ("dataset",), row["dataset"], "dataset only in a table with "
                           "registry columns (a table of datasets)", "not used here:")
            _row_recipes(row, at, recipes, scales)
            _row_origin(row, at)
        _row_columns(row, at, columns)
        trained = bool(row.get("recipe") or row.get("recipe_by_scale"))
        if trained and any(r.name == row["name"] and (r.recipe or r.recipe_by_scale)
                           for r in rows):
            raise _bad(at + ("name",), row["name"], "distinct names of trained rows",
                       "used twice:")
        paper = {k: str(v) for k, v in row["paper"].items()}
        evaluate = row.get("evaluate", [c for c in eval_ids if paper.get(c) != ""])
        rows.append(Row(name=row["name"], recipe=row.get("recipe"), paper=paper,
                        info={k: str(v) for k, v in row.get("info", {}).items()},
                        evaluate=list(evaluate) if trained else [],
                        origin=row.get("origin"), reason=row.get("reason", ""),
                        recipe_by_scale=dict(row.get("recipe_by_scale", {})),
                        dataset=dict(row["dataset"]) if "dataset" in row else None,
                        point=point, point_ids=point_ids))
    return rows


def _dataset_row(row: dict, at: FieldPath, columns: list[Column]) -> None:
    """A row of a table of datasets: the paper's description of one dataset, set beside our
    registry; nothing is trained, so no recipe and no origin. ``reason``: why ours differs.
    A row without ``dataset`` is a dataset our registry lacks."""
    for key in ("recipe", "recipe_by_scale", "evaluate", "origin"):
        if key in row:
            raise _bad(at + (key,), row[key], "name, dataset, paper, info, reason (a table of "
                       "datasets trains nothing)", f"{key} not used in a table of datasets:")
    sized = any(c.registry == "image_size" for c in columns)
    if "dataset" in row and sized and "eval" not in row["dataset"]:
        raise _Invalid(at + ("dataset", "eval"), "required with an image_size column; allowed: "
                                                 "<table>/<eval id> of the same paper")


_LOADING: set[Path] = set()  # specs being loaded: a cycle of eval references is an error


def _dataset_sizes(table: Table) -> None:
    """Each dataset row's ``eval`` (<table>/<eval id>): the image size its paper-scale
    evaluation extracts features at, from that spec; its training data is the row's dataset."""
    own = table.path.resolve()
    first = own not in _LOADING
    _LOADING.add(own)
    try:
        _read_sizes(table)
    finally:
        if first:
            _LOADING.discard(own)


def _read_sizes(table: Table) -> None:
    for i, row in enumerate(table.rows):
        ref = (row.dataset or {}).get("eval")
        if ref is None:
            continue
        at = ("rows", i, "dataset", "eval")
        other, eid = ref.split("/")
        path = table.path.parent / f"{other}.yaml"
        if not path.is_file():
            raise _bad(at, ref, f"a table of {table.paper} (experiments/{table.paper}/<table>"
                       ".yaml)", "no such table:")
        if path.resolve() in _LOADING:
            raise _bad(at, ref, "a table without dataset rows", "refers back to this table:")
        _LOADING.add(path.resolve())
        try:
            target = load_table(path)
        finally:
            _LOADING.discard(path.resolve())
        if eid not in target.evals or not target.has_eval(eid, "paper"):
            raise _bad(at, ref, ", ".join(f"{other}/{e}" for e in target.evals
                                          if target.has_eval(e, "paper")),
                       "no such evaluation at scale 'paper':")
        ev = target.eval_at(eid, "paper")
        if ev["train"]["dataset"] != row.dataset["name"]:
            raise _bad(at, ref, f"an evaluation on {row.dataset['name']}",
                       f"evaluates {ev['train']['dataset']}:")
        size = ev.get("features", {}).get("image_size")
        if size is None:
            raise _bad(at, ref, "an evaluation with features.image_size at scale 'paper'",
                       "sets no image size:")
        row.dataset["image_size"] = size


def _check_encoders(table: Table) -> None:
    """The encoder an evaluation reads must exist in every method it evaluates."""
    eval_of = {c.id: c.eval for c in table.columns}
    for row in table.rows:
        for eid in {eval_of[col_id] for col_id in row.evaluate}:
            for scale in table.scales:
                rid = table.row_recipe(row, scale)
                if rid is None or not table.has_eval(eid, scale):
                    continue
                method = table.recipe_at(rid, scale)["method"]
                encoder = table.eval_at(eid, scale).get("encoder", "query")
                if encoder in encoders_of(method):
                    continue
                at = ("evals", eid, "scales", scale, "encoder")
                if "encoder" not in table.evals[eid]["scales"][scale]:
                    at = ("evals", eid, "encoder")
                raise _bad(at, encoder, ", ".join(encoders_of(method)),
                           f"not an encoder of method {method} (row {row.name!r}):")


def _table(path: Path, raw: dict, local: _Local | None = None) -> Table:
    for key in REQUIRED_TOP:
        if key not in raw:
            raise _Invalid((key,), "required key is missing")
    scales = raw["scales"]
    for name, scale in scales.items():
        SCALE(scale, ("scales", name))
    layers: dict = {}
    recipes = _recipes(raw, scales, local or _Local(), layers)
    evals = _evals(raw.get("evals", {}), scales)
    columns = _columns(raw["columns"], evals)
    rows = _rows(raw["rows"], columns, recipes, scales)
    table = Table(path=path, paper=raw["paper"], table=raw["table"], title=raw["title"],
                  columns=columns, rows=rows, recipes=recipes,
                  evals=evals, scales=scales, notes=list(raw.get("notes", [])),
                  command=raw.get("command", ""),
                  claims=_claims(raw.get("claims", []), rows, columns),
                  baselines=_baselines(raw.get("baselines", []), rows, columns),
                  figure=_figure(raw.get("figure"), rows, columns),
                  recipe_layers=layers, references=dict(raw.get("references", {})))
    _check_encoders(table)
    if any(c.registry for c in columns):
        for key in ("evals", "claims", "baselines"):
            if raw.get(key):
                raise _bad((key,), sorted(raw[key]) if key == "evals" else raw[key],
                           "none in a table of datasets (registry columns)", "not used:")
        _dataset_sizes(table)
    return table


def point_column(y: str, row: Row) -> str:
    """The result column a panel's ``y`` names for one point (placeholders: the row's axes)."""
    return _fill(y, row.point_ids) if PLACEHOLDER.search(y) else y


def series_points(pattern: str, x: str, rows: list[Row]) -> list[Row]:
    """The rows of one series: rows of a sweep over ``x`` whose name is ``pattern`` with the
    row's own axis values filled in."""
    out = []
    for row in rows:
        if x not in row.point or not set(PLACEHOLDER.findall(pattern)) <= set(row.point):
            continue
        if _fill(pattern, {a: str(v) for a, v in row.point.items()}) == row.name:
            out.append(row)
    return out


def _figure(raw: dict | None, rows: list[Row], columns: list[Column]) -> dict | None:
    if raw is None:
        return None
    results = [c.id for c in columns if c.eval]
    ids = set()
    for i, panel in enumerate(raw["panels"]):
        at = ("figure", "panels", i)
        if panel["id"] in ids:
            raise _bad(at + ("id",), panel["id"], "distinct panel ids", "used twice:")
        ids.add(panel["id"])
        if panel.get("kind") == "histogram":
            _histogram_panel(panel, at, rows, columns)
            continue
        for label, series in panel["series"].items():
            pattern = series if isinstance(series, str) else series["rows"]
            y, where = ((panel["y"], at + ("y",)) if isinstance(series, str)
                        else (series["y"], at + ("series", label, "y")))
            for row in series_points(pattern, panel["x"], rows):
                OneOf("result column", lambda: results)(point_column(y, row), where)
            if not series_points(pattern, panel["x"], rows):
                axes = sorted({a for r in rows for a in r.point})
                raise _bad(at + ("series", label), pattern, f"a row-name pattern matching rows "
                           f"swept over {panel['x']!r} (axes of for rows: "
                           f"{', '.join(axes) or 'none'})", "matches no row:")
    return raw


def _histogram_panel(panel: dict, at: FieldPath, rows: list[Row], columns: list[Column]) -> None:
    """``values`` is a result column with a summary; each series a trained row evaluating it."""
    listed = [c.id for c in columns if c.eval and c.summary]
    OneOf("list-valued result column (one with a summary)", lambda: listed)(
        panel["values"], at + ("values",))
    evaluating = [r.name for r in rows if (r.recipe or r.recipe_by_scale)
                  and panel["values"] in r.evaluate]
    for label, name in panel["series"].items():
        OneOf(f"trained row evaluating {panel['values']}", lambda: evaluating)(
            name, at + ("series", label))


CLAIM = Block({"better": Text(), "worse": Text(), "columns": ListOf(Text(), nonempty=True,
                                                                     distinct=True),
               "source": Text()}, required=("better", "worse", "columns", "source"))


def _row_column_checks(key: str, block: Block, row_fields: tuple[str, ...], raw: list,
                       rows: list[Row], columns: list[Column]) -> list[dict]:
    """Entries of ``key`` (``block``) whose ``row_fields`` name trained rows and whose
    ``columns`` name result columns."""
    trained = [r.name for r in rows if r.recipe or r.recipe_by_scale]
    eval_ids = [c.id for c in columns if c.eval]
    out = []
    for i, entry in enumerate(raw):
        at = (key, i)
        block(entry, at)
        for side in row_fields:
            OneOf("trained row", lambda: trained)(entry[side], at + (side,))
        for j, col in enumerate(entry["columns"]):
            OneOf("result column", lambda: eval_ids)(col, at + ("columns", j))
        out.append(dict(entry))
    return out


def _claims(raw: list, rows: list[Row], columns: list[Column]) -> list[dict]:
    """Orderings the paper claims (``better`` above ``worse`` on ``columns``), checked against
    our numbers by the table renderer. Both rows must be trained; ``source`` says where the
    paper claims it."""
    return _row_column_checks("claims", CLAIM, ("better", "worse"), raw, rows, columns)


BASELINE = Block({"row": Text(), "columns": ListOf(Text(), nonempty=True, distinct=True)},
                 required=("row", "columns"))


def _baselines(raw: list, rows: list[Row], columns: list[Column]) -> list[dict]:
    """Reference rows (an untrained network, raw pixels, ...) that every method row must beat on
    ``columns`` if it learns anything: checked by the table renderer against each trained row
    that is not a reference row (named "... (reference)"), as the claims are."""
    return _row_column_checks("baselines", BASELINE, ("row",), raw, rows, columns)


_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")


def paper_number(printed: str) -> float | None:
    """The number in a printed cell ("79.2*" -> 79.2, "60.2†" -> 60.2, "-" -> None)."""
    match = _NUMBER.search(printed or "")
    return float(match.group()) if match else None


def find_specs(root: str | Path = "experiments") -> list[Path]:
    return sorted(Path(root).glob("*/*.yaml"))
