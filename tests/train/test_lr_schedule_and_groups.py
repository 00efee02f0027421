"""Learning rates per step: SwAV's warm-up from ``start_warmup``, fixed-lr groups (SimSiam's
``--fix-pred-lr``), lr-scaled groups."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from repro.train.pretrain import build_optimizer, set_learning_rates
from repro.train.schedules import lr_factor


def _swav_schedule(base, final, start, warmup_epochs, epochs, steps):
    """facebookresearch/swav main_swav.py: np.linspace warm-up, then per-iteration cosine."""
    warm = np.linspace(start, base, steps * warmup_epochs)
    its = np.arange(steps * (epochs - warmup_epochs))
    cos = [final + 0.5 * (base - final) * (1 + math.cos(math.pi * t / len(its))) for t in its]
    return np.concatenate([warm, cos])


def test_warmup_from_start_lr_then_cosine_is_swavs_schedule():
    base, final, steps, epochs, warmup = 4.8, 0.0048, 5, 6, 2
    optim = {"lr": base, "epochs": epochs, "schedule": "cosine", "per_step": True,
             "warmup_epochs": warmup, "warmup_start_lr": 0.3, "final_lr_fraction": final / base}
    ours = [base * lr_factor(optim, e, s, steps) for e in range(epochs) for s in range(steps)]
    np.testing.assert_allclose(ours, _swav_schedule(base, final, 0.3, warmup, epochs, steps))


def test_warmup_without_start_lr_is_unchanged():
    optim = {"lr": 0.1, "epochs": 4, "schedule": "cosine", "warmup_epochs": 1}
    assert [lr_factor(optim, 0, s, 4) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]


class _TwoGroups(torch.nn.Module):
    def __init__(self, **extra):
        super().__init__()
        self.body, self.predictor = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
        self.extra = extra

    def param_groups(self):
        return [{"params": list(self.body.parameters())},
                {"params": list(self.predictor.parameters()), **self.extra}]


@pytest.mark.parametrize("name", ["sgd", "lars", "larc"])
def test_a_fixed_lr_group_stays_at_the_base_lr(name):
    opt = build_optimizer(_TwoGroups(fixed_lr=True), {"name": name, "lr": 0.05})
    for factor in (0.0, 0.3, 1.0):
        set_learning_rates(opt, 0.05, factor)
        assert [g["lr"] for g in opt.param_groups] == [pytest.approx(0.05 * factor), 0.05]


def test_an_lr_scaled_group_follows_the_schedule():
    opt = build_optimizer(_TwoGroups(lr_scale=10.0), {"lr": 0.05})
    set_learning_rates(opt, 0.05, 0.5)
    assert [g["lr"] for g in opt.param_groups] == [pytest.approx(0.025), pytest.approx(0.25)]
