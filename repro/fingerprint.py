"""Fingerprints of what determines a job's result: its code, its libraries, its data (no torch).

A job's key (``repro.jobs``) names the experiment: recipe, dataset names, seed, protocol. The
fingerprint says what produced a record of that key, so a record made by other code or on
other files is recognised as stale (``repro.freshness``) instead of being served as current.

- ``code``: a hash of the source of every ``repro`` module the job's result depends on: the
  transitive closure of ``repro`` imports (every ``import`` statement, lazy ones included),
  starting from the method's module, the training loop and the worker for pretraining, and
  from the protocol's module, feature extraction and the worker for evaluations. Harness
  modules that cannot change a number (spec parsing, job expansion, the store, tables,
  launching, status, the command line) are left out, so editing them keeps records fresh.
  Package data next to the code (detection configs, class lists) is hashed with its package.
- ``libs``: the versions of torch, torchvision, faiss and liblinear.
- ``data``: ``repro.data.fingerprint`` of each dataset split the job reads.

NOTE: the closure is by module, not by function: editing any function of a module the job
imports marks the job stale, even when that function is not on the job's path. Erring this
way recomputes too much, never too little.

Name tables are the exception (``KEYED_TABLES``): the registries of datasets, methods,
backbones and protocols, and the per-dataset normalisation constants, are dict literals keyed by
a public name, and a job only reads the entries of the names it uses. Their modules are hashed
with each such dict reduced to the entries of the job's names (method, backbone, protocol,
datasets), so adding a dataset or a method, or editing another one's entry, leaves every other
record fresh. Everything else in those modules is hashed as written.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.metadata
from pathlib import Path

import repro

PACKAGE_DIR = Path(repro.__file__).resolve().parent
DIGEST_LENGTH = 16

# Modules whose source cannot change a result; editing them keeps every record fresh.
HARNESS = frozenset({
    "repro.cli", "repro.curves", "repro.eval.command", "repro.feature_export", "repro.figures",
    "repro.fingerprint",
    "repro.freshness",
    "repro.introspect", "repro.jobs", "repro.launch", "repro.launch.cost", "repro.launch.data",
    "repro.launch.failures", "repro.launch.preflight", "repro.launch.resources",
    "repro.launch.runner",
    "repro.launch.slurm",
    "repro.launch.status", "repro.data.fingerprint", "repro.recipe_view", "repro.registry",
    "repro.spec",
    "repro.store", "repro.tables",
})
# module -> the module-level dict literals in it that are keyed by a public name (directly, or as
# the dict argument of a ``Registry(...)`` call); see the module docstring.
KEYED_TABLES = {
    "repro.data": ("DATASETS", "DATASET_INFO"),
    "repro.data.transforms": ("MEAN_STD",),
    "repro.eval": ("PROTOCOLS", "PROTOCOL_INPUTS"),
    "repro.methods": ("METHODS",),
    "repro.models": ("BACKBONES",),
}
# Roots besides the method's or protocol's own module.
PRETRAIN_ROOTS = ("repro.train.pretrain", "repro.launch.worker")
EVAL_ROOTS = ("repro.features", "repro.launch.worker")
FEATURE_ROOTS = ("repro.features", "repro.models", "repro.train.checkpoint")
# distribution names -> the label stored in a fingerprint
LIBRARIES = {
    "torch": ("torch",),
    "torchvision": ("torchvision",),
    "faiss": ("faiss-cpu", "faiss-gpu", "faiss-gpu-cu12", "faiss-gpu-cu11"),
    "liblinear": ("liblinear-official",),
}


def module_file(name: str) -> Path | None:
    """The source file of module ``name`` inside the repro package (None if not one)."""
    if name != "repro" and not name.startswith("repro."):
        return None
    rel = Path(*name.split(".")[1:]) if name != "repro" else Path()
    package = PACKAGE_DIR / rel / "__init__.py"
    if package.is_file():
        return package
    module = (PACKAGE_DIR / rel).with_suffix(".py")
    return module if module.is_file() else None


def _imported(name: str, path: Path) -> set[str]:
    """Every repro module ``path`` imports (at any depth of its code), parents included."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's own package upwards
                parts = name.split(".")[: len(name.split(".")) - node.level + is_package]
                base = ".".join(parts + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # submodules
    out = set()
    for mod in found:
        parts = mod.split(".")
        for i in range(1, len(parts) + 1):  # importing a.b.c runs a and a.b too
            prefix = ".".join(parts[:i])
            if module_file(prefix) is not None:
                out.add(prefix)
    return out


@functools.lru_cache(maxsize=None)
def closure(roots: tuple[str, ...]) -> tuple[str, ...]:
    """The repro modules reachable from ``roots`` through imports, harness modules excluded."""
    seen: set[str] = set()
    todo = [r for r in roots]
    while todo:
        name = todo.pop()
        if name in seen or (name in HARNESS and name not in roots):
            continue
        path = module_file(name)
        if path is None:
            raise ValueError(f"fingerprint: {name!r} is not a module of the repro package")
        seen.add(name)
        todo.extend(_imported(name, path) - seen)
    return tuple(sorted(seen))


def _package_data(path: Path) -> list[Path]:
    """Non-Python files in data folders of a package (e.g. detection configs, class lists)."""
    if path.name != "__init__.py":
        return []
    out = []
    for sub in sorted(p for p in path.parent.iterdir() if p.is_dir()):
        if (sub / "__init__.py").exists() or sub.name.startswith((".", "__")):
            continue
        out += sorted(f for f in sub.rglob("*") if f.is_file() and f.suffix != ".pyc")
    return out


def _read(path: Path) -> bytes:
    return path.read_bytes()


def _keyed_dicts(tree: ast.Module, tables: tuple[str, ...], where: str) -> list[ast.Dict]:
    """The dict literals of the module-level assignments to ``tables`` in ``tree``."""
    found: dict[str, list[ast.Dict]] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        for t in targets:
            if not (isinstance(t, ast.Name) and t.id in tables):
                continue
            if isinstance(value, ast.Dict):
                dicts = [value]
            elif isinstance(value, ast.Call):
                dicts = [a for a in [*value.args, *(k.value for k in value.keywords)]
                         if isinstance(a, ast.Dict)]
            else:
                dicts = []
            if not dicts:
                raise ValueError(f"fingerprint: {where}: keyed table {t.id} is not a dict literal")
            for d in dicts:
                if any(k is not None and not (isinstance(k, ast.Constant)
                                              and isinstance(k.value, str)) for k in d.keys):
                    raise ValueError(f"fingerprint: {where}: keyed table {t.id} has a key "
                                     "that is not a string literal")
            found[t.id] = dicts
    missing = sorted(set(tables) - set(found))
    if missing:
        raise ValueError(f"fingerprint: {where}: no module-level dict {', '.join(missing)} "
                         "(KEYED_TABLES names it)")
    return [d for name in tables for d in found[name]]


def keyed_source(source: bytes, tables: tuple[str, ...], names: frozenset[str],
                 where: str = "<source>") -> bytes:
    """``source`` with each dict literal of ``tables`` reduced to the entries keyed by
    ``names`` (``**spread`` entries are kept); the rest of the text as written."""
    tree = ast.parse(source, filename=where)
    starts = [0]
    for line in source.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))

    def offset(lineno: int, col: int) -> int:  # ast columns count UTF-8 bytes
        return starts[lineno - 1] + col

    def segment(node: ast.AST) -> bytes:
        return source[offset(node.lineno, node.col_offset):
                      offset(node.end_lineno, node.end_col_offset)]

    edits = []
    for d in _keyed_dicts(tree, tables, where):
        kept = [(b"**" if k is None else segment(k) + b": ") + segment(v)
                for k, v in zip(d.keys, d.values) if k is None or k.value in names]
        edits.append((offset(d.lineno, d.col_offset), offset(d.end_lineno, d.end_col_offset),
                      b"{" + b", ".join(kept) + b"}"))
    out = source
    for start, end, text in sorted(edits, reverse=True):
        out = out[:start] + text + out[end:]
    return out


