"""Low-shot linear SVMs (PCL Table 1; Goyal et al. 2019 protocol).

For each k in ``shots`` and each of ``num_samples`` seeded draws, train per-class binary
SVMs (liblinear, see ``liblinear_svm``) on the k-shot training subset at every cost, score
on the full test split, and report, per k, the mean and std over the draws at the cost with
the best mean (policy "test", as in the papers; a single cost is "fixed").

Sampling follows the authors' code (salesforce/PCL low-shot VOC script):
- VOC07: for each class, shuffle the trainval images that contain it (label 1; "difficult"-
  only images do not count) and take k; the training set is the union over classes, with
  every class's labels on that union (difficult -> negative, as in ``svm_voc07``).
- Places205: for each class, shuffle its images and take k; union; one-vs-rest SVMs, top-1.
NOTE: the public suites draw samples unseeded; ours use numpy's generator seeded with
(seed, k, draw), and the drawn dataset indices go in ``artifacts["samples"]``.
NOTE: std is the population std (ddof=0) over the draws, as numpy's default in VISSL.
NOTE: only test-set cost selection (or one fixed cost) is offered: a validation split of
k-shot data does not exist for k = 1.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from repro.eval.liblinear_svm import decision_values, fit_grid, svm_normalize
from repro.eval.svm import (
    PLACES205_COSTS,
    VOC07_COSTS,
    _one_vs_rest,
    top1,
    voc_binary_labels,
    voc_map,
)
from repro.eval.types import Features

SHOTS = (1, 2, 4, 8, 16)


def _draw_rng(seed: int, k: int, draw: int) -> np.random.Generator:
    return np.random.default_rng([seed, k, draw])


def sample_low_shot_voc(y: np.ndarray, k: int, *, seed: int, draw: int) -> np.ndarray:
    """Sorted row indices: union over classes of k shuffled images containing the class."""
    rng = _draw_rng(seed, k, draw)
    picked = [rng.permutation(np.flatnonzero(y[:, c] == 1))[:k] for c in range(y.shape[1])]
    return np.unique(np.concatenate(picked))


def sample_low_shot_multiclass(y: np.ndarray, k: int, *, seed: int, draw: int) -> np.ndarray:
    """Sorted row indices: union over classes of k shuffled images of the class."""
    rng = _draw_rng(seed, k, draw)
    picked = [rng.permutation(np.flatnonzero(y == c))[:k] for c in np.unique(y)]
    return np.unique(np.concatenate(picked))


def _low_shot(train: Features, test: Features, *, seed, shots, num_samples, costs,
              cost_policy, tol, max_iter, n_jobs, sample: Callable, labels: np.ndarray,
              score_of: Callable, metric: str) -> dict:
    if cost_policy != "test":
        raise ValueError(f"low-shot SVM: cost_policy={cost_policy!r}; allowed: 'test' "
                         "(pass a single cost for a fixed one)")
    policy = "fixed" if len(costs) == 1 else "test"
    x_tr, x_te = svm_normalize(train.x), svm_normalize(test.x)
    c = labels.shape[1]
    draws = [(k, s, sample(train.y, k, seed=seed, draw=s)) for k in shots
             for s in range(num_samples)]
    tasks = [(rows, labels[rows, j], cost) for _, _, rows in draws for cost in costs
             for j in range(c)]
    weights = fit_grid(x_tr, tasks, tol=tol, n_jobs=n_jobs)  # (draws*costs*C) x D+1

    score = np.empty((len(draws), len(costs)))
    per_draw = len(costs) * c
    for i in range(len(draws)):
        w = weights[i * per_draw:(i + 1) * per_draw]
        values = decision_values(x_te, w).reshape(len(x_te), len(costs), c)
        for j in range(len(costs)):
            score[i, j] = score_of(values[:, j], test.y)
    out, selection, per_cost = {}, {}, {}
    for ki, k in enumerate(shots):
        block = score[ki * num_samples:(ki + 1) * num_samples]  # draws x costs
        best = int(np.argmax(block.mean(0)))
        out[f"{metric}_k{k}"] = float(block[:, best].mean())
        out[f"{metric}_k{k}_std"] = float(block[:, best].std())
        selection[f"cost_k{k}"] = {"value": float(costs[best]), "policy": policy}
        per_cost[f"k{k}"] = {str(cost): block[:, j].tolist() for j, cost in enumerate(costs)}
    out["selection"] = selection
    out["artifacts"] = {
        "samples": {f"k{k}": [train.index[rows].tolist() for kk, _, rows in draws if kk == k]
                    for k in shots},
        "per_cost_per_draw": per_cost,
        "solver": {"liblinear": "-s 1", "tol": tol, "max_iter": max_iter,
                   "class_weight": {"+1": 2.0, "-1": 1.0}, "bias": 1.0},
    }
    return out


def low_shot_svm_voc07(
    train: Features,
    test: Features,
    *,
    seed: int,
    shots: Sequence[int] = SHOTS,
    num_samples: int = 5,
    costs: Sequence[float] = VOC07_COSTS,
    cost_policy: str = "test",
    tol: float = 1e-4,
    max_iter: int = 2000,
    n_jobs: int = 2,
) -> dict:
    """VOC07 low-shot mAP (%): ``mAP_k{k}`` and ``mAP_k{k}_std`` for each k."""
    if not (train.multilabel and test.multilabel):
        raise ValueError("low_shot_svm_voc07: labels must be N x C multi-label {1, 0, -1}")
    return _low_shot(
        train, test, seed=seed, shots=list(shots), num_samples=num_samples,
        costs=list(costs), cost_policy=cost_policy, tol=tol, max_iter=max_iter,
        n_jobs=n_jobs, sample=sample_low_shot_voc, labels=voc_binary_labels(train.y),
        score_of=lambda s, y: voc_map(s, y)[0], metric="mAP",
    )


def low_shot_svm_places205(
    train: Features,
    test: Features,
    *,
    seed: int,
    shots: Sequence[int] = SHOTS,
    num_samples: int = 5,
    costs: Sequence[float] = PLACES205_COSTS,
    cost_policy: str = "test",
    tol: float = 1e-4,
    max_iter: int = 2000,
    n_jobs: int = 2,
    num_classes: int | None = None,
) -> dict:
    """Places205 low-shot top-1 (%): ``top1_k{k}`` and ``top1_k{k}_std`` for each k."""
    if train.multilabel or test.multilabel:
        raise ValueError("low_shot_svm_places205: labels must be N class indices")
    c = num_classes or int(max(train.y.max(), test.y.max())) + 1
    return _low_shot(
        train, test, seed=seed, shots=list(shots), num_samples=num_samples,
        costs=list(costs), cost_policy=cost_policy, tol=tol, max_iter=max_iter,
        n_jobs=n_jobs, sample=sample_low_shot_multiclass, labels=_one_vs_rest(train.y, c),
        score_of=top1, metric="top1",
    )
