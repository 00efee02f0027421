"""Backbones and heads, looked up by name. No method logic lives here.

Importing this package imports no torch; ``build_backbone`` imports the implementation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from repro.registry import Registry

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

# arch -> "module:builder"; a builder is ``builder(cifar_stem: bool) -> trunk`` where
# ``trunk(x)`` is N x D and ``trunk.feature_maps(x)`` is N x D x h x w. Keep sorted; tests
# iterate over this registry.
BACKBONES = Registry(
    "backbone",
    {
        "pixels": "repro.models.pixels:pixels",
        "resnet18": "repro.models.resnet:resnet18",
        "resnet18_tiny": "repro.models.resnet:resnet18_tiny",
        "resnet34": "repro.models.resnet:resnet34",
        "resnet50": "repro.models.resnet:resnet50",
    },
)


def build_backbone(arch: str, cifar_stem: bool = False) -> tuple[nn.Module, int]:
    """A randomly initialised trunk and its feature dimension D.

    cifar_stem: 3x3 stride-1 first conv and no max-pool (for 32-96 px images).
    """
    trunk = BACKBONES.resolve(arch)(cifar_stem=cifar_stem)
    return trunk, trunk.dim


__all__ = ["BACKBONES", "build_backbone"]
