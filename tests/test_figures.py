"""Figure specs: ``for`` rows (one row per swept value), the ``figure`` block, and the PNG +
markdown a figure renders to (repro.figures), end to end on real digits data."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from spec_files import write_spec

from repro import figures, tables
from repro.launch import launch
from repro.spec import SpecError, load_table

SPEC = "experiments/pcl/figtiny.yaml"  # where the tests write their spec, under tmp_path

TINY = Path(__file__).resolve().parent / "fixtures" / "tiny_table.yaml"
BASE = yaml.safe_load(TINY.read_text())


def _figure_spec(raw: dict) -> dict:
    raw["table"] = "figtiny"
    raw["scales"]["smoke"]["seeds"] = [0]
    raw["recipes"]["moco_lr{lr}"] = {"extends": "moco", "grid": {"lr": {
        "set": "optim.lr", "values": {"lo": 0.01, "hi": 0.05}}}}
    raw["rows"] = [
        {"name": "MoCo lr={lr}", "recipe": "moco_lr{lr}", "for": {"lr": {"lo": 0.01, "hi": 0.05}},
         "paper": {"probe": "(fig.)"}, "paper_at": {"0.05": {"probe": "55.0"}}},
        {"name": "Quoted", "origin": "quoted", "paper": {"probe": "50.0"}},
    ]
    raw["figure"] = {"caption": "Fig. T. lr sweep", "panels": [
        {"id": "a", "title": "(a) lr", "x": "lr", "y": "probe", "log_x": True,
         "series": {"MoCo": "MoCo lr={lr}"}}]}
    return raw


def test_for_rows_expand_into_one_row_per_value(tmp_path):
    table = load_table(write_spec(tmp_path / SPEC, _figure_spec(copy.deepcopy(BASE))))
    sweep = [r for r in table.rows if r.point]
    assert [(r.name, r.recipe, r.point) for r in sweep] == [
        ("MoCo lr=0.01", "moco_lrlo", {"lr": 0.01}), ("MoCo lr=0.05", "moco_lrhi", {"lr": 0.05})]
    assert [r.paper["probe"] for r in sweep] == ["(fig.)", "55.0"]  # paper_at over paper
    assert table.recipes["moco_lrhi"]["smoke"]["optim"]["lr"] == 0.05
    assert table.figure["panels"][0]["series"] == {"MoCo": "MoCo lr={lr}"}


@pytest.mark.parametrize("edit, problem", [
    (lambda r: r["figure"]["panels"][0].update(y="nope"), "figure.panels[0].y"),
    (lambda r: r["figure"]["panels"][0].update(series={"X": "BYOL lr={lr}"}), "matches no row"),
    (lambda r: r["rows"][0].update(name="MoCo"), "naming every axis of for"),
    (lambda r: r["rows"][0].update(paper_at={"0.5": {"probe": "1"}}), "not a point of this row"),
    (lambda r: r["rows"][1].update(paper_at={"1": {}}), "paper_at only with for"),
])
def test_bad_figure_specs_name_file_and_field(tmp_path, edit, problem):
    raw = _figure_spec(copy.deepcopy(BASE))
    edit(raw)
    with pytest.raises(SpecError, match="figtiny.yaml") as err:
        load_table(write_spec(tmp_path / SPEC, raw))
    assert problem in str(err.value)


def test_a_figure_renders_its_table_and_png_from_stored_records(isolated):
    table = load_table(write_spec(isolated / SPEC, _figure_spec(copy.deepcopy(BASE))))
    assert not launch(table, "smoke", "debug", log=lambda m: None)["failures"]
    jobs, records, _ = tables.stored_jobs(table, "smoke")
    cells = tables.cell_values(table, jobs, records)
    points = figures.panel_points(table, "smoke", table.figure["panels"][0], cells)
    [(x0, m0, s0, p0), (x1, m1, s1, p1)] = points["MoCo"]
    assert (x0, x1, p0, p1) == (0.01, 0.05, None, 55.0)
    assert m0 == cells[("MoCo lr=0.01", "probe")][0][0] and s0 == 0.0  # one seed
    assert m0 != m1  # two trainings
    md = tables.write(table, "smoke")
    png = md.with_suffix(".png")
    assert md.read_text().count("| MoCo lr=") == 2 and png.stat().st_size > 5000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_point_can_name_its_own_column(tmp_path):
    """ProPos Fig. 6: each K is evaluated on its own column (k-means with k = K)."""
    raw = _figure_spec(copy.deepcopy(BASE))
    raw["columns"] = [{"id": f"probe_{i}", "label": f"probe {i}", "eval": "probe",
                       "metric": "top1"} for i in ("lo", "hi")]
    raw["rows"][0].update(evaluate=["probe_{lr}"], paper={})
    raw["rows"][0].pop("paper_at")
    raw["rows"][1]["paper"] = {"probe_lo": "50.0"}
    raw["figure"]["panels"][0]["y"] = "probe_{lr}"
    table = load_table(write_spec(tmp_path / SPEC, raw))
    assert [(r.recipe, r.evaluate) for r in table.rows if r.point] == [
        ("moco_lrlo", ["probe_lo"]), ("moco_lrhi", ["probe_hi"])]
    raw["figure"]["panels"][0]["y"] = "nope_{lr}"
    with pytest.raises(SpecError, match=r"figure\.panels\[0\]\.y: .*'nope_lo'"):
        load_table(write_spec(tmp_path / SPEC, raw))
