import numpy as np
import pytest

from repro.eval.knn import knn, knn_classifier
from repro.eval.types import Features


def _dense_reference(train_x, train_y, test_x, test_y, k, t, c):
    tr = train_x / np.linalg.norm(train_x, axis=1, keepdims=True)
    te = test_x / np.linalg.norm(test_x, axis=1, keepdims=True)
    sims = te @ tr.T
    top1 = top5 = 0
    for i in range(len(te)):
        nn_ids = np.argsort(-sims[i])[:k]
        votes = np.zeros(c)
        for j in nn_ids:
            votes[train_y[j]] += np.exp(sims[i, j] / t)
        ranked = np.argsort(-votes, kind="stable")
        top1 += ranked[0] == test_y[i]
        top5 += test_y[i] in ranked[:5]
    return 100 * top1 / len(te), 100 * top5 / len(te)


def test_equals_dense_numpy_reference():
    rng = np.random.default_rng(0)
    c = 7
    centres = rng.normal(size=(c, 12))
    ytr, yte = rng.integers(0, c, 300), rng.integers(0, c, 80)
    xtr = (centres[ytr] + 1.2 * rng.normal(size=(300, 12))).astype(np.float32)
    xte = (centres[yte] + 1.2 * rng.normal(size=(80, 12))).astype(np.float32)
    res = knn_classifier(xtr, ytr, xte, yte, k=(1, 10, 50), temperature=0.07, chunk=13)
    for k in (1, 10, 50):
        ref = _dense_reference(xtr, ytr, xte, yte, k, 0.07, c)
        assert res[k] == pytest.approx(ref), k


def test_protocol_keys_single_and_list():
    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(3), 20)
    x = (np.eye(3)[y] * 5 + rng.normal(size=(60, 3))).astype(np.float32)
    f = Features(x, y, np.arange(60))
    out = knn(f, f, seed=0, k=5)
    assert out["top1"] == 100.0 and out["selection"]["k"]["value"] == 5
    many = knn(f, f, seed=0, k=(5, 10))
    assert {"top1_k5", "top1_k10", "top5_k5", "top5_k10"} <= set(many)
