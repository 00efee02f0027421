"""Preemption and timeouts: a pretraining job signalled mid-training through submitit's local
executor resumes from its checkpoint and ends with exactly the uninterrupted run's record."""

import json
import os
import signal
import time
from pathlib import Path

import pytest
import torch

from repro import jobs, store
from repro.launch import executor_for, job_dict
from repro.launch.worker import JobRunner
from repro.spec import load_table
from repro.train.checkpoint import load
from repro.train.pretrain import pretrain

TINY = Path(__file__).resolve().parents[1] / "fixtures" / "tiny_table.yaml"
EPOCHS = 4


def _pcl_job():
    table = load_table(TINY)
    job = next(j for j in jobs.expand(table, "smoke", {"digits": "real"})
               if j.label == "pretrain pcl seed 1")
    job.payload["recipe"]["optim"]["epochs"] = EPOCHS
    return table, job


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    _, job = _pcl_job()
    run = tmp_path_factory.mktemp("full")
    summary = pretrain(job.payload["recipe"], run, seed=job.seed, log=lambda m: None)
    return summary, load(run / "encoders.pt")


def _task_pid(sub) -> int:
    """The process running the job (a child of submitit's local controller)."""
    ctl = sub._process.pid
    deadline = time.time() + 30
    while time.time() < deadline:
        children = Path(f"/proc/{ctl}/task/{ctl}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.05)
    raise AssertionError("the local controller started no task")


def _wait_for_epoch(run_dir: Path, epoch: int, timeout: float = 120) -> int:
    deadline = time.time() + timeout
    while time.time() < deadline:
        ckpt = run_dir / "checkpoint.pt"
        if ckpt.exists():
            got = load(ckpt)["epoch"]
            if got >= epoch:
                return got
        time.sleep(0.05)
    raise AssertionError(f"no checkpoint of epoch {epoch} in {run_dir}")


def _submit(table, job, folder):
    ex = executor_for("local", folder, {"timeout_min": 10})
    return ex.submit(JobRunner(), job_dict(job, table, "smoke", {"digits": "real"}), None, None)


def _assert_same_as(rec, run_dir, uninterrupted):
    summary, encoders = uninterrupted
    assert rec["history"] == json.loads(json.dumps(summary["history"]))
    assert rec["metrics"]["final_loss"] == summary["final_loss"]
    got = load(run_dir / "encoders.pt")
    for name, state in encoders["encoders"].items():
        for k, v in state.items():
            assert torch.equal(v, got["encoders"][name][k]), (name, k)


def test_sigusr2_checkpoints_requeues_and_resumes_exactly(isolated, uninterrupted):
    table, job = _pcl_job()
    sub = _submit(table, job, isolated / "logs")
    run_dir = isolated / "runs" / job.key
    at = _wait_for_epoch(run_dir, 1)
    assert at < EPOCHS, "training finished before it could be interrupted"
    os.kill(_task_pid(sub), signal.SIGUSR2)  # what Slurm sends before the time limit
    rec = sub.result()
    out = Path(sub.paths.stdout).read_text() + Path(sub.paths.stderr).read_text()
    assert "interrupted; requeueing" in out and "resumed from" in out, out[-3000:]
    assert store.get(job.key) == rec
    _assert_same_as(rec, run_dir, uninterrupted)


def test_sigterm_then_kill_loses_nothing_and_a_resubmission_resumes(isolated, uninterrupted):
    """Preemption without the user signal: SIGTERM (ignored by submitit, training goes on
    through the grace time), then SIGKILL. No record is written; submitting the job again
    (what Slurm's --requeue or `repro launch` does) resumes from the last epoch checkpoint."""
    table, job = _pcl_job()
    sub = _submit(table, job, isolated / "logs")
    run_dir = isolated / "runs" / job.key
    _wait_for_epoch(run_dir, 1)
    pid = _task_pid(sub)
    os.kill(pid, signal.SIGTERM)
    time.sleep(0.3)
    os.kill(pid, signal.SIGKILL)
    sub._process.wait(timeout=60)  # the controller ends with its task
    assert not sub.paths.result_pickle.exists() and not store.has(job.key)
    at = load(run_dir / "checkpoint.pt")["epoch"]
    assert 1 <= at < EPOCHS
    again = _submit(table, job, isolated / "logs")
    rec = again.result()
    assert f"at epoch {at}" in Path(again.paths.stdout).read_text()
    _assert_same_as(rec, run_dir, uninterrupted)
