"""Full-data linear SVM protocols (Goyal et al. 2019): VOC07 mAP and Places205 top-1.

VOC07 (PCL Table 1's full-data column, the 'Full' row of low-shot tables): one binary SVM
per class on trainval, average precision per class on test, mAP in %.
Labels: 1 = present, 0 = present only as "difficult", -1 = absent. As in the protocol and
PCL's code, "difficult" counts as NEGATIVE both when training and when scoring (the
detection devkit ignores difficult objects instead; the classification SVM benchmark does
not).

Cost selection (``cost_policy``): ``"test"`` picks the cost with the best test mAP, as the
papers do (selection on the test set, labelled as such); ``"val"`` holds out a seeded
``val_fraction`` of train, picks the cost there and retrains on all of train; a single
cost in ``costs`` is ``"fixed"``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from repro.eval.average_precision import ranking_ap
from repro.eval.liblinear_svm import decision_values, fit_grid, solver_record, svm_normalize
from repro.eval.types import Features

VOC07_COSTS = (0.01, 0.1, 1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 50.0, 100.0, 1000.0)
PLACES205_COSTS = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)
COST_POLICIES = ("test", "val")


def voc_binary_labels(y: np.ndarray) -> np.ndarray:
    """N x C {+1, -1}: present -> +1; difficult-only (0) and absent (-1) -> -1."""
    return np.where(np.asarray(y) == 1, 1, -1).astype(np.int8)


def voc_map(scores: np.ndarray, y: np.ndarray) -> tuple[float, list[float]]:
    """mAP in % and per-class APs in % of N x C scores against VOC labels."""
    positive = np.asarray(y) == 1
    aps = [100.0 * ranking_ap(scores[:, c], positive[:, c]) for c in range(y.shape[1])]
    return float(np.mean(aps)), aps


def top1(scores: np.ndarray, y: np.ndarray) -> float:
    return float(100.0 * np.mean(scores.argmax(1) == y))


def _one_vs_rest(y: np.ndarray, num_classes: int) -> np.ndarray:
    return np.where(y[:, None] == np.arange(num_classes)[None], 1, -1).astype(np.int8)


def _sweep(x_tr, labels, x_ev, costs, tol, n_jobs) -> np.ndarray:
    """Scores (costs x N_eval x C) of per-class SVMs trained on (x_tr, labels N x C)."""
    c = labels.shape[1]
    tasks = [(None, labels[:, k], cost) for cost in costs for k in range(c)]
    w = fit_grid(x_tr, tasks, tol=tol, n_jobs=n_jobs)
    return decision_values(x_ev, w).reshape(len(x_ev), len(costs), c).transpose(1, 0, 2)


def _check_policy(costs: Sequence[float], cost_policy: str) -> str:
    if cost_policy not in COST_POLICIES:
        raise ValueError(f"cost_policy={cost_policy!r}; allowed: {', '.join(COST_POLICIES)}")
    if len(costs) == 0:
        raise ValueError("costs is empty")
    return "fixed" if len(costs) == 1 else cost_policy


def _val_split(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    n_val = max(1, int(round(val_fraction * n)))
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def _svm_protocol(train, test, *, seed, costs, cost_policy, val_fraction, tol, n_jobs,
                  labels_of, score_of, metric):
    policy = _check_policy(costs, cost_policy)
    x_tr, x_te = svm_normalize(train.x), svm_normalize(test.x)
    labels = labels_of(train.y)
    artifacts = {"solver": solver_record(tol)}
    if policy == "val":
        fit_rows, val_rows = _val_split(len(x_tr), val_fraction, seed)
        val_scores = _sweep(x_tr[fit_rows], labels[fit_rows], x_tr[val_rows], costs, tol,
                            n_jobs)
        per_cost = [score_of(s, train.y[val_rows])[0] for s in val_scores]
        best = int(np.argmax(per_cost))
        test_scores = _sweep(x_tr, labels, x_te, [costs[best]], tol, n_jobs)[0]
        value, extra = score_of(test_scores, test.y)
        artifacts["val_per_cost"] = dict(zip(map(str, costs), per_cost))
        artifacts["val_indices"] = train.index[val_rows].tolist()
    else:
        all_scores = _sweep(x_tr, labels, x_te, costs, tol, n_jobs)
        results = [score_of(s, test.y) for s in all_scores]
        per_cost = [r[0] for r in results]
        best = int(np.argmax(per_cost))
        value, extra = results[best]
        artifacts["test_per_cost"] = dict(zip(map(str, costs), per_cost))
    if extra is not None:
        artifacts["per_class_ap"] = extra
    return {metric: value,
            "selection": {"cost": {"value": float(costs[best]), "policy": policy}},
            "artifacts": artifacts}


def svm_voc07(
    train: Features,
    test: Features,
    *,
    seed: int,
    costs: Sequence[float] = VOC07_COSTS,
    cost_policy: str = "test",
    val_fraction: float = 0.2,
    tol: float = 1e-4,
    n_jobs: int = 2,
) -> dict:
    """VOC07 classification mAP (%) of per-class linear SVMs on frozen features."""
    if not (train.multilabel and test.multilabel):
        raise ValueError("svm_voc07: labels must be N x C multi-label {1, 0, -1} arrays")
    return _svm_protocol(
        train, test, seed=seed, costs=list(costs), cost_policy=cost_policy,
        val_fraction=val_fraction, tol=tol, n_jobs=n_jobs,
        labels_of=voc_binary_labels, score_of=voc_map, metric="mAP",
    )


def svm_places205(
    train: Features,
    test: Features,
    *,
    seed: int,
    costs: Sequence[float] = PLACES205_COSTS,
    cost_policy: str = "test",
    val_fraction: float = 0.2,
    tol: float = 1e-4,
    n_jobs: int = 2,
    num_classes: int | None = None,
) -> dict:
    """Places205 top-1 (%) of one-vs-rest linear SVMs (arg-max of the class decisions)."""
    if train.multilabel or test.multilabel:
        raise ValueError("svm_places205: labels must be N class indices")
    c = num_classes or int(max(train.y.max(), test.y.max())) + 1
    return _svm_protocol(
        train, test, seed=seed, costs=list(costs), cost_policy=cost_policy,
        val_fraction=val_fraction, tol=tol, n_jobs=n_jobs,
        labels_of=lambda y: _one_vs_rest(y, c), score_of=lambda s, y: (top1(s, y), None),
        metric="top1",
    )
