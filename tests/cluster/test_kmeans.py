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


def _torch_clustering_fit(x: np.ndarray, init: np.ndarray, *, spherical: bool, max_iter=300,
                          tol=1e-4):
    """Hzzone/torch_clustering PyTorchKMeans.fit_predict for one given initialisation,
    transcribed step by step (kmeans.py fit_predict/predict, __base__.py pairwise_*)."""
    import torch
    import torch.nn.functional as F

    X = torch.from_numpy(x)

    def metric(a, b, pairwise=True):
        if spherical:
            a, b = F.normalize(a), F.normalize(b)
            return 1 - a.mm(b.T) if pairwise else 1 - (a * b).sum(dim=1)
        return torch.cdist(a, b, p=2.0) if pairwise else ((a - b) ** 2).sum(dim=1).sqrt()

    def predict(state):
        inertia, labels = metric(X, state).min(dim=1)
        return labels, inertia.sum()

    k = len(init)
    tol = torch.mean(torch.var(X, dim=0)) * tol
    min_inertia, best_state, best_labels = float("inf"), None, None
    old_state = torch.from_numpy(init)
    old_labels, _ = predict(old_state)
    labels = old_labels
    for _ in range(max_iter):
        state = torch.zeros(k, X.size(1))
        counts = torch.zeros(k) + 1e-6
        classes, class_counts = torch.unique(labels, return_counts=True)
        counts[classes] = class_counts.float()
        state.index_add_(0, labels, X)
        state = state / counts.view(-1, 1)
        labels, inertia = predict(state)
        if inertia < min_inertia:
            min_inertia, best_state, best_labels = inertia, state, labels
        center_shift = metric(old_state, state, pairwise=False)
        if torch.equal(labels, old_labels) or center_shift.sum() <= tol:
            break
        old_labels, old_state = labels.clone(), state
    return best_state.numpy(), best_labels.numpy()


def _arc(degrees, n, spread, rng):
    theta = np.deg2rad(degrees + spread * rng.standard_normal(n))
    return np.stack([np.cos(theta), np.sin(theta)], 1).astype(np.float32)


def test_keep_leaves_an_empty_cluster_empty_with_a_zero_centroid():
    rng = np.random.default_rng(0)
    x = np.concatenate([_arc(0, 60, 8, rng), _arc(90, 60, 8, rng)])
    # the third centroid points away from every point: it wins none at the first assignment
    init = np.array([[1, 0], [0, 1], [-1, 0]], np.float32)
    keep = faiss_kmeans(x, 3, init=init, spherical=True, niter=300, empty_clusters="keep")
    assert np.bincount(keep.assignments, minlength=3).tolist() == [60, 60, 0]
    np.testing.assert_array_equal(keep.centroids[2], [0, 0])  # torch_clustering: sum / 1e-6
    np.testing.assert_allclose(np.linalg.norm(keep.centroids[:2], axis=1), 1, atol=1e-6)
    state, labels = _torch_clustering_fit(x, init, spherical=True)
    np.testing.assert_array_equal(keep.assignments, labels)
    np.testing.assert_array_equal(state[2], [0, 0])
    np.testing.assert_allclose(keep.centroids[:2], state[:2] / np.linalg.norm(
        state[:2], axis=1, keepdims=True), atol=1e-6)
    np.testing.assert_allclose(keep.distances, ((x - keep.centroids[keep.assignments]) ** 2)
                               .sum(1), atol=1e-5)
    # faiss (PCL's k-means) re-seeds the empty cluster by splitting a populated one
    split = faiss_kmeans(x, 3, init=init, spherical=True, niter=300, empty_clusters="split")
    assert (np.bincount(split.assignments, minlength=3) > 0).all()


@pytest.mark.parametrize("spherical", [True, False])
def test_keep_equals_torch_clustering_step_by_step(spherical):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 8)).astype(np.float32)
    if spherical:
        x /= np.linalg.norm(x, axis=1, keepdims=True)
    init = x[rng.permutation(400)[:7]].copy()
    if not spherical:  # far away: empty at first, then its zero centroid (the origin) wins points
        init[6] = -10 * (np.abs(init[6]) + 3)
    got = faiss_kmeans(x, 7, init=init, spherical=spherical, niter=300, empty_clusters="keep")
    state, labels = _torch_clustering_fit(x, init, spherical=spherical)
    np.testing.assert_array_equal(got.assignments, labels)
    if spherical:
        state = state / np.maximum(np.linalg.norm(state, axis=1, keepdims=True), 1e-12)
    np.testing.assert_allclose(got.centroids, state, atol=1e-5)


def test_keep_restarts_take_the_lowest_inertia_and_options_are_checked():
    x, _ = _blobs()
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    runs = [faiss_kmeans(x, 6, init="kmeans++", nredo=1, seed=s, spherical=True, niter=300,
                         empty_clusters="keep") for s in range(3)]
    best = faiss_kmeans(x, 6, init="kmeans++", nredo=3, seed=0, spherical=True, niter=300,
                        empty_clusters="keep")
    assert best.inertia == pytest.approx(min(r.inertia for r in runs), rel=1e-6)
    with pytest.raises(ValueError, match="allowed: 'split', 'keep'"):
        faiss_kmeans(x, 2, empty_clusters="drop")
    with pytest.raises(ValueError, match="need"):
        faiss_kmeans(x, 2, init=np.zeros((3, 8), np.float32))
