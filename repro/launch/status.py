"""Where every job of a table stands: the store, what was submitted, and Slurm's view (no torch).

A job is *stored* when the store has its record, whatever the scheduler says: a record is
written only by a job that finished. Otherwise its last submission (``submitted.json`` in the
table's log folder) and ``sacct`` decide: *running* or *pending* while Slurm still holds it,
*failed* when it ended without a record (``COMPLETED`` without a record counts as failed too),
*blocked* when it waits on a pretraining job that failed or whose Slurm job ended other than
``COMPLETED`` (even one whose record is stored: Slurm never starts what waits on it
``afterok``; ``repro launch`` cancels and resubmits it), *missing* when it was never
submitted, and *unknown* when ``sacct`` has no trace of a job we submitted. A record that
other code or data made (``repro.freshness``) is *stale* unless Slurm is recomputing it. A job
that failed on the local or debug executor is *failed* with the cause and log kept in
``failures.json`` (``repro.launch.failures``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from repro import jobs as J
from repro import store
from repro.launch.failures import cause_from_log
from repro.spec import Table

SUBMITTED = "submitted.json"
LOG_ROOT_ENV = "REPRO_LOGS"

# Slurm states in which the scheduler still owns the job: never submit its key again.
ACTIVE = frozenset({
    "PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED", "REQUEUE_FED",
    "REQUEUE_HOLD", "RESIZING", "SUSPENDED", "SIGNALING", "STAGE_OUT", "STOPPED",
    "SPECIAL_EXIT",
})
# Final states. PREEMPTED is final in sacct (a job Slurm requeues shows REQUEUED/PENDING).
ENDED = frozenset({
    "COMPLETED", "FAILED", "TIMEOUT", "CANCELLED", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED",
    "BOOT_FAIL", "DEADLINE", "REVOKED",
})


def log_root(table: Table, scale: str) -> Path:
    return Path(os.environ.get(LOG_ROOT_ENV) or "logs") / table.paper / table.table / scale


class SubmissionError(RuntimeError):
    """sbatch refused a job; the one-line message says what was asked and how to change it."""


class UnreadableSubmissions(RuntimeError):
    """``submitted.json`` cannot be read; it is not healed automatically (see the message)."""


def read_submitted(folder: Path) -> dict[str, dict]:
    """The recorded submissions ({key: entry}). Unlike a record, an unreadable file is not
    moved aside: it is the only list of jobs Slurm may still be running, and dropping it
    would submit them a second time."""
    path = Path(folder) / SUBMITTED
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        data = err
    if not isinstance(data, dict) or not all(
            isinstance(v, dict) and "job_id" in v for v in data.values()):
        why = f"{type(data).__name__}: {data}" if isinstance(data, Exception) else "wrong shape"
        raise UnreadableSubmissions(
            f"{path}: unreadable ({why}); it lists the Slurm jobs already submitted. Repair "
            f"it, or move it aside once `squeue --me` shows none of them still queued or "
            f"running (then every job without a record is submitted again)")
    return data


def write_submitted(folder: Path, entries: dict[str, dict]) -> Path:
    """Merge ``entries`` (key -> submission) into ``submitted.json``, atomically."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / SUBMITTED
    merged = {**read_submitted(folder), **entries}
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{SUBMITTED}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(merged, f, indent=1, sort_keys=True)
    os.replace(tmp, path)
    return path


def parse_sacct(text: str) -> dict[str, str]:
    """``sacct --parsable2`` output -> {job id: first word of State}; arrays are expanded
    (``12_[0-3]`` gives 12_0 .. 12_3) and job steps (``12.batch``) skipped."""
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        return {}
    names = lines[0].split("|")
    out: dict[str, str] = {}
    for line in lines[1:]:
        row = dict(zip(names, line.split("|")))
        jid, state = row.get("JobID", "").strip(), row.get("State", "").strip()
        if not jid or "." in jid or not state:
            continue
        state = state.split()[0]  # "CANCELLED by 1000" -> CANCELLED
        if "_[" in jid:  # pending array tasks: 12_[0-3%2] or 12_[1,4]
            main, spec = jid.split("_[", 1)
            for part in spec.rstrip("]").split("%")[0].split(","):
                lo, _, hi = part.partition("-")
                for i in range(int(lo), int(hi or lo) + 1):
                    out[f"{main}_{i}"] = state
        else:
            out[jid] = state  # later lines (the newest attempt) win
    return out


