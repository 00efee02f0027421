"""The E-step shared by PCL, PAUC and ProPos: cluster momentum features of the training set.

PCL (Li et al. 2021, sec. 3.2 and eq. 12): k-means at several granularities, per-cluster
concentration phi, prototypes = L2-normalised centroids. ProPos (Huang et al. 2022, sec. 3.3)
uses the same step with spherical k-means and no phi, and, as its torch_clustering k-means,
leaves empty clusters empty (``empty_clusters="keep"``; PCL's faiss splits them). k-means runs
once (on rank 0 under DDP) and the result is broadcast; features arrive already gathered and
de-duplicated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from repro.cluster.kmeans import faiss_kmeans
from repro.distributed import broadcast_object, rank


@dataclass
class Clustering:
    prototypes: torch.Tensor  # K x C, L2-normalised
    phi: torch.Tensor  # K concentrations (ones when not estimated)
    assignments: torch.Tensor  # N cluster id of every training sample


def concentration(
    sq_distances: np.ndarray, assignments: np.ndarray, num_clusters: int, temperature: float
) -> np.ndarray:
    """phi_c = mean_z ||v'_z - c|| / log(Z + alpha) (PCL eq. 12), as the authors compute it.

    alpha = 10; clusters with <= 1 member get the largest phi; phi is clipped to its
    10th..90th percentile and rescaled so its mean equals ``temperature``.
    sq_distances: N squared L2 distances of each feature to its (unnormalised) centroid.
    """
    counts = np.bincount(assignments, minlength=num_clusters)  # K
    dist_sums = np.bincount(assignments, weights=np.sqrt(sq_distances), minlength=num_clusters)
    phi = np.zeros(num_clusters, dtype=np.float64)
    multi = counts > 1
    phi[multi] = dist_sums[multi] / counts[multi] / np.log(counts[multi] + 10)
    phi_max = phi[multi].max() if multi.any() else 1.0
    phi[~multi] = phi_max
    phi = np.clip(phi, np.percentile(phi, 10), np.percentile(phi, 90))
    return (temperature * phi / phi.mean()).astype(np.float32)


def cluster_features(
    features: torch.Tensor,
    num_clusters: list[int],
    *,
    temperature: float | None,
    spherical: bool = False,
    niter: int = 20,
    nredo: int = 5,
    init: str = "random",
    empty_clusters: str = "split",
    min_points_per_centroid: int = 10,
    max_points_per_centroid: int = 1000,
) -> list[Clustering]:
    """Run k-means for every granularity on N x C features (on rank 0; others receive it).

    ``temperature=None`` skips phi (ProPos). Granularity m uses k-means seed m, as the
    authors' code does. ``empty_clusters``: see ``repro.cluster.kmeans``; a kept empty
    cluster's prototype is the zero vector.
    """
    device = features.device
    result = None
    if rank() == 0:
        x = F.normalize(features.float(), dim=1).cpu().numpy().astype(np.float32)
        result = []
        for seed, k in enumerate(num_clusters):
            km = faiss_kmeans(
                x, k, niter=niter, nredo=nredo, seed=seed, spherical=spherical, init=init,
                empty_clusters=empty_clusters, min_points_per_centroid=min_points_per_centroid,
                max_points_per_centroid=max_points_per_centroid,
            )
            if temperature is None:
                phi = np.ones(k, dtype=np.float32)
            else:
                phi = concentration(km.distances, km.assignments, k, temperature)
            result.append((km.centroids, phi, km.assignments))
    result = broadcast_object(result)
    return [
        Clustering(
            prototypes=F.normalize(torch.from_numpy(c).to(device), dim=1),
            phi=torch.from_numpy(p).to(device),
            assignments=torch.from_numpy(a.astype(np.int64)).to(device),
        )
        for c, p, a in result
    ]
