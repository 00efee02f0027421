"""The renderer: paper value, mean ± std over seeds and the gap, from stored records only."""

from pathlib import Path

import pytest
import yaml
from spec_files import write_spec

from repro import jobs, store, tables
from repro.spec import ORIGINS, SpecError, load_table

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


def _tiny_with(tmp_path, *extra_rows, change=None):
    raw = yaml.safe_load(TINY.read_text())
    raw["rows"] += list(extra_rows)
    if change:
        change(raw)
    return write_spec(tmp_path / "experiments" / "pcl" / "three_labels.yaml", raw)


OWN = {"name": "Own ablation", "origin": "paper", "reason": "no config switch for it",
       "paper": {"probe": "55.0"}}
OWN_NO_REASON = {"name": "Own baseline", "origin": "paper", "paper": {"probe": "40.0"}}


def test_quoted_paper_and_trained_rows_are_labelled_distinctly(isolated):
    table = load_table(_tiny_with(isolated, OWN, OWN_NO_REASON))
    assert [(r.name, r.origin, r.reason) for r in table.rows] == [
        ("Quoted baseline", "quoted", ""), ("MoCo", None, ""), ("PCL", None, ""),
        ("Own ablation", "paper", "no config switch for it"), ("Own baseline", "paper", "")]
    expanded = jobs.expand(table, "smoke", {"digits": "real"})
    assert {lab for j in expanded for lab, _ in j.cells} == {"MoCo", "PCL"}  # only ours run
    ev = {j.label: j for j in expanded if j.kind == "eval"}
    _put(ev["eval probe of moco seed 0"], {"top1": 60.0})
    md = tables.render(table, "smoke")

    quoted, own, trained = _line(md, "Quoted baseline"), _line(md, "Own ablation"), \
        _line(md, "MoCo")
    assert "| (quoted) " in quoted and "paper's run" not in quoted
    assert "| (paper's run, not rerun) " in own and "(quoted)" not in own
    assert "| 60.0 (1/2 seeds) " in trained and "(quoted)" not in trained \
        and "not rerun" not in trained
    assert "| pending " in _line(md, "PCL")
    legend = next(line for line in md.splitlines() if line.startswith("paper = as printed"))
    assert "(quoted) = the paper quoted this row from other work" in legend
    assert "(paper's run, not rerun) = the paper's own run, which we do not rerun" in legend
    assert "ours = mean ± std over seeds of our run of the row's recipe" in legend
    # the reasons of the paper's own runs, under the table (none given: said so)
    assert "- The paper's own run, not rerun: Own ablation — no config switch for it" in md
    assert "- The paper's own run, not rerun: Own baseline (no reason given)" in md
    assert md.index(legend) < md.index("- The paper's own run, not rerun: Own ablation")


def test_every_origin_has_its_own_label():
    assert set(tables.ORIGIN_LABEL) == set(ORIGINS)
    assert len(set(tables.ORIGIN_LABEL.values())) == len(ORIGINS)
    assert all(label in tables.LEGEND for label in tables.ORIGIN_LABEL.values())


def test_two_own_runs_with_one_reason_share_a_line(isolated):
    twin = dict(OWN, name="Own ablation 2")
    md = tables.render(load_table(_tiny_with(isolated, OWN, twin)), "smoke")
    assert ("- The paper's own runs, not rerun: Own ablation, Own ablation 2 — no config "
            "switch for it") in md
    assert "- The paper's own run" not in tables.render(load_table(TINY), "smoke")  # quoted only


def _refused(path) -> str:
    with pytest.raises(SpecError) as err:
        load_table(path)
    message = str(err.value)
    assert len(message.splitlines()) == 1 and str(path) in message, message
    return message


def test_a_row_without_recipe_must_say_its_origin(isolated):
    def forget(raw):
        del raw["rows"][0]["origin"]
    message = _refused(_tiny_with(isolated, change=forget))
    assert "rows[0].origin: required in a row without recipe; allowed: quoted (the paper " \
           "quoted it from other work) or paper (the paper's own run, not rerun)" in message


@pytest.mark.parametrize("row, expected", [
    ({"name": "X", "origin": "cited", "paper": {"probe": "1.0"}},
     "rows[3].origin: unknown row origin 'cited'; allowed: quoted, paper"),
    ({"name": "X", "origin": None, "paper": {"probe": "1.0"}},
     "rows[3].origin: unknown row origin None; allowed: quoted, paper"),
    ({"name": "X", "origin": "quoted", "reason": "why", "paper": {"probe": "1.0"}},
     "rows[3].reason: not used with origin 'quoted': 'why'; allowed: reason only with origin: "
     "paper"),
    ({"name": "X", "origin": "paper", "reason": "a\nb", "paper": {"probe": "1.0"}},
     "rows[3].reason: invalid value 'a\\nb'; allowed: a single-line string"),
    ({"name": "X", "recipe": "moco", "origin": "paper", "paper": {"probe": "1.0"}},
     "rows[3].origin: not used with recipe: 'paper'; allowed: origin only in rows without a "
     "recipe"),
    ({"name": "X", "recipe": "moco", "origin": "quoted", "paper": {"probe": "1.0"}},
     "rows[3].origin: not used with recipe: 'quoted'; allowed: origin only in rows without a "
     "recipe"),
    ({"name": "X", "recipe": "moco", "reason": "why", "paper": {"probe": "1.0"}},
     "rows[3].reason: not used with recipe: 'why'; allowed: reason only in rows without a "
     "recipe"),
], ids=["unknown", "null", "reason-quoted", "reason-multiline", "recipe-paper", "recipe-quoted",
        "recipe-reason"])
def test_origin_and_reason_are_checked(isolated, row, expected):
    message = _refused(_tiny_with(isolated, row))
    assert expected in message, message
