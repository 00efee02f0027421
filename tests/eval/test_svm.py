import random

import numpy as np
import pytest
import torch

from repro.eval.liblinear_svm import LiblinearData, fit_grid, svm_normalize
from repro.eval.low_shot import (
    class_members,
    low_shot_draws,
    low_shot_svm_places205,
    low_shot_svm_voc07,
    voc_class_members,
)
from repro.eval.svm import svm_places205, svm_voc07, voc_binary_labels
from repro.eval.types import Features


def _voc(n, c=5, d=32, separable=True, seed=0):
    rng = np.random.default_rng(seed)
    y = np.where(rng.random((n, c)) < 0.3, 1, -1).astype(np.int8)
    y[rng.random((n, c)) < 0.05] = 0  # difficult-only
    x = rng.normal(size=(n, d)).astype(np.float32) * 0.1
    if separable:
        x[:, :c] += (y == 1) * 5.0
    return Features(x, y, np.arange(n) + 10_000)


def test_voc_separable_gives_100_map():
    out = svm_voc07(_voc(300), _voc(200, seed=1), seed=0, costs=(0.1, 1.0))
    assert out["mAP"] == pytest.approx(100.0)
    assert out["selection"]["cost"]["policy"] == "test"
    assert len(out["artifacts"]["per_class_ap"]) == 5


def test_voc_random_features_near_chance():
    tr, te = _voc(400, separable=False), _voc(1000, separable=False, seed=1)
    out = svm_voc07(tr, te, seed=0, costs=(1.0,), n_jobs=1)
    prevalence = 100 * (te.y == 1).mean()
    assert abs(out["mAP"] - prevalence) < 8
    assert out["selection"]["cost"]["policy"] == "fixed"


def test_difficult_counts_as_negative():
    y = np.array([[1, 0, -1]], np.int8)
    assert voc_binary_labels(y).tolist() == [[1, -1, -1]]


def test_val_policy_selects_on_train_split():
    out = svm_voc07(_voc(300), _voc(200, seed=1), seed=0, costs=(0.1, 1.0), cost_policy="val")
    assert out["selection"]["cost"]["policy"] == "val"
    assert out["mAP"] > 99
    assert set(out["artifacts"]["val_indices"]) <= set(range(10_000, 10_300))
    with pytest.raises(ValueError, match="allowed"):
        svm_voc07(_voc(50), _voc(50), seed=0, cost_policy="best")


def test_parallel_grid_equals_sequential():
    x = svm_normalize(np.random.default_rng(0).normal(size=(200, 20)))
    tasks = [(None, np.where(x[:, i] > 0.1, 1, -1), c) for i in range(3) for c in (0.1, 10)]
    tasks.append((np.arange(0, 200, 3), np.where(x[::3, 0] > 0, 1, -1), 1.0))
    np.testing.assert_array_equal(fit_grid(x, tasks, n_jobs=1), fit_grid(x, tasks, n_jobs=2))


def test_liblinear_weights_give_liblinear_decisions():
    rng = np.random.default_rng(1)
    x = svm_normalize(rng.normal(size=(100, 6)))
    y = np.where(x[:, 0] + 0.1 * rng.normal(size=100) > 0, 1, -1)
    w = LiblinearData(x).fit(y, 1.0)
    assert (np.sign(x @ w[:-1] + w[-1]) == y).mean() > 0.9
    w_neg_first = LiblinearData(x[::-1]).fit(y[::-1], 1.0)  # first label seen is the other
    assert np.sign(w_neg_first[0]) == np.sign(w[0])


def test_places_one_vs_rest_top1():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 300)
    x = (rng.normal(size=(300, 8)) + 6 * np.eye(8)[y]).astype(np.float32)
    f = Features(x, y, np.arange(300))
    assert svm_places205(f, f, seed=0, costs=(1.0,))["top1"] == 100.0


def _pcl_low_shot_draws(y, shots, costs, n_run, seed):
    """salesforce/PCL eval_svm_voc.py main (random.seed, the k -> cost -> run loop) and voc.py
    Voc2007Classification.convert_low_shot, transcribed; an image is (row id, label tensor)."""
    saved = random.getstate()
    random.seed(seed)
    images = [(i, torch.from_numpy(y[i].astype(np.float32))) for i in range(len(y))]
    draws = []
    try:
        for k in shots:
            for _cost in costs:
                for _run in range(n_run):
                    label2img = {c: [] for c in range(y.shape[1])}
                    for img in images:
                        for c in torch.where(img[1] > 0)[0]:
                            label2img[c.item()].append(img)
                    images_lowshot = []
                    for _c, imlist in label2img.items():
                        random.shuffle(imlist)
                        images_lowshot += imlist[:k]
                    draws.append([i for i, _ in images_lowshot])
    finally:
        random.setstate(saved)
    return draws


