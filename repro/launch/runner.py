"""The callable submitit pickles and runs on a node: one job, requeue-safe.

Harness code (``repro.fingerprint.HARNESS``): what it decides (skip a job already stored,
requeue on a signal) never changes a number, so editing it leaves records fresh. The work
itself is ``repro.launch.worker``.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import submitit

from repro import store
from repro.launch.worker import _log, run_eval, run_pretrain, runs_root


def export_distributed_env(log=_log) -> int:
    """In a submitit job with several tasks, export RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT/
    LOCAL_RANK for ``repro.distributed.init_from_env``; returns the number of tasks.

    submitit's ``TorchDistributedEnvironment`` takes the master address from the first host
    of the job, the port from the job id (or ``MASTER_PORT``), and the ranks from Slurm's
    (or the local executor's) task variables. CUDA_VISIBLE_DEVICES is left as Slurm set it;
    ``init_from_env`` picks the GPU by local rank.
    """
    try:
        env = submitit.JobEnvironment()
    except RuntimeError:  # not inside a submitit job (tests calling the runner directly)
        return 1
    if env.num_tasks <= 1:
        return 1
    dist_env = submitit.helpers.TorchDistributedEnvironment().export(
        set_cuda_visible_devices=False, overwrite=True)
    log(f"rank {dist_env.rank}/{dist_env.world_size} (local {dist_env.local_rank}) of job "
        f"{env.job_id}; master {dist_env.master_addr}:{dist_env.master_port}")
    return dist_env.world_size


RUN_INFO = "run.json"  # repro.train.pretrain.RUN_INFO (no torch here)
ENCODERS = "encoders.pt"  # repro.train.pretrain.ENCODERS


def run_id_in(run_dir: Path) -> str | None:
    """The run id that ``run_dir/run.json`` names (None when absent or unreadable)."""
    try:
        return json.loads((Path(run_dir) / RUN_INFO).read_text()).get("run_id")
    except (OSError, ValueError, AttributeError):
        return None


def encoders_of_run(run_dir: Path, run_id: str | None) -> bool:
    """``run_dir`` holds the encoders of pretraining run ``run_id``."""
    return (Path(run_dir) / ENCODERS).is_file() and run_id_in(run_dir) == run_id


def stored_result(job: dict, store_dir, runs_dir) -> dict | None:
    """The job's record when it is already what this job would write: same code, libraries
    and data and, for pretraining, its encoders still in ``runs/``; for an evaluation, made
    from the encoders now in ``runs/``. A requeued attempt of a job that wrote its record
    (the signal came just after) ends at once."""
    from repro.freshness import fingerprint_reasons
    from repro.launch.worker import _fingerprint

    rec = store.get(job["key"], store_dir)
    if rec is None:
        return None
    now, _ = _fingerprint(job)
    if fingerprint_reasons(rec.get("fingerprint"), now):
        return None
    if job["kind"] == "pretrain":
        usable = encoders_of_run(runs_root(runs_dir) / job["key"], rec.get("run_id"))
    else:
        usable = rec["fingerprint"].get("pretrain_run") == run_id_in(
            runs_root(runs_dir) / job["payload"]["pretrain_key"])
    return rec if usable else None


def _ignore_requeue_signal() -> None:
    """Once the record is written the job is done: a late USR2 (Slurm's warning before the
    time limit) must not make submitit requeue it and exit non-zero (sacct: FAILED, and the
    evaluations that wait on it ``afterok`` would never start)."""
    try:
        signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    except ValueError:  # not the main thread (tests calling the runner from a thread)
        pass


class JobRunner(submitit.helpers.Checkpointable):
    """What each submitted job calls.

    On SIGUSR2 (preemption, or ``signal_delay_s`` before the time limit) submitit calls
    ``checkpoint`` on rank 0 and requeues the same call: pretraining then resumes from the
    last checkpoint in ``runs/<key>`` and an evaluation simply runs again. A job ends in a
    record only when it finished; an attempt that finds its record already written (by the
    attempt the signal interrupted) returns it without computing anything.
    """

    def __call__(self, job: dict, store_dir: str | None, runs_dir: str | None):
        done = stored_result(job, store_dir, runs_dir)
        if done is not None:
            _log(f"{job['label']}: already stored by an earlier attempt ({job['key']})")
            _ignore_requeue_signal()
            return done
        if job["kind"] == "pretrain":
            export_distributed_env()
            rec = run_pretrain(job, store_dir, runs_dir)
        else:
            rec = run_eval(job, store_dir, runs_dir)
        _ignore_requeue_signal()
        return rec

    # NOTE: SIGTERM alone (preemption where Slurm is not configured to send the user signal,
    # PreemptParameters=send_user_signal) is ignored by submitit, as is its default: training
    # goes on through the grace time, then Slurm kills the job and, thanks to ``--requeue``,
    # requeues it (or ``repro launch`` resubmits it); either way it resumes from the last
    # epoch checkpoint. Requeueing on SIGTERM would also requeue jobs a user ``scancel``s.
    def checkpoint(self, job: dict, store_dir: str | None, runs_dir: str | None):
        # Pretraining checkpoints every epoch (atomically), so there is nothing to save here.
        where = runs_root(runs_dir) / job["key"] / "checkpoint.pt"
        if store.has(job["key"], store_dir):
            _log(f"{job['label']}: interrupted after its record was written; requeueing "
                 "(the next attempt ends at once)")
        else:
            _log(f"{job['label']}: interrupted; requeueing "
                 + (f"to resume from {where}" if job["kind"] == "pretrain" else "to run again"))
        return super().checkpoint(job, store_dir, runs_dir)
