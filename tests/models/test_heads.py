"""Projection heads."""

import torch
from torch import nn

from repro.models.heads import linear_head, mlp_head


def _kinds(head):
    return [type(m).__name__ for m in head]


def test_mlp_without_bn_is_moco_v2_style():
    head = mlp_head(512, 2048, 128, bn=False)
    assert _kinds(head) == ["Linear", "ReLU", "Linear"]
    assert head(torch.randn(3, 512)).shape == (3, 128)


def test_mlp_with_bn_is_byol_style():
    head = mlp_head(512, 4096, 256, bn=True)
    assert _kinds(head) == ["Linear", "BatchNorm1d", "ReLU", "Linear"]
    assert head[1].num_features == 4096 and head(torch.randn(4, 512)).shape == (4, 256)


def test_last_bn_standardises_the_output_without_affine_parameters():
    head = mlp_head(16, 32, 8, bn=True, last_bn=True)
    assert _kinds(head)[-1] == "BatchNorm1d" and not head[-1].affine
    out = head.train()(torch.randn(64, 16))
    torch.testing.assert_close(out.mean(0), torch.zeros(8), atol=1e-5, rtol=0)


def test_linear_head():
    head = linear_head(2048, 205)
    assert isinstance(head, nn.Linear) and head(torch.randn(2, 2048)).shape == (2, 205)
