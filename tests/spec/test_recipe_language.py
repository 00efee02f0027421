"""What ``extends``, ``file_defaults`` and ``grid`` mean: each recipe resolves to the body one
would have written out in full (``tests/test_resolved_specs.py`` checks the shipped specs)."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from repro.spec import load_table

TINY = Path(__file__).resolve().parents[1] / "fixtures" / "tiny_table.yaml"
BASE = yaml.safe_load(TINY.read_text())
MOCO = BASE["recipes"]["moco"]["scales"]["smoke"]
DEFAULTS = BASE["recipe_defaults"]["smoke"]


def _load(tmp_path: Path, edit, files: dict[str, str] | None = None):
    raw = copy.deepcopy(BASE)
    edit(raw)
    spec = tmp_path / "experiments" / "pcl" / "spec.yaml"
    spec.parent.mkdir(parents=True, exist_ok=True)
    for rel, text in (files or {}).items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    spec.write_text(yaml.safe_dump(raw, sort_keys=False))
    return load_table(spec)


def test_extends_deep_merges_over_the_resolved_parent_along_a_chain(tmp_path):
    def edit(raw):
        raw["recipes"]["moco_lr"] = {"extends": "moco", "scales": {"smoke": {"optim": {"lr": 0.1}}}}
        raw["recipes"]["moco_lr_q"] = {"extends": "moco_lr",
                                       "scales": {"smoke": {"params": {"queue_size": 128}}}}
    table = _load(tmp_path, edit)
    moco, child = table.recipes["moco"]["smoke"], table.recipes["moco_lr_q"]["smoke"]
    assert child["optim"] == {**moco["optim"], "lr": 0.1}
    assert child["params"] == {**moco["params"], "queue_size": 128}
    assert {k: v for k, v in child.items() if k not in ("optim", "params")} == \
        {k: v for k, v in moco.items() if k not in ("optim", "params")}


def test_a_child_inherits_the_parents_scales_and_may_add_one(tmp_path):
    def edit(raw):
        raw["scales"]["real"] = {"partial": True, "seeds": [0], "data": "real"}
        raw["recipes"]["moco_real"] = {"extends": "moco", "scales": {"real": {
            **copy.deepcopy(DEFAULTS), **copy.deepcopy(MOCO)}}}
    table = _load(tmp_path, edit)
    assert set(table.recipes["moco"]) == {"smoke"}
    assert set(table.recipes["moco_real"]) == {"smoke", "real"}
    assert table.recipes["moco_real"]["smoke"] == table.recipes["moco"]["smoke"]


def test_file_defaults_reach_only_the_recipes_of_their_file(tmp_path):
    """An include's file_defaults lie under its own recipes, over the spec-wide
    recipe_defaults; the spec's recipes do not get them; recipe_defaults reach everything."""
    shared = {"file_defaults": {"smoke": {"optim": {"lr": 0.2}, "views": {
        "name": "moco_v1", "image_size": 16}}},
              "recipes": {"m3": {"scales": {"smoke": {"method": "moco"}}},
                          "m3_child": {"extends": "m3", "scales": {"smoke": {
                              "params": {"dim": 16}}}}}}

    def edit(raw):
        raw["include"] = ["shared/d.yaml"]
    table = _load(tmp_path, edit, {"experiments/pcl/shared/d.yaml": yaml.safe_dump(shared)})
    m3 = table.recipes["m3"]["smoke"]
    assert m3["optim"] == {**DEFAULTS["optim"], "lr": 0.2}  # over recipe_defaults
    assert m3["views"] == {"name": "moco_v1", "image_size": 16}
    assert table.recipes["m3_child"]["smoke"]["optim"]["lr"] == 0.2  # through its parent
    assert table.recipes["moco"]["smoke"]["optim"]["lr"] == DEFAULTS["optim"]["lr"]


def test_grid_expands_ids_by_the_pattern_and_sets_each_value(tmp_path):
    def edit(raw):
        raw["recipes"]["moco_q{q}_{head}"] = {
            "extends": "moco",
            "scales": {"smoke": {"optim": {"epochs": 3}}},
            "grid": {"q": {"set": "params.queue_size", "values": [128, 256]},
                     "head": {"lin": {"smoke": {"params": {"head": "linear"}}},
                              "mlp": [{"smoke": {"params": {"head": "mlp"}}},
                                      {"smoke": {"params": {"dim": 16}}}]}}}
        raw["recipes"]["pcl_t{t}"] = {
            "extends": "pcl", "grid": {"t": {"set": {"smoke": "params.temperature"},
                                             "values": {"cold": 0.1, "warm": 0.5}}}}
        raw["recipes"]["{m}_short"] = {
            "extends": "{m}", "scales": {"smoke": {"optim": {"epochs": 1}}},
            "grid": {"m": {"moco": {}, "pcl": {"smoke": {"params": {"warmup_epochs": 0}}}}}}
    table = _load(tmp_path, edit)
    grid = {r for r in table.recipes if r.startswith("moco_q")}
    assert grid == {"moco_q128_lin", "moco_q128_mlp", "moco_q256_lin", "moco_q256_mlp"}
    body = table.recipes["moco_q256_mlp"]["smoke"]
    assert body["params"] == {**MOCO["params"], "queue_size": 256, "head": "mlp", "dim": 16}
    assert body["optim"]["epochs"] == 3
    assert table.recipes["pcl_tcold"]["smoke"]["params"]["temperature"] == 0.1
    assert table.recipes["pcl_twarm"]["smoke"]["params"]["temperature"] == 0.5
    assert table.recipes["moco_short"]["smoke"]["optim"]["epochs"] == 1
    assert table.recipes["pcl_short"]["smoke"]["params"]["warmup_epochs"] == 0
    assert table.recipes["pcl_short"]["smoke"]["method"] == "pcl"
