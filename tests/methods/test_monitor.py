"""The optional kNN monitor: a per-epoch ``knn_top1`` in the history, equal to the kNN
protocol on the saved encoder's features, without changing the training."""

from __future__ import annotations

import numpy as np
import torch
from tiny_methods import BACKBONE, TINY_PARAMS

from repro.data import build_dataset
from repro.data.transforms import eval_transform
from repro.eval.knn import knn_classifier
from repro.train.pretrain import load_encoder, pretrain

MONITOR = {"knn": {"train": {"dataset": "digits", "split": "train", "subset": 200},
                   "test": {"dataset": "digits", "split": "test", "subset": 100}, "k": 10}}


def _recipe(monitor: dict | None) -> dict:
    recipe = {
        "method": "simclr", "params": dict(TINY_PARAMS.get("simclr", {})), "backbone": BACKBONE,
        "data": {"dataset": "digits", "split": "train", "subset": 64},
        "views": {"name": "simclr", "image_size": 8, "options": {"dataset": "digits"}},
        "optim": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4,
                  "batch_size": 32, "epochs": 3, "schedule": "cosine"},
    }
    if monitor:
        recipe["monitor"] = monitor
    return recipe


def _features(encoder, ref):
    ds = build_dataset(ref["dataset"], ref["split"], eval_transform(8, ref["dataset"]),
                       subset=ref["subset"])
    with torch.no_grad():
        x = torch.cat([encoder(ds[i][0][None]) for i in range(len(ds))]).numpy()
    return x, np.asarray([ds[i][1] for i in range(len(ds))])


def test_knn_monitor_logs_each_epoch_and_leaves_training_alone(tmp_path):
    quiet = lambda *_: None  # noqa: E731
    plain = pretrain(_recipe(None), tmp_path / "plain", seed=1, log=quiet)
    watched = pretrain(_recipe(MONITOR), tmp_path / "watched", seed=1, log=quiet)
    assert [h["loss"] for h in watched["history"]] == [h["loss"] for h in plain["history"]]
    assert all("knn_top1" not in h for h in plain["history"])
    tops = [h["knn_top1"] for h in watched["history"]]
    assert len(tops) == 3 and all(0.0 <= t <= 100.0 for t in tops)
    # the last value is the kNN classifier on the trained encoder's features
    encoder, _ = load_encoder(tmp_path / "watched", "query")
    encoder.eval()
    tr, te = (_features(encoder, MONITOR["knn"][p]) for p in ("train", "test"))
    expected = knn_classifier(tr[0], tr[1], te[0], te[1], k=(10,), temperature=0.07)[10][0]
    assert abs(tops[-1] - expected) < 1e-6
    assert tops[-1] > 100 / 10 + 5  # well above chance on real digits


def test_every_skips_epochs_but_not_the_last(tmp_path):
    monitor = {"knn": {**MONITOR["knn"], "every": 2}}
    out = pretrain(_recipe(monitor), tmp_path / "run", seed=0, log=lambda *_: None)
    assert ["knn_top1" in h for h in out["history"]] == [False, True, True]
