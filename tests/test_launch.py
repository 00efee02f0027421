"""spec -> jobs -> submitit -> store -> table, end to end on real digits data."""

import json
from pathlib import Path

import pytest
import torch

from repro import jobs, store, tables
from repro.launch import launch
from repro.spec import load_table

TINY = Path(__file__).resolve().parent / "fixtures" / "tiny_table.yaml"


def _log_to(lines):
    return lambda msg: lines.append(str(msg))


@pytest.mark.parametrize("executor", ["debug", "local"])
def test_tiny_table_end_to_end_then_nothing_to_rerun(isolated, executor):
    table = load_table(TINY)
    lines = []
    out = launch(table, "smoke", executor, log=_log_to(lines))
    assert not out["failures"], lines
    expanded = jobs.expand(table, "smoke", {"digits": "real"})
    assert len(expanded) == 8  # 2 recipes x 2 seeds pretraining + 4 evaluations
    for job in expanded:
        rec = store.get(job.key)
        assert rec is not None, job.label
        assert rec["synthetic"] is False and rec["seed"] == job.seed
        assert rec["provenance"]["versions"]["torch"]
    evals = [store.get(j.key) for j in expanded if j.kind == "eval"]
    assert all(0.0 <= r["metrics"]["top1"] <= 100.0 for r in evals)
    # PCL's E-step ran after its warm-up epoch and logged its concentrations
    pcl = [store.get(j.key) for j in expanded if j.label == "pretrain pcl seed 0"][0]
    assert "proto_nce" in pcl["history"][1] and "proto_nce" not in pcl["history"][0]

    again = launch(table, "smoke", executor, log=_log_to(lines))
    assert again["todo"] == []

    md = tables.render(table, "smoke")
    assert "| MoCo" in md and "| PCL" in md and "(quoted)" in md and "50.0†" in md
    moco_line = next(line for line in md.splitlines() if line.startswith("| MoCo"))
    assert " ± " in moco_line and "60.6" in moco_line
    assert "SYNTHETIC" not in md
    assert "Cells computed: 4/4" in md


def test_missing_evaluation_reruns_only_itself(isolated):
    table = load_table(TINY)
    launch(table, "smoke", "debug", log=lambda m: None)
    expanded = jobs.expand(table, "smoke", {"digits": "real"})
    victim = next(j for j in expanded if j.kind == "eval")
    store.record_path(victim.key).unlink()
    out = launch(table, "smoke", "debug", log=lambda m: None)
    assert [j.key for j in out["todo"]] == [victim.key]
    assert store.has(victim.key)


def test_dry_run_lists_jobs_and_runs_nothing(isolated):
    table = load_table(TINY)
    lines = []
    out = launch(table, "smoke", "local", dry_run=True, log=_log_to(lines))
    assert len(out["todo"]) == 8
    assert sum("would run pretrain" in l for l in lines) == 4
    assert sum("would run eval" in l and " after " in l for l in lines) == 4
    assert not list(Path(isolated).rglob("*.json"))


def test_nan_loss_fails_the_job_and_writes_no_record(isolated, monkeypatch):
    import repro.methods.moco as moco

    real = moco.MoCo.forward  # PCL overrides forward, so only the MoCo rows are poisoned

    def poisoned(self, views, index, epoch):
        out = real(self, views, index, epoch)
        out["loss"] = out["loss"] * float("nan")
        return out

    monkeypatch.setattr(moco.MoCo, "forward", poisoned)
    table = load_table(TINY)
    lines = []
    out = launch(table, "smoke", "debug", log=_log_to(lines))
    failed = [f["label"] for f in out["failures"].values()]
    assert "pretrain moco seed 0" in failed and "pretrain moco seed 1" in failed
    assert any("loss is nan" in l for l in lines), lines
    moco_keys = [j.key for j in jobs.expand(table, "smoke", {"digits": "real"})
                 if "moco" in j.label]
    assert not any(store.has(k) for k in moco_keys)
    # PCL rows were unaffected: its jobs are stored
    assert all(store.has(j.key) for j in jobs.expand(table, "smoke", {"digits": "real"})
               if "pcl" in j.label)


