"""Corrupt or foreign checkpoints never crash-loop a job: named, moved aside, retrained."""

from __future__ import annotations

import os

import pytest
import torch
from tiny_methods import BACKBONE, TINY_PARAMS

from repro.train import checkpoint as C
from repro.train.pretrain import CHECKPOINT, pretrain

RECIPE = {
    "method": "moco", "params": TINY_PARAMS.get("moco", {}), "backbone": BACKBONE,
    "data": {"dataset": "digits", "split": "train", "subset": 32},
    "views": {"name": "simclr", "image_size": 8, "options": {"dataset": "digits"}},
    "optim": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "batch_size": 16, "epochs": 2},
}


def _losses(summary):
    return [h["loss"] for h in summary["history"]]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    return pretrain(RECIPE, tmp_path_factory.mktemp("full"), seed=5, log=lambda *_: None,
                    tag={"digest": "a"})


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_unreadable_checkpoint_is_named_moved_aside_and_training_restarts(
        tmp_path, uninterrupted, damage):
    lines = []
    pretrain(RECIPE, tmp_path, seed=5, log=lines.append, stop_after_epoch=1, tag={"digest": "a"})
    ckpt = tmp_path / CHECKPOINT
    data = ckpt.read_bytes()
    damaged = {"truncate": data[: len(data) // 2], "garbage": os.urandom(4096),
               "empty": b""}[damage]
    ckpt.write_bytes(damaged)
    out = pretrain(RECIPE, tmp_path, seed=5, log=lines.append, tag={"digest": "a"})
    warning = next(line for line in lines if "unreadable" in line)
    assert str(ckpt) in warning and "starts from scratch" in warning
    moved = list(tmp_path.glob(f"{CHECKPOINT}.unreadable-*"))
    assert len(moved) == 1 and moved[0].read_bytes() == damaged  # kept, not deleted
    assert _losses(out) == _losses(uninterrupted)  # a clean run from scratch, not a mix
    C.load(ckpt)  # the new checkpoint is whole


def test_checkpoint_of_other_code_or_data_is_not_resumed(tmp_path, uninterrupted):
    lines = []
    first = pretrain(RECIPE, tmp_path, seed=5, log=lines.append, stop_after_epoch=1,
                     tag={"digest": "old code"})
    out = pretrain(RECIPE, tmp_path, seed=5, log=lines.append, tag={"digest": "a"})
    assert any("other code or data" in line for line in lines)
    assert list(tmp_path.glob(f"{CHECKPOINT}.stale-*"))
    assert out["run_id"] != first.get("run_id")
    assert _losses(out) == _losses(uninterrupted)


def test_resumed_run_keeps_its_run_id(tmp_path):
    quiet = lambda *_: None  # noqa: E731
    pretrain(RECIPE, tmp_path, seed=5, log=quiet, stop_after_epoch=1, tag={"digest": "a"})
    first_id = C.load(tmp_path / CHECKPOINT)["tag"]["run_id"]
    out = pretrain(RECIPE, tmp_path, seed=5, log=quiet, tag={"digest": "a"})
    assert out["run_id"] == first_id


class Evil:
    def __reduce__(self):
        return (os.system, ("echo should never run",))


def test_loading_refuses_pickled_code(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"method": Evil()}, path)
    with pytest.raises(C.UnreadableCheckpoint, match=str(path)):
        C.load(path)


def test_save_is_atomic_fsynced_and_leaves_no_temporary(tmp_path, monkeypatch):
    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd))[1])
    C.save_atomic({"x": torch.ones(3)}, tmp_path / "c.pt")
    assert len(synced) == 2  # the file, then its folder (the rename)
    assert torch.equal(C.load(tmp_path / "c.pt")["x"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]
