"""A job whose E-step would run k-means on CPU at large K refuses to start
(repro.launch.preflight)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from repro import jobs as J
from repro.cli import main
from repro.launch import launch, preflight
from repro.launch.preflight import PreflightError, estep_cpu_minutes, estep_problem
from repro.spec import load_table

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "fixtures" / "tiny_table.yaml"
CPU_BUILD, GPU_BUILD_NO_GPU, GPU_HERE = ((lambda: (False, 0)), (lambda: (True, 0)),
                                         (lambda: (True, 1)))


def test_estep_defaults_are_the_methods_defaults():
    from repro.methods import METHODS

    for method, defaults in preflight.ESTEP_DEFAULTS.items():
        fields = {f.name: (f.default_factory() if f.default_factory is not dataclasses.MISSING
                           else f.default)
                  for f in dataclasses.fields(METHODS.resolve(method).Config)}
        for key, value in defaults.items():
            assert fields[key] == value, (method, key)


def test_estimate_is_the_measured_reference_and_scales_linearly():
    ref = {"method": "pcl", "params": {"num_clusters": [1000], "dim": 128, "kmeans_niter": 20,
                                       "kmeans_nredo": 1}}
    assert estep_cpu_minutes(ref, 60_000, cpus=2) == pytest.approx(2.6 / 60)
    big = {"method": "pcl", "params": {"num_clusters": [250, 500, 1250], "kmeans_nredo": 5}}
    assert estep_cpu_minutes(big, 120_000, cpus=4) == pytest.approx(2.6 / 60 * 2 * 2 * 5 / 2)
    assert estep_cpu_minutes({"method": "moco", "params": {}}, 10**6) is None


def _paper_pcl_job(spec="experiments/pcl/table3.yaml"):
    table = load_table(ROOT / spec)
    sources = {d: "real" for d in J.datasets_used(table, "paper")}
    return next(j for j in J.expand(table, "paper", sources)
                if j.kind == "pretrain" and j.payload["recipe"]["method"] == "pcl")


def test_paper_scale_pcl_on_imagenet_needs_gpu_faiss_and_a_gpu():
    job = _paper_pcl_job()
    res = {"gpus_per_node": 8, "cpus_per_task": 10}
    problem = estep_problem(job, res, "slurm", gpus=CPU_BUILD)
    assert "K = [25000, 50000, 100000], 1,281,167 images" in problem
    assert "min per E-step on 10 core(s)" in problem and "make venv GPU=1" in problem
    assert estep_problem(job, res, "slurm", gpus=GPU_BUILD_NO_GPU) is None  # GPUs on the node
    assert "asks for no GPU" in estep_problem(job, {**res, "gpus_per_node": 0}, "slurm",
                                              gpus=GPU_BUILD_NO_GPU)
    assert "sees no GPU on this machine" in estep_problem(job, res, "local",
                                                          gpus=GPU_BUILD_NO_GPU)
    assert estep_problem(job, res, "local", gpus=GPU_HERE) is None


def test_small_k_and_methods_without_an_estep_start_on_cpu():
    table = load_table(ROOT / "experiments/pcl/table3.yaml")
    smoke = J.expand(table, "smoke", {d: "synthetic" for d in J.datasets_used(table, "smoke")})
    assert any(j.payload["recipe"]["method"] == "pcl" for j in smoke)
    for job in smoke:
        assert estep_problem(job, {"cpus_per_task": 1}, "local", gpus=CPU_BUILD) is None
    paper = load_table(ROOT / "experiments/pcl/table3.yaml")
    moco = next(j for j in J.expand(paper, "paper", {d: "real" for d in
                                                    J.datasets_used(paper, "paper")})
                if j.kind == "pretrain" and j.payload["recipe"]["method"] == "moco")
    assert estep_problem(moco, {"cpus_per_task": 1}, "local", gpus=CPU_BUILD) is None


def test_a_refused_launch_runs_and_stores_nothing(isolated, monkeypatch, capsys):
    monkeypatch.setattr(preflight, "LIMIT_MINUTES", 0.0)  # PCL's digits E-step counts as large
    monkeypatch.setattr(preflight, "faiss_gpus", CPU_BUILD)
    table = load_table(TINY)
    with pytest.raises(PreflightError, match=r"2 job\(s\) refused: pretrain pcl seed \d: its "
                       r"E-step \(k-means, K = \[8, 16\]"):
        launch(table, "smoke", "debug", log=lambda m: None)
    assert not list(Path(isolated).rglob("*.json"))
    lines = []
    launch(table, "smoke", "debug", dry_run=True, log=lines.append)  # says it, runs nothing
    assert sum("would refuse to start: pretrain pcl" in str(ln) for ln in lines) == 2
    assert main(["launch", str(TINY), "--scale", "smoke", "--executor", "debug"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: 2 job(s) refused") and err.count("\n") == 1
    assert not list(Path(isolated).rglob("*.json"))
