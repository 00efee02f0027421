"""Single-process shuffled BN = MoCo's CIFAR demo SplitBatchNorm (facebookresearch/moco
colab/moco_cifar10_demo.ipynb): per-split batch statistics in the forward, ONE running-stat
update per step with the split-averaged mean / unbiased variance."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from repro.methods.base import forward_shuffled_bn

N, C, SPLITS = 16, 3, 4


def _bn_with_stats(momentum=0.1) -> nn.BatchNorm2d:
    torch.manual_seed(1)
    bn = nn.BatchNorm2d(C, momentum=momentum)
    with torch.no_grad():  # start from non-trivial running statistics and affine parameters
        bn.running_mean.copy_(torch.randn(C))
        bn.running_var.copy_(torch.rand(C) + 0.5)
        bn.weight.copy_(torch.rand(C) + 0.5)
        bn.bias.copy_(torch.randn(C))
    return bn.train()


def test_running_stats_take_one_update_with_split_averaged_statistics():
    bn = _bn_with_stats()
    mean0, var0 = bn.running_mean.clone(), bn.running_var.clone()
    x = torch.randn(N, C, 5, 5)
    torch.manual_seed(7)
    out = forward_shuffled_bn(bn, x, SPLITS)
    torch.manual_seed(7)
    perm = torch.randperm(N)  # batch_shuffle's permutation

    chunks = x[perm].chunk(SPLITS)
    split_mean = torch.stack([c.mean(dim=(0, 2, 3)) for c in chunks])  # SPLITS x C
    split_var = torch.stack([c.var(dim=(0, 2, 3), unbiased=True) for c in chunks])
    m = bn.momentum
    torch.testing.assert_close(bn.running_mean, (1 - m) * mean0 + m * split_mean.mean(0))
    torch.testing.assert_close(bn.running_var, (1 - m) * var0 + m * split_var.mean(0))
    assert int(bn.num_batches_tracked) == 1  # one step, one update

    # the output: each chunk normalised with its own batch statistics, then unshuffled
    per_chunk = torch.cat([F.batch_norm(c, None, None, bn.weight, bn.bias, training=True)
                           for c in chunks])
    expected = torch.empty_like(per_chunk)
    expected[perm] = per_chunk
    torch.testing.assert_close(out, expected)


def test_several_layers_each_average_their_own_split_statistics():
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Conv2d(C, 4, 1), nn.BatchNorm2d(4), nn.ReLU(),
                            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 6),
                            nn.BatchNorm1d(6)).train()
    reference = copy.deepcopy(encoder)
    x = torch.randn(N, C, 4, 4)
    torch.manual_seed(3)
    forward_shuffled_bn(encoder, x, SPLITS)
    torch.manual_seed(3)
    perm = torch.randperm(N)
    # the demo's rule per layer: each split's own BN update from the same start, averaged
    runs = [copy.deepcopy(reference) for _ in range(SPLITS)]
    for run, chunk in zip(runs, x[perm].chunk(SPLITS)):
        run(chunk)
    for i in (1, 6):
        expected_mean = torch.stack([r[i].running_mean for r in runs]).mean(0)
        expected_var = torch.stack([r[i].running_var for r in runs]).mean(0)
        torch.testing.assert_close(encoder[i].running_mean, expected_mean)
        torch.testing.assert_close(encoder[i].running_var, expected_var)
        assert int(encoder[i].num_batches_tracked) == 1


def test_small_batches_and_one_split_use_one_plain_forward():
    bn = _bn_with_stats()
    reference = copy.deepcopy(bn)
    x = torch.randn(6, C, 2, 2)  # fewer than 2 samples per split: no splitting
    torch.manual_seed(0)
    out = forward_shuffled_bn(bn, x, SPLITS)
    torch.testing.assert_close(out, reference(x))
    torch.testing.assert_close(bn.running_mean, reference.running_mean)
