"""k-means on frozen features and the clustering metrics (PCL Table 5; ProPos Tables 2-4).

Metrics (fractions in [0, 1]; the table layer scales to what each paper prints):
- NMI: scikit-learn, arithmetic normalisation (ProPos's code; the scikit-learn default).
- ACC: best one-to-one cluster-to-class mapping, Hungarian algorithm (scipy) on the
  confusion matrix; clusters left unmatched (more clusters than classes) count as errors.
- ARI, AMI (Vinh et al. 2010, arithmetic): scikit-learn.
- ``imbalance``: min / max cluster size, as ProPos Fig. 3(b) defines it (1 = balanced).
- ``uniformity_std``: std over samples of each dimension of the L2-normalised features,
  averaged over dimensions (ProPos Fig. 3(a), after SimSiam; ~1/sqrt(d) when uniform).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn import metrics as skm

from repro.cluster.kmeans import faiss_kmeans
from repro.eval.types import Features

METRICS = ("nmi", "acc", "ari", "ami")
ON = ("train+test", "train", "test")


def confusion(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Clusters x classes counts over the labels that occur (empty clusters have no row)."""
    _, t = np.unique(y_true, return_inverse=True)
    _, p = np.unique(y_pred, return_inverse=True)
    m = np.zeros((p.max() + 1, t.max() + 1), np.int64)
    np.add.at(m, (p, t), 1)
    return m


def clustering_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Fraction of samples correctly labelled under the best one-to-one cluster->class map."""
    m = confusion(np.asarray(y_true), np.asarray(y_pred))
    rows, cols = linear_sum_assignment(m, maximize=True)
    return float(m[rows, cols].sum() / len(y_true))


def nmi(y_true, y_pred) -> float:
    return float(skm.normalized_mutual_info_score(y_true, y_pred, average_method="arithmetic"))


def ari(y_true, y_pred) -> float:
    return float(skm.adjusted_rand_score(y_true, y_pred))


def ami(y_true, y_pred) -> float:
    return float(skm.adjusted_mutual_info_score(y_true, y_pred, average_method="arithmetic"))


METRIC_FNS = {"nmi": nmi, "acc": clustering_accuracy, "ari": ari, "ami": ami}


def cluster_imbalance(assignments: np.ndarray, k: int | None = None) -> float:
    """min / max cluster size; with ``k``, clusters that received no sample count as size 0."""
    sizes = np.bincount(assignments, minlength=k or 0)
    return float(sizes.min() / sizes.max())


def uniformity_std(x: np.ndarray) -> float:
    """Mean over dimensions of the per-dimension std of the L2-normalised rows.

    NOTE: unbiased std (ddof=1), as ``torch.std`` in the SimSiam/ProPos code.
    """
    z = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return float(z.std(axis=0, ddof=1).mean())


def clustering_metrics(y_true, y_pred, metrics: Sequence[str] = METRICS) -> dict[str, float]:
    unknown = set(metrics) - set(METRIC_FNS)
    if unknown:
        raise ValueError(f"unknown clustering metric(s) {sorted(unknown)}; allowed: "
                         f"{', '.join(METRICS)}")
    return {m: METRIC_FNS[m](y_true, y_pred) for m in metrics}


def select_split(train: Features, test: Features, on: str) -> tuple[np.ndarray, np.ndarray]:
    if on not in ON:
        raise ValueError(f"on={on!r}; allowed: {', '.join(ON)}")
    parts = {"train": [train], "test": [test], "train+test": [train, test]}[on]
    if any(p.multilabel for p in parts):
        raise ValueError("clustering needs single-label class indices")
    return np.concatenate([p.x for p in parts]), np.concatenate([p.y for p in parts])


def clustering(
    train: Features,
    test: Features,
    *,
    seed: int,
    k: int | None = None,
    on: str = "train+test",
    restarts: int = 10,
    niter: int = 300,
    spherical: bool = True,
    init: str = "kmeans++",
    empty_clusters: str = "keep",
    tol: float = 1e-4,
    normalize: bool = True,
    metrics: Sequence[str] = METRICS,
    max_points_per_centroid: int = 1_000_000,
    gpu: bool | None = None,
) -> dict:
    """k-means on frozen features of ``on``, then NMI/ACC/ARI/AMI as fractions.

    Defaults are ProPos's evaluation, its torch_clustering k-means (spherical, k-means++, up to
    300 iterations, tol 1e-4, 10 restarts, lowest inertia wins, empty clusters kept empty, on
    train+test, k = number of classes). PCL's ImageNet AMI (k=25000) is faiss, PCL's E-step:
    ``on="train", k=25000, init="random", spherical=False, restarts=5, niter=20,
    empty_clusters="split"``. ``max_points_per_centroid`` is large so faiss clusters every
    point (no subsampling).
    """
    x, y = select_split(train, test, on)
    x = np.asarray(x, np.float32)
    if normalize:
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    k = k or len(np.unique(y))
    result = faiss_kmeans(x, k, niter=niter, nredo=restarts, seed=seed, spherical=spherical,
                          init=init, empty_clusters=empty_clusters, tol=tol,
                          max_points_per_centroid=max_points_per_centroid, gpu=gpu)
    out = clustering_metrics(y, result.assignments, metrics)
    out["imbalance"] = cluster_imbalance(result.assignments, k)
    out["uniformity_std"] = uniformity_std(x)
    out["selection"] = {"k": {"value": k, "policy": "fixed"},
                        "restarts": {"value": restarts, "policy": "fixed"}}
    out["artifacts"] = {"inertia": result.inertia, "on": on,
                        "cluster_sizes": np.bincount(result.assignments, minlength=k).tolist()}
    return out
