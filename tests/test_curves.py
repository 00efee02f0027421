"""``repro curves``: per-epoch history of stored pretraining runs -> one PNG + a text summary."""

from __future__ import annotations

import os
import statistics
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from repro import curves, jobs, store
from repro.cli import main
from repro.spec import load_table

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "fixtures" / "tiny_table.yaml"


def _history(method: str, seed: int) -> list[dict]:
    """Three epochs (0-based, as the training loop logs them); PCL's prototype terms start
    after its warm-up epoch; a non-scalar entry is never drawn."""
    out = []
    for epoch in range(3):
        entry = {"epoch": epoch, "lr": 0.05 * (1 - epoch / 3), "loss": 6.0 - epoch + 0.1 * seed,
                 "info_nce": 6.0 - epoch + 0.1 * seed, "cluster_sizes": [3, 5]}
        if method == "pcl" and epoch >= 1:
            entry.update({"proto_nce": 4.0 - 0.5 * epoch + 0.2 * seed, "phi_mean_k8": 0.1})
            entry["loss"] += entry["proto_nce"]
        out.append(entry)
    return out


def _put_pretrain(table, which: dict[str, list[int]]) -> dict[tuple[str, int], dict]:
    """Synthetic pretraining records for {recipe id: seeds}; returns them by (recipe, seed)."""
    out = {}
    for job in jobs.expand(table, "smoke", {"digits": "real"}):
        rid = job.payload.get("recipe_id")
        if job.kind == "pretrain" and job.seed in which.get(rid, []):
            rec = {"key": job.key, "kind": "pretrain", "seed": job.seed, "metrics": {},
                   "synthetic": False, "recipe": job.payload["recipe"],
                   "history": _history(job.payload["recipe"]["method"], job.seed)}
            store.put(rec)
            out[(rid, job.seed)] = rec
    return out


def _expected(records: list[dict], quantity: str) -> tuple[float, int, float, int]:
    """Mean over seeds at the first and the last epoch (1-based) that logged ``quantity``."""
    by_epoch: dict[int, list[float]] = {}
    for rec in records:
        for entry in rec["history"]:
            if quantity in entry:
                by_epoch.setdefault(entry["epoch"] + 1, []).append(entry[quantity])
    first, last = min(by_epoch), max(by_epoch)
    return (statistics.fmean(by_epoch[first]), first, statistics.fmean(by_epoch[last]), last)


def _lines(text: str, row: str) -> dict[str, list[str]]:
    """The summary's lines of ``row``: {quantity: columns}."""
    out = {}
    for line in text.splitlines():
        cols = [c for c in line.split("  ") if c.strip()]
        if cols and cols[0].strip() == row:
            out[cols[1].strip()] = [c.strip() for c in cols]
    return out


def _value(cell: str) -> tuple[float, int]:
    value, epoch = cell.split(" (epoch ")
    return float(value), int(epoch.rstrip(")"))


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", "not a PNG"
    assert data.endswith(b"IEND\xaeB`\x82"), "truncated PNG"
    return struct.unpack(">II", data[16:24])


def _check_png(path: Path) -> None:
    assert path.is_file()
    width, height = _png_size(path)
    assert 400 <= width <= 4000 and 300 <= height <= 4000, (width, height)
    assert 10_000 < path.stat().st_size < 1_000_000


def test_png_and_summary_from_the_records(isolated, capsys):
    table = load_table(TINY)
    recs = _put_pretrain(table, {"moco": [0, 1], "pcl": [0, 1]})
    assert main(["curves", str(TINY), "--scale", "smoke"]) == 0
    out = capsys.readouterr().out
    png = isolated / "results" / "pcl" / "tiny.smoke.curves.png"
    assert f"wrote {Path('results/pcl/tiny.smoke.curves.png')}" in out
    _check_png(png)
    assert "Quoted baseline" not in out  # not trained: no curves
    for rid, row in (("moco", "MoCo"), ("pcl", "PCL")):
        lines = _lines(out, row)
        names = ["loss", "lr", "info_nce"] + (["phi_mean_k8", "proto_nce"] if rid == "pcl"
                                              else [])
        assert list(lines) == names  # loss, lr first; cluster_sizes (a list) is not drawn
        for q in names:
            first, e0, last, e1 = _expected([recs[(rid, 0)], recs[(rid, 1)]], q)
            cols = lines[q]
            assert _value(cols[2]) == (pytest.approx(first, rel=1e-4), e0)
            assert _value(cols[3]) == (pytest.approx(last, rel=1e-4), e1)
            assert cols[4] == "2"
    # PCL's prototype terms start after its warm-up epoch: epoch 2 of 3
    assert _value(_lines(out, "PCL")["proto_nce"][2])[1] == 2


