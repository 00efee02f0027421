"""k-means and exact nearest-neighbour search with faiss.

``faiss_kmeans`` serves two callers with different recipes:

- PCL's E-step (salesforce/PCL ``run_kmeans``): faiss ``Clustering``, niter=20, nredo=5,
  max_points_per_centroid=1000, min_points_per_centroid=10, flat L2 index, seed per
  granularity -> ``faiss_kmeans(x, k, niter=20, nredo=5, seed=i)``.
- ProPos (Hzzone/torch_clustering): spherical k-means, k-means++ init, up to 300 iterations,
  10 restarts, lowest inertia wins -> ``faiss_kmeans(x, k, niter=300, nredo=10,
  spherical=True, init="kmeans++")``.

NOTE: ProPos stops early at tol 1e-4; faiss always runs ``niter`` iterations. With 300
iterations the result is the converged one (k-means is monotone), only slower.
"""

from __future__ import annotations

from dataclasses import dataclass

import faiss
import numpy as np


@dataclass
class KMeansResult:
    centroids: np.ndarray  # k x D float32 (unit norm when spherical)
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


def faiss_kmeans(
    x: np.ndarray,
    k: int,
    *,
    niter: int = 20,
    nredo: int = 1,
    seed: int = 0,
    spherical: bool = False,
    init: str = "random",
    max_points_per_centroid: int = 1000,
    min_points_per_centroid: int = 10,
    gpu: bool | None = None,
    verbose: bool = False,
) -> KMeansResult:
    """k-means of ``x`` (N x D) into ``k`` clusters; the restart with the lowest inertia wins.

    ``spherical`` normalises centroids after each update and assigns by inner product.
    ``init="kmeans++"`` seeds each of the ``nredo`` restarts with scikit-learn's
    ``kmeans_plusplus`` (seeds ``seed .. seed+nredo-1``); ``init="random"`` lets faiss draw
    ``nredo`` random initialisations itself and keep the best.
    """
    if init not in ("random", "kmeans++"):
        raise ValueError(f"faiss_kmeans: init={init!r}; allowed: 'random', 'kmeans++'")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2 or not 1 <= k <= len(x):
        raise ValueError(f"faiss_kmeans: need N x D data with 1 <= k <= N; got {x.shape}, k={k}")
    opts = dict(niter=niter, spherical=spherical, gpu=gpu, verbose=verbose,
                max_points_per_centroid=max_points_per_centroid,
                min_points_per_centroid=min_points_per_centroid)
    if init == "random":
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