def sacct_states(job_ids, timeout_s: float = 60) -> dict[str, str] | None:
    """Slurm's state of each job id (array tasks as ``<array>_<index>``); None without sacct."""
    mains = sorted({str(j).split("_")[0] for j in job_ids if j})
    if not mains:
        return {}
    if shutil.which("sacct") is None:
        return None
    # -S: sacct otherwise only shows jobs that started today on some Slurm versions.
    cmd = ["sacct", "-X", "--parsable2", "-o", "JobID,State", "-S", "1970-01-01"]
    for jid in mains:
        cmd += ["-j", jid]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_sacct(out.stdout)


@dataclass
class JobStatus:
    job: J.Job
    state: str  # stored | stale | running | pending | failed | blocked | missing | unknown
    job_id: str | None = None
    slurm_state: str | None = None
    log: str | None = None  # stderr of a failed job (or of the pretraining that blocks it)
    cause: str | None = None  # why it failed, or why its record is stale

    @property
    def active(self) -> bool:
        return self.state in ("running", "pending")


def _from_scheduler(job: J.Job, entry: dict | None, states: dict[str, str] | None) -> JobStatus:
    if entry is None:
        return JobStatus(job, "missing")
    jid = entry["job_id"]
    slurm = None if states is None else states.get(jid)
    st = JobStatus(job, "unknown", job_id=jid, slurm_state=slurm)
    if slurm is None:
        return st
    if slurm == "RUNNING" or slurm == "COMPLETING":
        st.state = "running"
    elif slurm in ACTIVE:
        st.state = "pending"
    else:  # ended (COMPLETED included: a job that finished well has a record)
        st.state, st.log = "failed", entry.get("stderr")
    return st


def _local_failure(st: JobStatus, failure: dict | None, entry: dict | None) -> JobStatus:
    """A failure recorded by a local launch, unless a later Slurm submission supersedes it."""
    if failure is None or (entry is not None and entry.get("time", "") > failure.get("time", "")):
        return st
    if st.state in ("missing", "unknown", "failed"):
        st.state, st.log, st.cause = "failed", failure.get("log"), failure.get("cause")
    return st


def job_statuses(jobs: list[J.Job], submitted: dict[str, dict],
                 states: dict[str, str] | None, store_dir=None,
                 check_store: bool = True, stale: dict[str, list[str]] | None = None,
                 failures: dict[str, dict] | None = None) -> dict[str, JobStatus]:
    """Reconcile store, submissions and scheduler for every job (key -> JobStatus).

    ``check_store=False`` reports the scheduler's view only (for jobs known to need a run).
    ``stale``: {key: reasons} of stale records; ``failures``: local failures by key.
    """
    stale, failures = stale or {}, failures or {}
    out: dict[str, JobStatus] = {}
    for job in jobs:  # pretraining jobs come first in ``jobs``
        stored = check_store and store.has(job.key, store_dir)
        if stored and job.key not in stale:
            out[job.key] = JobStatus(job, "stored", job_id=submitted.get(job.key, {}).get("job_id"))
            continue
        st = _from_scheduler(job, submitted.get(job.key), states)
        st = _local_failure(st, failures.get(job.key), submitted.get(job.key))
        if st.state == "failed" and st.cause is None:
            st.cause = cause_from_log(st.log) or f"Slurm state {st.slurm_state}"
        if stored and not st.active:  # the stale record stands until a rerun succeeds
            why = "; ".join(stale[job.key])
            if st.state == "failed":
                why += f"; recomputing it failed: {st.cause}"
            st = JobStatus(job, "stale", job_id=st.job_id, slurm_state=st.slurm_state,
                           log=st.log, cause=why)
        if st.state == "pending" and job.deps:
            pre = out.get(job.deps[0])
            after = submitted.get(job.key, {}).get("after")
            after_state = (states or {}).get(after) if after else None
            if pre is not None and pre.state == "failed":  # afterok can never be satisfied
                st.state, st.log = "blocked", pre.log
                st.cause = f"its pretraining (Slurm job {pre.job_id}) failed: {pre.cause}"
            elif after_state in ENDED and after_state != "COMPLETED":
                # Stranded: the pretraining job it waits on ended badly in Slurm's eyes, yet
                # (or: even though) its record may be stored (a signal after the record).
                # Slurm will never start it; `repro launch` cancels and resubmits it.
                st.state = "blocked"
                st.cause = (f"waits (afterok) on Slurm job {after}, which ended {after_state}: "
                            "Slurm will never start it; `repro launch` resubmits it")
        out[job.key] = st
    return out


