"""A changed input is never served as current: code, data, encoders, checkpoints, features."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from repro import fingerprint as FP
from repro import jobs as J
from repro import store, tables
from repro.launch import launch, plan
from repro.launch.status import format_status, table_status
from repro.methods import METHODS
from repro.spec import load_table

TINY = Path(__file__).resolve().parent / "fixtures" / "tiny_table.yaml"
PROTO_NCE = "repro/losses/proto_nce.py"


def quiet(*_):
    return None


def _recipe(method: str) -> dict:
    return {"method": method, "backbone": {"arch": "resnet18_tiny"},
            "data": {"dataset": "digits", "split": "train"}}


KNN = {"protocol": "knn", "train": {"dataset": "digits", "split": "train"},
       "test": {"dataset": "digits", "split": "test"}}


def test_code_closure_follows_imports_and_leaves_the_harness_out():
    pcl = FP.pretrain_code(_recipe("pcl"))["modules"]
    moco = FP.pretrain_code(_recipe("moco"))["modules"]
    assert PROTO_NCE in pcl and PROTO_NCE not in moco
    for common in ("repro/methods/moco.py", "repro/train/pretrain.py", "repro/models/resnet.py",
                   "repro/data/digits.py", "repro/data/transforms.py"):
        assert common in pcl and common in moco, common
    for harness in ("repro/spec.py", "repro/store.py", "repro/tables.py", "repro/jobs.py",
                    "repro/launch/__init__.py", "repro/launch/slurm.py", "repro/cli.py"):
        assert harness not in pcl, harness
    knn = FP.eval_code(KNN, _recipe("pcl"))["modules"]
    assert "repro/eval/knn.py" in knn and "repro/features.py" in knn
    assert not any(m.startswith(("repro/losses/", "repro/methods/pcl")) for m in knn)


def test_editing_a_file_changes_exactly_the_fingerprints_that_import_it(tmp_path, monkeypatch):
    copy = tmp_path / "repro"
    shutil.copytree(FP.PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(FP, "PACKAGE_DIR", copy)

    def codes():
        FP.closure.cache_clear()
        FP.code_modules.cache_clear()
        pre = {m: FP.pretrain_code(_recipe(m)) for m in METHODS.names()}
        return pre, FP.eval_code(KNN, _recipe("pcl"))["code"]

    before, knn_before = codes()
    importers = {m for m, fp in before.items() if PROTO_NCE in fp["modules"]}
    assert "pcl" in importers and "moco" not in importers
    path = copy / "losses" / "proto_nce.py"
    path.write_text(path.read_text() + "\n# an edit\n")
    after, knn_after = codes()
    assert {m for m in before if before[m]["code"] != after[m]["code"]} == importers
    assert knn_after == knn_before
    (copy / "spec.py").write_text((copy / "spec.py").read_text() + "\n# harness edit\n")
    again, _ = codes()
    assert {m: fp["code"] for m, fp in again.items()} == {m: fp["code"] for m, fp in after.items()}
    FP.closure.cache_clear()
    FP.code_modules.cache_clear()


def _edit_code(monkeypatch, file: str) -> None:
    """As if ``file`` had been edited: its hash changes in every closure that holds it."""
    real = FP.code_modules

    def edited(roots, names=frozenset(), read=FP._read):
        mods = dict(real(roots, names, read))
        if file in mods:
            mods[file] = "edited"
        return mods

    monkeypatch.setattr(FP, "code_modules", edited)


def _stale_rows(md: str) -> list[str]:
    return [line for line in md.splitlines() if line.startswith("| ") and "(stale)" in line]


def _line(md: str, row: str) -> str:
    return next(line for line in md.splitlines() if line.startswith(f"| {row}"))


def test_code_edit_marks_exactly_the_affected_cells_stale_and_relaunch_recomputes_them(
        isolated, monkeypatch):
    table = load_table(TINY)
    launch(table, "smoke", "debug", log=quiet)
    expanded = J.expand(table, "smoke", {"digits": "real"})
    assert plan(expanded)[0] == []
    assert _stale_rows(tables.render(table, "smoke")) == []

    _edit_code(monkeypatch, PROTO_NCE)
    pcl = {j.key for j in expanded if "pcl" in j.label}
    todo, stale = plan(expanded)
    assert {j.key for j in todo} == set(stale) == pcl
    pcl_pre = next(j for j in expanded if j.label == "pretrain pcl seed 0")
    assert any(PROTO_NCE in r for r in stale[pcl_pre.key])
    md = tables.render(table, "smoke")
    assert "(stale)" in _line(md, "PCL") and "(stale)" not in _line(md, "MoCo")
    assert "**Stale**: 4 of 8" in md and PROTO_NCE in md
    status = table_status(table, "smoke", states={})
    states = {k: st.state for k, st in status["statuses"].items()}
    assert {k for k, s in states.items() if s == "stale"} == pcl
    assert "stale" in format_status(table, "smoke", status)
    # --keep-stale keeps them
    assert plan(expanded, keep_stale=True)[0] == []

    lines = []
    out = launch(table, "smoke", "debug", log=lines.append)
    assert {j.key for j in out["todo"]} == pcl and not out["failures"]
    assert any("stale pretrain pcl seed 0" in line for line in lines), lines
    assert plan(expanded)[0] == []
    md = tables.render(table, "smoke")
    assert _stale_rows(md) == [] and "**Stale**" not in md


def test_changed_data_file_makes_its_readers_stale_and_new_features_are_extracted(
        isolated, monkeypatch):
    import repro.data.fingerprint as DF

    table = load_table(TINY)
    launch(table, "smoke", "debug", log=quiet)
    expanded = J.expand(table, "smoke", {"digits": "real"})
    runs = Path(isolated) / "runs"
    n_cached = len(list(runs.glob("*/features/*.npz")))
    real = DF.data_fingerprint
    monkeypatch.setattr(DF, "data_fingerprint", lambda name, split=None, root=None: (
        "0" * 16 if (name, split) == ("digits", "test") else real(name, split, root)))
    todo, stale = plan(expanded)
    evals = {j.key for j in expanded if j.kind == "eval"}
    assert {j.key for j in todo} == set(stale) == evals  # every probe reads digits/test
    assert all("data changed: digits/test" in " ".join(stale[k]) for k in evals)
    out = launch(table, "smoke", "debug", log=quiet)
    assert {j.key for j in out["todo"]} == evals
    assert plan(expanded)[0] == []
    # the cached features of digits/test were extracted again, under a new cache key
    assert len(list(runs.glob("*/features/*.npz"))) == n_cached + len(evals)


def test_encoders_of_another_run_are_never_evaluated(isolated):
    table = load_table(TINY)
    launch(table, "smoke", "debug", log=quiet)
    expanded = J.expand(table, "smoke", {"digits": "real"})
    pre = next(j for j in expanded if j.label == "pretrain moco seed 0")
    its_eval = next(j for j in expanded if j.deps == [pre.key])
    info = Path(isolated) / "runs" / pre.key / "run.json"
    info.write_text(json.dumps({**json.loads(info.read_text()), "run_id": "someone-else"}))
    store.record_path(its_eval.key).unlink()  # the evaluation must run: its encoders are wrong
    assert {j.key for j in plan(expanded)[0]} == {pre.key, its_eval.key}


def test_records_without_fingerprints_are_stale(isolated):
    table = load_table(TINY)
    launch(table, "smoke", "debug", log=quiet)
    expanded = J.expand(table, "smoke", {"digits": "real"})
    pre = expanded[0]
    rec = store.get(pre.key)
    del rec["fingerprint"]
    store.put(rec)
    todo, stale = plan(expanded)
    assert stale[pre.key] == ["made before records carried fingerprints"]
    assert {j.key for j in todo} == {pre.key} | {j.key for j in expanded if j.deps == [pre.key]}


def test_failed_job_shows_its_cause_in_launch_and_status_then_heals(isolated, capsys):
    from repro.cli import main

    raw = yaml.safe_load(TINY.read_text())
    raw["rows"] = raw["rows"][:2]  # MoCo only
    spec = Path(isolated) / "moco_only.yaml"
    spec.write_text(yaml.safe_dump(raw))
    table = load_table(spec)
    launch(table, "smoke", "debug", log=quiet)
    expanded = J.expand(table, "smoke", {"digits": "real"})
    pre = next(j for j in expanded if j.label == "pretrain moco seed 0")
    victim = next(j for j in expanded if j.deps == [pre.key])
    store.record_path(victim.key).unlink()
    encoders = Path(isolated) / "runs" / pre.key / "encoders.pt"
    encoders.write_bytes(encoders.read_bytes()[:1000])  # truncated, as by a full disk

    lines = []
    out = launch(table, "smoke", "local", log=lines.append)  # a real subprocess fails
    (cause,) = [f["cause"] for f in out["failures"].values()]
    assert cause.startswith("repro.train.checkpoint.UnreadableCheckpoint: ")
    assert str(encoders) in cause and "moved to" in cause, cause
    assert any(line.startswith(f"FAILED {victim.label}: {cause}") for line in lines), lines
    assert not encoders.exists() and list(encoders.parent.glob("encoders.pt.unreadable-*"))

    assert main(["status", str(spec), "--scale", "smoke"]) == 1
    printed = capsys.readouterr().out
    assert cause in printed and "_log.err" in printed and "1 failed" in printed

    lines.clear()
    out = launch(table, "smoke", "debug", log=lines.append)
    assert any(line.startswith("previously FAILED") and cause in line for line in lines)
    assert {j.key for j in out["todo"]} == {pre.key, victim.key} and not out["failures"]
    assert main(["status", str(spec), "--scale", "smoke"]) == 0
