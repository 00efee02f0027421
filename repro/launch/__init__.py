"""Run what a table is missing through submitit: debug (in-process), local, or slurm.

spec -> jobs (repro.jobs) -> only the keys whose record is missing or stale
(repro.freshness) -> submitit -> worker -> store -> table. On debug/local, pretraining jobs
run first (at most ``max_parallel`` at once) and evaluations after them; on slurm everything
is submitted at once, each pretraining job's evaluations as one array that starts when it has
finished (``afterok`` dependency). Importing this package imports no torch (``repro status``
uses it on a login node).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

import submitit

from repro import jobs as J
from repro import store
from repro.freshness import Judge, load_records
from repro.launch import cost, preflight
from repro.launch.failures import cause_of, read_failures, update_failures
from repro.launch.runner import JobRunner, encoders_of_run
from repro.launch.status import LOG_ROOT_ENV, log_root  # noqa: F401  (public here too)
from repro.launch.worker import runs_root
from repro.spec import EXECUTORS, Table

# Command-line resource overrides that apply to evaluations as well as pretraining; the
# others (GPUs, nodes, time, CPUs, memory) change the pretraining jobs, their ``eval_``
# twins the evaluation jobs.
SHARED_OVERRIDES = ("partition", "constraint", "account", "qos")
EVAL_PREFIX = "eval_"  # --eval-mem-gb etc.: evaluation jobs only


def resources_for(job: J.Job, overrides: dict | None = None) -> dict:
    """The spec's resources for ``job`` at its scale, with command-line ``overrides``.

    NOTE: resources are not part of a job's key, so ``--gpus-per-node``/``--nodes`` change
    the per-GPU batch (BN statistics, MoCo's shuffled BN) of a run stored under the same key;
    the global batch size stays the recipe's.
    """
    res = dict(job.payload.get("resources", {}))
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key.startswith(EVAL_PREFIX):
            if job.kind == "eval":
                res[key.removeprefix(EVAL_PREFIX)] = value
        elif job.kind == "pretrain" or key in SHARED_OVERRIDES:
            res[key] = value
    return res


def _encoders_usable(job: J.Job, record: dict, runs_dir) -> bool:
    """The run folder holds the encoders of the stored pretraining record."""
    return encoders_of_run(runs_root(runs_dir) / job.key, record.get("run_id"))


def plan(jobs: list[J.Job], store_dir=None, runs_dir=None, *, keep_stale: bool = False,
         check_data: bool = True) -> tuple[list[J.Job], dict[str, list[str]]]:
    """What must run: (jobs to run, {key: reasons} of the stale records among them).

    A job runs when it has no record or a stale one (unless ``keep_stale``); an evaluation
    also runs when its pretraining runs; a pretraining also runs when an evaluation that must
    run needs its encoders and the run folder does not hold those of its record.
    """
    records = load_records(jobs, store_dir)
    stale = Judge(jobs, records, check_data=check_data).stale()
    redo = set() if keep_stale else set(stale)

    def needs_run(j):
        return j.key not in records or j.key in redo

    pre = {j.key: j for j in jobs if j.kind == "pretrain"}
    todo_pre = {k for k, j in pre.items() if needs_run(j)}
    evals = [j for j in jobs if j.kind == "eval"]
    todo_eval = {j.key for j in evals if needs_run(j) or j.deps[0] in todo_pre}
    for key in {j.deps[0] for j in evals if j.key in todo_eval} - todo_pre:
        if not _encoders_usable(pre[key], records[key], runs_dir):
            todo_pre.add(key)  # retrained: a new run, so all its evaluations follow
            todo_eval |= {j.key for j in evals if j.deps[0] == key}
    todo = [j for j in jobs if j.key in todo_pre | todo_eval]
    return todo, {k: v for k, v in stale.items() if k in redo or keep_stale}


def _clean_temporaries(todo: list[J.Job], store_dir, runs_dir, log) -> None:
    """Remove temporary files that killed writers left in the store and in the run folders
    of the jobs about to run (a running job's own files are younger than the age limit)."""
    from repro.train.checkpoint import clean_temporary  # torch: only when jobs will run

    store.clean_temporary(store_dir)
    removed = sum(clean_temporary(runs_root(runs_dir) / j.key) for j in todo
                  if j.kind == "pretrain" and (runs_root(runs_dir) / j.key).is_dir())
    if removed:
        log(f"removed {removed} temporary checkpoint file(s) left by interrupted runs")


def _say_stale(stale: dict[str, list[str]], jobs: list[J.Job], keep: bool, log) -> None:
    if not stale:
        return
    labels = {j.key: j.label for j in jobs}
    verb = "kept (--keep-stale)" if keep else "recomputed"
    log(f"{len(stale)} stored record(s) are stale and will be {verb}:")
    for key, reasons in stale.items():
        log(f"  stale {labels[key]} [{key}]: {'; '.join(reasons)}")


def job_dict(job: J.Job, table: Table, scale: str, sources: dict) -> dict:
    d = dataclasses.asdict(job)
    d["data_sources"] = sources
    d["context"] = {"spec": str(table.path), "scale": scale}
    return d


def executor_for(kind: str, folder: Path, resources: dict, threads: int | None = None):
    if kind not in EXECUTORS:
        raise ValueError(f"executor {kind!r}; allowed: {', '.join(EXECUTORS)}")
    ex = submitit.AutoExecutor(folder=str(folder), cluster=kind)
    params = {"timeout_min": resources.get("timeout_min", 60)}
    if kind == "local" and resources.get("tasks_per_node", 1) > 1:
        params["tasks_per_node"] = resources["tasks_per_node"]  # e.g. DDP with gloo on CPU
    if kind == "slurm":
        gpus = resources.get("gpus_per_node", 0)
        params.update(
            nodes=resources.get("nodes", 1), gpus_per_node=gpus,
            tasks_per_node=max(gpus, 1), cpus_per_task=resources.get("cpus_per_task", 10),
            mem_gb=resources.get("mem_gb", 64),
        )
        for key in ("partition", "constraint", "account", "qos"):
            if resources.get(key):
                params[f"slurm_{key}"] = resources[key]
        if resources.get("array_parallelism"):
            params["slurm_array_parallelism"] = resources["array_parallelism"]
    ex.update_parameters(**params)
    return ex


def _run_waves(executor_kind, folder, items, max_parallel, log, store_dir, runs_dir):
    """Run (job_dict, resources) items with at most ``max_parallel`` alive; return failures
    as {key: {label, cause, log}}."""
    failures, pending, running = {}, list(items), []
    while pending or running:
        while pending and len(running) < max_parallel:
            jd, res = pending.pop(0)
            ex = executor_for(executor_kind, folder, res)
            sub = ex.submit(JobRunner(), jd, store_dir, runs_dir)
            log(f"started {jd['label']} [{jd['key']}]")
            running.append((jd, sub))
            if executor_kind == "debug":
                break  # debug jobs run in-process when their result is read
        for jd, sub in list(running):
            if executor_kind == "debug" or sub.done():
                running.remove((jd, sub))
                # exception() first: submitit's debug jobs open pdb when result() raises
                err = sub.exception()
                if err is None:
                    sub.result()
                    log(f"done {jd['label']}")
                else:  # a failed job: report its cause, keep going, no record
                    paths = getattr(sub, "paths", None)
                    where = str(paths.stderr) if paths is not None else None
                    failures[jd["key"]] = {"label": jd["label"], "cause": cause_of(err),
                                           "log": where}
                    log(f"FAILED {jd['label']}: {failures[jd['key']]['cause']}"
                        + (f" (log: {where})" if where else ""))
        if running and executor_kind != "debug":
            time.sleep(0.5)
    return failures


def _say_previous_failures(todo: list[J.Job], folder: Path, log) -> None:
    before = read_failures(folder)
    again = [j for j in todo if j.key in before]
    for j in again:
        f = before[j.key]
        log(f"previously FAILED ({f.get('time', '?')}) {j.label}: {f.get('cause')} "
            f"(log: {f.get('log')}); running it again")


def launch(table: Table, scale: str, executor: str = "local", *, dry_run: bool = False,
           store_dir=None, runs_dir=None, max_parallel: int | None = None,
           log=print, overrides: dict | None = None, resubmit_unknown: bool = False,
           keep_stale: bool = False, seeds: list[int] | None = None) -> dict:
    """Run (debug/local) or submit (slurm) every job of ``table`` at ``scale`` that has no
    record or a stale one (``repro.freshness``; ``keep_stale`` keeps stale records).
    ``overrides``: resources from the command line (``resources_for``). ``seeds``: only the
    jobs of these seeds of the scale (the rest of the table stays as it is)."""
    if scale not in table.scales:
        raise ValueError(f"{table.path}: unknown scale {scale!r}; allowed: "
                         f"{', '.join(table.scales)}")
    policy = table.scales[scale].get("data", "real")
    names = J.datasets_used(table, scale)
    if dry_run and policy == "real":
        sources = {name: "real" for name in names}  # a real run stops if one is absent
    elif dry_run:
        from repro.tables import source_candidates

        sources = source_candidates(table, scale)[-1]
    else:
        from repro.launch.data import prepare  # imports torch(vision)

        sources = prepare(names, policy, log=log)
    jobs = J.expand(table, scale, sources)
    if seeds is not None:
        allowed = table.scales[scale]["seeds"]
        bad = [s for s in seeds if s not in allowed]
        if bad:
            raise ValueError(f"--seeds {','.join(map(str, bad))}: not a seed of scale {scale}; "
                             f"allowed: {', '.join(map(str, allowed))}")
        jobs = [j for j in jobs if j.seed in seeds]
    todo, stale = plan(jobs, store_dir, runs_dir, keep_stale=keep_stale)
    if not dry_run:
        _clean_temporaries(todo, store_dir, runs_dir, log)
    n_pre = sum(j.kind == "pretrain" for j in todo)
    log(f"{table.path} at scale {scale}: {len(jobs)} jobs, {len(todo)} to run "
        f"({n_pre} pretraining, {len(todo) - n_pre} evaluation)")
    _say_stale(stale, jobs, keep_stale, log)
    folder = log_root(table, scale)
    # an E-step that would run k-means on CPU at large K does not start (repro.launch.preflight)
    refused = [p for p in (preflight.estep_problem(j, resources_for(j, overrides), executor,
                                                   sources) for j in todo) if p]
    if refused and not dry_run:
        raise preflight.PreflightError(f"{len(refused)} job(s) refused: {refused[0]}")
    for problem in refused:
        log(f"  would refuse to start: {problem}")
    # the cost of each job, before anything is submitted (repro.launch.cost)
    estimates = ({j.key: cost.estimate_job(j, resources_for(j, overrides), sources)
                  for j in todo} if dry_run else {})
    if executor == "slurm":
        from repro.launch.slurm import submit_graph

        out = submit_graph(table, scale, todo, sources, folder, store_dir, runs_dir, log,
                           dry_run=dry_run, resubmit_unknown=resubmit_unknown,
                           resources_for=lambda job: resources_for(job, overrides),
                           estimates=estimates)
        return {"jobs": jobs, "stale": stale, "estimates": estimates, **out}
    if dry_run:
        for j in todo:
            deps = f" after {', '.join(j.deps)}" if j.deps else ""
            log(f"  would run {j.kind:8s} {j.key} {j.label}{deps}  [{estimates[j.key].text()}]")
        if todo:
            cores = cost.local_cores() if executor == "local" else None
            log(cost.total_line(list(estimates.values()), cores=cores))
        return {"jobs": jobs, "todo": todo, "stale": stale, "failures": {},
                "estimates": estimates}
    folder.mkdir(parents=True, exist_ok=True)
    _say_previous_failures(todo, folder, log)
    if max_parallel is None:
        threads = max([(table.recipe_at(r, scale).get("runtime", {}).get("threads") or 1)
                       for r in table.recipes if scale in table.recipes[r]], default=1)
        max_parallel = max(1, (os.cpu_count() or 1) // max(threads or 1, 1))
    failures: dict[str, dict] = {}
    for kind in ("pretrain", "eval"):
        stage = [j for j in todo if j.kind == kind]
        blocked = [j for j in stage if set(j.deps) & set(failures)]
        for j in blocked:
            log(f"skip {j.label}: its pretraining failed")
        items = [(job_dict(j, table, scale, sources), resources_for(j, overrides))
                 for j in stage if j not in blocked]
        failures.update(_run_waves(executor, folder, items, max_parallel, log, store_dir,
                                   runs_dir))
    update_failures(folder, failures, [j.key for j in todo if j.key not in failures])
    status = {"submitted": len(todo), "failed": [f["label"] for f in failures.values()]}
    (folder / "last_launch.json").write_text(json.dumps(status, indent=1))
    return {"jobs": jobs, "todo": todo, "stale": stale, "failures": failures}
