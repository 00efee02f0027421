"""What ``repro.spec`` reads from source without importing (``repro.introspect``) equals what
the imported code accepts, for every registered method and protocol: the two cannot drift."""

from __future__ import annotations

import dataclasses
import inspect

import pytest
import torch
from tiny_methods import BACKBONE, TINY_PARAMS

from repro import spec
from repro.eval import PROTOCOLS
from repro.methods import METHODS


def _imported_fields(cls) -> dict[str, tuple[str, bool]]:
    return {f.name: (f.type, f.default is dataclasses.MISSING
                     and f.default_factory is dataclasses.MISSING)
            for f in dataclasses.fields(cls.Config)}


@pytest.mark.parametrize("name", METHODS.names())
def test_method_params_equal_the_config_fields(name):
    read = spec.method_params(name)
    assert {k: (p.annotation, p.required) for k, p in read.items()} == \
        _imported_fields(METHODS.resolve(name))
    assert list(read) == [f.name for f in dataclasses.fields(METHODS.resolve(name).Config)]


@pytest.mark.parametrize("name", METHODS.names())
def test_encoder_names_equal_a_built_methods_encoders(name):
    from repro.train.pretrain import build_method

    torch.manual_seed(0)
    method = build_method({"method": name, "params": TINY_PARAMS.get(name, {}),
                           "backbone": BACKBONE})
    assert spec.encoders_of(name) == tuple(method.encoders())


def _imported_keywords(fn) -> dict[str, tuple[str, bool]]:
    params = inspect.signature(fn).parameters.values()
    return {p.name: (p.annotation, p.default is inspect.Parameter.empty)
            for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name != "seed"}


@pytest.mark.parametrize("name", PROTOCOLS.names())
def test_protocol_params_equal_the_functions_keywords(name):
    fn = PROTOCOLS.resolve(name)
    expected = _imported_keywords(fn)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD
           for p in inspect.signature(fn).parameters.values()):
        # **params is passed on to one function: its keywords are accepted too
        from repro.introspect import forwarded_call

        callee, fixed = forwarded_call(PROTOCOLS.target(name))
        module, _, attr = callee.partition(":")
        target = getattr(inspect.getmodule(fn), attr)
        assert target.__module__ == module
        for key, value in _imported_keywords(target).items():
            if key not in fixed:
                expected.setdefault(key, value)
    read = spec.protocol_params(name)
    assert {k: (p.annotation, p.required) for k, p in read.items()} == expected


def _as_yaml(value):
    return [_as_yaml(v) for v in value] if isinstance(value, (list, tuple)) else value


def _defaults(fields: list) -> list[tuple[str, str, object]]:
    out = []
    for f in fields:
        if isinstance(f, dataclasses.Field):
            if f.default is not dataclasses.MISSING:
                out.append((f.name, f.type, f.default))
            elif f.default_factory is not dataclasses.MISSING:
                out.append((f.name, f.type, f.default_factory()))
        elif f.default is not inspect.Parameter.empty:
            out.append((f.name, f.annotation, f.default))
    return out


def test_every_default_passes_the_rule_read_from_its_annotation():
    """The type rules are not stricter than the code: each default (tuples as YAML lists)
    passes the rule of its own annotation."""
    cases = []
    for name in METHODS.names():
        cases += _defaults(dataclasses.fields(METHODS.resolve(name).Config))
    for name in PROTOCOLS.names():
        cases += _defaults(inspect.signature(PROTOCOLS.resolve(name)).parameters.values())
    understood = 0
    for key, annotation, default in cases:
        rule = spec.annotation_rule(annotation)
        if rule is not None:
            rule(_as_yaml(default), (key,))
            understood += 1
    assert understood > 0.9 * len(cases)


def test_names_read_from_source_equal_the_imported_ones():
    from repro.data.transforms import RECIPES
    from repro.features import LAYERS
    from repro.launch.data import POLICIES

    assert set(spec.view_recipes()) == set(RECIPES)
    assert spec.feature_layers() == LAYERS
    assert spec.data_policies() == POLICIES


def test_optimiser_names_are_exactly_those_build_optimizer_accepts():
    from repro.train.pretrain import build_optimizer

    module = torch.nn.Linear(2, 2)
    module.param_groups = lambda: [{"params": list(module.parameters())}]
    for name in spec.optimizers():
        build_optimizer(module, {"name": name, "lr": 0.1})
    with pytest.raises(ValueError):
        build_optimizer(module, {"name": "not-" + spec.optimizers()[0], "lr": 0.1})
    assert set(spec.optimizers()) == {"sgd", "lars", "larc"}


def test_schedule_names_are_exactly_those_lr_factor_accepts():
    from repro.train.schedules import lr_factor

    for name in spec.schedules():
        lr_factor({"epochs": 4, "schedule": name, "milestones": [2]}, 1, 0, 10)
    with pytest.raises(ValueError):
        lr_factor({"epochs": 4, "schedule": "not-a-schedule"}, 1, 0, 10)


def test_precisions_are_those_the_training_loop_accepts():
    from repro.introspect import compared_names
    from repro.train.pretrain import _autocast

    assert set(spec.PRECISIONS) == set(compared_names("repro.train.pretrain", "_autocast",
                                                      "precision"))
    for precision in spec.PRECISIONS:
        _autocast(precision, torch.device("cpu"))
    with pytest.raises(ValueError):
        _autocast("fp8", torch.device("cpu"))
