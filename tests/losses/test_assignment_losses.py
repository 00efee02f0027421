"""CARL (eq. 4-8), SwAV (Sinkhorn-Knopp, swapped prediction), NT-Xent, BYOL/PSA, SimSiam."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from repro.losses.byol_alignment import byol_alignment_loss, positive_sampling
from repro.losses.carl_consistency import carl_loss, consistency_loss, kl_to_uniform
from repro.losses.nt_xent import nt_xent_loss
from repro.losses.simsiam import simsiam_loss
from repro.losses.swav import sinkhorn_knopp, swapped_prediction_loss
from repro.train.schedules import carl_lambda_e


def test_carl_consistency_and_kl_match_the_formulas():
    torch.manual_seed(0)
    p_a = torch.randn(6, 5).softmax(1)
    p_b = torch.randn(6, 5).softmax(1)
    lc = -sum(math.log(float((p_a[i] * p_b[i]).sum())) for i in range(6)) / 6
    assert abs(float(consistency_loss(p_a, p_b)) - lc) < 1e-5
    p_hat = p_a.mean(0)
    kl = sum(float(p_hat[c]) * math.log(float(p_hat[c]) * 5) for c in range(5))
    assert abs(float(kl_to_uniform(p_a)) - kl) < 1e-5
    out = carl_loss(p_a, p_b, lambda_e=2.0)
    expected = lc + 2.0 * 0.5 * (kl + float(kl_to_uniform(p_b)))
    assert abs(float(out["loss"]) - expected) < 1e-5


def test_carl_loss_is_symmetric_and_safe():
    torch.manual_seed(1)
    p_a, p_b = torch.randn(4, 3).softmax(1), torch.randn(4, 3).softmax(1)
    assert torch.allclose(carl_loss(p_a, p_b, 1.0)["loss"], carl_loss(p_b, p_a, 1.0)["loss"])
    one_hot_a, one_hot_b = torch.eye(3)[[0, 1]], torch.eye(3)[[1, 2]]  # disjoint assignments
    assert torch.isfinite(consistency_loss(one_hot_a, one_hot_b))
    uniform = torch.full((4, 3), 1 / 3)
    assert abs(float(kl_to_uniform(uniform))) < 1e-6


def test_carl_lambda_schedule_is_eq8():
    assert carl_lambda_e(0, a=1.5, b=4.0, decay_epochs=100) == 4.0
    assert math.isclose(carl_lambda_e(50, a=1.5, b=4.0, decay_epochs=100), 2.75)
    assert carl_lambda_e(100, 1.5, 4.0, 100) == 1.5 and carl_lambda_e(150, 1.5, 4.0, 100) == 1.5


def _sinkhorn_numpy(scores, eps, iters):
    q = np.exp(scores / eps).T  # K x B
    q /= q.sum()
    k, b = q.shape
    for _ in range(iters):
        q /= q.sum(axis=1, keepdims=True) * k
        q /= q.sum(axis=0, keepdims=True) * b
    return (q * b).T


def test_sinkhorn_matches_direct_and_balances():
    torch.manual_seed(2)
    scores = F.normalize(torch.randn(16, 8), dim=1) @ F.normalize(torch.randn(4, 8), dim=1).t()
    got = sinkhorn_knopp(scores, eps=0.5, n_iters=3)
    ref = _sinkhorn_numpy(scores.double().numpy(), 0.5, 3)
    assert np.allclose(got.numpy(), ref, atol=1e-5)
    assert torch.allclose(got.sum(1), torch.ones(16), atol=1e-5)  # codes are distributions
    many = sinkhorn_knopp(scores, eps=0.5, n_iters=200)
    assert torch.allclose(many.sum(0), torch.full((4,), 16 / 4), atol=1e-3)  # equipartition


def test_swapped_prediction_matches_formula_and_is_symmetric():
    torch.manual_seed(3)
    s_a, s_b = torch.randn(5, 4), torch.randn(5, 4)
    q_a, q_b = sinkhorn_knopp(s_a), sinkhorn_knopp(s_b)
    got = swapped_prediction_loss(s_a, s_b, q_a, q_b, 0.1)
    direct = 0.0
    for i in range(5):
        direct -= float((q_b[i] * F.log_softmax(s_a[i] / 0.1, 0)).sum())
        direct -= float((q_a[i] * F.log_softmax(s_b[i] / 0.1, 0)).sum())
    assert abs(float(got) - direct / 10) < 1e-4
    assert torch.allclose(got, swapped_prediction_loss(s_b, s_a, q_b, q_a, 0.1))


def test_nt_xent_matches_the_formula_and_is_symmetric():
    torch.manual_seed(4)
    z_a, z_b, t = torch.randn(5, 3), torch.randn(5, 3), 0.5
    z = F.normalize(torch.cat([z_a, z_b]), dim=1)
    total = 0.0
    for i in range(10):
        j = (i + 5) % 10
        den = sum(math.exp(float(z[i] @ z[m]) / t) for m in range(10) if m != i)
        total += -math.log(math.exp(float(z[i] @ z[j]) / t) / den)
    got = nt_xent_loss(z_a, z_b, t)
    assert abs(float(got) - total / 10) < 1e-5
    assert torch.allclose(got, nt_xent_loss(z_b, z_a, t), atol=1e-6)


def test_byol_alignment_is_squared_distance_and_psa_noise():
    torch.manual_seed(5)
    p, z = torch.randn(6, 4), torch.randn(6, 4)
    direct = (F.normalize(p, dim=1) - F.normalize(z, dim=1)).pow(2).sum(1).mean()
    assert torch.allclose(byol_alignment_loss(p, z), direct, atol=1e-6)
    x = torch.zeros(20000, 4)
    assert positive_sampling(x, 0.0) is x
    assert abs(float(positive_sampling(x, 1e-3).std()) - 1e-3) < 5e-5


def test_simsiam_loss_is_symmetric_with_stop_gradient():
    torch.manual_seed(6)
    p1, p2 = torch.randn(4, 3, requires_grad=True), torch.randn(4, 3)
    z1, z2 = torch.randn(4, 3, requires_grad=True), torch.randn(4, 3)
    loss = simsiam_loss(p1, p2, z1, z2)
    assert torch.allclose(loss, simsiam_loss(p2, p1, z2, z1))
    loss.backward()
    assert z1.grad is None and p1.grad is not None
