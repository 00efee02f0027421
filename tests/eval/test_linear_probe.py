import numpy as np
import pytest
import torch
import torch.nn as nn

from repro.eval.linear_probe import linear_probe, linear_probe_augmented, topk_correct
from repro.eval.types import Features, ModelData


def _blobs(n, d=16, c=4, seed=0, spread=4.0):
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(123).normal(size=(c, d)) * spread
    y = rng.integers(0, c, n)
    return Features((centres[y] + rng.normal(size=(n, d))).astype(np.float32), y,
                    np.arange(n))


def test_learns_separable_problem_and_reports_last_epoch():
    out = linear_probe(_blobs(600), _blobs(200, seed=1), seed=0, epochs=5, lr=0.1)
    assert out["top1"] == 100.0 and out["top5"] == 100.0
    assert out["selection"]["epoch"] == {"value": 5, "policy": "last_epoch"}


def test_chance_on_random_labels():
    tr, te = _blobs(600), _blobs(400, seed=1)
    te.y = np.random.default_rng(5).integers(0, 4, len(te.y))
    out = linear_probe(tr, te, seed=0, epochs=3, lr=0.1, topk=(1,))
    assert 10 < out["top1"] < 40


def test_deterministic_given_seed():
    tr, te = _blobs(300, spread=0.5), _blobs(300, seed=1, spread=0.5)
    kw = dict(epochs=2, lr=0.05, milestones=(1,), normalize=True)
    a = linear_probe(tr, te, seed=3, **kw)
    assert a == linear_probe(tr, te, seed=3, **kw)


def test_topk_correct_counts():
    logits = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.1, 0.05]])
    assert topk_correct(logits, torch.tensor([1, 2]), (1, 2, 3)) == [1, 1, 2]


def test_rejects_multilabel():
    f = Features(np.zeros((4, 2), np.float32), np.ones((4, 3), np.int8), np.arange(4))
    with pytest.raises(ValueError, match="multi-label"):
        linear_probe(f, f, seed=0, epochs=1, lr=0.1)


class _Images(torch.utils.data.Dataset):
    def __init__(self, n, seed):
        g = torch.Generator().manual_seed(seed)
        self.y = torch.randint(0, 3, (n,), generator=g)
        self.x = torch.randn(n, 3, 8, 8, generator=g) * 0.1 + self.y[:, None, None, None]

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], int(self.y[i]), i


class _Backbone(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)

    def feature_maps(self, x):
        return self.bn(self.conv(x))

    def forward(self, x):
        return self.feature_maps(x).mean((2, 3))


def test_augmented_probe_freezes_backbone_in_eval_mode():
    backbone = _Backbone()
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    data = ModelData(_Images(64, 0), _Images(32, 1), num_classes=3, feat_dim=4)
    out = linear_probe_augmented(backbone, data, seed=0, epochs=2, lr=1.0, batch_size=16,
                                 milestones=(1,), topk=(1,))
    assert 0 <= out["top1"] <= 100
    for k, v in backbone.state_dict().items():  # BN running stats untouched too
        assert torch.equal(v, before[k]), k
