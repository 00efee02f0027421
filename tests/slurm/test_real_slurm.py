"""The cluster path against a real Slurm (`scripts/slurm_local.sh up`; `.ci/run` starts one).

Skipped, with the reason, where no Slurm controller answers (a laptop); with ``CI=true`` a
missing Slurm is a failure instead. The end-to-end run of a small table, then faults on the
same cluster: ``scontrol requeue`` and ``scancel --signal=USR2`` of a running pretraining
(resumed, and equal to an uninterrupted run), ``scancel`` of a pretraining (its evaluation
blocked, then resubmitted), and a pretraining longer than its time limit (requeued until done).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import torch

from repro import tables
from repro.cli import main
from repro.launch import launch, log_root
from repro.launch.status import ENDED, read_submitted, sacct_states
from repro.spec import load_table
from repro.train.checkpoint import UnreadableCheckpoint, load

pytestmark = pytest.mark.slurm
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TINY = FIXTURES / "tiny_table.yaml"
FAULTS = FIXTURES / "slurm_faults.yaml"  # one PCL pretraining of about a minute, one kNN
# The tiny digits table names no resources: size its jobs for a 2-CPU node.
SMALL = ["--mem-gb", "2", "--eval-mem-gb", "2", "--cpus-per-task", "1",
         "--eval-cpus-per-task", "1", "--timeout-min", "10", "--eval-timeout-min", "10"]


def report(title: str, text: str) -> None:
    """Append to ``$REPRO_SLURM_REPORT`` (.ci/run prints it: job ids, sacct states, tables)."""
    path = os.environ.get("REPRO_SLURM_REPORT")
    if path:
        with open(path, "a") as f:
            f.write(f"===== {title} ({time.strftime('%H:%M:%S')})\n{text.rstrip()}\n")


def sacct_attempts(job_ids) -> str:
    """Every attempt of the jobs as sacct lists them (requeues included)."""
    return subprocess.run(["sacct", "-X", "--duplicates", "-o",
                           "JobID,JobName%22,State,Start,End,Elapsed,Timelimit",
                           "-j", ",".join(job_ids)], capture_output=True, text=True).stdout


def _why_no_cluster() -> str | None:
    if shutil.which("sbatch") is None or shutil.which("sacct") is None:
        return "no sbatch/sacct on PATH: run `bash scripts/slurm_local.sh up` as root"
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True,
                             timeout=15)
    except subprocess.TimeoutExpired:
        return "sinfo timed out: is slurmctld running? (`scripts/slurm_local.sh status`)"
    if out.returncode != 0 or not ({"idle", "mixed", "allocated"} & set(out.stdout.split())):
        return f"no usable Slurm node (sinfo: {out.stdout.strip() or out.stderr.strip()})"
    return None


def _require_cluster() -> None:
    """Skip, saying why, where no Slurm answers; under CI=true that is a failure instead."""
    why = _why_no_cluster()
    if why:
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)


@pytest.fixture
def cluster(isolated):
    _require_cluster()
    return isolated


def _wait_until_ended(job_ids: list[str], timeout_s: float = 600) -> dict[str, str]:
    deadline = time.time() + timeout_s
    while True:
        states = sacct_states(job_ids) or {}
        if all(states.get(j) in ENDED for j in job_ids):
            return states
        assert time.time() < deadline, f"jobs still not ended: {states}"
        time.sleep(3)


def test_tiny_table_end_to_end_on_a_real_slurm(cluster, capsys):
    table = load_table(TINY)
    argv = ["launch", str(TINY), "--scale", "smoke", "--executor", "slurm", *SMALL]
    assert main(argv) == 0
    submitted = read_submitted(log_root(table, "smoke"))
    assert len(submitted) == 8
    pre_ids = {e["job_id"] for e in submitted.values() if e["kind"] == "pretrain"}
    evals = [e for e in submitted.values() if e["kind"] == "eval"]
    assert len(pre_ids) == 4 and all(e["after"] in pre_ids for e in evals)

    launched = capsys.readouterr().out
    states = _wait_until_ended([e["job_id"] for e in submitted.values()])
    assert set(states.values()) == {"COMPLETED"}, states
    assert main(["status", str(TINY), "--scale", "smoke"]) == 0  # real sacct, every cell stored
    status = capsys.readouterr().out
    assert "8 stored (of 8 jobs)" in status
    md = tables.render(table, "smoke")
    report("end to end: repro launch tests/fixtures/tiny_table.yaml --executor slurm", launched)
    report("sacct", sacct_attempts([e["job_id"] for e in submitted.values()]))
    report("repro status (real sacct)", status)
    report("repro table", md)
    assert "Cells computed: 4/4" in md and " ± " in md
    again = launch(table, "smoke", "slurm", log=lambda *_: None)
    assert again["todo"] == [] and again["to_submit"] == []


def test_sbatch_refusal_on_a_real_slurm_is_one_line(cluster, capsys):
    argv = ["launch", str(TINY), "--scale", "smoke", "--executor", "slurm",
            "--mem-gb", "100000", "--cpus-per-task", "1", "--timeout-min", "10"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "sbatch refused pretrain" in err
    assert "--mem-gb" in err
    assert read_submitted(log_root(load_table(TINY), "smoke")) == {}


# ----------------------------------------------------------------------------- faults
ROOTS = ("REPRO_STORE", "REPRO_RUNS", "REPRO_LOGS")


def _use(monkeypatch, root: Path) -> Path:
    """Store, runs and logs under ``root`` (sbatch passes the environment to the job)."""
    for env, sub in zip(ROOTS, ("store", "runs", "logs")):
        monkeypatch.setenv(env, str(root / sub))
    return root


def _submit_faults(monkeypatch, root: Path, *extra: str) -> dict[str, dict]:
    _use(monkeypatch, root)
    argv = ["launch", str(FAULTS), "--scale", "smoke", "--executor", "slurm", *SMALL, *extra]
    assert main(argv) == 0
    sub = read_submitted(log_root(load_table(FAULTS), "smoke"))
    return {e["kind"]: e for e in sub.values()}


def _spent(run_dir: Path) -> dict:
    """What the last epoch checkpoint says was trained so far ({} before the first)."""
    try:
        ckpt = load(run_dir / "checkpoint.pt")
    except (FileNotFoundError, UnreadableCheckpoint):
        return {}
    return {"epoch": ckpt["epoch"], **ckpt["spent"]}


def _wait_for(what: str, test, timeout_s: float = 240, every: float = 0.5):
    deadline = time.time() + timeout_s
    while True:
        got = test()
        if got:
            return got
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(every)


def _pre_record_and_encoders(root: Path) -> tuple[dict, dict]:
    (rec,) = [r for p in (root / "store").rglob("*.json")
              if (r := json.loads(p.read_text()))["kind"] == "pretrain"]
    return rec, load(root / "runs" / rec["key"] / "encoders.pt")["encoders"]


def _assert_same_training(a: Path, b: Path) -> None:
    (rec_a, enc_a), (rec_b, enc_b) = _pre_record_and_encoders(a), _pre_record_and_encoders(b)
    assert rec_a["key"] == rec_b["key"]
    assert rec_b["history"] == rec_a["history"]
    assert rec_b["metrics"]["final_loss"] == rec_a["metrics"]["final_loss"]
    for name, state in enc_a.items():
        for k, v in state.items():
            assert torch.equal(v, enc_b[name][k]), (name, k)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The fault table's pretraining, submitted and left alone (compared after the faults)."""
    _require_cluster()
    root = tmp_path_factory.mktemp("uninterrupted")
    mp = pytest.MonkeyPatch()
    mp.chdir(root)
    jobs = _submit_faults(mp, root)
    mp.undo()
    return root, jobs


