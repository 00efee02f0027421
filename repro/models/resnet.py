"""ResNet trunks: images N x 3 x H x W -> pooled features N x D (no classifier)."""

from __future__ import annotations

import torch
import torchvision
from torch import nn


class ResNetTrunk(nn.Module):
    """A ResNet without its classifier.

    ``forward`` returns the globally average-pooled last-stage features (N x D);
    ``feature_maps`` returns the last stage itself (conv5: N x D x h x w), which the Places205
    protocol pools to ~9000-d. Parameter names are torchvision's (``conv1``, ``layer1``, ...),
    so a trunk's state dict loads into ``torchvision.models.resnet*`` (strict=False, no ``fc``)
    and converts to detectron2 like the authors' checkpoints.
    """

    def __init__(self, conv1: nn.Module, bn1: nn.Module, maxpool: nn.Module,
                 layers: list[nn.Module], dim: int):
        super().__init__()
        self.conv1, self.bn1, self.relu, self.maxpool = conv1, bn1, nn.ReLU(inplace=True), maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.dim = dim

    def feature_maps(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))  # N x D x h x w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(nn.functional.adaptive_avg_pool2d(self.feature_maps(x), 1), 1)


def _cifar_conv1(width: int) -> nn.Conv2d:
    # CIFAR stem (SimCLR/ProPos CIFAR ports): 3x3 stride-1 first conv, and no max-pool after it
    return nn.Conv2d(3, width, kernel_size=3, stride=1, padding=1, bias=False)


def _torchvision_trunk(arch: str, cifar_stem: bool) -> ResNetTrunk:
    net = getattr(torchvision.models, arch)(weights=None)
    if cifar_stem:
        net.conv1 = _cifar_conv1(net.conv1.out_channels)
        net.maxpool = nn.Identity()
    layers = [net.layer1, net.layer2, net.layer3, net.layer4]
    return ResNetTrunk(net.conv1, net.bn1, net.maxpool, layers, net.fc.in_features)


def resnet18(cifar_stem: bool = False) -> ResNetTrunk:
    return _torchvision_trunk("resnet18", cifar_stem)


def resnet34(cifar_stem: bool = False) -> ResNetTrunk:
    return _torchvision_trunk("resnet34", cifar_stem)


def resnet50(cifar_stem: bool = False) -> ResNetTrunk:
    return _torchvision_trunk("resnet50", cifar_stem)


class _BasicBlock(nn.Module):
    """Two 3x3 convs with a residual; a 1x1 projection when the shape changes."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False),
                                          nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


TINY_WIDTHS = (16, 32, 64, 128)


def resnet18_tiny(cifar_stem: bool = False) -> ResNetTrunk:
    """A narrow ResNet for CPU smoke runs: widths 16-32-64-128, one BasicBlock per stage, D=128.

    NOTE: not in any paper. torchvision's ResNet fixes the BasicBlock width at 64, so this is our
    own module; use it only to check that a pipeline runs, never for a paper number.
    """
    w = TINY_WIDTHS
    if cifar_stem:
        conv1, maxpool = _cifar_conv1(w[0]), nn.Identity()
    else:
        conv1, maxpool = nn.Conv2d(3, w[0], 7, 2, 3, bias=False), nn.MaxPool2d(3, 2, 1)
    layers = [_BasicBlock(w[0], w[0], 1), _BasicBlock(w[0], w[1], 2),
              _BasicBlock(w[1], w[2], 2), _BasicBlock(w[2], w[3], 2)]
    trunk = ResNetTrunk(conv1, nn.BatchNorm2d(w[0]), maxpool, layers, w[3])
    for m in trunk.modules():  # torchvision's ResNet initialisation
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    return trunk
