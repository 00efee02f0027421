"""Untrained: the randomly initialised network, evaluated as is (a reference row, no paper).

What a table's self-supervised rows must beat: the same backbone with PyTorch's default
initialisation (seeded by the run's seed, as every method's), put through the same
evaluation protocols. With backbone ``pixels`` it is the "raw pixels" reference.

The trunk is never changed: ``forward`` does not run it (its BN running statistics stay at
their initial values), its parameters are frozen (``requires_grad`` off, so DDP waits for no
gradient of theirs), and the optimiser only sees a private zero scalar, so weight decay and
momentum have nothing of the trunk to touch. The loss is that scalar times 0.

NOTE: the training loop still iterates over the data for ``optim.epochs`` epochs (the spec
requires epochs >= 1; use 1): the views are decoded and augmented for nothing, and the loss
logged is 0 at every step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from repro.methods.base import Method


@dataclass
class UntrainedConfig:
    """No parameters: the network is evaluated as initialised."""


class Untrained(Method):
    Config = UntrainedConfig
    # Read by tests/methods: the generic "gradients reach the trunk / the trunk moves" checks
    # assert the opposite for this method.
    trains_trunk: ClassVar[bool] = False

    def __init__(self, cfg: UntrainedConfig, trunk: nn.Module, feat_dim: int):
        super().__init__()
        self.cfg = cfg
        self.trunk = trunk
        for p in self.trunk.parameters():
            p.requires_grad_(False)
        # the optimiser's only parameter; stays 0 (zero gradient, and weight decay of 0 is 0)
        self.dummy = nn.Parameter(torch.zeros(()))

    def param_groups(self) -> list[dict]:
        return [{"params": [self.dummy]}]

    def encoders(self) -> dict[str, nn.Module]:
        return {"query": self.trunk}

    def forward(self, views, index, epoch):
        return {"loss": self.dummy * 0.0}