def _wait_for_uninterrupted(uninterrupted) -> Path:
    root, jobs = uninterrupted
    states = _wait_until_ended([e["job_id"] for e in jobs.values()])
    assert set(states.values()) == {"COMPLETED"}, states
    return root


def test_requeue_and_usr2_resume_to_the_uninterrupted_result(cluster, uninterrupted,
                                                            monkeypatch):
    """`scontrol requeue` (Slurm kills and requeues the job) then `scancel --signal=USR2`
    (submitit checkpoints and requeues) of a running pretraining: each attempt resumes from the
    last epoch checkpoint, the evaluation starts only after the pretraining succeeded, and the
    record equals the uninterrupted run's, with the time of all three attempts."""
    jobs = _submit_faults(monkeypatch, cluster)
    jid, run_dir = jobs["pretrain"]["job_id"], cluster / "runs" / next(
        k for k, e in read_submitted(log_root(load_table(FAULTS), "smoke")).items()
        if e["kind"] == "pretrain")

    first = _wait_for("a first epoch checkpoint", lambda: _spent(run_dir).get("epoch", 0) >= 2
                      and _spent(run_dir))
    subprocess.run(["scontrol", "requeue", jid], check=True)
    # the evaluation waits (afterok) while its pretraining is requeued
    assert sacct_states([jobs["eval"]["job_id"]])[jobs["eval"]["job_id"]] == "PENDING"
    second = _wait_for("the requeued attempt to train an epoch",
                       lambda: (s := _spent(run_dir)).get("attempts") == 2
                       and s["epoch"] > first["epoch"] and s)
    subprocess.run(["scancel", "--signal=USR2", jid], check=True)
    _wait_for("the USR2 attempt", lambda: _spent(run_dir).get("attempts") == 3, every=1)

    states = _wait_until_ended([e["job_id"] for e in jobs.values()])
    assert set(states.values()) == {"COMPLETED"}, states
    log = Path(jobs["pretrain"]["stdout"]).read_text() + Path(
        jobs["pretrain"]["stderr"]).read_text()
    assert "interrupted; requeueing to resume from" in log, log[-3000:]
    rec, _ = _pre_record_and_encoders(cluster)
    report("faults: scontrol requeue, then scancel --signal=USR2, of a running pretraining",
           sacct_attempts([e["job_id"] for e in jobs.values()])
           + f"record: attempts={rec['attempts']} train_seconds="
             f"{rec['metrics']['train_seconds']:.1f} final_loss={rec['metrics']['final_loss']}")
    assert rec["attempts"] == 3
    assert rec["metrics"]["train_seconds"] > second["train_seconds"] > first["train_seconds"]
    _assert_same_training(_wait_for_uninterrupted(uninterrupted), cluster)
    assert main(["status", str(FAULTS), "--scale", "smoke"]) == 0


