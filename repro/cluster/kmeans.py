"""k-means and exact nearest-neighbour search with faiss.

``faiss_kmeans`` serves two callers with different recipes:

- PCL's E-step (salesforce/PCL ``run_kmeans``): faiss ``Clustering``, niter=20, nredo=5,
  max_points_per_centroid=1000, min_points_per_centroid=10, flat L2 index, seed per
  granularity -> ``faiss_kmeans(x, k, niter=20, nredo=5, seed=i)``.
- ProPos (Hzzone/torch_clustering ``PyTorchKMeans``): spherical k-means, k-means++ init, up
  to 300 iterations, tol 1e-4, 10 restarts, lowest inertia wins ->
  ``faiss_kmeans(x, k, niter=300, nredo=10, spherical=True, init="kmeans++",
  empty_clusters="keep")``.

Empty clusters: faiss re-seeds an empty cluster by splitting a large one
(``empty_clusters="split"``, PCL and PAUC). torch_clustering does not
(``empty_clusters="keep"``, our own Lloyd loop, ``_lloyd_keep_empty``): it divides the summed
members by ``counts + 1e-6`` (torch_clustering/kmeans/kmeans.py ``fit_predict``, centroid
update), so an empty cluster's centroid becomes the zero vector. Under the cosine metric a
zero centroid is at distance 1 - 0 = 1 from every point (``pairwise_cosine`` in
torch_clustering/__base__.py normalises it to zero), so it wins a point only if that point has
a negative cosine with every other centroid; otherwise the cluster stays empty to the end.
The loop also follows torch_clustering's stopping rule and selection: stop when no label
changes, or when the summed centroid shift (cosine distance of old and new centroids) is at
most ``tol`` x the mean per-dimension variance of x; keep the state of lowest inertia (sum of
cosine distances, Euclidean distances when not spherical) over every iteration of every restart.
NOTE: under ``"split"`` faiss always runs ``niter`` iterations (no tol); with ProPos's 300
iterations that is the converged result, only slower.
"""

from __future__ import annotations

from dataclasses import dataclass

import faiss
import numpy as np
from scipy import sparse


@dataclass
class KMeansResult:
    centroids: np.ndarray  # k x D float32 (unit norm when spherical; 0 for a kept empty cluster)
    assignments: np.ndarray  # N int64
    inertia: float  # sum of squared L2 distances to the assigned centroid
    distances: np.ndarray  # N float32, squared L2 distance to the own centroid


def _use_gpu(gpu: bool | None) -> bool:
    available = hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0
    if gpu and not available:
        raise RuntimeError(
            "faiss_kmeans(gpu=True) but this faiss build has no GPU; install faiss-gpu "
            "(pip install 'repro[gpu]') or pass gpu=None/False"
        )
    return available if gpu is None else bool(gpu)


def flat_index(d: int, *, inner_product: bool, gpu: bool | None = None) -> "faiss.Index":
    """An exact (flat) index; on GPU 0 when ``gpu`` (None = when faiss sees a GPU)."""
    if _use_gpu(gpu):
        res = faiss.StandardGpuResources()
        cfg = faiss.GpuIndexFlatConfig()
        cfg.useFloat16 = False
        cfg.device = 0
        cls = faiss.GpuIndexFlatIP if inner_product else faiss.GpuIndexFlatL2
        index = cls(res, d, cfg)
        index.referenced_resources = res  # keep the resources alive with the index
        return index
    return faiss.IndexFlatIP(d) if inner_product else faiss.IndexFlatL2(d)


def _kmeans_plusplus_init(x: np.ndarray, k: int, seed: int) -> np.ndarray:
    from sklearn.cluster import kmeans_plusplus

    centers, _ = kmeans_plusplus(x, k, random_state=seed)
    return np.ascontiguousarray(centers, dtype=np.float32)


def _one_run(
    x: np.ndarray, k: int, *, niter: int, nredo: int, seed: int, spherical: bool,
    init_centroids: np.ndarray | None, max_points_per_centroid: int,
    min_points_per_centroid: int, gpu: bool | None, verbose: bool,
) -> np.ndarray:
    d = x.shape[1]
    clus = faiss.Clustering(d, k)
    clus.niter = niter
    clus.nredo = nredo
    clus.seed = seed
    clus.spherical = spherical
    clus.verbose = verbose
    clus.max_points_per_centroid = max_points_per_centroid
    clus.min_points_per_centroid = min_points_per_centroid
    if init_centroids is not None:
        # faiss starts from centroids already present in the object
        faiss.copy_array_to_vector(init_centroids.ravel(), clus.centroids)
    clus.train(x, flat_index(d, inner_product=spherical, gpu=gpu))
    return faiss.vector_to_array(clus.centroids).reshape(k, d).astype(np.float32)


