"""Low-shot linear SVMs (PCL Table 1; Goyal et al. 2019 protocol).

For each k in ``shots``, each cost and each of ``num_samples`` runs, draw a k-shot training
subset, train per-class binary SVMs (liblinear, see ``liblinear_svm``) on it, score on the full
test split, and report, per k, the mean and std over the runs at the cost with the best mean
(policy "test", as in the papers; a single cost is "fixed").

Sampling follows the authors' code (salesforce/PCL @ 964da1f, ``voc.py``
``Voc2007Classification.convert_low_shot`` called from ``eval_svm_voc.py`` ``main``):
- for each class in order, shuffle the trainval images that contain it (label 1; "difficult"-
  only images do not count), listed in dataset order, and take the first k; the training set is
  the concatenation over classes, duplicates KEPT (an image of two classes may be drawn twice,
  and then weighs twice in the SVM), with every class's labels on it (difficult -> negative, as
  in ``svm_voc07``);
- a fresh draw for every (k, cost, run), in that loop order (k outer, run inner), all from one
  Python ``random`` stream seeded once with ``seed`` (the authors' ``random.seed(args.seed)``,
  default 0). So with seed 0, the same cost list and the trainval order of
  ``ImageSets/Main/trainval.txt`` (ours and theirs) the draws are the authors' own.
- Places205 (no PCL code): the same loop over each class's images; one-vs-rest SVMs, top-1.
The drawn dataset indices go in ``artifacts["samples"]`` (k -> cost -> runs).
NOTE: std is the population std (ddof=0) over the runs, as numpy's default in PCL's script.
NOTE: only test-set cost selection (or one fixed cost) is offered: a validation split of
k-shot data does not exist for k = 1.
"""

from __future__ import annotations

import random
from typing import Callable, Sequence

import numpy as np

from repro.eval.liblinear_svm import decision_values, fit_grid, solver_record, svm_normalize
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


def voc_class_members(y: np.ndarray) -> list[np.ndarray]:
    """Per class, the rows (dataset order) of the images that contain it (label 1)."""
    return [np.flatnonzero(y[:, c] == 1) for c in range(y.shape[1])]


def class_members(y: np.ndarray) -> list[np.ndarray]:
    """Per class (sorted labels), the rows (dataset order) of its images."""
    return [np.flatnonzero(y == c) for c in np.unique(y)]


def draw_low_shot(members: list[np.ndarray], k: int, rng: random.Random) -> np.ndarray:
    """Rows of one k-shot draw: per class, its rows shuffled by ``rng``, the first k; duplicates
    across classes kept (PCL ``convert_low_shot``)."""
    picked: list[int] = []
    for rows in members:
        rows = rows.tolist()
        rng.shuffle(rows)
        picked += rows[:k]
    return np.asarray(picked, dtype=np.int64)


def low_shot_draws(members: list[np.ndarray], shots: Sequence[int], num_costs: int,
                   num_samples: int, seed: int) -> list[list[list[np.ndarray]]]:
    """draws[k index][cost index][run]: PCL's loop order over one ``random.Random(seed)``."""
    rng = random.Random(seed)
    return [[[draw_low_shot(members, k, rng) for _ in range(num_samples)]
             for _ in range(num_costs)] for k in shots]


def _low_shot(train: Features, test: Features, *, seed, shots, num_samples, costs,
              cost_policy, tol, n_jobs, members: list[np.ndarray],
              labels: np.ndarray, score_of: Callable, metric: str) -> dict:
    if cost_policy != "test":
        raise ValueError(f"low-shot SVM: cost_policy={cost_policy!r}; allowed: 'test' "
                         "(pass a single cost for a fixed one)")
    policy = "fixed" if len(costs) == 1 else "test"
    x_tr, x_te = svm_normalize(train.x), svm_normalize(test.x)
    c = labels.shape[1]
    draws = low_shot_draws(members, shots, len(costs), num_samples, seed)
    flat = [(ki, j, run, rows) for ki, per_cost in enumerate(draws)
            for j, runs in enumerate(per_cost) for run, rows in enumerate(runs)]
    tasks = [(rows, labels[rows, cls], costs[j]) for _, j, _, rows in flat for cls in range(c)]
    weights = fit_grid(x_tr, tasks, tol=tol, n_jobs=n_jobs)  # (draws*C) x D+1

    score = np.empty((len(shots), len(costs), num_samples))  # k x cost x run
    for i, (ki, j, run, _) in enumerate(flat):
        score[ki, j, run] = score_of(decision_values(x_te, weights[i * c:(i + 1) * c]), test.y)
    out, selection, per_cost = {}, {}, {}
    for ki, k in enumerate(shots):
        block = score[ki]  # costs x runs
        best = int(np.argmax(block.mean(1)))
        out[f"{metric}_k{k}"] = float(block[best].mean())
        out[f"{metric}_k{k}_std"] = float(block[best].std())
        selection[f"cost_k{k}"] = {"value": float(costs[best]), "policy": policy}
        per_cost[f"k{k}"] = {str(cost): block[j].tolist() for j, cost in enumerate(costs)}
    out["selection"] = selection
    out["artifacts"] = {
        "samples": {f"k{k}": {str(cost): [train.index[rows].tolist() for rows in draws[ki][j]]
                              for j, cost in enumerate(costs)}
                    for ki, k in enumerate(shots)},
        "per_cost_per_draw": per_cost,
        "solver": solver_record(tol),
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
    n_jobs: int = 2,
) -> dict:
    """VOC07 low-shot mAP (%): ``mAP_k{k}`` and ``mAP_k{k}_std`` for each k."""
    if not (train.multilabel and test.multilabel):
        raise ValueError("low_shot_svm_voc07: labels must be N x C multi-label {1, 0, -1}")
    return _low_shot(
        train, test, seed=seed, shots=list(shots), num_samples=num_samples,
        costs=list(costs), cost_policy=cost_policy, tol=tol, n_jobs=n_jobs,
        members=voc_class_members(train.y), labels=voc_binary_labels(train.y),
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
    n_jobs: int = 2,
    num_classes: int | None = None,
) -> dict:
    """Places205 low-shot top-1 (%): ``top1_k{k}`` and ``top1_k{k}_std`` for each k."""
    if train.multilabel or test.multilabel:
        raise ValueError("low_shot_svm_places205: labels must be N class indices")
    c = num_classes or int(max(train.y.max(), test.y.max())) + 1
    return _low_shot(
        train, test, seed=seed, shots=list(shots), num_samples=num_samples,
        costs=list(costs), cost_policy=cost_policy, tol=tol, n_jobs=n_jobs,
        members=class_members(train.y), labels=_one_vs_rest(train.y, c),
        score_of=top1, metric="top1",
    )
