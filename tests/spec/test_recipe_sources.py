"""Sources: every value a paper-scale recipe sets says where it comes from (the paper, the
authors' code or tracker, or our choice with a reason), and ``repro recipe`` prints them."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from spec_files import write_spec

from repro import recipe_view
from repro.cli import main
from repro.spec import SpecError, find_specs, load_table, recipe_sources

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "fixtures" / "tiny_table.yaml"
BASE = yaml.safe_load(TINY.read_text())
REFS = {"pcl-paper": "Li et al., Prototypical Contrastive Learning, ICLR 2021",
        "pcl-code": "salesforce/PCL @ 964da1f, main_pcl.py"}


def _load(tmp_path: Path, edit):
    raw = copy.deepcopy(BASE)
    raw["references"] = dict(REFS)
    edit(raw)
    return load_table(write_spec(tmp_path / "experiments" / "pcl" / "spec.yaml", raw))


def _by_path(table, rid, scale="smoke"):
    return {v.path: v for v in recipe_sources(table, rid, scale)}


def test_sources_never_reach_the_recipe_and_annotate_the_values_beside_them(tmp_path):
    plain = _load(tmp_path, lambda raw: None)

    def edit(raw):
        raw["recipe_defaults"]["smoke"]["sources"] = {"optim": "pcl-paper: sec. 4",
                                                      "optim.lr": "pcl-code: line 50"}
        raw["recipes"]["moco"]["scales"]["smoke"]["sources"] = {
            "params.queue_size": "ours: fits 256 images", "method": "pcl-paper; pcl-code"}
    table = _load(tmp_path, edit)
    assert table.recipes == plain.recipes  # the keys of every job are unchanged
    got = _by_path(table, "moco")
    assert got["optim.lr"].source == "pcl-code: line 50"  # the longest path wins
    assert got["optim.epochs"].source == "pcl-paper: sec. 4"  # a subtree's source
    assert got["params.queue_size"].source == "ours: fits 256 images"
    assert got["method"].source == "pcl-paper; pcl-code"
    assert got["params.dim"].source is None
    assert got["backbone.arch"].source is None
    assert got["optim.lr"].written.endswith("recipe_defaults.smoke")
    assert got["method"].written.endswith("recipes.moco.scales.smoke")


def test_a_value_overridden_below_loses_the_source_of_the_body_it_overrides(tmp_path):
    def edit(raw):
        raw["recipe_defaults"]["smoke"]["sources"] = {"optim": "pcl-paper: sec. 4"}
        raw["recipes"]["moco_lr"] = {"extends": "moco", "scales": {"smoke": {
            "optim": {"lr": 0.3}}}}
        raw["recipes"]["moco_lr2"] = {"extends": "moco", "scales": {"smoke": {
            "optim": {"lr": 0.3}, "sources": {"optim.lr": "ours: a sweep point"}}}}
    table = _load(tmp_path, edit)
    assert _by_path(table, "moco_lr")["optim.lr"].source is None
    assert _by_path(table, "moco_lr")["optim.epochs"].source == "pcl-paper: sec. 4"
    assert _by_path(table, "moco_lr2")["optim.lr"].source == "ours: a sweep point"


def test_grid_values_and_swept_axes_carry_their_sources(tmp_path):
    def edit(raw):
        raw["recipes"]["m_{lr}_{q}"] = {"extends": "moco", "grid": {
            "lr": {"set": "optim.lr", "values": {"lo": 0.01, "hi": 0.1},
                   "source": "pcl-paper: Fig. 3"},
            "q": {"small": {"smoke": {"params": {"queue_size": 64},
                                      "sources": {"params": "pcl-code: --moco-k"}}},
                  "big": {"smoke": {"params": {"queue_size": 128}}}}}}
    table = _load(tmp_path, edit)
    small = _by_path(table, "m_lo_small")
    assert small["optim.lr"].source == "pcl-paper: Fig. 3"
    assert small["params.queue_size"].source == "pcl-code: --moco-k"
    assert _by_path(table, "m_hi_big")["params.queue_size"].source is None
    assert table.recipes["m_hi_big"]["smoke"]["optim"]["lr"] == 0.1


@pytest.mark.parametrize("sources, problem", [
    ({"optim.lr": "nature-paper: p. 3"}, "unknown reference 'nature-paper'"),
    ({"optim.lr": "ours"}, "'ours' needs a reason"),
    ({"optim.momentum": "pcl-paper"}, "source for 'optim.momentum', which this body does not"),
    ({"optim.lr": 0.5}, "optim.lr"),
])
def test_a_bad_source_is_an_error_naming_file_and_field(tmp_path, sources, problem):
    def edit(raw):
        raw["recipes"]["moco"]["scales"]["smoke"]["optim"] = {"lr": 0.1}
        raw["recipes"]["moco"]["scales"]["smoke"]["sources"] = sources
    with pytest.raises(SpecError) as err:
        _load(tmp_path, edit)
    assert "spec.yaml: recipes.moco.scales.smoke.sources" in str(err.value)
    assert problem in str(err.value)


def test_two_files_may_not_give_one_reference_two_meanings(tmp_path):
    shared = tmp_path / "experiments" / "pcl" / "shared.yaml"
    shared.parent.mkdir(parents=True)
    shared.write_text(yaml.safe_dump({"references": {"pcl-paper": "another paper"}}))

    def edit(raw):
        raw["include"] = ["shared.yaml"]
    with pytest.raises(SpecError, match=r"references\.pcl-paper: .* differs from"):
        _load(tmp_path, edit)


def test_repro_recipe_prints_each_value_with_its_source(tmp_path, capsys):
    def edit(raw):
        raw["recipe_defaults"]["smoke"]["sources"] = {"optim": "pcl-paper: sec. 4",
                                                      "backbone": "ours: CPU",
                                                      "data": "ours: CPU", "runtime": "ours: CPU"}
        raw["recipes"]["moco"]["scales"]["smoke"]["sources"] = {"views": "pcl-code",
                                                                "params": "pcl-code"}
    table = _load(tmp_path, edit)
    text, missing = recipe_view.render(table, "MoCo", "smoke")
    assert missing == 1  # `method` alone
    assert "row 'MoCo' -> recipe moco at scale smoke" in text
    line = next(ln for ln in text.splitlines() if ln.startswith("optim.lr"))
    assert "0.05" in line and "pcl-paper: sec. 4" in line and "recipe_defaults.smoke" in line
    assert f"pcl-paper: {REFS['pcl-paper']}" in text
    assert "1 value(s) without a source" in text
    spec = tmp_path / "experiments" / "pcl" / "spec.yaml"
    assert main(["recipe", str(spec), "moco", "--scale", "smoke"]) == 0
    assert main(["recipe", str(spec), "moco", "--scale", "smoke", "--strict"]) == 1
    assert main(["recipe", str(spec), "nope", "--scale", "smoke"]) == 2
    assert "no row or recipe named 'nope'" in capsys.readouterr().err
    assert main(["recipe", str(spec), "Quoted baseline", "--scale", "smoke"]) == 2
    assert "trains nothing at scale smoke" in capsys.readouterr().err


def _unsourced() -> dict[str, list[str]]:
    """recipe set-in location -> the paper-scale values it sets without a source."""
    out: dict[str, set] = {}
    for path in find_specs(ROOT / "experiments"):
        table = load_table(path)
        for rid, by_scale in table.recipes.items():
            if "paper" not in by_scale:
                continue
            for v in recipe_sources(table, rid, "paper"):
                if v.source is None:
                    file = v.written.split(" (included from")[0].split(":")[0]
                    where = f"{file.replace(f'{ROOT}/', '')}: {v.written.rsplit(': ', 1)[1]}"
                    out.setdefault(where, set()).add(v.path)
    return {k: sorted(v) for k, v in sorted(out.items())}


def test_every_value_of_every_paper_scale_recipe_has_a_source():
    missing = _unsourced()
    assert not missing, "paper-scale values without a source:\n" + "\n".join(
        f"  {where}: {', '.join(paths)}" for where, paths in missing.items())