EMPTY_CLUSTERS = ("split", "keep")


def faiss_kmeans(
    x: np.ndarray,
    k: int,
    *,
    niter: int = 20,
    nredo: int = 1,
    seed: int = 0,
    spherical: bool = False,
    init: str | np.ndarray = "random",
    empty_clusters: str = "split",
    tol: float = 1e-4,
    max_points_per_centroid: int = 1000,
    min_points_per_centroid: int = 10,
    gpu: bool | None = None,
    verbose: bool = False,
) -> KMeansResult:
    """k-means of ``x`` (N x D) into ``k`` clusters; the restart with the lowest inertia wins.

    ``spherical`` normalises centroids after each update and assigns by inner product.
    ``init="kmeans++"`` seeds each of the ``nredo`` restarts with scikit-learn's
    ``kmeans_plusplus`` (seeds ``seed .. seed+nredo-1``); ``init="random"`` lets faiss draw
    ``nredo`` random initialisations itself and keep the best (under ``"keep"``: k distinct
    rows drawn with seed ``seed + r``); a k x D array is the one initialisation (nredo = 1).
    ``empty_clusters``: ``"split"`` (faiss) or ``"keep"`` (torch_clustering, see the module
    docstring; ``tol`` is its relative stopping tolerance, the ``*_points_per_centroid``
    subsampling does not apply: every point is clustered).
    """
    if empty_clusters not in EMPTY_CLUSTERS:
        raise ValueError(f"faiss_kmeans: empty_clusters={empty_clusters!r}; allowed: "
                         f"{', '.join(map(repr, EMPTY_CLUSTERS))}")
    given = isinstance(init, np.ndarray)
    if not given and init not in ("random", "kmeans++"):
        raise ValueError(f"faiss_kmeans: init={init!r}; allowed: 'random', 'kmeans++', "
                         "or a k x D array")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2 or not 1 <= k <= len(x):
        raise ValueError(f"faiss_kmeans: need N x D data with 1 <= k <= N; got {x.shape}, k={k}")
    if given and init.shape != (k, x.shape[1]):
        raise ValueError(f"faiss_kmeans: init array of shape {init.shape}; need {(k, x.shape[1])}")
    if empty_clusters == "keep":
        return _kmeans_keep_empty(x, k, init, niter=niter, nredo=1 if given else nredo,
                                  seed=seed, spherical=spherical, tol=tol, gpu=gpu)
    opts = dict(niter=niter, spherical=spherical, gpu=gpu, verbose=verbose,
                max_points_per_centroid=max_points_per_centroid,
                min_points_per_centroid=min_points_per_centroid)
    if given:
        candidates = [_one_run(x, k, nredo=1, seed=seed,
                               init_centroids=np.ascontiguousarray(init, np.float32), **opts)]
    elif init == "random":
        candidates = [_one_run(x, k, nredo=nredo, seed=seed, init_centroids=None, **opts)]
    else:
        candidates = [
            _one_run(x, k, nredo=1, seed=seed + r,
                     init_centroids=_kmeans_plusplus_init(x, k, seed + r), **opts)
            for r in range(nredo)
        ]
    best = None
    for centroids in candidates:
        assign, dist = _assign(x, centroids, spherical=spherical, gpu=gpu)
        inertia = float(dist.sum(dtype=np.float64))
        if best is None or inertia < best.inertia:
            best = KMeansResult(centroids, assign, inertia, dist)
    return best


def _unit_rows(a: np.ndarray) -> np.ndarray:
    """Rows divided by max(||row||, 1e-12), as torch's F.normalize: zero rows stay zero."""
    return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)


