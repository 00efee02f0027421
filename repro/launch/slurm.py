"""Submit a table's missing jobs to Slurm and return at once.

Each pretraining job is one Slurm job with its recipe's resources (one task per GPU; the
worker sets torch.distributed up from submitit's job environment). The evaluations of one
pretraining job form one job array that starts after it finished (``afterok``). What was
submitted is recorded in ``<logs>/submitted.json``; before submitting, the previous
submissions are reconciled with ``sacct`` (``repro.launch.status``), so a job Slurm still
holds (pending, running, requeued) is never submitted twice, and one that ended without a
record is submitted again.

Requeue: pretraining and evaluation jobs are ``submitit.helpers.Checkpointable``; on
``SIGUSR2`` (sent ``signal_delay_s`` before the time limit, or at preemption where Slurm is
configured to) submitit requeues the same call, and pretraining resumes from its last
checkpoint. ``--requeue`` also lets Slurm requeue a preempted or node-failed job itself.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import io
import math
import subprocess
from pathlib import Path

import submitit

from repro.launch.resources import ResourceError, check_job_name, check_resources
from repro.launch.runner import JobRunner
from repro.launch.status import (
    SUBMITTED,
    SubmissionError,
    job_statuses,
    read_submitted,
    sacct_states,
    submitted_ids,
    write_submitted,
)

# A pretraining run longer than its time limit resumes in a new allocation this many times.
MAX_TIMEOUTS = 30
SIGNAL_DELAY_S = 90  # submitit's default: SIGUSR2 this long before the time limit


EARLY_SIGNAL_S = 60  # sbatch(1), --signal: "may be sent up to 60 seconds earlier than specified"
MIN_WORK_S = 30  # what each attempt must be left to work, at worst


def min_timeout_min(signal_delay_s: int) -> int:
    """The shortest time limit (minutes) for a requeue-signal lead: Slurm checks time limits
    periodically and sends the signal up to 60 s before the lead asks, so an attempt may be
    signalled ``signal_delay_s + 60`` s before its limit; it must still get ``MIN_WORK_S``.
    (Measured on Slurm 22.05: with a 1-minute limit and a 30 s lead every attempt was
    signalled 5 s after it started.)"""
    return -(-(signal_delay_s + EARLY_SIGNAL_S + MIN_WORK_S) // 60)


MIN_TIMEOUT_MIN = min_timeout_min(SIGNAL_DELAY_S)  # 3
SHARED_KEYS = ("partition", "constraint", "account", "qos")


def slurm_parameters(resources: dict, kind: str, name: str) -> dict:
    """SlurmExecutor parameters (sbatch names) for one job of ``kind`` (pretrain | eval).

    Every value becomes an ``#SBATCH`` line: a value Slurm would not accept (a newline, a
    shell metacharacter) raises ``ResourceError`` before any script is written."""
    check_resources(resources)
    check_job_name(name)
    timeout = int(resources.get("timeout_min", 60))
    delay = int(resources.get("signal_delay_s", SIGNAL_DELAY_S))
    if timeout < min_timeout_min(delay):
        raise ResourceError("timeout_min", f"{timeout} min is too short: Slurm sends the "
                            f"requeue signal {delay} s (up to {delay + EARLY_SIGNAL_S} s) "
                            f"before the limit, so a job would requeue before doing any "
                            f"work; the minimum is "
                            f"{min_timeout_min(delay)} (--timeout-min, or a shorter "
                            "--signal-delay-s)")
    gpus = int(resources.get("gpus_per_node", 0))
    params = {
        "job_name": name,
        "time": timeout,
        "nodes": int(resources.get("nodes", 1)),
        # one process per GPU for DDP pretraining; an evaluation is one process
        "ntasks_per_node": max(gpus, 1) if kind == "pretrain" else 1,
        "cpus_per_task": int(resources.get("cpus_per_task", 10)),
        "mem": _mem(resources.get("mem_gb", 64)),
        "signal_delay_s": delay,
        "additional_parameters": {"requeue": True},
    }
    if gpus:
        params["gpus_per_node"] = gpus
    for key in SHARED_KEYS:
        if resources.get(key):
            params[key] = resources[key]
    if resources.get("array_parallelism"):
        params["array_parallelism"] = int(resources["array_parallelism"])
    return params


def _mem(gb: float) -> str:
    # SlurmExecutor passes ``mem`` to sbatch as is, where a bare number means megabytes
    return f"{int(gb)}GB" if float(gb).is_integer() else f"{int(gb * 1024)}MB"


class ScriptOnlySlurmExecutor(submitit.SlurmExecutor):
    """Writes the sbatch script submitit would submit, without a Slurm installation."""

    @classmethod
    def affinity(cls) -> int:  # SlurmExecutor refuses to start when ``srun`` is missing
        return 1


def sbatch_script(folder: Path, params: dict, array_size: int | None = None) -> str:
    ex = ScriptOnlySlurmExecutor(folder)
    ex.update_parameters(**params)
    if array_size and array_size > 1:
        ex.parameters["map_count"] = array_size  # what submitit sets for ``batch()`` arrays
    return ex._make_submission_file_text(ex._submitit_command_str, "dry-run")


def _describe(params: dict) -> str:
    gpus = params.get("gpus_per_node", 0)
    where = f", partition {params['partition']}" if params.get("partition") else ""
    return (f"{params['nodes']} node(s) x {gpus} GPU(s), {params['ntasks_per_node']} task(s)/node, "
            f"{params['time']} min{where}")


# What changes each kind of job's resources from the command line (the spec's
# scales.<scale>.resources.<kind> otherwise).
FLAGS = {"pretrain": "--nodes --gpus-per-node --timeout-min --cpus-per-task --mem-gb "
                     "--partition --account --qos --constraint",
         "eval": "--eval-gpus-per-node --eval-timeout-min --eval-cpus-per-task "
                 "--eval-mem-gb --eval-array-parallelism --partition --account --qos "
                 "--constraint"}


def _submit(folder: Path, params: dict, kind: str, what: str, calls: list[tuple]) -> list:
    """Submit ``calls`` (one job, or an array when several) with ``params``. A refusal by
    sbatch becomes one ``SubmissionError`` line (submitit would print sbatch's stderr too)."""
    ex = submitit.SlurmExecutor(folder, max_num_timeout=MAX_TIMEOUTS)
    ex.update_parameters(**params)
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            if len(calls) == 1 and kind == "pretrain":
                return [ex.submit(JobRunner(), *calls[0])]
            with ex.batch():
                subs = [ex.submit(JobRunner(), *c) for c in calls]
            return subs
    except submitit.core.utils.FailedJobError as err:
        refusal = " ".join(str(err).split()) or "no message"
        raise SubmissionError(
            f"sbatch refused {what}: {refusal}; it asked for {_describe(params)}, "
            f"{params.get('mem')} memory, {params.get('cpus_per_task')} CPUs per task; "
            f"change them with {FLAGS[kind]}; jobs submitted before it are recorded in "
            f"{folder / SUBMITTED}") from None


def _plan(todo, submitted_before, states, resubmit_unknown, log):
    """Split ``todo`` into what to submit and what Slurm still holds; returns
    (to_submit, held {key: job id}, to_cancel [job ids])."""
    statuses = job_statuses(todo, submitted_before, states, check_store=False)
    to_submit, held, to_cancel = [], {}, []
    skipped_pre = set()
    for job in todo:
        st = statuses[job.key]
        if job.deps and job.deps[0] in skipped_pre:
            log(f"skip {job.label}: its pretraining {job.deps[0][:8]} is in an unknown state")
            continue
        if st.active:
            held[job.key] = st.job_id
            log(f"skip {job.label}: {st.state} as Slurm job {st.job_id}")
            continue
        if st.state == "unknown" and not resubmit_unknown:
            log(f"skip {job.label}: Slurm job {st.job_id} is unknown to sacct; "
                "pass --resubmit-unknown to submit it again")
            if job.kind == "pretrain":
                skipped_pre.add(job.key)
            continue
        if st.state == "blocked":
            to_cancel.append(st.job_id)
        if st.state in ("failed", "blocked"):
            log(f"resubmit {job.label}: previous Slurm job {st.job_id} {st.state} "
                f"({st.slurm_state}): {st.cause or 'cause unknown'} (log: {st.log})")
        to_submit.append(job)
    return to_submit, held, to_cancel


def _cost_note(estimates: dict | None, job, limit_min: int | None = None) -> str:
    """`` [~3.2 GPU-h]``; for a pretraining job whose estimated wall time exceeds its time
    limit, also how many times it will be requeued (it resumes from its checkpoint)."""
    if not estimates or job.key not in estimates:
        return ""
    est = estimates[job.key]
    note = est.text()
    if est.known and limit_min:
        wall_min = est.seconds / est.units / 60
        if wall_min > limit_min:
            wall = f"{wall_min / 60:.0f} h" if wall_min >= 120 else f"{wall_min:.0f} min"
            note += (f", ≈ {wall} wall > the {limit_min}-min limit: ~"
                     f"{math.ceil(wall_min / limit_min) - 1} requeue(s)")
            if wall_min > limit_min * (MAX_TIMEOUTS + 1):
                note += f", more than the {MAX_TIMEOUTS} allowed"
    return f" [{note}]"


def submit_graph(table, scale, todo, sources, folder: Path, store_dir, runs_dir, log, *,
                 dry_run: bool = False, resources_for=None,
                 resubmit_unknown: bool = False, estimates: dict | None = None) -> dict:
    """``estimates``: {key: repro.launch.cost.Estimate} shown on the job graph (dry runs)."""
    from repro.launch import cost, job_dict

    resources_for = resources_for or (lambda job: job.payload.get("resources", {}))
    before = read_submitted(folder)
    prev = submitted_ids(todo, before)
    states = sacct_states(prev) if prev else {}
    if states is None:
        log("sacct is not available: previous submissions are in an unknown state")
    to_submit, held, to_cancel = _plan(todo, before, states, resubmit_unknown, log)
    submitted: dict[str, dict] = {}
    pre_ids = dict(held)  # pretraining key -> Slurm job id that evaluations wait for
    scripts: list[tuple[str, str]] = []

    if to_cancel and not dry_run:
        subprocess.run(["scancel", *to_cancel], check=False)
        log(f"cancelled {len(to_cancel)} evaluation(s) waiting on failed pretraining: "
            f"{', '.join(to_cancel)}")
    graph = []
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    for n, job in enumerate([j for j in to_submit if j.kind == "pretrain"], start=1):
        params = slurm_parameters(resources_for(job), "pretrain", f"repro-pre-{job.key[:8]}")
        if dry_run:
            pre_ids[job.key] = f"<pretrain-{n}>"
            scripts.append((f"{pre_ids[job.key]} {job.label}", sbatch_script(folder, params)))
        else:
            (sub,) = _submit(folder, params, "pretrain", job.label,
                             [(job_dict(job, table, scale, sources), store_dir, runs_dir)])
            pre_ids[job.key] = sub.job_id
            entry = {"job_id": sub.job_id, "label": job.label, "kind": "pretrain",
                     "stdout": str(sub.paths.stdout), "stderr": str(sub.paths.stderr),
                     "time": now}
            submitted[job.key] = entry
            write_submitted(folder, {job.key: entry})  # at once: a later refusal keeps it
        graph.append(f"{pre_ids[job.key]}  {job.label} [{job.key}]: {_describe(params)}"
                     + _cost_note(estimates, job, params["time"]))

    by_pre: dict[str, list] = {}
    for job in [j for j in to_submit if j.kind == "eval"]:
        by_pre.setdefault(job.deps[0], []).append(job)
    for n, (pre_key, group) in enumerate(by_pre.items(), start=1):
        params = slurm_parameters(resources_for(group[0]), "eval", f"repro-eval-{pre_key[:8]}")
        after = pre_ids.get(pre_key)
        if after:
            params["dependency"] = f"afterok:{after}"
        if dry_run:
            scripts.append((f"array of {len(group)} evaluation(s) of {pre_key[:8]}",
                            sbatch_script(folder, params, len(group))))
            array_id = f"<array-{n}>"
        else:
            subs = _submit(folder, params, "eval", f"the evaluations of {pre_key[:8]}",
                           [(job_dict(j, table, scale, sources), store_dir, runs_dir)
                            for j in group])
            entries = {job.key: {"job_id": sub.job_id, "label": job.label, "kind": "eval",
                                 "after": after, "stdout": str(sub.paths.stdout),
                                 "stderr": str(sub.paths.stderr), "time": now}
                       for job, sub in zip(group, subs)}
            submitted.update(entries)
            write_submitted(folder, entries)
            array_id = subs[0].job_id.split("_")[0]
        wait = f" after {after}" if after else ""
        graph.append(f"{array_id}  array of {len(group)}{wait}: "
                     + "; ".join(j.label + _cost_note(estimates, j) for j in group))
    verb = "would submit" if dry_run else "submitted"
    log(f"{verb} {sum(j.kind == 'pretrain' for j in to_submit)} pretraining job(s) and "
        f"{len(by_pre)} evaluation array(s) ({len(to_submit)} jobs); "
        f"{len(held)} already held by Slurm")
    for line in graph:
        log(f"  {line}")
    if estimates and to_submit:
        log(cost.total_line([estimates[j.key] for j in to_submit if j.key in estimates]))
    if dry_run:
        for title, text in scripts:
            log(f"----- sbatch script: {title} -----\n{text}")
        log(f"logs would go to {folder}")
    else:
        if submitted:
            log(f"logs in {folder}; submitted jobs recorded in {folder / SUBMITTED}")
        log(f"follow progress with: repro status {table.path} --scale {scale}")
    return {"todo": todo, "to_submit": to_submit, "held": held, "submitted": submitted,
            "cancelled": [] if dry_run else to_cancel, "scripts": scripts, "failures": []}