@functools.lru_cache(maxsize=None)
def code_modules(roots: tuple[str, ...], names: frozenset[str] = frozenset(),
                 read=_read) -> dict[str, str]:
    """{file relative to the package: sha256[:12]} for every file the closure of ``roots``
    depends on (records keep it, so a stale record can say which file changed). ``names``: the
    public names the job uses (``KEYED_TABLES``); ``read(path) -> bytes`` reads a file (another
    commit's, for ``scripts/refingerprint.py``)."""
    out = {}
    for name in closure(roots):
        path = module_file(name)
        for f in [path, *_package_data(path)]:
            rel = str(f.relative_to(PACKAGE_DIR.parent))
            data = read(f)
            if f == path and name in KEYED_TABLES:
                data = keyed_source(data, KEYED_TABLES[name], names, rel)
            out[rel] = hashlib.sha256(data).hexdigest()[:12]
    return out


def code_fingerprint(roots: tuple[str, ...], names: frozenset[str] = frozenset(),
                     read=_read) -> dict:
    """{"code": digest, "modules": {file: hash}} of the closure of ``roots``."""
    modules = code_modules(roots, names, read)
    return {"code": digest(modules), "modules": dict(modules)}


def module_of(target: str) -> str:
    """``"repro.methods.pcl:PCL"`` -> ``"repro.methods.pcl"``."""
    return target.partition(":")[0]