def _member_means(x: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """k x D mean of each cluster's rows; an empty cluster's row is 0 (torch_clustering)."""
    members = sparse.csr_matrix((np.ones(len(x), np.float32), (labels, np.arange(len(x)))),
                                shape=(k, len(x)))  # k x N one-hot
    counts = np.bincount(labels, minlength=k)
    return np.asarray(members @ x, np.float32) / np.maximum(counts, 1)[:, None]


def _lloyd_keep_empty(x: np.ndarray, init: np.ndarray, *, niter: int, spherical: bool,
                      tol: float, gpu: bool | None) -> tuple[np.ndarray, np.ndarray, float]:
    """One initialisation of torch_clustering's ``PyTorchKMeans.fit_predict``.

    Returns the lowest-inertia (centroids k x D as the mean of their members, assignments N,
    inertia) over the iterations; inertia sums cosine distances (spherical) or Euclidean
    distances, as torch_clustering's ``predict`` does. Empty clusters keep a zero centroid.
    """
    k, d = init.shape
    points = _unit_rows(x) if spherical else x
    index = flat_index(d, inner_product=spherical, gpu=gpu)

    def predict(state):  # nearest centroid under the cosine / Euclidean metric
        index.reset()
        index.add(np.ascontiguousarray(_unit_rows(state) if spherical else state, np.float32))
        score, label = index.search(points, 1)
        dist = 1.0 - score[:, 0] if spherical else np.sqrt(np.maximum(score[:, 0], 0))
        return label[:, 0].astype(np.int64), float(dist.sum(dtype=np.float64))

    def shift(old, new):  # per-centroid distance between consecutive states
        if spherical:
            return 1.0 - (_unit_rows(old) * _unit_rows(new)).sum(1)
        return np.sqrt(((old - new) ** 2).sum(1))

    threshold = tol * float(x.var(axis=0, ddof=1).mean())
    old_state = init.astype(np.float32)
    old_labels, _ = predict(old_state)
    labels, best = old_labels, (np.inf, old_state, old_labels)
    for _ in range(niter):
        state = _member_means(x, labels, k)
        labels, inertia = predict(state)
        if inertia < best[0]:
            best = (inertia, state, labels)
        if np.array_equal(labels, old_labels) or shift(old_state, state).sum() <= threshold:
            break
        old_state, old_labels = state, labels
    return best[1], best[2], best[0]


def _kmeans_keep_empty(x, k, init, *, niter, nredo, seed, spherical, tol, gpu) -> KMeansResult:
    best = None
    for r in range(nredo):
        if isinstance(init, np.ndarray):
            start = init
        elif init == "kmeans++":
            start = _kmeans_plusplus_init(x, k, seed + r)
        else:
            start = x[np.random.default_rng(seed + r).permutation(len(x))[:k]]
        run = _lloyd_keep_empty(x, start, niter=niter, spherical=spherical, tol=tol, gpu=gpu)
        if best is None or run[2] < best[2]:  # first of equal inertias wins, as torch_clustering
            best = run
    centroids, assign, _ = best
    if spherical:
        centroids = _unit_rows(centroids).astype(np.float32)
    dist = _sq_distances(x, centroids, assign)
    return KMeansResult(centroids, assign, float(dist.sum(dtype=np.float64)), dist)


def _sq_distances(x: np.ndarray, centroids: np.ndarray, assign: np.ndarray,
                  chunk: int = 65536) -> np.ndarray:
    """N squared L2 distances of each row to its assigned centroid, in row chunks."""
    out = np.empty(len(x), np.float32)
    for start in range(0, len(x), chunk):
        diff = x[start:start + chunk] - centroids[assign[start:start + chunk]]
        out[start:start + chunk] = (diff * diff).sum(1)
    return out


def _assign(x: np.ndarray, centroids: np.ndarray, *, spherical: bool, gpu: bool | None):
    index = flat_index(x.shape[1], inner_product=spherical, gpu=gpu)
    index.add(centroids)
    score, assign = index.search(x, 1)
    assign = assign[:, 0].astype(np.int64)
    if spherical:  # ||x - c||^2 with the inner product the index returned
        sq = (x * x).sum(1) + (centroids * centroids).sum(1)[assign] - 2 * score[:, 0]
        dist = np.maximum(sq, 0).astype(np.float32)
    else:
        dist = score[:, 0].astype(np.float32)
    return assign, dist


def faiss_knn_search(
    queries: np.ndarray, base: np.ndarray, k: int, *, metric: str = "ip",
    gpu: bool | None = None, chunk: int = 8192,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest neighbours of each query row in ``base``; returns (scores, ids).

    ``metric="ip"`` ranks by inner product (cosine on normalised rows), ``"l2"`` by squared
    L2 distance. Queries go through the index in chunks of ``chunk`` rows so the Q x k
    result buffers (not a Q x N similarity matrix) bound the memory.
    """
    if metric not in ("ip", "l2"):
        raise ValueError(f"faiss_knn_search: metric={metric!r}; allowed: 'ip', 'l2'")
    base = np.ascontiguousarray(base, dtype=np.float32)
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    k = min(k, len(base))
    index = flat_index(base.shape[1], inner_product=metric == "ip", gpu=gpu)
    index.add(base)
    scores = np.empty((len(queries), k), np.float32)
    ids = np.empty((len(queries), k), np.int64)
    for start in range(0, len(queries), chunk):
        s, i = index.search(queries[start:start + chunk], k)
        scores[start:start + chunk], ids[start:start + chunk] = s, i
    return scores, ids
