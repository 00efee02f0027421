"""Histogram panels and summary columns of a list-valued result (PCL Fig. 3(a): cluster sizes),
from stored records only: the summaries against direct formulas, the drawn counts against a
direct count, and a bad declaration's one-line error."""

from __future__ import annotations

import copy
import math
from collections import Counter
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import yaml
from spec_files import write_spec

from repro import figures, jobs, store, tables
from repro.spec import SUMMARIES, SpecError, load_table

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

SPEC = "experiments/pcl/fighist.yaml"  # where the tests write their spec, under tmp_path

TINY = Path(__file__).resolve().parent / "fixtures" / "tiny_table.yaml"
BASE = yaml.safe_load(TINY.read_text())
# per (row, seed): the cluster sizes a clustering record keeps (artifacts.cluster_sizes)
SIZES = {("MoCo", 0): [1, 1, 2, 9, 3, 3, 1, 20], ("MoCo", 1): [2, 2, 4, 7, 5, 3, 6, 11],
         ("PCL", 0): [5, 5, 5, 4, 6, 5, 5, 5], ("PCL", 1): [4, 6, 5, 5, 5, 5, 6, 4]}


def _spec(raw: dict) -> dict:
    raw["table"] = "fighist"
    raw["columns"] = [
        {"id": "arch", "label": "architecture"},
        {"id": "std", "label": "std of sizes", "eval": "probe", "metric": "cluster_sizes",
         "summary": "std", "digits": 3},
        {"id": "largest", "label": "largest", "eval": "probe", "metric": "cluster_sizes",
         "summary": "max"},
        {"id": "small", "label": "small (%)", "eval": "probe", "metric": "cluster_sizes",
         "summary": "share_below_half_mean", "scale_factor": 100},
        {"id": "probe", "label": "probe", "eval": "probe", "metric": "top1"},
    ]
    for row in raw["rows"]:
        row["paper"] = ({c: "(fig.)" for c in ("std", "largest", "small")} if row.get("recipe")
                        else {"probe": "50.0"})
    raw["figure"] = {"caption": "Fig. H. sizes", "panels": [
        {"id": "h", "kind": "histogram", "title": "(a) sizes", "values": "std", "bins": 30,
         "series": {"MoCo": "MoCo", "PCL": "PCL"}}]}
    return raw


def _stored(isolated, rows=("MoCo", "PCL")):
    table = load_table(write_spec(isolated / SPEC, _spec(copy.deepcopy(BASE))))
    for job in jobs.expand(table, "smoke", {"digits": "real"}):
        row = job.cells[0][0] if job.cells else None
        if job.kind == "eval" and row in rows:
            store.put({"key": job.key, "metrics": {"top1": 1.0}, "synthetic": False,
                       "artifacts": {"cluster_sizes": SIZES[(row, job.seed)]},
                       "provenance": {"git": {"commit": "abcdef1234567", "dirty": False}}})
    return table


def _direct(sizes: list[int]) -> dict[str, float]:
    n = len(sizes)
    mean = sum(sizes) / n
    return {"std": math.sqrt(sum((s - mean) ** 2 for s in sizes) / n), "largest": max(sizes),
            "small": 100 * sum(1 for s in sizes if s < mean / 2) / n}


def test_summary_columns_agree_with_direct_formulas_per_seed(isolated):
    table = _stored(isolated)
    jobs_, records, _ = tables.stored_jobs(table, "smoke")
    cells = tables.cell_values(table, jobs_, records)
    for (row, seed), sizes in SIZES.items():
        want = _direct(sizes)
        for col in ("std", "largest", "small"):
            got = {r["key"]: v for v, r in cells[(row, col)]}
            (value,) = [v for k, v in got.items() if records[k]["artifacts"]["cluster_sizes"]
                        == sizes]
            assert value == pytest.approx(want[col], rel=1e-12), (row, seed, col)
    md = tables.render(table, "smoke")
    pcl = next(line for line in md.splitlines() if line.startswith("| PCL "))
    stds = [_direct(SIZES[("PCL", s)])["std"] for s in (0, 1)]
    assert f"{np.mean(stds):.3f} ± {np.std(stds, ddof=1):.3f}" in pcl