def test_missing_dataset_stops_with_where_and_how(isolated):
    from repro.data import MissingDataset

    table = load_table(Path(__file__).resolve().parents[1] / "experiments/pcl/table3.yaml")
    with pytest.raises(MissingDataset) as err:
        launch(table, "paper", "debug", log=lambda m: None)
    msg = str(err.value)
    assert str(isolated / "data") in msg and "http" in msg


def test_smoke_data_policy_writes_fixture_and_flags_synthetic(isolated, monkeypatch):
    from repro.launch import data as launch_data

    monkeypatch.setattr(launch_data, "_try_download", lambda name, log: False)
    small = {}
    real_fixtures = dict(launch_data.FIXTURES)
    for name, fn in real_fixtures.items():
        small[name] = (lambda fn: lambda root: fn(root, **(
            {"n_train": 500, "n_test": 100} if fn.__name__.endswith("cifar10_fixture")
            else {"n_trainval": 40, "n_test": 40})))(fn)
    monkeypatch.setattr(launch_data, "FIXTURES", small)
    lines = []
    sources = launch_data.prepare(["cifar10", "digits", "voc07"], "download-or-fixture",
                                  log=_log_to(lines))
    assert sources == {"cifar10": "synthetic", "digits": "real", "voc07": "synthetic"}
    assert any("SYNTHETIC" in l and "cifar10" in l for l in lines)


def test_checkpoint_resume_after_kill_equals_uninterrupted(isolated):
    import signal
    import subprocess
    import sys
    import time

    from repro.train.checkpoint import load
    from repro.train.pretrain import pretrain

    table = load_table(TINY)
    recipe = json.loads(json.dumps(table.recipe_at("pcl", "smoke")))
    recipe["optim"]["epochs"] = 3
    full = pretrain(recipe, isolated / "full", seed=3, log=lambda m: None)

    run = isolated / "killed"
    code = (f"import json; from repro.train.pretrain import pretrain; "
            f"pretrain(json.loads({json.dumps(json.dumps(recipe))}), {str(run)!r}, seed=3, "
            f"log=print)")
    proc = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.time() + 120
    while time.time() < deadline:
        ckpt = run / "checkpoint.pt"
        if ckpt.exists() and load(ckpt)["epoch"] >= 1:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    state = load(run / "checkpoint.pt")
    assert 1 <= state["epoch"] < 3 or (run / "encoders.pt").exists()
    lines = []
    resumed = pretrain(recipe, run, seed=3, log=_log_to(lines))
    if state["epoch"] < 3:
        assert any("resumed from" in l for l in lines)
    assert resumed["history"] == full["history"]
    a, b = load(isolated / "full" / "encoders.pt"), load(run / "encoders.pt")
    for name in a["encoders"]:
        for k, v in a["encoders"][name].items():
            assert torch.equal(v, b["encoders"][name][k]), (name, k)


def test_an_evaluation_uses_the_jobs_gpu_when_it_has_one(isolated, monkeypatch):
    """Feature extraction (and protocols that train on the backbone) get ``device="cuda"``
    when the job sees a GPU, as pretraining does; here the GPU is pretended and the spy runs
    the extraction on CPU."""
    import repro.features as F

    table = load_table(TINY)
    launch(table, "smoke", "debug", log=lambda m: None)
    job = next(j for j in jobs.expand(table, "smoke", {"digits": "real"}) if j.kind == "eval")
    store.record_path(job.key).unlink()
    seen, real = [], F.cached_features

    def spy(backbone, ref, **kw):
        seen.append(kw["device"])
        return real(backbone, ref, **{**kw, "device": "cpu"})

    monkeypatch.setattr(F, "cached_features", spy)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    out = launch(table, "smoke", "debug", log=lambda m: None)
    assert [j.key for j in out["todo"]] == [job.key] and not out["failures"]
    assert seen == ["cuda", "cuda"]  # train and test features
