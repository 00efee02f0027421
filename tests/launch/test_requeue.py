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
from repro.launch.runner import JobRunner
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
    first = load(run_dir / "checkpoint.pt")["spent"]  # what the first attempt kept
    rec = sub.result()
    out = Path(sub.paths.stdout).read_text() + Path(sub.paths.stderr).read_text()
    assert "interrupted; requeueing" in out and "resumed from" in out, out[-3000:]
    assert store.get(job.key) == rec
    _assert_same_as(rec, run_dir, uninterrupted)
    # time is summed over the two attempts, not the last one's alone
    assert rec["attempts"] == 2 and first["attempts"] == 1
    last = load(run_dir / "checkpoint.pt")["spent"]
    assert last["attempts"] == 2 and last["train_seconds"] > first["train_seconds"] > 0
    assert rec["metrics"]["train_seconds"] >= last["train_seconds"]
    full = uninterrupted[0]  # the same images as the uninterrupted run, none counted twice
    assert last["images_seen"] == round(full["images_per_second"] * full["train_seconds"])
    assert last["images_seen"] > first["images_seen"]


def test_a_signal_after_the_record_is_written_ends_the_job_well(isolated):
    """USR2 just after a job wrote its record (it finished seconds before the time limit):
    the requeued attempt finds the record and returns it without training; once a job is done
    the signal is ignored, so the job never ends FAILED with its evaluations stranded."""
    from repro.launch.runner import JobRunner, stored_result

    table, job = _pcl_job()
    job.payload["recipe"]["optim"]["epochs"] = 1
    jd = job_dict(job, table, "smoke", {"digits": "real"})
    runner = JobRunner()
    rec = runner(jd, None, None)
    assert signal.getsignal(signal.SIGUSR2) == signal.SIG_IGN  # done: a late signal is moot
    signal.signal(signal.SIGUSR2, signal.SIG_DFL)
    assert stored_result(jd, None, None) == rec
    mtime = store.record_path(job.key).stat().st_mtime_ns
    again = runner(jd, None, None)  # the requeued attempt
    assert again == rec and store.record_path(job.key).stat().st_mtime_ns == mtime
    # ... but not when its encoders are gone (the launcher retrains them)
    (isolated / "runs" / job.key / "encoders.pt").unlink()
    assert stored_result(jd, None, None) is None
    signal.signal(signal.SIGUSR2, signal.SIG_DFL)


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
