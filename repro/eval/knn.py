"""Weighted k-nearest-neighbour classifier (InstDisc; PCL Table 4; DINO ``eval_knn.py``).

Cosine similarity on L2-normalised features; each of the k nearest training samples votes
for its class with weight exp(sim / T), T = 0.07; the class with the largest summed vote
wins. Several k are evaluated from one search for the largest k.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from repro.cluster.kmeans import faiss_knn_search
from repro.eval.types import Features


def l2_normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def weighted_knn_votes(sims: np.ndarray, neighbour_labels: np.ndarray, num_classes: int,
                       temperature: float) -> np.ndarray:
    """Q x C summed exp(sim / T) votes from Q x k similarities and neighbour labels."""
    votes = np.zeros((len(sims), num_classes), np.float64)
    rows = np.repeat(np.arange(len(sims)), sims.shape[1])
    np.add.at(votes, (rows, neighbour_labels.ravel()),
              np.exp(sims.astype(np.float64) / temperature).ravel())
    return votes


def knn_classifier(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray, *,
    k: Sequence[int] = (200,), temperature: float = 0.07, num_classes: int | None = None,
    chunk: int = 4096, gpu: bool | None = None,
) -> dict[int, tuple[float, float]]:
    """{k: (top1 %, top5 %)} of the weighted kNN classifier; features are normalised here."""
    c = num_classes or int(max(train_y.max(), test_y.max())) + 1
    ks = sorted(set(int(v) for v in k))
    train_x, test_x = l2_normalize(train_x), l2_normalize(test_x)
    hits = {kk: np.zeros(2, np.int64) for kk in ks}
    for start in range(0, len(test_x), chunk):  # bounds the Q x k buffers and votes
        q, t = test_x[start:start + chunk], test_y[start:start + chunk]
        sims, ids = faiss_knn_search(q, train_x, ks[-1], metric="ip", gpu=gpu)
        labels = train_y[ids]  # Q x kmax, nearest first
        for kk in ks:
            votes = weighted_knn_votes(sims[:, :kk], labels[:, :kk], c, temperature)
            ranked = np.argsort(-votes, axis=1, kind="stable")[:, :5]
            hits[kk] += [(ranked[:, 0] == t).sum(), (ranked == t[:, None]).any(1).sum()]
    return {kk: tuple(100.0 * hits[kk] / len(test_x)) for kk in ks}


def knn(
    train: Features,
    test: Features,
    *,
    seed: int,
    k: int | Sequence[int] = 200,
    temperature: float = 0.07,
    chunk: int = 4096,
    gpu: bool | None = None,
) -> dict:
    """Weighted kNN top-1/top-5 in %: ``top1``/``top5`` for one k, ``top1_k{k}`` for a list.

    ``seed`` is unused (the classifier is deterministic); it is accepted for the common
    protocol signature.
    """
    if train.multilabel or test.multilabel:
        raise ValueError("knn: labels must be N class indices, not multi-label")
    ks = [k] if isinstance(k, (int, np.integer)) else list(k)
    res = knn_classifier(train.x, train.y, test.x, test.y, k=ks, temperature=temperature,
                         chunk=chunk, gpu=gpu)
    if isinstance(k, (int, np.integer)):
        out = {"top1": res[int(k)][0], "top5": res[int(k)][1]}
    else:
        out = {}
        for kk in sorted(res):
            out[f"top1_k{kk}"], out[f"top5_k{kk}"] = res[kk]
    out["selection"] = {"k": {"value": ks if len(ks) > 1 else ks[0], "policy": "fixed"},
                        "temperature": {"value": temperature, "policy": "fixed"}}
    return out