def test_cancelled_pretraining_blocks_its_evaluation_until_a_relaunch(cluster, monkeypatch,
                                                                       capsys, long_job):
    """`scancel` of a running pretraining: `repro status` shows it failed and its evaluation
    blocked (Slurm holds it forever: its afterok can never be satisfied); a relaunch cancels
    the blocked evaluation and submits both again, and they complete. (The long job of the
    next test runs meanwhile.)"""
    jobs = _submit_faults(monkeypatch, cluster)
    pre_id, ev_id = jobs["pretrain"]["job_id"], jobs["eval"]["job_id"]
    _wait_for("the pretraining to start",
              lambda: (sacct_states([pre_id]) or {}).get(pre_id) == "RUNNING")
    subprocess.run(["scancel", pre_id], check=True)
    _wait_for("sacct to show the cancel",
              lambda: (sacct_states([pre_id]) or {}).get(pre_id) == "CANCELLED")
    capsys.readouterr()
    assert main(["status", str(FAULTS), "--scale", "smoke"]) == 1
    blocked = capsys.readouterr().out
    assert "1 blocked, 1 failed (of 2 jobs)" in blocked and "Slurm state CANCELLED" in blocked, \
        blocked
    assert sacct_states([ev_id])[ev_id] == "PENDING"

    argv = ["launch", str(FAULTS), "--scale", "smoke", "--executor", "slurm", *SMALL]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"cancelled 1 evaluation(s) waiting on failed pretraining: {ev_id}" in out, out
    again = {e["kind"]: e for e in read_submitted(log_root(load_table(FAULTS), "smoke")).values()}
    assert again["pretrain"]["job_id"] != pre_id and again["eval"]["job_id"] != ev_id
    assert again["eval"]["after"] == again["pretrain"]["job_id"]
    report("faults: scancel of a running pretraining, status, relaunch", blocked + out + "\n"
           + sacct_attempts([pre_id, ev_id] + [e["job_id"] for e in again.values()]))
    states = _wait_until_ended([e["job_id"] for e in again.values()] + [ev_id])
    assert states[ev_id] == "CANCELLED"
    assert {states[e["job_id"]] for e in again.values()} == {"COMPLETED"}, states
    capsys.readouterr()
    assert main(["status", str(FAULTS), "--scale", "smoke"]) == 0
    assert "2 stored (of 2 jobs)" in capsys.readouterr().out


