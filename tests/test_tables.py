"""The renderer: paper value, mean ± std over seeds and the gap, from stored records only."""

from pathlib import Path

from repro import jobs, store, tables
from repro.spec import load_table

TINY = Path(__file__).resolve().parent / "fixtures" / "tiny_table.yaml"


def _put(job, metrics, synthetic=False, policy=None):
    rec = {"key": job.key, "metrics": metrics, "synthetic": synthetic,
           "provenance": {"git": {"commit": "abcdef1234567", "dirty": False}}}
    if policy:
        rec["selection"] = {"cost": {"value": 1.0, "policy": policy}}
    store.put(rec)


def _line(md, name):
    return next(line for line in md.splitlines() if line.startswith(f"| {name} "))


def test_mean_std_gap_partial_and_missing_metric(isolated):
    table = load_table(TINY)
    expanded = jobs.expand(table, "smoke", {"digits": "real"})
    ev = {j.label: j for j in expanded if j.kind == "eval"}
    _put(ev["eval probe of moco seed 0"], {"top1": 60.0}, policy="test")
    _put(ev["eval probe of moco seed 1"], {"top1": 64.0}, policy="test")
    _put(ev["eval probe of pcl seed 0"], {"top5": 99.0})  # the column's metric is absent
    md = tables.render(table, "smoke")
    moco = _line(md, "MoCo")
    # mean 62.0, sample std 2.83, gap 62.0 - 60.6 = +1.4, test-selected mark
    assert "| 60.6 " in moco and "62.0 ± 2.8ᵀ" in moco and "+1.4" in moco
    assert "n/a (no top1)" in _line(md, "PCL")
    assert "(quoted)" in _line(md, "Quoted baseline") and "50.0†" in md
    assert "Cells computed: 3/4" in md and "abcdef1234" in md
    assert "SYNTHETIC" not in md

    _put(ev["eval probe of pcl seed 0"], {"top1": 70.0}, synthetic=True)
    md = tables.render(table, "smoke")
    pcl = _line(md, "PCL")
    assert "70.0 (1/2 seeds) (synthetic)" in pcl and "+8.5" in pcl


def test_no_records_renders_pending(isolated):
    md = tables.render(load_table(TINY), "smoke")
    assert _line(md, "MoCo").count("pending") == 1
    assert "Cells computed: 0/4" in md
