"""PCL's E-step: concentration phi exactly as the authors compute it, and the k-means wiring."""

import numpy as np
import torch

from repro.methods.estep import cluster_features, concentration


def _phi_direct(sq_dist, assign, k, temperature):
    """A loop-by-loop transcription of PCL's concentration estimate (eq. 12 + clipping)."""
    phi = np.zeros(k)
    for c in range(k):
        d = sq_dist[assign == c]
        if len(d) > 1:
            phi[c] = np.mean(np.sqrt(d)) / np.log(len(d) + 10)
    phi_max = phi.max()
    for c in range(k):
        if np.sum(assign == c) <= 1:
            phi[c] = phi_max
    lo, hi = np.percentile(phi, 10), np.percentile(phi, 90)
    phi = np.clip(phi, lo, hi)
    return temperature * phi / phi.mean()


def test_concentration_matches_direct_formula_with_singletons_and_empty():
    rng = np.random.default_rng(0)
    k = 12
    assign = rng.integers(0, k - 2, size=300)
    assign[0] = k - 2  # a singleton cluster; cluster k-1 stays empty
    sq = rng.random(300).astype(np.float32) * 2
    got = concentration(sq, assign, k, 0.1)
    want = _phi_direct(sq, assign, k, 0.1)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    assert abs(got.mean() - 0.1) < 1e-6
    assert got[k - 1] == got.max() and got[k - 2] == got.max()


def test_cluster_features_finds_planted_clusters():
    torch.manual_seed(0)
    centers = torch.nn.functional.normalize(torch.randn(4, 16), dim=1)
    labels = torch.arange(200) % 4
    feats = centers[labels] + 0.05 * torch.randn(200, 16)
    out = cluster_features(feats, [4, 8], temperature=0.2, nredo=2, init="kmeans++")
    assert [c.prototypes.shape for c in out] == [(4, 16), (8, 16)]
    first = out[0]
    assert torch.allclose(first.prototypes.norm(dim=1), torch.ones(4), atol=1e-5)
    # each planted cluster maps to exactly one found cluster
    for c in range(4):
        assert first.assignments[labels == c].unique().numel() == 1
    assert first.assignments.unique().numel() == 4
    assert abs(float(first.phi.mean()) - 0.2) < 1e-5
    none = cluster_features(feats, [4], temperature=None, nredo=1)[0]
    assert torch.equal(none.phi, torch.ones(4))


def test_keep_empty_clusters_reaches_kmeans_and_gives_a_zero_prototype():
    # two distinct points, many copies: k-means++'s third seed duplicates one of them, so one
    # of the two equal centroids wins no point. ProPos (torch_clustering) keeps it empty.
    feats = torch.tensor([[1.0, 0.0]] * 20 + [[0.0, 1.0]] * 20)
    (kept,) = cluster_features(feats, [3], temperature=None, spherical=True, init="kmeans++",
                               nredo=1, niter=10, empty_clusters="keep")
    sizes = torch.bincount(kept.assignments, minlength=3)
    assert sorted(sizes.tolist()) == [0, 20, 20]
    empty = int(torch.nonzero(sizes == 0))
    assert torch.equal(kept.prototypes[empty], torch.zeros(2))
