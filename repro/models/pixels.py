"""Raw pixels as a trunk: the "no network at all" reference row of a table.

``pixels`` has no parameters: its pooled feature is the normalised image itself, flattened
(N x C*H*W), and its "last stage" is the image (N x C x H x W), so ``layer: conv5_avgpool``
gives the image average-pooled to ``pool`` x ``pool`` (N x C*pool*pool). Pretrain it with the
``untrained`` method (nothing to train), then evaluate it with any features protocol.
"""

from __future__ import annotations

import torch
from torch import nn


class PixelsTrunk(nn.Module):
    """Identity trunk: ``forward(x) = x.flatten(1)``, ``feature_maps(x) = x``.

    NOTE: ``dim`` is 0 because the feature dimension (C*H*W) is not known before an image is
    seen: it depends on the evaluation's image size. Protocols on cached features
    (``repro.features``: kNN, linear probe on features, SVMs, clustering) never read ``dim``,
    so they work; protocols that build a head of ``feat_dim`` inputs on a live backbone
    (``linear_probe_augmented``, ``finetune``, ``detection``) and the ``supervised`` method
    (which rejects it) cannot use this trunk.
    """

    def __init__(self):
        super().__init__()
        self.dim = 0  # unknown until an image is seen; see the class docstring

    def feature_maps(self, x: torch.Tensor) -> torch.Tensor:
        return x  # N x C x H x W

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)  # N x C*H*W


def pixels(cifar_stem: bool = False) -> PixelsTrunk:
    """The raw-pixels trunk; ``cifar_stem`` is accepted (every builder takes it) and ignored."""
    del cifar_stem
    return PixelsTrunk()
