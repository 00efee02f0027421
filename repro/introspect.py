"""Read what registered code accepts from its source, without importing it (no torch).

``repro.spec`` checks a spec on a laptop: method ``params`` against the method's ``Config``
dataclass, evaluation ``params`` against the protocol function's keyword arguments, and the
names the training code accepts (view recipes, optimisers, schedules, feature layers,
encoders). Those modules import torch, so their source is parsed with ``ast`` instead.
``tests/spec/test_introspect.py`` checks every answer against the imported objects, so the
two cannot drift apart.
"""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent


class IntrospectionError(LookupError):
    """The source does not have the shape this module reads (a definition moved or changed)."""


@dataclass(frozen=True)
class Param:
    name: str
    annotation: str  # source text of the annotation; "" when there is none
    required: bool  # no default


def module_path(module: str) -> Path:
    parts = module.split(".")
    if parts[0] != PACKAGE_ROOT.name:
        raise IntrospectionError(f"{module}: not a module of {PACKAGE_ROOT.name}")
    base = PACKAGE_ROOT.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    raise IntrospectionError(f"{module}: no source file under {PACKAGE_ROOT}")


@functools.lru_cache(maxsize=None)
def _tree(module: str) -> ast.Module:
    path = module_path(module)
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _absolute(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module if module_path(module).name == "__init__.py" else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def _binds(node: ast.stmt, name: str) -> bool:
    if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
        return node.name == name
    if isinstance(node, ast.Assign):
        return any(isinstance(t, ast.Name) and t.id == name for t in node.targets)
    if isinstance(node, ast.AnnAssign):
        return isinstance(node.target, ast.Name) and node.target.id == name
    return False


def definition(module: str, name: str) -> tuple[str, ast.stmt]:
    """(module, statement) binding ``name`` at the top of ``module``; follows ``from x import``."""
    for node in _tree(module).body:
        if _binds(node, name):
            return module, node
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if (alias.asname or alias.name) == name:
                    return definition(_absolute(module, node), alias.name)
    raise IntrospectionError(f"{module} defines no top-level {name!r}")


def _split(target: str) -> tuple[str, str]:
    module, _, attr = target.partition(":")
    return module, attr


def _class(module: str, name: str) -> tuple[str, ast.ClassDef]:
    where, node = definition(module, name)
    if not isinstance(node, ast.ClassDef):
        raise IntrospectionError(f"{module}.{name} is not a class")
    return where, node


def _bases(module: str, cls: ast.ClassDef) -> list[tuple[str, ast.ClassDef]]:
    """Base classes defined in this package (others, e.g. ``nn.Module``, hold nothing we read)."""
    out = []
    for base in cls.bases:
        if isinstance(base, ast.Name):
            try:
                out.append(_class(module, base.id))
            except IntrospectionError:
                continue
    return out


def _mro(module: str, cls: ast.ClassDef) -> list[tuple[str, ast.ClassDef]]:
    """The class, then its bases depth first (enough for the single inheritance used here)."""
    out = [(module, cls)]
    for base in _bases(module, cls):
        out += [entry for entry in _mro(*base) if entry not in out]
    return out


def _has_default(value: ast.expr | None) -> bool:
    if value is None:
        return False
    if isinstance(value, ast.Call) and ast.unparse(value.func) in ("field", "dataclasses.field"):
        return any(kw.arg in ("default", "default_factory") for kw in value.keywords)
    return True


def dataclass_fields(module: str, name: str) -> dict[str, Param]:
    """Fields of a dataclass, in ``dataclasses.fields`` order (base classes first)."""
    where, cls = _class(module, name)
    fields: dict[str, Param] = {}
    for base in _bases(where, cls):
        fields.update(dataclass_fields(base[0], base[1].name))
    for node in cls.body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        annotation = ast.unparse(node.annotation)
        if annotation.split("[")[0] in ("ClassVar", "typing.ClassVar", "InitVar"):
            continue
        fields[node.target.id] = Param(node.target.id, annotation, not _has_default(node.value))
    return fields


def _class_attribute(module: str, cls: ast.ClassDef, attr: str) -> tuple[str, ast.expr]:
    for where, klass in _mro(module, cls):
        for node in klass.body:
            if isinstance(node, ast.Assign) and _binds(node, attr):
                return where, node.value
    raise IntrospectionError(f"{module}.{cls.name} sets no {attr}")


def config_fields(target: str) -> dict[str, Param]:
    """Fields of ``<Method>.Config`` for a method registry target ``"module:Class"``."""
    module, cls = _class(*_split(target))
    where, value = _class_attribute(module, cls, "Config")
    if not isinstance(value, ast.Name):
        raise IntrospectionError(f"{target}: Config is not a plain class name")
    return dataclass_fields(where, value.id)


def _method(module: str, cls: ast.ClassDef, name: str) -> ast.FunctionDef:
    for _, klass in _mro(module, cls):
        for node in klass.body:
            if isinstance(node, ast.FunctionDef) and node.name == name:
                return node
    raise IntrospectionError(f"{module}.{cls.name} has no method {name}")


def encoder_names(target: str) -> tuple[str, ...]:
    """Keys of the dict literal that ``<Method>.encoders()`` returns."""
    module, cls = _class(*_split(target))
    fn = _method(module, cls, "encoders")
    for node in ast.walk(fn):
        if isinstance(node, ast.Return) and isinstance(node.value, ast.Dict):
            keys = node.value.keys
            if all(isinstance(k, ast.Constant) and isinstance(k.value, str) for k in keys):
                return tuple(k.value for k in keys)
    raise IntrospectionError(f"{target}.encoders does not return a dict literal")


def _function(module: str, name: str) -> tuple[str, ast.FunctionDef]:
    where, node = definition(module, name)
    if not isinstance(node, ast.FunctionDef):
        raise IntrospectionError(f"{module}.{name} is not a function")
    return where, node


def _keyword_only(fn: ast.FunctionDef) -> dict[str, Param]:
    args = fn.args
    return {a.arg: Param(a.arg, ast.unparse(a.annotation) if a.annotation else "", d is None)
            for a, d in zip(args.kwonlyargs, args.kw_defaults)}


def forwarded_call(target: str) -> tuple[str, set[str]] | None:
    """For ``def f(..., **params)`` that calls ``g(..., x=.., **params)``: ("module:g", {x..})."""
    module, fn = _function(*_split(target))
    if fn.args.kwarg is None:
        return None
    for node in ast.walk(fn):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
            continue
        spread = [kw for kw in node.keywords if kw.arg is None]
        if any(isinstance(kw.value, ast.Name) and kw.value.id == fn.args.kwarg.arg
               for kw in spread):
            where, _ = _function(module, node.func.id)
            return f"{where}:{node.func.id}", {kw.arg for kw in node.keywords if kw.arg}
    raise IntrospectionError(f"{target}: **{fn.args.kwarg.arg} is not passed on to a function")


def keyword_params(target: str) -> dict[str, Param]:
    """Keyword-only parameters of a function ``"module:function"``, including those its
    ``**kwargs`` passes on to another function of this package."""
    _, fn = _function(*_split(target))
    params = _keyword_only(fn)
    forwarded = forwarded_call(target)
    if forwarded:
        callee, fixed = forwarded
        for name, param in keyword_params(callee).items():
            if name not in fixed:
                params.setdefault(name, param)
    return params


def literal_names(module: str, name: str) -> tuple[str, ...]:
    """String keys of a top-level dict literal, or items of a tuple/list/set literal."""
    _, node = definition(module, name)
    value = getattr(node, "value", None)
    items = value.keys if isinstance(value, ast.Dict) else getattr(value, "elts", None)
    if items is None or not all(isinstance(i, ast.Constant) and isinstance(i.value, str)
                                for i in items):
        raise IntrospectionError(f"{module}.{name} is not a literal of strings")
    return tuple(i.value for i in items)


def compared_names(module: str, function: str, variable: str) -> tuple[str, ...]:
    """Strings that ``function`` compares ``variable`` with (``if name == "sgd": ...``): the
    values a dispatch on ``variable`` accepts."""
    _, fn = _function(module, function)
    names = []
    for node in ast.walk(fn):
        if (isinstance(node, ast.Compare) and isinstance(node.left, ast.Name)
                and node.left.id == variable and isinstance(node.ops[0], ast.Eq)
                and isinstance(node.comparators[0], ast.Constant)):
            names.append(node.comparators[0].value)
    if not names:
        raise IntrospectionError(f"{module}.{function} compares {variable} with no constant")
    return tuple(names)
