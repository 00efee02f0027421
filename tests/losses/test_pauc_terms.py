"""PAUC eq. 4-6 against direct loops."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from repro.losses.pauc_terms import (
    prototype_alignment,
    prototype_correlation,
    prototype_uniformity,
)
from repro.methods.pauc import PAUCConfig, pauc_prototype_terms


def test_three_terms_match_direct_loops():
    torch.manual_seed(0)
    c = F.normalize(torch.randn(5, 4), dim=1)
    c2 = F.normalize(torch.randn(5, 4), dim=1)
    s, t, tau = 3.0, 2.0, 0.5
    align = sum(float((c[i] - c2[i]).norm()) ** s for i in range(5)) / 5
    assert abs(float(prototype_alignment(c, c2, s)) - align) < 1e-5
    pairs = [(i, j) for i in range(5) for j in range(i + 1, 5)]
    unif = sum(math.exp(-t * float((c[i] - c[j]).pow(2).sum())) for i, j in pairs) / len(pairs)
    assert abs(float(prototype_uniformity(c, t)) - unif) < 1e-6
    p = (c / tau).softmax(1)
    corr = [float((p[i] * torch.log(p[j] / p[i])).sum())
            for i in range(5) for j in range(5) if i != j]
    assert abs(float(prototype_correlation(c, tau)) - sum(corr) / len(corr)) < 1e-5
    assert float(prototype_correlation(c, tau)) <= 0  # -KL


def test_terms_on_batch_prototypes_have_gradients_and_handle_one_cluster():
    torch.manual_seed(1)
    q = F.normalize(torch.randn(8, 4), dim=1).requires_grad_()
    k = F.normalize(torch.randn(8, 4), dim=1)
    terms = pauc_prototype_terms(q, k, torch.tensor([5, 5, 9, 9, 9, 2, 2, 5]), PAUCConfig())
    sum(terms.values()).backward()
    assert torch.isfinite(q.grad).all() and q.grad.abs().sum() > 0
    single = pauc_prototype_terms(q, k, torch.zeros(8, dtype=torch.long), PAUCConfig())
    assert float(single["p_uniform"].detach()) == 0 and float(single["p_corr"].detach()) == 0
