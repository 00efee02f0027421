"""LARS: layer-wise trust ratio on weights, plain SGD on biases and BN parameters."""

from __future__ import annotations

import torch

from repro.train.lars import LARS


def test_lars_adapts_weights_and_excludes_biases():
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(4, 3))
    b = torch.nn.Parameter(torch.randn(4))
    w.grad, b.grad = torch.randn(4, 3), torch.randn(4)
    w0, b0, gw, gb = w.detach().clone(), b.detach().clone(), w.grad.clone(), b.grad.clone()
    LARS([w, b], lr=0.1, momentum=0.9, weight_decay=0.01, eta=0.02).step()
    g = gw + 0.01 * w0
    expected = w0 - 0.1 * 0.02 * w0.norm() / g.norm() * g
    assert torch.allclose(w.detach(), expected, atol=1e-6)
    assert torch.allclose(b.detach(), b0 - 0.1 * gb, atol=1e-6)  # no decay, no adaptation


def test_lars_group_exclusion_and_momentum():
    p = torch.nn.Parameter(torch.ones(2, 2))
    opt = LARS([{"params": [p], "lars_exclude": True}], lr=1.0, momentum=0.5)
    for _ in range(2):
        p.grad = torch.ones(2, 2)
        opt.step()
    assert torch.allclose(p.detach(), torch.full((2, 2), 1 - 1 - 1.5))


def _apex_larc_sgd_step(params, grads, lr, momentum, wd, trust=0.001, eps=1e-8):
    """A direct re-computation of apex LARC(clip=False) over torch SGD(momentum, wd), as SwAV
    runs it (main_swav.py), for one first step: the SGD step with wd 0 after LARC's scaling."""
    out = []
    for w, g in zip(params, grads):
        w_norm, g_norm = w.norm(), g.norm()
        if w_norm != 0 and g_norm != 0:
            g = (g + wd * w) * (trust * w_norm / (g_norm + w_norm * wd + eps))
        out.append(w - lr * g)  # first step: the momentum buffer is the gradient
    return out


def test_larc_adapts_every_parameter_as_swav_does():
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(4, 3))
    b = torch.nn.Parameter(torch.randn(4))  # a bias / BN parameter: adapted and decayed too
    z = torch.nn.Parameter(torch.zeros(4))  # zero weight: plain SGD step, no decay
    grads = [torch.randn(4, 3), torch.randn(4), torch.randn(4)]
    before = [p.detach().clone() for p in (w, b, z)]
    for p, g in zip((w, b, z), grads):
        p.grad = g.clone()
    LARS([w, b, z], lr=4.8, momentum=0.9, weight_decay=0.1, larc=True).step()
    expected = _apex_larc_sgd_step(before, grads, lr=4.8, momentum=0.9, wd=0.1)
    for p, e in zip((w, b, z), expected):
        torch.testing.assert_close(p.detach(), e)
