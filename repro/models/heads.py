"""Projection / prediction heads put on top of a trunk's pooled features."""

from __future__ import annotations

import torch
from torch import nn


def linear_head(in_dim: int, out_dim: int) -> nn.Linear:
    """A single linear layer (MoCo v1 / PCL v1 projection, linear probes)."""
    return nn.Linear(in_dim, out_dim)


def mlp_head(in_dim: int, hidden_dim: int, out_dim: int, bn: bool,
             last_bn: bool = False) -> nn.Sequential:
    """Linear - [BN] - ReLU - Linear [- BN].

    bn=False: MoCo v2 / PCL v2 (Linear-ReLU-Linear). bn=True: BYOL / ProPos projector and
    predictor (Linear-BN-ReLU-Linear) and CARL's 2-layer MLP with BN.
    last_bn: a BatchNorm1d without affine parameters on the output (SimSiam / MoCo v3 style).
    """
    layers: list[nn.Module] = [nn.Linear(in_dim, hidden_dim)]
    layers += [nn.BatchNorm1d(hidden_dim)] if bn else []
    layers += [nn.ReLU(inplace=True), nn.Linear(hidden_dim, out_dim)]
    layers += [nn.BatchNorm1d(out_dim, affine=False)] if last_bn else []
    return nn.Sequential(*layers)


def simsiam_projector(in_dim: int, hidden_dim: int, out_dim: int, num_layers: int,
                      out_affine: bool = False) -> nn.Sequential:
    """SimSiam's projection MLP: (Linear - BN - ReLU) x (num_layers - 1), Linear - BN.

    3 layers is the authors' ImageNet projector (facebookresearch/simsiam simsiam/builder.py
    L21-31), 2 the paper's CIFAR variant (appendix; Hzzone/ProPos
    models/simsiam/simsiam_wrapper.py ``projection_num_layers``). A Linear followed by BN has
    no bias (BN cancels it; the authors drop or freeze it). The output BN has no affine
    parameters as the authors'; ``out_affine`` keeps them, as ProPos's copy does
    (simsiam_wrapper.py, layer3: ``nn.BatchNorm1d(out_dim)``, affine=False commented out).
    """
    if num_layers not in (2, 3):
        raise ValueError(f"SimSiam projector num_layers must be 2 or 3, got {num_layers}")
    layers: list[nn.Module] = []
    dim = in_dim
    for _ in range(num_layers - 1):
        layers += [nn.Linear(dim, hidden_dim, bias=False), nn.BatchNorm1d(hidden_dim),
                   nn.ReLU(inplace=True)]
        dim = hidden_dim
    layers += [nn.Linear(dim, out_dim, bias=False), nn.BatchNorm1d(out_dim, affine=out_affine)]
    return nn.Sequential(*layers)


class ScaleOnlyBatchNorm1d(nn.Module):
    """BatchNorm1d with a learnable scale and no shift (TF's ``center=False``)."""

    def __init__(self, dim: int):
        super().__init__()
        self.bn = nn.BatchNorm1d(dim, affine=False)
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(x) * self.weight


def simclr_head(in_dim: int, hidden_dim: int, out_dim: int, hidden_bn: bool = True,
                out_bn: bool = True) -> nn.Sequential:
    """SimCLR's projection head: Linear - [BN] - ReLU - Linear [- BN (scale only)].

    The authors' head (google-research/simclr v1 model_util.py ``projection_head``, 'nonlinear'
    mode: ``nl_0`` with bias + BN + ReLU, ``nl_1`` without bias + BN with ``center=False``)
    has both BNs; a Linear followed by BN carries no bias (BN cancels it). Without BN the
    Linear layers keep their biases.
    """
    layers: list[nn.Module] = [nn.Linear(in_dim, hidden_dim, bias=not hidden_bn)]
    layers += [nn.BatchNorm1d(hidden_dim)] if hidden_bn else []
    layers += [nn.ReLU(inplace=True), nn.Linear(hidden_dim, out_dim, bias=not out_bn)]
    layers += [ScaleOnlyBatchNorm1d(out_dim)] if out_bn else []
    return nn.Sequential(*layers)