@pytest.fixture(scope="module")
def long_job(tmp_path_factory, uninterrupted):
    """The fault table's pretraining sized, from the uninterrupted run's speed on this machine,
    to need about 130 s, submitted with a 2-minute limit and the requeue signal 30 s before
    it (Slurm may send it up to 60 s earlier: each attempt works 30 to 90 s). Submitted by the
    first test that asks, so that it runs beside that test's jobs."""
    import yaml

    reference, _ = _pre_record_and_encoders(_wait_for_uninterrupted(uninterrupted))
    per_epoch = reference["metrics"]["train_seconds"] / len(reference["history"])
    raw = yaml.safe_load(FAULTS.read_text())
    epochs = max(8, int(130 / per_epoch) + 1)
    raw["recipe_defaults"]["smoke"]["optim"]["epochs"] = epochs
    root = tmp_path_factory.mktemp("long")
    spec = root / "slurm_faults_long.yaml"
    spec.write_text(yaml.safe_dump(raw))
    mp = pytest.MonkeyPatch()
    mp.chdir(root)
    _use(mp, root)
    argv = ["launch", str(spec), "--scale", "smoke", "--executor", "slurm", *SMALL,
            "--timeout-min", "2", "--signal-delay-s", "30"]
    assert main(argv) == 0
    jobs = {e["kind"]: e for e in read_submitted(log_root(load_table(spec), "smoke")).values()}
    mp.undo()
    return {"root": root, "jobs": jobs, "epochs": epochs, "reference": reference,
            "per_epoch": per_epoch}


def test_a_pretraining_longer_than_its_time_limit_is_requeued_until_done(cluster, long_job):
    """The long job (above): Slurm signals it before its limit, submitit requeues it, it
    resumes until done, and its record counts the training of every attempt."""
    jobs, epochs, reference = long_job["jobs"], long_job["epochs"], long_job["reference"]
    states = _wait_until_ended([e["job_id"] for e in jobs.values()], timeout_s=540)
    assert set(states.values()) == {"COMPLETED"}, states
    rec, _ = _pre_record_and_encoders(long_job["root"])
    report(f"faults: {epochs} epochs under a 2-minute limit (--signal-delay-s 30)",
           sacct_attempts([e["job_id"] for e in jobs.values()])
           + f"record: attempts={rec['attempts']} train_seconds="
             f"{rec['metrics']['train_seconds']:.1f}")
    assert len(rec["history"]) == epochs
    assert rec["attempts"] >= 2, f"{epochs} epochs finished within one 2-minute limit"
    assert "this job is timed-out" in Path(jobs["pretrain"]["stderr"]).read_text()
    # the record sums the attempts: more time than the last attempt ran, and every image once
    attempts = subprocess.run(["sacct", "-X", "-n", "-P", "--duplicates", "-o",
                               "State,ElapsedRaw", "-j", jobs["pretrain"]["job_id"]],
                              capture_output=True, text=True, check=True).stdout.split()
    assert attempts[-1].startswith("COMPLETED|") and len(attempts) == rec["attempts"], attempts
    assert rec["metrics"]["train_seconds"] > int(attempts[-1].split("|")[1])
    per_epoch_images = reference["metrics"]["images_per_second"] * long_job["per_epoch"]
    images = rec["metrics"]["images_per_second"] * rec["metrics"]["train_seconds"]
    assert round(images) == round(per_epoch_images * epochs)
