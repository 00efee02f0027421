"""Binary linear SVMs with liblinear, trained as an embarrassingly parallel grid.

The problem (features) is converted to liblinear's format ONCE from a CSR matrix; every
fit in the grid (class x cost x low-shot sample) only swaps the label vector and, for
low-shot samples, the row subset (a view onto the same feature nodes, no copy).

Solver settings follow Goyal et al. 2019 (the low-shot / VOC07 SVM protocol):
``-s 1`` (L2-regularised squared hinge, dual coordinate descent), class weights
{+1: 2, -1: 1}, bias feature 1 (scikit-learn ``LinearSVC``'s intercept, regularised), tol
1e-4 (liblinear's own default is 0.1; we always pass it explicitly).

NOTE: PCL's code (``eval_svm_voc.py``) fits scikit-learn ``LinearSVC(dual=True,
max_iter=2000, tol=1e-4)``, whose bundled liblinear runs up to 2000 dual coordinate-descent
passes. liblinear-official 2.50 (ours) caps ``-s 1`` at 300 passes (``linear.cpp``
``train_one``: ``dual_solver_max_iter = 300``) and, when a fit reaches the cap, prints
"Switching to use -s 2" and re-solves the same problem (L2-regularised squared hinge, bias
regularised) with its primal trust-region Newton solver, at tolerance
0.1 x eps x max(min(#pos, #neg), 1) / #instances. No option sets the cap (the Python
binding parses only -s -c -p -n -e -B -v -w -q -C -R), so there is no ``max_iter``
parameter; the two reach the same optimum up to their stopping rules.
NOTE: liblinear draws its coordinate order from libc ``rand()``, a process-global
generator it never seeds. We call ``srand(seed)`` before every fit, so a fit depends only
on its own inputs, not on what ran before it in the process. Threads would share that
generator (results would depend on scheduling), so the grid runs in processes.
"""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor
from ctypes import POINTER, c_double, c_uint64, cast
from typing import Sequence

import numpy as np
from liblinear.liblinear import feature_node, parameter, problem, toPyModel
from liblinear.liblinear import liblinear as _clib
from scipy import sparse

_LIBC = ctypes.CDLL(None)
POS_WEIGHT, NEG_WEIGHT = 2.0, 1.0
LIBLINEAR_VERSION = ctypes.c_int.in_dll(_clib, "liblinear_version").value  # e.g. 250 = 2.50


def solver_record(tol: float) -> dict:
    """What a fit ran, for a result's artifacts (2.50: -s 1, -s 2 after 300 passes, see NOTE)."""
    return {"liblinear": "-s 1", "version": LIBLINEAR_VERSION, "tol": tol,
            "class_weight": {"+1": POS_WEIGHT, "-1": NEG_WEIGHT}, "bias": 1.0}


def svm_normalize(x: np.ndarray) -> np.ndarray:
    """x / (||x|| + 1e-5), row-wise, float32 (the protocol's feature normalisation)."""
    x = np.asarray(x, np.float32)
    return x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-5)


class LiblinearData:
    """Features converted once to liblinear's sparse format, with a bias feature of 1."""

    def __init__(self, x: np.ndarray):
        x = np.ascontiguousarray(x, np.float64)
        self.n, self.d = x.shape
        self._full = problem(np.zeros(self.n), sparse.csr_matrix(x), bias=1)
        self._row_ptrs = np.ctypeslib.as_array(
            cast(self._full.x, POINTER(c_uint64)), (self.n,)
        ).copy()

    def _problem(self, rows: np.ndarray | None, labels: np.ndarray) -> problem:
        if rows is None:
            rows = np.arange(self.n)
        sub = problem.__new__(problem)
        sub.x_space = self._full.x_space  # keep the feature nodes alive
        sub.l, sub.n, sub.bias = len(rows), self._full.n, self._full.bias
        sub._x = (POINTER(feature_node) * len(rows))()
        np.ctypeslib.as_array(cast(sub._x, POINTER(c_uint64)), (len(rows),))[:] = (
            self._row_ptrs[rows]
        )
        sub.x = sub._x
        sub._y = (c_double * len(rows))()
        np.ctypeslib.as_array(sub._y, (len(rows),))[:] = labels
        sub.y = sub._y
        return sub

    def fit(self, labels: np.ndarray, cost: float, *, rows: np.ndarray | None = None,
            tol: float = 1e-4, seed: int = 0) -> np.ndarray:
        """Weights (D + 1,) of a binary SVM, decision = x @ w[:D] + w[D]; labels in {+1, -1}."""
        labels = np.asarray(labels, np.float64)
        if (labels > 0).all() or (labels < 0).all():  # one class only: constant decision
            w = np.zeros(self.d + 1)
            w[-1] = 1.0 if labels[0] > 0 else -1.0
            return w
        param = parameter(f"-s 1 -c {float(cost)!r} -e {float(tol)!r} "
                          f"-w1 {POS_WEIGHT} -w-1 {NEG_WEIGHT} -q")
        _LIBC.srand(seed)
        model = toPyModel(_clib.train(self._problem(rows, labels), param))
        w = np.ctypeslib.as_array(model.w, (model.nr_feature + 1,)).astype(np.float64)
        return w if model.get_labels()[0] == 1 else -w  # liblinear scores its first label


# One fit of the grid: (row subset or None, labels in {+1,-1}, cost).
FitTask = tuple
_WORKER_DATA: LiblinearData | None = None


def _init_worker(x: np.ndarray) -> None:
    global _WORKER_DATA
    _WORKER_DATA = LiblinearData(x)


def _fit_in_worker(args) -> np.ndarray:
    rows, labels, cost, tol = args
    return _WORKER_DATA.fit(labels, cost, rows=rows, tol=tol)


def fit_grid(x: np.ndarray, tasks: Sequence[FitTask], *, tol: float = 1e-4,
             n_jobs: int = 2) -> np.ndarray:
    """Weights (T x D+1) for every (rows, labels, cost) task, over ``n_jobs`` processes.

    ``x`` must already be normalised. Results do not depend on ``n_jobs``.
    """
    jobs = [(rows, labels, cost, tol) for rows, labels, cost in tasks]
    n_jobs = max(1, min(n_jobs if n_jobs > 0 else os.cpu_count() or 1, len(jobs)))
    if n_jobs == 1:
        data = LiblinearData(x)
        return np.stack([data.fit(lab, c, rows=r, tol=t) for r, lab, c, t in jobs])
    # fork shares x copy-on-write; spawn (non-Linux) pickles it once per worker
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    # large costs converge slowest: start them first, restore the order afterwards
    order = sorted(range(len(jobs)), key=lambda i: -jobs[i][2])
    with ProcessPoolExecutor(n_jobs, mp_context=ctx, initializer=_init_worker,
                             initargs=(x,)) as pool:
        chunk = max(1, len(jobs) // (8 * n_jobs))
        fitted = list(pool.map(_fit_in_worker, [jobs[i] for i in order], chunksize=chunk))
    out = np.empty((len(jobs), x.shape[1] + 1))
    out[order] = np.stack(fitted)
    return out


def decision_values(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """N x T decision values of T fitted SVMs on normalised features ``x``."""
    return x.astype(np.float64) @ weights[:, :-1].T + weights[:, -1]
