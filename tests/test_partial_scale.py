"""A partial scale (e.g. `real`: real data on CPU) covers only the rows and columns that define
it, may add reference rows of its own, renders to its own file without differences to the
paper, and checks the paper's claimed orderings."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from spec_files import write_spec

from repro import jobs as J
from repro import tables
from repro.cli import main
from repro.launch import launch
from repro.spec import SpecError, load_table

TINY = Path(__file__).resolve().parent / "fixtures" / "tiny_table.yaml"


def quiet(*_):
    return None


def _spec() -> dict:
    raw = yaml.safe_load(TINY.read_text())
    raw["scales"]["real"] = {"partial": True, "description": "test-only partial scale",
                             "seeds": [0, 1], "data": "real"}
    body = copy.deepcopy(raw["recipe_defaults"]["smoke"])
    raw["recipes"]["moco_real"] = {"scales": {"real": {
        **body, "method": "moco", "params": {"queue_size": 256, "momentum": 0.9,
                                             "head": "linear", "dim": 32},
        "views": {"name": "moco_v1", "image_size": 16}}}}
    raw["recipes"]["pixels"] = {"scales": {"real": {
        **body, "method": "untrained", "backbone": {"arch": "pixels"},
        "optim": {**body["optim"], "epochs": 1}, "views": {"name": "moco_v1", "image_size": 16}}}}
    probe = raw["evals"]["probe"]["scales"]
    probe["real"] = copy.deepcopy(probe["smoke"])
    raw["rows"][1]["recipe_by_scale"] = {"real": "moco_real"}  # MoCo
    raw["rows"].append({"name": "Raw pixels (reference)", "recipe_by_scale": {"real": "pixels"},
                        "paper": {}})
    raw["claims"] = [{"better": "MoCo", "worse": "Raw pixels (reference)", "columns": ["probe"],
                      "source": "test"}]
    return raw


def test_rows_and_columns_of_a_partial_scale(tmp_path):
    table = load_table(write_spec(tmp_path / "tiny_partial.yaml", _spec()))
    smoke = J.expand(table, "smoke", {"digits": "real"})
    real = J.expand(table, "real", {"digits": "real"})
    assert {j.payload["recipe_id"] for j in smoke if j.kind == "pretrain"} == {"moco", "pcl"}
    # PCL has no recipe at `real`: not trained there; the reference row only exists there
    assert {j.payload["recipe_id"] for j in real if j.kind == "pretrain"} == {"moco_real",
                                                                              "pixels"}
    assert len([j for j in real if j.kind == "eval"]) == 4  # 2 rows x 2 seeds
    rows = {r.name: r for r in table.rows}
    assert not table.row_at(rows["Raw pixels (reference)"], "smoke")
    assert not table.row_at(rows["Quoted baseline"], "real")
    assert table.row_at(rows["Quoted baseline"], "smoke")
    assert table.result_path_at("smoke").name == "tiny.md"
    assert table.result_path_at("real").name == "tiny.real.md"


@pytest.mark.parametrize("edit, message", [
    (lambda r: r["recipes"]["moco"]["scales"].pop("smoke"),
     "rows[1].recipe: recipe 'moco' has no entry for scale 'smoke'"),
    (lambda r: r["rows"][1].update(recipe_by_scale={"real": "pcl"}),
     "rows[1].recipe_by_scale.real: has no entry for scale 'real': 'pcl'"),
    (lambda r: r["rows"][1].update(recipe_by_scale={"huge": "moco"}),
     "rows[1].recipe_by_scale.huge: unknown scale 'huge'"),
    (lambda r: r["evals"]["probe"]["scales"].pop("smoke"),
     "evals.probe.scales.smoke: missing; every full scale needs an entry"),
    (lambda r: r["claims"][0].update(worse="Quoted baseline"),
     "claims[0].worse: unknown trained row 'Quoted baseline'"),
    (lambda r: r["claims"][0].update(columns=["arch"]),
     "claims[0].columns[0]: unknown result column 'arch'"),
    (lambda r: r["rows"][-1].update(origin="quoted"),
     "rows[3].origin: not used with recipe"),
    (lambda r: r.update(baselines=[{"row": "Quoted baseline", "columns": ["probe"]}]),
     "baselines[0].row: unknown trained row 'Quoted baseline'"),
    (lambda r: r.update(baselines=[{"row": "Raw pixels (reference)", "columns": ["arch"]}]),
     "baselines[0].columns[0]: unknown result column 'arch'"),
    (lambda r: r.update(baselines=[{"row": "Raw pixels (reference)"}]),
     "baselines[0].columns: required key is missing"),
])
def test_malformed_partial_specs_are_refused(tmp_path, edit, message):
    raw = _spec()
    edit(raw)
    with pytest.raises(SpecError, match=None) as err:
        load_table(write_spec(tmp_path / "tiny_partial.yaml", raw))
    assert message in str(err.value), str(err.value)


def test_supervised_recipe_must_read_the_labels_of_its_images(tmp_path):
    raw = _spec()
    body = copy.deepcopy(raw["recipes"]["pixels"]["scales"]["real"])
    body.update(method="supervised", backbone={"arch": "resnet18_tiny", "cifar_stem": True},
                params={"dataset": "digits", "split": "train", "subset": 200})
    raw["recipes"]["sup"] = {"scales": {"real": body}}
    with pytest.raises(SpecError, match=r"recipes.sup.scales.real.params.subset: differs from "
                                        r"the recipe's data: 200"):
        load_table(write_spec(tmp_path / "tiny_partial.yaml", raw))
    body["params"]["subset"] = 256
    load_table(write_spec(tmp_path / "tiny_partial.yaml", raw))


def test_launch_one_seed_of_a_partial_scale_and_render_it(isolated):
    path = write_spec(isolated / "tiny_partial.yaml", _spec())
    table = load_table(path)
    out = launch(table, "real", "debug", log=quiet, seeds=[0])
    assert {j.seed for j in out["jobs"]} == {0} and out["failures"] == {}
    md = tables.render(table, "real")
    assert "Δ" not in md.split("\n\n")[2]  # no difference to a paper number on other data
    assert "Quoted baseline" not in md and "| PCL" not in md
    assert "(1/2 seeds)" in md and "Raw pixels (reference)" in md
    claim = next(line for line in md.splitlines() if line.startswith("- MoCo > Raw pixels"))
    assert "(test)" in claim and "on one seed" in claim and "(1 seed)" in claim
    assert main(["launch", str(path), "--scale", "real", "--seeds", "7",
                 "--executor", "debug"]) == 2
    assert main(["table", str(path), "--scale", "real"]) == 0
    assert (isolated / "results" / "pcl" / "tiny.real.md").read_text() == md


def test_claim_verdicts_follow_the_means_and_the_spread(tmp_path):
    table = load_table(write_spec(tmp_path / "tiny_partial.yaml", _spec()))
    rec = {}

    def lines(better, worse):
        cells = {("MoCo", "probe"): [(v, rec) for v in better],
                 ("Raw pixels (reference)", "probe"): [(v, rec) for v in worse]}
        return tables.claim_lines(table, "real", cells)

    assert "**holds**" in lines([0.9, 0.91], [0.5, 0.52])[0]
    assert "**holds within the spread**" in lines([0.6, 0.8], [0.6, 0.7])[0]
    assert "**does not hold**" in lines([0.5, 0.52], [0.9, 0.91])[0]
    assert "**does not hold within the spread**" in lines([0.6, 0.7], [0.6, 0.8])[0]
    assert "**does not hold on one seed**" in lines([0.5], [0.9, 0.91])[0]
    assert tables.claim_lines(table, "real", {}) == []  # nothing computed: nothing claimed


def test_every_method_is_checked_against_the_baselines(tmp_path):
    raw = _spec()
    raw["baselines"] = [{"row": "Raw pixels (reference)", "columns": ["probe"]}]
    table = load_table(write_spec(tmp_path / "tiny_partial.yaml", raw))
    rec = {}

    def lines(moco, pixels):
        cells = {("MoCo", "probe"): [(v, rec) for v in moco],
                 ("Raw pixels (reference)", "probe"): [(v, rec) for v in pixels]}
        return tables.baseline_lines(table, "real", cells)

    out = lines([0.9, 0.91], [0.5, 0.52])
    assert out[0].endswith("1 of 1 checks hold beyond the spread (2+ seeds).")
    # only the paper's methods are judged: not PCL (no recipe at real), not the reference itself
    assert out[1:] == ["- MoCo: > Raw pixels (reference): Digits probe **holds** "
                       "(0.9 ± 0.0 vs 0.5 ± 0.0)"]
    out = lines([0.5, 0.6], [0.9, 0.91])
    assert out[0].endswith("0 of 1 checks hold beyond the spread (2+ seeds).")
    assert "**does not hold**" in out[1]
    assert "hold on one seed (no spread yet)" in lines([0.9], [0.5])[0]
    assert tables.baseline_lines(table, "real", {}) == []
