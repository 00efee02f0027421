"""ProtoNCE (PCL eq. 11-12) and PSL (ProPos eq. 4, 6-7) against direct, slow re-computations."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from repro.losses.proto_nce import proto_nce_loss, sample_negative_prototypes
from repro.losses.proto_scattering import ABSENT_LOGIT, cluster_centres, proto_scattering_loss


def test_proto_nce_matches_the_formula_with_phi():
    torch.manual_seed(0)
    n, c, k, r = 6, 5, 20, 4
    q = F.normalize(torch.randn(n, c), dim=1)
    protos = F.normalize(torch.randn(k, c), dim=1)
    phi = torch.rand(k) * 0.5 + 0.05
    assign = torch.randint(0, k, (30,))
    index = torch.tensor([0, 3, 7, 9, 11, 29])
    got = proto_nce_loss(q, [(protos, phi, assign)], index, r,
                         generator=torch.Generator().manual_seed(5))
    pos = assign[index]
    neg = sample_negative_prototypes(pos, k, r, torch.Generator().manual_seed(5))
    assert not set(neg.tolist()) & set(pos.tolist())
    cols = pos.tolist() + neg.tolist()
    total = 0.0
    for i in range(n):
        num = math.exp(float(q[i] @ protos[pos[i]]) / float(phi[pos[i]]))
        den = sum(math.exp(float(q[i] @ protos[j]) / float(phi[j])) for j in cols)
        total += -math.log(num / den)
    assert abs(float(got) - total / n) < 1e-4


def test_proto_nce_averages_over_clusterings():
    torch.manual_seed(1)
    q = F.normalize(torch.randn(4, 3), dim=1)
    parts = []
    for k in (6, 9):
        parts.append((F.normalize(torch.randn(k, 3), dim=1), torch.rand(k) + 0.1,
                      torch.randint(0, k, (10,))))
    index = torch.arange(4)
    both = proto_nce_loss(q, parts, index, 2, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(0)
    each = [proto_nce_loss(q, [p], index, 2, generator=g) for p in parts]
    assert torch.allclose(both, torch.stack(each).mean(), atol=1e-6)


def _direct_psl(q, k, labels, num_clusters, t):
    """Eq. 6-7 centres and eq. 4 with the authors' empty-cluster rule, one cluster at a time."""
    def centre(x, c):
        members = x[labels == c]
        return F.normalize(members.mean(0), dim=0) if len(members) else None

    mu = [centre(q, c) for c in range(num_clusters)]
    mu_k = [centre(k, c) for c in range(num_clusters)]
    present = [c for c in range(num_clusters) if mu[c] is not None]
    total = 0.0
    for c in present:
        pos = float(mu[c] @ mu_k[c]) / t
        den = math.exp(pos)
        for j in range(num_clusters):
            if j != c:
                den += math.exp(float(mu[c] @ mu[j]) / t if mu[j] is not None else ABSENT_LOGIT)
        total += -pos + math.log(den)
    return total / len(present)


def test_cluster_centres_are_normalised_cluster_means():
    torch.manual_seed(2)
    x = torch.randn(10, 4)
    labels = torch.tensor([0, 0, 1, 1, 1, 3, 3, 3, 3, 0])
    centres = cluster_centres(x, labels, 5)
    assert torch.allclose(centres[1], F.normalize(x[2:5].mean(0), dim=0), atol=1e-6)
    assert torch.equal(centres[2], torch.zeros(4)) and torch.equal(centres[4], torch.zeros(4))


def test_psl_with_an_empty_cluster_matches_the_direct_formula():
    torch.manual_seed(3)
    kc, t = 5, 0.5
    q = F.normalize(torch.randn(12, 8), dim=1)
    k = F.normalize(torch.randn(12, 8), dim=1)
    labels = torch.tensor([0, 0, 1, 1, 1, 3, 3, 3, 3, 0, 1, 3])  # clusters 2 and 4 are empty
    present = torch.bincount(labels, minlength=kc) > 0
    got = proto_scattering_loss(cluster_centres(q, labels, kc), cluster_centres(k, labels, kc),
                                present, t)
    assert abs(float(got) - _direct_psl(q, k, labels, kc, t)) < 1e-5


def test_psl_without_empty_clusters_is_eq4():
    torch.manual_seed(4)
    q = F.normalize(torch.randn(9, 6), dim=1)
    k = F.normalize(torch.randn(9, 6), dim=1)
    labels = torch.arange(9) % 3
    present = torch.ones(3, dtype=torch.bool)
    mu, mu_k = cluster_centres(q, labels, 3), cluster_centres(k, labels, 3)
    got = proto_scattering_loss(mu, mu_k, present, 0.5)
    eq4 = 0.0
    for c in range(3):
        pos = torch.exp(mu[c] @ mu_k[c] / 0.5)
        neg = sum(torch.exp(mu[c] @ mu[j] / 0.5) for j in range(3) if j != c)
        eq4 += float(-torch.log(pos / (pos + neg)))
    assert abs(float(got) - eq4 / 3) < 1e-5


def test_psl_gradient_flows_to_online_only_and_is_finite():
    torch.manual_seed(5)
    q = torch.randn(8, 4, requires_grad=True)
    k = torch.randn(8, 4, requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 2, 0])
    present = torch.bincount(labels, minlength=4) > 0
    loss = proto_scattering_loss(cluster_centres(F.normalize(q, dim=1), labels, 4),
                                 cluster_centres(F.normalize(k, dim=1), labels, 4), present, 0.5)
    loss.backward()
    assert torch.isfinite(q.grad).all() and q.grad.abs().sum() > 0
    assert k.grad is None