def test_summary_names_are_the_computed_ones():
    assert set(tables.SUMMARY_FNS) == set(SUMMARIES)
    x = np.array([1.0, 2.0, 3.0, 10.0])
    assert tables.SUMMARY_FNS["cv"](x) == pytest.approx(np.std(x) / 4.0)
    assert tables.SUMMARY_FNS["max_over_mean"](x) == pytest.approx(2.5)
    assert tables.SUMMARY_FNS["share_below_half_mean"](x) == 0.25  # only 1 < 2


def test_a_record_without_the_list_leaves_the_cell_empty():
    col = load_table(TINY).columns[1]
    col.summary, col.metric = "max", "cluster_sizes"
    assert tables.column_value(col, {"metrics": {"top1": 1.0}}) is None
    assert tables.column_value(col, {"artifacts": {"cluster_sizes": "12"}}) is None
    assert tables.column_value(col, {"metrics": {"cluster_sizes": [3, 7]}}) == 7.0


def test_the_histogram_draws_each_series_mean_count_per_bin(isolated):
    table = _stored(isolated)
    jobs_, records, _ = tables.stored_jobs(table, "smoke")
    cells = tables.cell_values(table, jobs_, records)
    panel = table.figure["panels"][0]
    fig, ax = plt.subplots()
    try:
        assert figures._histogram_panel(ax, table, panel, cells) == 0
        steps = [p for p in ax.patches if type(p).__name__ == "StepPatch"]
        means = [p for p in steps if not p.get_fill()]
        assert len(means) == 2 and len(steps) == 4  # a mean line and a min-max band each
        for patch, row in zip(means, ("MoCo", "PCL")):
            values, edges = patch.get_data()[:2]
            # integer sizes 1..20 in 30 bins: one bin per integer size
            assert np.allclose(edges, np.arange(0.5, 21.5))
            for size, got in zip(range(1, 21), values):
                direct = [Counter(SIZES[(row, s)])[size] for s in (0, 1)]
                assert got == pytest.approx(sum(direct) / 2)
    finally:
        plt.close(fig)


def test_a_histogram_figure_renders_its_png_and_counts_pending_series(isolated):
    table = _stored(isolated, rows=("PCL",))
    md = tables.write(table, "smoke")
    png = md.with_suffix(".png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    assert "| MoCo " in md.read_text() and "pending" in md.read_text()
    jobs_, records, _ = tables.stored_jobs(table, "smoke")
    fig, ax = plt.subplots()
    try:
        pending = figures._histogram_panel(ax, table, table.figure["panels"][0],
                                           tables.cell_values(table, jobs_, records))
        assert pending == 1
    finally:
        plt.close(fig)


def test_bins_log_spaced_or_equal_width():
    many = [np.arange(1.0, 101.0)]
    assert len(figures.histogram_bins(many, 10)) == 11
    log = figures.histogram_bins(many, 4, log_x=True)
    assert log[0] == 1.0 and log[-1] >= 100.0 and np.allclose(np.diff(np.log(log)), np.log(log[1]))
    assert figures.histogram_counts(many, log).sum() == 100


def _panel(**change):
    def edit(raw):
        raw["figure"]["panels"][0].update(change)
    return edit


@pytest.mark.parametrize("edit, field, allowed", [
    (_panel(kind="pie"), "figure.panels[0].kind", "line, histogram"),
    (_panel(values="probe"), "figure.panels[0].values", "std, largest, small"),
    (_panel(values="nope"), "figure.panels[0].values", "std, largest, small"),
    (_panel(series={"Q": "Quoted baseline"}), "figure.panels[0].series.Q", "MoCo, PCL"),
    (_panel(x="lr"), "figure.panels[0].x", "allowed: id, kind, title, values, series, bins"),
    (_panel(bins=0), "figure.panels[0].bins", "an integer in [1, 1000]"),
    (lambda r: r["figure"]["panels"][0].pop("values"), "figure.panels[0].values",
     "required key is missing"),
    (lambda r: r["columns"][1].update(summary="mode"), "columns[1].summary",
     ", ".join(SUMMARIES)),
    (lambda r: r["columns"][0].update(summary="max"), "columns[0].summary",
     "summary only in result columns"),
])
def test_bad_histogram_declarations_name_file_field_and_allowed(tmp_path, edit, field, allowed):
    raw = _spec(copy.deepcopy(BASE))
    edit(raw)
    with pytest.raises(SpecError) as err:
        load_table(write_spec(tmp_path / SPEC, raw))
    text = str(err.value)
    assert "fighist.yaml" in text and field in text and allowed in text, text
