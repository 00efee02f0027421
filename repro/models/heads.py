"""Projection / prediction heads put on top of a trunk's pooled features."""

from __future__ import annotations

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
