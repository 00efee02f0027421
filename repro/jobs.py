"""Expand a table at a scale into jobs with content keys (no torch).

A job's key is the hash of everything that determines its result: the resolved recipe or
evaluation, the identity of its data (name, split, subset, real or synthetic), the seed and
the code versions of the method/protocol. Two tables that need the same pretraining share
one job. Evaluation jobs depend on their pretraining job.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from repro import __version__
from repro.eval import PROTOCOLS
from repro.methods import METHODS
from repro.spec import Table

KEY_LENGTH = 24


@dataclass
class Job:
    key: str
    kind: str  # "pretrain" | "eval"
    payload: dict  # everything the worker needs
    seed: int
    synthetic: bool
    label: str
    deps: list[str] = field(default_factory=list)
    cells: list[tuple[str, str]] = field(default_factory=list)  # (row name, column id)


def content_key(obj: dict) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:KEY_LENGTH]


def data_identity(ref: dict, sources: dict[str, str]) -> dict:
    """{dataset, split, subset, source}; ``sources`` maps dataset -> "real" | "synthetic"."""
    return {"dataset": ref["dataset"], "split": ref.get("split"), "subset": ref.get("subset"),
            "source": sources.get(ref["dataset"], "real")}


def pretrain_job(table: Table, recipe_id: str, scale: str, seed: int,
                 sources: dict[str, str]) -> Job:
    recipe = table.recipe_at(recipe_id, scale)
    data = data_identity(recipe["data"], sources)
    body = {"kind": "pretrain", "recipe": recipe, "data": data, "seed": seed,
            "code": {"repro": __version__, "method": METHODS.version(recipe["method"])}}
    return Job(key=content_key(body), kind="pretrain", seed=seed,
               synthetic=data["source"] == "synthetic",
               label=f"pretrain {recipe_id} seed {seed}",
               payload={"recipe": recipe, "seed": seed, "recipe_id": recipe_id,
                        "resources": table.scales[scale].get("resources", {}).get("pretrain", {})})


def eval_job(table: Table, eval_id: str, scale: str, pre: Job, sources: dict[str, str]) -> Job:
    ev = table.eval_at(eval_id, scale)
    train = data_identity(ev["train"], sources)
    test = data_identity(ev["test"], sources)
    resolved = {"protocol": ev["protocol"], "encoder": ev.get("encoder", "query"),
                "features": ev.get("features", {"layer": "pooled"}), "params": ev.get("params", {}),
                "train": ev["train"], "test": ev["test"]}
    body = {"kind": "eval", "pretrain": pre.key, "eval": resolved, "train": train, "test": test,
            "seed": pre.seed, "code": {"repro": __version__,
                                       "protocol": PROTOCOLS.version(ev["protocol"])}}
    synthetic = pre.synthetic or "synthetic" in (train["source"], test["source"])
    return Job(key=content_key(body), kind="eval", seed=pre.seed, synthetic=synthetic,
               label=f"eval {eval_id} of {pre.payload['recipe_id']} seed {pre.seed}",
               deps=[pre.key],
               payload={"eval": resolved, "eval_id": eval_id, "pretrain_key": pre.key,
                        "seed": pre.seed, "recipe": pre.payload["recipe"],
                        "resources": table.scales[scale].get("resources", {}).get("eval", {})})


def expand(table: Table, scale: str, sources: dict[str, str]) -> list[Job]:
    """Every job the table needs at ``scale``: pretraining jobs first, then evaluations."""
    if scale not in table.scales:
        raise ValueError(f"{table.path}: unknown scale {scale!r}; allowed: "
                         f"{', '.join(table.scales)}")
    seeds = table.scales[scale]["seeds"]
    pretrain: dict[str, Job] = {}
    evals: dict[str, Job] = {}
    for row in table.rows:
        rid = table.row_recipe(row, scale)
        if rid is None or not table.row_at(row, scale):
            continue
        for seed in seeds:
            pre = pretrain_job(table, rid, scale, seed, sources)
            pre = pretrain.setdefault(pre.key, pre)
            for col in table.columns:
                if (col.eval is None or col.id not in row.evaluate
                        or not table.has_eval(col.eval, scale)):
                    continue
                job = eval_job(table, col.eval, scale, pre, sources)
                job = evals.setdefault(job.key, job)
                job.cells.append((row.name, col.id))
    return list(pretrain.values()) + list(evals.values())


def datasets_used(table: Table, scale: str) -> list[str]:
    names = set()
    for row in table.rows:
        rid = table.row_recipe(row, scale)
        if rid and table.row_at(row, scale):
            names.add(table.recipe_at(rid, scale)["data"]["dataset"])
    for col in table.columns:
        if col.eval and table.has_eval(col.eval, scale):
            ev = table.eval_at(col.eval, scale)
            names.update([ev["train"]["dataset"], ev["test"]["dataset"]])
    return sorted(names)
