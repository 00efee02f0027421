"""A run stopped after an epoch and resumed from its checkpoint equals an uninterrupted run
(real digits images, every registered method, through repro.train.pretrain)."""

from __future__ import annotations

import pytest
import torch
from tiny_methods import BACKBONE, TINY_PARAMS

from repro.methods import METHODS
from repro.train.checkpoint import load
from repro.train.pretrain import CHECKPOINT, pretrain

# Extra cases: ProPos with an E-step every 2 epochs (the resumed epoch must reuse the saved
# pseudo-labels), with its memory queue and cluster-size resampling; CARL with LARS.
CASES = [(name, {}) for name in METHODS.names()] + [
    ("propos", {"reassign_every": 2, "queue_size": 24, "data_resample": True}),
]


def _recipe(name: str, extra: dict) -> dict:
    return {
        "method": name,
        "params": {**TINY_PARAMS.get(name, {}), **extra},
        "backbone": BACKBONE,
        "data": {"dataset": "digits", "split": "train", "subset": 32},
        "views": {"name": "simclr", "image_size": 8, "options": {"dataset": "digits"}},
        "optim": {"name": "lars" if name == "carl" else "sgd", "lr": 0.05, "momentum": 0.9,
                  "weight_decay": 5e-4, "batch_size": 16, "epochs": 2, "schedule": "cosine",
                  "warmup_epochs": 1, "per_step": True},
    }


@pytest.mark.parametrize("name,extra", CASES, ids=[f"{n}{'-' + '-'.join(e) if e else ''}"
                                                   for n, e in CASES])
def test_resumed_run_equals_uninterrupted(name, extra, tmp_path):
    recipe = _recipe(name, extra)
    quiet = lambda *_: None  # noqa: E731
    full = pretrain(recipe, tmp_path / "full", seed=3, log=quiet)
    first = pretrain(recipe, tmp_path / "split", seed=3, log=quiet, stop_after_epoch=1)
    assert first["stopped_at_epoch"] == 1
    resumed = pretrain(recipe, tmp_path / "split", seed=3, log=quiet)
    assert [h["loss"] for h in resumed["history"]] == [h["loss"] for h in full["history"]]
    a = load(tmp_path / "full" / CHECKPOINT)["method"]
    b = load(tmp_path / "split" / CHECKPOINT)["method"]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key].float(), b[key].float(), atol=1e-6), key
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in full["history"])