def test_row_filter_out_path_and_pending(isolated, capsys):
    table = load_table(TINY)
    recs = _put_pretrain(table, {"moco": [1]})
    target = isolated / "figs" / "moco.png"
    assert main(["curves", str(TINY), "--scale", "smoke", "--row", "MoCo", "--out",
                 str(target)]) == 0
    out = capsys.readouterr().out
    _check_png(target)
    assert not (isolated / "results").exists()
    assert _lines(out, "PCL") == {}
    loss = _lines(out, "MoCo")["loss"]
    assert _value(loss[3])[0] == pytest.approx(recs[("moco", 1)]["history"][-1]["loss"])
    assert loss[4] == "1" and "1/2 seeds" in loss[5]

    # PCL has no stored pretraining: listed as pending, the figure is still written
    assert main(["curves", str(TINY), "--scale", "smoke", "--row", "PCL", "--row", "MoCo",
                 "--out", str(target)]) == 0
    out = capsys.readouterr().out
    assert list(_lines(out, "PCL")) == ["pending"]
    assert "no stored pretraining" in _lines(out, "PCL")["pending"][-1]
    assert "loss" in _lines(out, "MoCo")
    _check_png(target)


def test_nothing_stored_yet_still_writes_a_figure(isolated, capsys):
    assert main(["curves", str(TINY), "--scale", "smoke"]) == 0
    out = capsys.readouterr().out
    assert list(_lines(out, "MoCo")) == ["pending"] and list(_lines(out, "PCL")) == ["pending"]
    path = isolated / "results" / "pcl" / "tiny.smoke.curves.png"
    assert path.is_file() and _png_size(path)[0] > 100


@pytest.mark.parametrize("argv, expected", [
    (["--row", "Nope"], "--row 'Nope': not a row of"),
    (["--row", "Quoted baseline"], "--row 'Quoted baseline': not rerun (no recipe)"),
    (["--out", "curves.svg"], "not a .png file name"),
    (["--scale", "paper"], "--scale 'paper': not a scale of"),
])
def test_mistakes_are_one_line_errors(isolated, capsys, argv, expected):
    assert main(["curves", str(TINY), *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip()
    assert "\n" not in err and err.startswith("error: ") and expected in err
    if "--row" in argv:
        assert err.endswith("allowed: MoCo, PCL")
    assert not (isolated / "results").exists()


def test_a_shared_pretraining_is_drawn_for_each_row(isolated, capsys):
    raw = yaml.safe_load(TINY.read_text())
    raw["rows"].append({"name": "MoCo again", "recipe": "moco", "paper": {"probe": "1.0"}})
    spec = isolated / "shared.yaml"
    spec.write_text(yaml.safe_dump(raw))
    table = load_table(spec)
    _put_pretrain(table, {"moco": [0, 1]})
    assert main(["curves", str(spec), "--scale", "smoke", "--out", "x.png"]) == 0
    out = capsys.readouterr().out
    assert _lines(out, "MoCo again")["loss"][2:] == _lines(out, "MoCo")["loss"][2:]
    assert list(_lines(out, "PCL")) == ["pending"]
    assert [r.name for r in curves.select_rows(table, "smoke")] == ["MoCo", "PCL", "MoCo again"]


def test_curves_import_no_torch(isolated):
    """The whole command, matplotlib included, runs without importing torch."""
    _put_pretrain(load_table(TINY), {"moco": [0]})
    code = ("import sys; from repro.cli import main; "
            f"rc = main(['curves', {str(TINY)!r}, '--out', 'c.png']); "
            "assert rc == 0, rc; assert 'torch' not in sys.modules, 'torch imported'")
    done = subprocess.run([sys.executable, "-c", code], cwd=isolated, env=os.environ,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (isolated / "c.png").is_file()
