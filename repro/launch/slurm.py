"""Submit a table's missing jobs to Slurm and return at once.

Each pretraining job is one Slurm job with its recipe's resources; the evaluations of one
pretraining job form one job array that starts after it finished (``afterok``). What was
submitted is recorded in ``<logs>/submitted.json`` so ``repro status`` can reconcile the
scheduler's view with the store.
"""

from __future__ import annotations

import json
from pathlib import Path

from repro.launch import executor_for, job_dict
from repro.launch.worker import JobRunner


def submit_graph(table, scale, todo, sources, folder: Path, store_dir, runs_dir, log) -> dict:
    submitted = {}
    pre_ids = {}
    for job in [j for j in todo if j.kind == "pretrain"]:
        ex = executor_for("slurm", folder, job.payload.get("resources", {}))
        ex.update_parameters(name=f"repro-pre-{job.key[:8]}")
        sub = ex.submit(JobRunner(), job_dict(job, table, scale, sources), store_dir, runs_dir)
        pre_ids[job.key] = sub.job_id
        submitted[job.key] = {"job_id": sub.job_id, "label": job.label, "kind": "pretrain",
                              "stdout": str(sub.paths.stdout), "stderr": str(sub.paths.stderr)}
        log(f"submitted {job.label}: slurm job {sub.job_id}")
    by_pre: dict[str, list] = {}
    for job in [j for j in todo if j.kind == "eval"]:
        by_pre.setdefault(job.deps[0], []).append(job)
    for pre_key, group in by_pre.items():
        res = group[0].payload.get("resources", {})
        ex = executor_for("slurm", folder, res)
        extra = {"dependency": f"afterok:{pre_ids[pre_key]}"} if pre_key in pre_ids else {}
        ex.update_parameters(name=f"repro-eval-{pre_key[:8]}", slurm_additional_parameters=extra)
        with ex.batch():
            subs = [ex.submit(JobRunner(), job_dict(j, table, scale, sources), store_dir,
                              runs_dir) for j in group]
        for job, sub in zip(group, subs):
            submitted[job.key] = {"job_id": sub.job_id, "label": job.label, "kind": "eval",
                                  "after": pre_ids.get(pre_key),
                                  "stdout": str(sub.paths.stdout),
                                  "stderr": str(sub.paths.stderr)}
        after = f" after {pre_ids[pre_key]}" if pre_key in pre_ids else ""
        log(f"submitted {len(group)} evaluations of {pre_key[:8]} as array "
            f"{subs[0].job_id.split('_')[0]}{after}")
    path = folder / "submitted.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    old.update(submitted)
    path.write_text(json.dumps(old, indent=1, sort_keys=True))
    log(f"logs in {folder}; submitted jobs recorded in {path}")
    return {"todo": todo, "submitted": submitted, "failures": []}
