"""Every registered method: a few steps on tiny random data train it (finite loss, gradients
reach the backbone, parameters move, loss goes down where that is reliable)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from tiny_methods import BACKBONE, TINY_PARAMS, tiny_images

from repro.methods import METHODS
from repro.methods.base import ConfigError, EpochContext
from repro.train.pretrain import build_method, build_optimizer

NAMES = METHODS.names()
# BYOL-style losses chase a moving target and SwAV's codes move with the prototypes: for
# them a fixed batch is not guaranteed to lower the loss within a few steps.
BATCH = 16
LOSS_MAY_NOT_DROP = {"byol", "propos", "simsiam", "swav"}


def _trains_trunk(name: str) -> bool:
    """False for reference methods that keep the trunk as initialised (``untrained``): for
    them the checks below assert the opposite (no gradient reaches it, nothing moves)."""
    return getattr(METHODS.resolve(name), "trains_trunk", True)


def _method(name: str):
    torch.manual_seed(0)
    recipe = {"method": name, "params": TINY_PARAMS.get(name, {}), "backbone": BACKBONE}
    return build_method(recipe)


def _context(images: torch.Tensor, epoch: int = 0) -> EpochContext:
    @torch.no_grad()
    def extract(module):
        was = module.training
        module.eval()
        feats = module(images)
        module.train(was)
        return feats

    return EpochContext(epoch=epoch, total_epochs=2, num_samples=len(images), extract=extract)


def _views(images: torch.Tensor, seed: int):
    g = torch.Generator().manual_seed(seed)
    flip = torch.flip(images, dims=[3])
    return [images + 0.1 * torch.randn(images.shape, generator=g),
            flip + 0.1 * torch.randn(images.shape, generator=g)]


def _train(method, images, steps: int, lr: float = 0.05):
    opt = build_optimizer(method, {"lr": lr, "momentum": 0.9, "weight_decay": 0.0})
    method.train()
    method.on_epoch_start(_context(images))
    index = torch.arange(BATCH)
    views = _views(images[:BATCH], seed=1)
    losses = []
    for step in range(steps):
        torch.manual_seed(100 + step)
        out = method(views, index, 0)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        method.on_step_end((step + 1) / steps)
        losses.append(float(out["loss"].detach()))
    return losses


def test_every_method_has_a_tiny_config():
    assert sorted(TINY_PARAMS) == NAMES, "add the new method's tiny parameters to tiny_methods.py"


@pytest.mark.parametrize("name", NAMES)
def test_config_rejects_unknown_parameters(name):
    cls = METHODS.resolve(name)
    with pytest.raises(ConfigError, match="allowed"):
        cls.make_config({"no_such_parameter": 1})
    assert dataclasses.is_dataclass(cls.make_config({}))


@pytest.mark.parametrize("name", NAMES)
def test_gradients_reach_the_backbone(name):
    method = _method(name)
    images = tiny_images()
    method.on_epoch_start(_context(images))
    out = method(_views(images[:BATCH], seed=1), torch.arange(BATCH), 0)
    assert torch.isfinite(out["loss"]) and out["loss"].requires_grad
    out["loss"].backward()
    trunk = method.encoders()["query"]
    if not _trains_trunk(name):
        assert all(p.grad is None for p in trunk.parameters()), f"{name}: the trunk got a grad"
        return
    grads = [p.grad for p in trunk.parameters() if p.grad is not None]
    assert grads, f"{name}: no gradient reached the backbone"
    assert all(torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0


@pytest.mark.parametrize("name", NAMES)
def test_a_few_steps_train_the_method(name):
    method = _method(name)
    before = {k: v.clone() for k, v in method.encoders()["query"].state_dict().items()}
    losses = _train(method, tiny_images(), steps=8)
    after = method.encoders()["query"].state_dict()
    assert all(torch.isfinite(torch.tensor(losses))), losses
    if not _trains_trunk(name):  # parameters and BN buffers exactly as initialised
        assert all(torch.equal(before[k], after[k]) for k in before), f"{name}: trunk moved"
        return
    assert any(not torch.equal(before[k], after[k]) for k in before)
    if name not in LOSS_MAY_NOT_DROP:
        # after a burn-in of 2 steps, in which the queues of moco/pcl/pauc fill with real keys
        assert losses[-1] < losses[2], f"{name}: {losses}"


@pytest.mark.parametrize("name", NAMES)
def test_encoders_map_images_to_features(name):
    method = _method(name).eval()
    feats = method.encoders()["query"](tiny_images(4))
    assert feats.shape[0] == 4 and feats.ndim == 2


@pytest.mark.parametrize("name", NAMES)
def test_steps_under_bf16_autocast_stay_finite(name):
    """Mixed precision (runtime.precision: bf16): queues and buffers accept low-precision
    outputs and the loss stays finite, with the E-step run first where there is one."""
    method = _method(name)
    images = tiny_images()
    # a second epoch context so methods with a warm-up still run their prototype terms
    method.on_epoch_start(_context(images, epoch=0))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        method.on_epoch_start(_context(images, epoch=5))
        losses = _train(method, images, steps=3)
    assert all(torch.isfinite(torch.tensor(x)) for x in losses), losses
