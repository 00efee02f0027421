"""Schedule-dependent behaviour of ProPos/BYOL and CARL that the generic tests do not see."""

from __future__ import annotations

import math

import torch
from tiny_methods import BACKBONE, TINY_PARAMS, tiny_images

from repro.methods.base import EpochContext
from repro.train.pretrain import build_method


def _build(name: str, **extra):
    torch.manual_seed(0)
    return build_method({"method": name, "params": {**TINY_PARAMS[name], **extra},
                         "backbone": BACKBONE})


def _ctx(images, epoch, calls):
    def extract(module):
        calls.append(epoch)
        with torch.no_grad():
            return module.eval()(images)

    return EpochContext(epoch=epoch, total_epochs=10, num_samples=len(images), extract=extract)


def test_propos_warmup_estep_cadence_and_psl():
    images = tiny_images(32)
    method = _build("propos", warmup_epochs=2, reassign_every=2)
    calls = []
    for epoch in range(5):
        method.on_epoch_start(_ctx(images, epoch, calls))
    assert calls == [2, 4]  # none during warm-up, then every r = 2 epochs
    assert method.pseudo_labels.shape == (32,)
    views = [images[:16], torch.flip(images[:16], dims=[3])]
    method.train()
    assert "psl" not in method(views, torch.arange(16), epoch=1)  # warm-up: BYOL only
    out = method(views, torch.arange(16), epoch=2)
    assert "psl" in out and torch.isfinite(out["psl"])


def test_byol_predictor_lr_and_momentum_schedule():
    method = _build("byol", momentum_increase=True)
    groups = method.param_groups()
    assert groups[1]["lr_scale"] == 10.0
    assert {id(p) for p in groups[1]["params"]} == {id(p) for p in method.predictor.parameters()}
    # ProPos models/propos/byol.py: m = 1 - (1 - 0.996) (cos(pi k / K) + 1) / 2
    for progress in (0.0, 0.25, 0.5, 1.0):
        expected = 1 - 0.004 * (math.cos(math.pi * progress) + 1) / 2
        assert math.isclose(method.ema_momentum(progress), expected, rel_tol=1e-12)
    # momentum_increase off (the flag's default; only cifar10_r18_propos.yml runs it): constant
    assert _build("byol").ema_momentum(0.7) == 0.996


def test_carl_lambda_decays_over_epochs():
    method = _build("carl", lambda_a=1.0, lambda_b=3.0, lambda_decay_epochs=4)
    views = [tiny_images(8), tiny_images(8, seed=1)]
    lams = [method(views, torch.arange(8), epoch)["lambda_e"] for epoch in (0, 2, 4, 9)]
    assert lams == [3.0, 2.0, 1.0, 1.0]


def test_propos_estep_keeps_empty_clusters_as_torch_clustering(monkeypatch):
    import repro.methods.propos as propos_module

    seen = {}
    real = propos_module.cluster_features

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(propos_module, "cluster_features", spy)
    method = _build("propos", warmup_epochs=0)
    method.on_epoch_start(_ctx(tiny_images(32), 0, []))
    assert seen["empty_clusters"] == "keep" and seen["spherical"] and seen["init"] == "kmeans++"
