"""Timings of the evaluation kernels on synthetic data (not a test).

    python benchmarks/bench_eval.py            # default, ~5 minutes on 2 idle cores
    python benchmarks/bench_eval.py --full     # the whole low-shot grid (k = 1..16)
    python benchmarks/bench_eval.py --quick    # reduced sizes, under a minute

Prints one table: low-shot VOC07 SVM protocol parallel vs sequential (and that the mAPs are
identical), weighted kNN, clustering metrics on 60,000 labels.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def _voc_features(n: int, d: int, seed: int):
    from repro.eval.types import Features

    rng = np.random.default_rng(seed)
    y = np.where(rng.random((n, 20)) < 0.1, 1, -1).astype(np.int8)
    y[rng.random((n, 20)) < 0.02] = 0
    directions = np.random.default_rng(99).normal(size=(20, d))
    x = rng.normal(size=(n, d)) + 0.25 * (y == 1) @ directions
    return Features(np.abs(x).astype(np.float32), y, np.arange(n))  # ReLU-like, as pooled feats


def bench_low_shot(rows: list, n: int, d: int, shots, samples: int, costs) -> None:
    from repro.eval.low_shot import low_shot_svm_voc07

    train, test = _voc_features(n, d, 0), _voc_features(n, d, 1)
    results, times = {}, {}
    for jobs in (1, 2):
        t = time.perf_counter()
        results[jobs] = low_shot_svm_voc07(train, test, seed=0, shots=shots,
                                           num_samples=samples, costs=costs, n_jobs=jobs)
        times[jobs] = time.perf_counter() - t
    fits = len(shots) * samples * len(costs) * 20
    same = all(results[1][k] == results[2][k] for k in results[1] if k.startswith("mAP"))
    label = f"low-shot VOC07 {n}x{d}, k={list(shots)}, {samples} draws, {len(costs)} costs"
    rows.append((label, f"{fits} fits", f"seq {times[1]:.1f} s / 2 proc {times[2]:.1f} s",
                 f"x{times[1] / times[2]:.2f}; mAP identical: {same}; "
                 f"mAP_k{shots[-1]} {results[2][f'mAP_k{shots[-1]}']:.1f}"))


def bench_knn(rows: list, n_train: int, n_test: int, d: int) -> None:
    from repro.eval.knn import knn_classifier

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(100, d))
    ytr, yte = rng.integers(0, 100, n_train), rng.integers(0, 100, n_test)
    xtr = (centres[ytr] + 5 * rng.normal(size=(n_train, d))).astype(np.float32)
    xte = (centres[yte] + 5 * rng.normal(size=(n_test, d))).astype(np.float32)
    t = time.perf_counter()
    res = knn_classifier(xtr, ytr, xte, yte, k=(10, 20, 100, 200))
    dt = time.perf_counter() - t
    rows.append((f"weighted kNN train {n_train}x{d}, test {n_test}", "k=10,20,100,200 one pass",
                 f"{dt:.1f} s", f"top1@200 {res[200][0]:.1f}"))


def bench_metrics(rows: list, n: int) -> None:
    from repro.eval.clustering import ami, ari, clustering_accuracy, nmi

    rng = np.random.default_rng(0)
    for k in (10, 100, 1000):
        y = rng.integers(0, k, n)
        p = np.where(rng.random(n) < 0.7, y, rng.integers(0, k, n))
        timings = []
        for fn in (nmi, ari, ami, clustering_accuracy):
            t = time.perf_counter()
            fn(y, p)
            timings.append(f"{fn.__name__} {time.perf_counter() - t:.3f}")
        rows.append((f"clustering metrics, {n} labels", f"K={k}", " | ".join(timings) + " s", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="reduced sizes")
    parser.add_argument("--full", action="store_true", help="low-shot k in {1,2,4,8,16}")
    args = parser.parse_args()
    rows: list[tuple[str, str, str, str]] = []
    reduced = []
    if args.quick:
        bench_low_shot(rows, 1000, 512, (1, 4), 2, (0.1, 1.0, 10.0))
        reduced.append("low-shot: 1000x512, k in {1,4}, 2 draws, 3 costs")
        bench_knn(rows, 10000, 2000, 512)
        reduced.append("kNN: 10000 / 2000 rows")
    else:
        # the protocol's grid on 5000 x 2048: 5 draws, 11 costs, 20 classes per k
        from repro.eval.svm import VOC07_COSTS

        shots = (1, 2, 4, 8, 16) if args.full else (1, 4, 16)
        if not args.full:
            reduced.append("low-shot: k in {1,4,16} of {1,2,4,8,16} (--full for all)")
        bench_low_shot(rows, 5000, 2048, shots, 5, VOC07_COSTS)
        bench_knn(rows, 50000, 10000, 512)
    bench_metrics(rows, 60000)
    width = [max(len(r[i]) for r in rows) for i in range(4)]
    print(f"cpus: {os.cpu_count()}")
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, width)))
    if reduced:
        print("reduced: " + "; ".join(reduced))


if __name__ == "__main__":
    main()
