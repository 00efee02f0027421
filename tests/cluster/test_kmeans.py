import numpy as np
import pytest

from repro.cluster import faiss_kmeans, faiss_knn_search


def _blobs(n_per=200, k=4, d=8, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)) * 10
    y = np.repeat(np.arange(k), n_per)
    return (centres[y] + rng.normal(size=(len(y), d))).astype(np.float32), y


@pytest.mark.parametrize("init", ["random", "kmeans++"])
def test_recovers_blobs_and_reports_consistent_distances(init):
    x, y = _blobs()
    r = faiss_kmeans(x, 4, niter=20, nredo=3, init=init, seed=1)
    assert r.centroids.shape == (4, 8) and r.centroids.dtype == np.float32
    assert r.assignments.dtype == np.int64
    # each true blob maps to exactly one cluster
    assert all(len(np.unique(r.assignments[y == c])) == 1 for c in range(4))
    direct = ((x - r.centroids[r.assignments]) ** 2).sum(1)
    np.testing.assert_allclose(r.distances, direct, rtol=1e-4, atol=1e-3)
    assert r.inertia == pytest.approx(direct.sum(), rel=1e-4)
    # assignments are to the nearest centroid
    all_d = ((x[:, None] - r.centroids[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(r.assignments, all_d.argmin(1))


def test_spherical_unit_centroids_and_determinism():
    x, _ = _blobs()
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    a = faiss_kmeans(x, 4, spherical=True, init="kmeans++", nredo=2, niter=30, seed=0)
    np.testing.assert_allclose(np.linalg.norm(a.centroids, axis=1), 1, atol=1e-5)
    b = faiss_kmeans(x, 4, spherical=True, init="kmeans++", nredo=2, niter=30, seed=0)
    np.testing.assert_array_equal(a.assignments, b.assignments)


def test_more_restarts_never_worse():
    x = np.random.default_rng(0).normal(size=(500, 4)).astype(np.float32)
    one = faiss_kmeans(x, 8, nredo=1, init="kmeans++", seed=0)
    five = faiss_kmeans(x, 8, nredo=5, init="kmeans++", seed=0)
    assert five.inertia <= one.inertia + 1e-6


def test_errors_and_gpu_guard():
    x = np.zeros((5, 2), np.float32)
    with pytest.raises(ValueError, match="allowed"):
        faiss_kmeans(x, 2, init="forgy")
    with pytest.raises(ValueError):
        faiss_kmeans(x, 6)
    import faiss
    if faiss.get_num_gpus() == 0:
        with pytest.raises(RuntimeError, match="GPU"):
            faiss_kmeans(x, 2, gpu=True)


def test_knn_search_matches_numpy():
    rng = np.random.default_rng(0)
    base, q = rng.normal(size=(300, 16)).astype(np.float32), rng.normal(size=(50, 16))
    s, i = faiss_knn_search(q, base, 5, chunk=7)
    ref = np.argsort(-(q @ base.T), axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(i, ref)
    _, i2 = faiss_knn_search(q, base, 3, metric="l2")
    np.testing.assert_array_equal(i2, (((q[:, None] - base[None]) ** 2).sum(-1)).argsort(1)[:, :3])