def test_low_shot_draws_are_pcl_convert_low_shot_redrawn_per_cost():
    y = _voc(60, c=4, seed=2).y  # 30 % positives per class: many images have two classes
    shots, costs = [1, 2, 4], [0.1, 1.0, 10.0]
    ours = low_shot_draws(voc_class_members(y), shots, len(costs), 5, seed=3)
    flat = [rows.tolist() for per_cost in ours for runs in per_cost for rows in runs]
    assert flat == _pcl_low_shot_draws(y, shots, costs, 5, seed=3)
    k4 = ours[2]
    assert any(len(set(rows.tolist())) < len(rows) for runs in k4 for rows in runs)  # duplicates
    assert all(len(rows) == 4 * 4 for runs in k4 for rows in runs)
    assert not np.array_equal(k4[0][0], k4[1][0])  # each cost draws its own samples
    labels = np.repeat(np.arange(5), 10)
    b = low_shot_draws(class_members(labels), [3], 1, 1, seed=0)[0][0][0]
    assert np.bincount(labels[b]).tolist() == [3] * 5


def test_low_shot_voc_reports_mean_std_and_samples():
    tr, te = _voc(200), _voc(150, seed=1)
    out = low_shot_svm_voc07(tr, te, seed=1, shots=(1, 2), num_samples=3, costs=(0.1, 1.0))
    assert out["mAP_k2"] > 95 and out["mAP_k1_std"] >= 0
    samples = out["artifacts"]["samples"]["k1"]
    expected = _pcl_low_shot_draws(tr.y, (1, 2), (0.1, 1.0), 3, seed=1)
    assert samples == {"0.1": [list(tr.index[r]) for r in expected[0:3]],
                       "1.0": [list(tr.index[r]) for r in expected[3:6]]}
    again = low_shot_svm_voc07(tr, te, seed=1, shots=(1, 2), num_samples=3, costs=(0.1, 1.0),
                               n_jobs=1)
    assert again["mAP_k1"] == out["mAP_k1"] and again["artifacts"] == out["artifacts"]
    assert out["selection"]["cost_k1"]["policy"] == "test"


def test_low_shot_places_top1():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 200)
    x = (rng.normal(size=(200, 8)) + 6 * np.eye(8)[y]).astype(np.float32)
    f = Features(x, y, np.arange(200))
    out = low_shot_svm_places205(f, f, seed=0, shots=(1,), num_samples=2, costs=(1.0,))
    assert out["top1_k1"] > 95


def _hard_problem():
    rng = np.random.default_rng(0)
    x = svm_normalize(rng.normal(size=(400, 64)))
    return x, np.where(rng.random(400) < 0.5, 1.0, -1.0)  # random labels: far from separable


_VERBOSE_FIT = """
import numpy as np
from scipy import sparse
from liblinear.liblinear import liblinear, parameter, problem
rng = np.random.default_rng(0)
x = rng.normal(size=(400, 64)).astype(np.float32)
x = x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-5)
y = np.where(rng.random(400) < 0.5, 1.0, -1.0)
liblinear.train(problem(y, sparse.csr_matrix(x.astype(np.float64)), bias=1),
                parameter("-s 1 -c 1000 -e 0.0001 -w1 2 -w-1 1"))
"""


def test_liblinear_caps_the_dual_solver_at_300_passes_then_solves_the_primal():
    """The NOTE in liblinear_svm.py: liblinear 2.50 stops -s 1 at 300 passes and re-solves with
    -s 2; no max_iter reaches it, so the SVM protocols have none."""
    import inspect
    import subprocess
    import sys

    from liblinear.liblinear import liblinear as clib
    from liblinear.liblinear import parameter, problem, toPyModel
    from scipy import sparse

    from repro.eval.liblinear_svm import LIBLINEAR_VERSION

    log = subprocess.run([sys.executable, "-c", _VERBOSE_FIT], capture_output=True, text=True,
                         check=True).stdout  # liblinear prints from C: another process
    assert "optimization finished, #iter = 300" in log and "Switching to use -s 2" in log
    x, y = _hard_problem()
    ours = LiblinearData(x).fit(y, 1000.0)
    tight = toPyModel(clib.train(problem(y, sparse.csr_matrix(x.astype(np.float64)), bias=1),
                                 parameter("-s 2 -c 1000 -e 1e-8 -w1 2 -w-1 1 -q")))
    w = np.ctypeslib.as_array(tight.w, (65,)) * (1 if tight.get_labels()[0] == 1 else -1)
    np.testing.assert_allclose(ours, w, rtol=1e-3, atol=1e-3)  # the primal optimum
    assert LIBLINEAR_VERSION == 250
    for fn in (svm_voc07, svm_places205, low_shot_svm_voc07, low_shot_svm_places205):
        assert "max_iter" not in inspect.signature(fn).parameters
    rec = svm_voc07(_voc(60), _voc(40, seed=1), seed=0, costs=(1.0,))["artifacts"]["solver"]
    assert rec["version"] == 250 and "max_iter" not in rec