def submitted_ids(jobs, submitted: dict[str, dict]) -> list[str]:
    """The Slurm job ids of ``jobs``' last submissions and of the jobs they wait on."""
    ids = []
    for j in jobs:
        entry = submitted.get(j.key)
        if entry:
            ids += [entry["job_id"]] + ([entry["after"]] if entry.get("after") else [])
    return list(dict.fromkeys(ids))


def choose_sources(table: Table, scale: str, submitted: dict, store_dir=None) -> dict[str, str]:
    """The {dataset: real|synthetic} map whose job keys we know best (stored or submitted)."""
    from repro.tables import source_candidates

    best, best_n = None, -1
    for cand in source_candidates(table, scale):
        n = sum(store.has(j.key, store_dir) or j.key in submitted
                for j in J.expand(table, scale, cand))
        if n > best_n:
            best, best_n = cand, n
    return best


def table_status(table: Table, scale: str, store_dir=None, states=...) -> dict:
    """Every job's status; ``states`` defaults to asking sacct about what was submitted."""
    from repro.freshness import Judge, load_records
    from repro.launch.failures import read_failures

    folder = log_root(table, scale)
    submitted = read_submitted(folder)
    sources = choose_sources(table, scale, submitted, store_dir)
    jobs = J.expand(table, scale, sources)
    if states is ...:
        states = sacct_states(submitted_ids(jobs, submitted))
    judge = Judge(jobs, load_records(jobs, store_dir))
    statuses = job_statuses(jobs, submitted, states, store_dir, stale=judge.stale(),
                            failures=read_failures(folder))
    return {"jobs": jobs, "statuses": statuses, "folder": folder, "sacct": states is not None,
            "sources": sources, "unchecked": judge.unchecked}


def _detail(st: JobStatus) -> str:
    parts = [p for p in (st.cause, f"log: {st.log}" if st.log else None) if p]
    return " — ".join(parts)


def format_status(table: Table, scale: str, result: dict) -> str:
    """One line per cell and seed, then the pretraining jobs and a count per state."""
    from tabulate import tabulate

    statuses = result["statuses"]
    rows = []
    for job in result["jobs"]:
        if job.kind != "eval":
            continue
        st, pre = statuses[job.key], statuses[job.deps[0]]
        state, detail = st.state, _detail(st)
        if st.state == "missing" and pre.active:  # submitted with its pretraining later on
            state, detail = "pending", f"waiting for pretraining {pre.job_id} ({pre.state})"
        elif st.state in ("missing", "blocked") and pre.state == "failed":
            detail = f"pretraining failed: {_detail(pre)}"
        for row, col in job.cells:
            rows.append([row, col, job.seed, state, st.job_id or "", st.slurm_state or "",
                         detail])
    pre_rows = [[statuses[j.key].job.label, statuses[j.key].state, statuses[j.key].job_id or "",
                 statuses[j.key].slurm_state or "", _detail(statuses[j.key])]
                for j in result["jobs"] if j.kind == "pretrain"]
    counts: dict[str, int] = {}
    for st in statuses.values():
        counts[st.state] = counts.get(st.state, 0) + 1
    lines = [f"{table.path} at scale {scale}: " + ", ".join(
        f"{n} {state}" for state, n in sorted(counts.items())) + f" (of {len(statuses)} jobs)"]
    if not result["sacct"]:
        lines.append("sacct is not available: submitted jobs without a record show as unknown")
    if result.get("unchecked"):
        lines.append("data fingerprints not checked (files not on this machine): "
                     + ", ".join(result["unchecked"]))
    lines += ["", tabulate(rows, ["row", "column", "seed", "state", "slurm job", "slurm state",
                                 "cause / log / detail"], tablefmt="github"), "",
              tabulate(pre_rows, ["pretraining", "state", "slurm job", "slurm state",
                                  "cause / log"], tablefmt="github"),
              ""]
    if (result["folder"] / SUBMITTED).exists():
        lines.append(f"submissions recorded in {result['folder'] / SUBMITTED}")
    return "\n".join(lines)
