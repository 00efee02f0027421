import itertools

import numpy as np
import pytest
from sklearn import metrics as skm

from repro.eval.clustering import (
    ami,
    ari,
    cluster_imbalance,
    clustering,
    clustering_accuracy,
    clustering_metrics,
    nmi,
    uniformity_std,
)
from repro.eval.types import Features


def _brute_force_acc(y_true, y_pred):
    classes, clusters = np.unique(y_true), np.unique(y_pred)
    best = 0
    if len(clusters) <= len(classes):
        maps = (dict(zip(clusters, p)) for p in itertools.permutations(classes, len(clusters)))
    else:  # each class gets a distinct cluster; the other clusters are wrong
        maps = ({cl: c for c, cl in zip(classes, p)}
                for p in itertools.permutations(clusters, len(classes)))
    for m in maps:
        best = max(best, sum(m.get(p) == t for p, t in zip(y_pred, y_true)))
    return best / len(y_true)


LABELINGS = [
    # (n_classes, n_clusters, seed)
    (3, 3, 0), (3, 5, 1), (5, 3, 2), (4, 4, 3), (2, 6, 4), (6, 2, 5),
]


@pytest.mark.parametrize("n_classes,n_clusters,seed", LABELINGS)
def test_acc_equals_brute_force(n_classes, n_clusters, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, 40)
    p = rng.integers(0, n_clusters, 40) * 7 + 3  # arbitrary cluster ids
    assert clustering_accuracy(y, p) == pytest.approx(_brute_force_acc(y, p))


@pytest.mark.parametrize("n_classes,n_clusters,seed", LABELINGS + [(10, 100, 6)])
def test_metrics_equal_sklearn(n_classes, n_clusters, seed):
    rng = np.random.default_rng(seed)
    y, p = rng.integers(0, n_classes, 500), rng.integers(0, n_clusters, 500)
    assert nmi(y, p) == pytest.approx(skm.normalized_mutual_info_score(y, p))
    assert ari(y, p) == pytest.approx(skm.adjusted_rand_score(y, p))
    assert ami(y, p) == pytest.approx(skm.adjusted_mutual_info_score(y, p))


def test_adversarial_labelings():
    y = np.array([0, 0, 1, 1, 2, 2])
    assert clustering_accuracy(y, np.array([5, 5, 9, 9, 1, 1])) == 1.0  # permuted ids
    assert clustering_accuracy(y, np.zeros(6, int)) == pytest.approx(1 / 3)  # one cluster
    assert clustering_accuracy(y, np.arange(6)) == pytest.approx(1 / 2)  # singletons
    m = clustering_metrics(y, np.array([5, 5, 9, 9, 1, 1]))
    assert m == pytest.approx({"nmi": 1.0, "acc": 1.0, "ari": 1.0, "ami": 1.0})
    with pytest.raises(ValueError, match="allowed"):
        clustering_metrics(y, y, ["f1"])


def test_imbalance_and_uniformity():
    assert cluster_imbalance(np.array([0, 0, 0, 1])) == pytest.approx(1 / 3)
    assert cluster_imbalance(np.array([0, 0, 1]), k=3) == 0.0  # an empty cluster
    rng = np.random.default_rng(0)
    d = 64
    assert uniformity_std(rng.normal(size=(20000, d))) == pytest.approx(1 / np.sqrt(d), rel=0.02)
    assert uniformity_std(np.ones((10, d)) + 1e-9 * rng.normal(size=(10, d))) < 1e-6


def test_protocol_clusters_blobs_on_train_plus_test():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 16)) * 5

    def part(n, s):
        r = np.random.default_rng(s)
        y = r.integers(0, 4, n)
        return Features((centres[y] + r.normal(size=(n, 16))).astype(np.float32), y,
                        np.arange(n))

    out = clustering(part(300, 1), part(100, 2), seed=0, restarts=2, niter=20)
    assert out["nmi"] == pytest.approx(1.0) and out["acc"] == 1.0
    assert sum(out["artifacts"]["cluster_sizes"]) == 400
    assert out["selection"]["k"] == {"value": 4, "policy": "fixed"}
    only_test = clustering(part(300, 1), part(100, 2), seed=0, on="test", restarts=1, niter=20)
    assert sum(only_test["artifacts"]["cluster_sizes"]) == 100
    with pytest.raises(ValueError, match="allowed"):
        clustering(part(10, 1), part(10, 2), seed=0, on="val")


def test_protocol_defaults_to_torch_clustering_and_passes_faiss_for_pcl(monkeypatch):
    import repro.eval.clustering as module

    seen = []
    real = module.faiss_kmeans

    def spy(*args, **kwargs):
        seen.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "faiss_kmeans", spy)
    x = np.array([[1.0, 0.0]] * 20 + [[0.0, 1.0]] * 20, np.float32)
    y = np.repeat([0, 1], 20)
    train, test = Features(x[::2], y[::2], np.arange(20)), Features(x[1::2], y[1::2], np.arange(20))
    out = clustering(train, test, seed=0, k=3, restarts=2, niter=20)  # ProPos's evaluation
    assert seen[-1]["empty_clusters"] == "keep" and seen[-1]["tol"] == 1e-4
    assert out["artifacts"]["cluster_sizes"] == [20, 20, 0] and out["imbalance"] == 0.0
    clustering(train, test, seed=0, k=3, restarts=2, niter=20, empty_clusters="split")  # PCL
    assert seen[-1]["empty_clusters"] == "split"
