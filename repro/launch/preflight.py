"""Checks before a job starts (no torch): an E-step that would run k-means on CPU at large K.

PCL, PAUC and ProPos cluster the whole training set (repro.methods.estep -> repro.cluster.kmeans)
every epoch or every r epochs. faiss runs that k-means on GPU when its build has GPU support and
sees a GPU; otherwise on the job's CPUs. At paper scale (K up to 100,000 over 1.28 M ImageNet
features) the CPU path costs hours per E-step, all of it on rank 0 while the other GPUs wait. A
job whose E-step is estimated above ``LIMIT_MINUTES`` on CPU refuses to start unless it will get
a GPU faiss: this environment's faiss must be a GPU build (``make venv GPU=1``), and the job must
get a GPU (a local run: faiss sees one; slurm: the job asks for one).

The launcher's faiss is the job's: submitit runs jobs with the launching interpreter
(``sys.executable``), so a CPU build here is a CPU build on the node.
NOTE: checked when launching, not again on the node: a node whose driver faiss cannot use still
falls back to CPU there (repro.cluster.kmeans picks the GPU only when faiss sees one).
"""

from __future__ import annotations

from repro.launch import cost

# One k-means run on CPU (faiss-cpu 1.15, 2 threads): N = 60,000, D = 128, K = 1000, 20
# iterations -> 2.6 s (../shared/reference/machine-figures.md); assumed linear in N, D, K and
# iterations (Lloyd's assignment step dominates), times the restarts.
CPU_SECONDS_REF = 2.6
REF = {"n": 60_000, "dim": 128, "k": 1000, "niter": 20}
LIMIT_MINUTES = 10.0  # per E-step, on a job's CPUs
# The E-step's settings where a recipe leaves them to the method's defaults
# (tests/launch/test_preflight.py checks them against the Config dataclasses).
ESTEP_DEFAULTS: dict[str, dict] = {
    "pcl": {"dim": 128, "num_clusters": [25000, 50000, 100000], "kmeans_niter": 20,
            "kmeans_nredo": 5},
    "pauc": {"dim": 128, "num_clusters": [25000, 50000, 100000], "kmeans_niter": 20,
             "kmeans_nredo": 5},
    "propos": {"dim": 256, "num_clusters": 10, "kmeans_niter": 300, "kmeans_nredo": 10},
}


class PreflightError(ValueError):
    """A job that must not start as configured (one line, says what to do)."""


def estep_cpu_minutes(recipe: dict, n_images: int, cpus: int = 2) -> float | None:
    """Estimated minutes of one E-step's k-means on ``cpus`` CPU cores; None: no E-step."""
    method = cost.family(recipe["method"])
    if method not in ESTEP_DEFAULTS:
        return None
    p = {**ESTEP_DEFAULTS[method], **recipe.get("params", {})}
    ks = p["num_clusters"] if isinstance(p["num_clusters"], list) else [p["num_clusters"]]
    work = (n_images / REF["n"]) * (sum(ks) / REF["k"]) * (p["dim"] / REF["dim"]) \
        * (p["kmeans_niter"] / REF["niter"]) * p["kmeans_nredo"]
    return CPU_SECONDS_REF * work * (2 / max(1, cpus)) / 60


def faiss_gpus() -> tuple[bool, int]:
    """(this faiss is a GPU build, GPUs it sees here)."""
    import faiss

    if not hasattr(faiss, "StandardGpuResources"):
        return False, 0
    return True, int(faiss.get_num_gpus())


def estep_problem(job, resources: dict, executor: str, sources: dict | None = None,
                  gpus=None) -> str | None:
    """Why ``job`` must not start (one line), or None."""
    if job.kind != "pretrain":
        return None
    recipe = job.payload["recipe"]
    try:
        n = cost.dataset_size(recipe["data"], sources)
    except cost.UnknownCost:
        return None
    cpus = int(resources.get("cpus_per_task") or 1)
    minutes = estep_cpu_minutes(recipe, n, cpus)
    if minutes is None or minutes <= LIMIT_MINUTES:
        return None
    build, seen = (gpus or faiss_gpus)()
    k = recipe.get("params", {}).get("num_clusters", ESTEP_DEFAULTS[cost.family(recipe["method"])]
                                     ["num_clusters"])
    what = (f"{job.label}: its E-step (k-means, K = {k}, {n:,} images) on CPU: "
            f"~{cost.fmt(minutes)} min per E-step on {cpus} core(s)")
    if not build:
        return f"{what}: this faiss is a CPU build; install the GPU build (make venv GPU=1)"
    if executor == "slurm" and not int(resources.get("gpus_per_node") or 0):
        return f"{what}: the job asks for no GPU (resources gpus_per_node)"
    if executor != "slurm" and seen == 0:
        return f"{what}: faiss sees no GPU on this machine; run it where one is (--executor slurm)"
    return None
