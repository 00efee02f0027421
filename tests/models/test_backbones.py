"""Backbones: every registered arch, with and without the CIFAR stem."""

import pytest
import torch
import torchvision
from torch import nn

from repro.models import BACKBONES, build_backbone
from repro.models.resnet import TINY_WIDTHS
from repro.registry import UnknownName

EXPECTED_DIM = {"resnet18": 512, "resnet18_tiny": 128, "resnet34": 512, "resnet50": 2048}
# Parameter-free trunks, tested in test_pixels_trunk_is_the_image (dim 0: not known up front).
NOT_RESNETS = {"pixels"}
RESNETS = [name for name in BACKBONES.names() if name not in NOT_RESNETS]


def test_expected_dims_cover_the_registry():
    assert sorted(EXPECTED_DIM) == RESNETS
    assert sorted(NOT_RESNETS | set(RESNETS)) == BACKBONES.names()


@pytest.mark.parametrize("cifar_stem, size, spatial", [(True, 16, 2), (False, 64, 2)])
@pytest.mark.parametrize("arch", RESNETS)
def test_shapes(arch, cifar_stem, size, spatial):
    trunk, dim = build_backbone(arch, cifar_stem=cifar_stem)
    assert dim == EXPECTED_DIM[arch]
    trunk.eval()
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        pooled, maps = trunk(x), trunk.feature_maps(x)
    assert pooled.shape == (2, dim)
    assert maps.shape == (2, dim, spatial, spatial)  # stride 8 (CIFAR stem) or 32
    torch.testing.assert_close(pooled, maps.mean(dim=(2, 3)))


@pytest.mark.parametrize("arch", RESNETS)
def test_cifar_stem_is_a_3x3_stride_1_conv_without_max_pool(arch):
    trunk, _ = build_backbone(arch, cifar_stem=True)
    assert trunk.conv1.kernel_size == (3, 3) and trunk.conv1.stride == (1, 1)
    assert isinstance(trunk.maxpool, nn.Identity)
    plain, _ = build_backbone(arch)
    assert plain.conv1.kernel_size == (7, 7) and isinstance(plain.maxpool, nn.MaxPool2d)


@pytest.mark.parametrize("arch", ["resnet18", "resnet34", "resnet50"])
def test_torchvision_trunks_keep_torchvision_parameter_names(arch):
    trunk, _ = build_backbone(arch)
    reference = getattr(torchvision.models, arch)(weights=None)
    result = reference.load_state_dict(trunk.state_dict(), strict=False)
    assert result.unexpected_keys == [] and sorted(result.missing_keys) == ["fc.bias", "fc.weight"]


def test_tiny_resnet_is_narrow_and_trains():
    trunk, dim = build_backbone("resnet18_tiny", cifar_stem=True)
    widths = [layer.conv2.out_channels for layer in
              (trunk.layer1, trunk.layer2, trunk.layer3, trunk.layer4)]
    assert tuple(widths) == TINY_WIDTHS and dim == 128
    n_params = sum(p.numel() for p in trunk.parameters())
    assert n_params < 0.05 * sum(p.numel() for p in build_backbone("resnet18")[0].parameters())
    trunk(torch.randn(4, 3, 32, 32)).pow(2).mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in trunk.parameters())


@pytest.mark.parametrize("cifar_stem", [True, False])
def test_pixels_trunk_is_the_image(cifar_stem):
    trunk, dim = build_backbone("pixels", cifar_stem=cifar_stem)
    assert dim == 0 and list(trunk.parameters()) == [] and trunk.state_dict() == {}
    x = torch.randn(2, 3, 5, 7)
    assert torch.equal(trunk(x), x.reshape(2, 105))
    assert torch.equal(trunk.feature_maps(x), x)


def test_unknown_arch_lists_allowed_names():
    with pytest.raises(UnknownName,
                       match="allowed: pixels, resnet18, resnet18_tiny, resnet34, resnet50"):
        build_backbone("resnet101")