def _registry_modules(recipe: dict, datasets: list[str]) -> set[str]:
    """Modules that registries name by string (imports cannot see them): the backbone's
    builder and the readers of the datasets."""
    from repro.data import DATASETS
    from repro.models import BACKBONES

    mods = {module_of(DATASETS.target(d)) for d in datasets}
    mods.add(module_of(BACKBONES.target(recipe["backbone"]["arch"])))
    return mods


def job_names(recipe: dict, datasets: list[str], protocol: str | None = None) -> frozenset[str]:
    """The public names a job reads from the ``KEYED_TABLES``."""
    names = {recipe["method"], recipe["backbone"]["arch"], *datasets}
    return frozenset(names | ({protocol} if protocol else set()))


def pretrain_code(recipe: dict, read=_read) -> dict:
    """Code fingerprint of pretraining ``recipe``."""
    from repro.methods import METHODS

    datasets = [recipe["data"]["dataset"]]
    roots = {module_of(METHODS.target(recipe["method"])), *PRETRAIN_ROOTS,
             *_registry_modules(recipe, datasets)}
    return code_fingerprint(tuple(sorted(roots)), job_names(recipe, datasets), read)


def eval_code(ev: dict, recipe: dict, read=_read) -> dict:
    """Code fingerprint of evaluation ``ev`` of an encoder pretrained with ``recipe``."""
    from repro.eval import PROTOCOLS

    datasets = [ev["train"]["dataset"], ev["test"]["dataset"]]
    roots = {module_of(PROTOCOLS.target(ev["protocol"])), *EVAL_ROOTS,
             *_registry_modules(recipe, datasets)}
    return code_fingerprint(tuple(sorted(roots)),
                            job_names(recipe, datasets, ev["protocol"]), read)


def features_code(recipe: dict, dataset: str) -> dict:
    """Code fingerprint of feature extraction of ``dataset`` by an encoder of ``recipe``."""
    return code_fingerprint(tuple(sorted({*FEATURE_ROOTS,
                                          *_registry_modules(recipe, [dataset])})),
                            job_names(recipe, [dataset]))


@functools.lru_cache(maxsize=1)
def library_versions() -> dict[str, str]:
    out = {}
    for label, dists in LIBRARIES.items():
        for dist in dists:
            try:
                version = importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                continue
            out[label] = version if label != "faiss" else f"{dist} {version}"
            break
    return out


def data_key(ref: dict) -> str:
    return f"{ref['dataset']}/{ref.get('split') or 'train'}"


def data_fingerprints(refs: list[dict], root=None) -> dict[str, str | None]:
    """``{"cifar10/train": digest | None}``; None: the files are not on this machine."""
    from repro.data.fingerprint import data_fingerprint

    return {data_key(r): data_fingerprint(r["dataset"], r.get("split") or "train", root)
            for r in refs}


def digest(obj) -> str:
    import json

    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:DIGEST_LENGTH]
