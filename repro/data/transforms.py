"""Augmentations of the four papers' recipes, applied image by image.

``build_views(name, image_size)`` returns a callable mapping one PIL image to a list of
augmented tensors. Every transform draws its own random parameters per image and per view
(torchvision's PIL transforms, not ``transforms.v2`` on a batch tensor, which would draw one
crop for the whole batch).
"""

from __future__ import annotations

from typing import Callable

import torch
from PIL import Image
from torchvision import transforms as T

from repro.data import dataset_info
from repro.registry import UnknownName

# datasets whose images all have their native size up to this side length; larger ones vary
FIXED_SIZE_MAX = 96
IMAGENET_MEAN_STD = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
# NOTE: per-channel statistics of each dataset's training images. The authors' repositories use
# slightly different CIFAR constants from one another; the difference is a fixed affine map of the
# input, which BN in the first block absorbs.
# NOTE: STL-10 is not listed: it gets ImageNet's statistics, as ProPos's code does
# (Hzzone/ProPos models/basic_template.py TrainTask.normalize, 'stl10' -> ImageNet mean/std).
# The papers differ here: CARL (appendix A.3, no code) normalises with "the dataset's mean and
# STD" without printing them; its STL-10 recipes get ImageNet's statistics too.
MEAN_STD = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "cifar20": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    # measured on the 32 x 32 upscaled images served by repro.data.digits
    "digits": ((0.3055, 0.3055, 0.3055), (0.3235, 0.3235, 0.3235)),
    # measured on the 60,000 real training images (grey repeated in R, G, B) served by
    # repro.data.fashion_mnist, /255, over all pixels
    "fashion_mnist": ((0.2860, 0.2860, 0.2860), (0.3530, 0.3530, 0.3530)),
}


def mean_std(dataset: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Normalisation constants of ``dataset``'s family (ImageNet statistics unless listed)."""
    dataset_info(dataset)  # unknown names raise, listing the allowed ones
    return MEAN_STD.get(dataset, IMAGENET_MEAN_STD)


# datasets served as grey (mode "L") PIL images: the tensor's grey level is repeated in three
# channels before normalising (the backbones take RGB)
GREY_DATASETS = ("fashion_mnist",)


class GreyToRGB:
    """1 x H x W tensor -> 3 x H x W, the grey level in each channel (RGB tensors pass)."""

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        return t.expand(3, -1, -1) if t.shape[0] == 1 else t

    def __repr__(self) -> str:
        return "GreyToRGB()"


def _to_tensor(dataset: str) -> list[Callable]:
    mean, std = mean_std(dataset)
    grey = [GreyToRGB()] if dataset in GREY_DATASETS else []
    return [T.ToTensor(), *grey, T.Normalize(mean, std)]


def _blur(image_size: int, p: float) -> T.RandomApply:
    # SimCLR: kernel ~10% of the image side, sigma ~ U(0.1, 2.0)
    kernel = max(3, int(0.1 * image_size) // 2 * 2 + 1)
    return T.RandomApply([T.GaussianBlur(kernel, sigma=(0.1, 2.0))], p=p)


def _moco_v1(size: int, blur: bool) -> list[list[Callable]]:
    # MoCo v1 (He et al. 2020, main_moco.py): no blur in the recipe; `blur` adds it if asked.
    ops = [T.RandomResizedCrop(size, scale=(0.2, 1.0)), T.RandomGrayscale(p=0.2),
           T.ColorJitter(0.4, 0.4, 0.4, 0.4), T.RandomHorizontalFlip()]
    return [ops + ([_blur(size, 0.5)] if blur else [])]


def _moco_v2(size: int, blur: bool) -> list[list[Callable]]:
    # MoCo v2 (Chen et al. 2020b) = PCL v2's augmentation
    ops = [T.RandomResizedCrop(size, scale=(0.2, 1.0)),
           T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8), T.RandomGrayscale(p=0.2)]
    return [ops + ([_blur(size, 0.5)] if blur else []) + [T.RandomHorizontalFlip()]]


def _simclr(size: int, blur: bool) -> list[list[Callable]]:
    # SimCLR (Chen et al. 2020a, appendix A), colour strength s = 1
    ops = [T.RandomResizedCrop(size, scale=(0.08, 1.0)), T.RandomHorizontalFlip(),
           T.RandomApply([T.ColorJitter(0.8, 0.8, 0.8, 0.2)], p=0.8), T.RandomGrayscale(p=0.2)]
    return [ops + ([_blur(size, 0.5)] if blur else [])]


def _byol(size: int, blur: bool) -> list[list[Callable]]:
    # BYOL (Grill et al. 2020, table 6): view 1 always blurred, never solarised; view 2 blurred
    # with p = 0.1 and solarised with p = 0.2.
    def view(p_blur: float, p_solarize: float) -> list[Callable]:
        ops = [T.RandomResizedCrop(size, scale=(0.08, 1.0),
                                   interpolation=T.InterpolationMode.BICUBIC),
               T.RandomHorizontalFlip(),
               T.RandomApply([T.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8),
               T.RandomGrayscale(p=0.2)]
        ops += [_blur(size, p_blur)] if blur else []
        return ops + [T.RandomSolarize(128, p=p_solarize)]

    return [view(1.0, 0.0), view(0.1, 0.2)]


def _propos_cifar(size: int, blur: bool) -> list[list[Callable]]:
    # ProPos's CIFAR recipe (official code): no blur at 32 px.
    ops = [T.RandomResizedCrop(size, scale=(0.08, 1.0)), T.RandomHorizontalFlip(),
           T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8), T.RandomGrayscale(p=0.2)]
    return [ops + ([_blur(size, 0.5)] if blur else [])]


def _swav(size: int, blur: bool) -> list[list[Callable]]:
    # SwAV's multi-crop (facebookresearch/swav @ 04b8f43 src/multicropdataset.py, scripts
    # swav_{200,800}ep*_pretrain.sh: --size_crops 224 96 --min_scale_crops 0.14 0.05
    # --max_scale_crops 1. 0.14): views 0-1 of `size` px at scale 0.14-1, views 2-7 of
    # size * 96/224 px at scale 0.05-0.14 (n_views 8 = 2 + 6); each: flip, colour distortion
    # s = 1 (jitter 0.8/0.8/0.8/0.2 p = 0.8, grayscale p = 0.2), Gaussian blur p = 0.5 with a
    # 23-px kernel at every size, sigma U(0.1, 2.0).
    def view(side: int, scale: tuple[float, float]) -> list[Callable]:
        ops = [T.RandomResizedCrop(side, scale=scale), T.RandomHorizontalFlip(),
               T.RandomApply([T.ColorJitter(0.8, 0.8, 0.8, 0.2)], p=0.8), T.RandomGrayscale(p=0.2)]
        kernel = min(23, (side - 1) // 2 * 2 + 1)  # 23 unless the crop is smaller
        return ops + ([T.RandomApply([T.GaussianBlur(kernel, sigma=(0.1, 2.0))], p=0.5)]
                      if blur else [])

    small = round(size * 96 / 224)
    return [view(size, (0.14, 1.0))] * 2 + [view(small, (0.05, 0.14))] * 6


# name -> (recipe, whether the recipe blurs at ImageNet resolution)
RECIPES = {
    "byol": (_byol, True),
    "moco_v1": (_moco_v1, False),
    "moco_v2": (_moco_v2, True),
    "propos_cifar": (_propos_cifar, False),
    "simclr": (_simclr, True),
    "swav": (_swav, True),
}


class MultiView:
    """Maps one image to ``n_views`` independently augmented tensors (view i uses pipeline
    i mod len(pipelines): asymmetric recipes such as BYOL alternate)."""

    def __init__(self, pipelines: list[T.Compose], n_views: int):
        self.pipelines = pipelines
        self.n_views = n_views

    def __call__(self, image: Image.Image) -> list[torch.Tensor]:
        return [self.pipelines[v % len(self.pipelines)](image) for v in range(self.n_views)]

    def __repr__(self) -> str:
        return f"MultiView(n_views={self.n_views}, pipelines={self.pipelines})"


def build_views(name: str, image_size: int, n_views: int = 2, blur: bool | None = None,
                dataset: str = "imagenet") -> MultiView:
    """The augmentation recipe ``name`` producing ``n_views`` views of ``image_size`` pixels.

    blur: None = the recipe's own choice, dropped below 64 px (as the CIFAR ports of MoCo v2,
    BYOL and ProPos do); True/False forces it. dataset: picks the normalisation constants.
    """
    if name not in RECIPES:
        raise UnknownName(f"unknown augmentation {name!r}; allowed: {', '.join(sorted(RECIPES))}")
    if n_views < 1:
        raise ValueError(f"n_views must be >= 1, got {n_views}")
    recipe, blurs = RECIPES[name]
    blur = (blurs and image_size >= 64) if blur is None else blur
    tail = _to_tensor(dataset)
    return MultiView([T.Compose(ops + tail) for ops in recipe(image_size, blur)], n_views)


# ImageNet subsets only ProPos evaluates (96 px in its Table 2). Its test transform
# (Hzzone/ProPos models/basic_template.py TrainTask.test_transform, with --test_resized_crop as
# config/imagenetdogs_r34_propos.yml sets, and set_loader warns for any 'imagenet' dataset
# without it): Resize(256) + CenterCrop(224), then PIL ``image.resize((size, size))``
# (Pillow's default filter, bicubic), skipped when the image already has that size.
PROPOS_IMAGENET_SUBSETS = ("imagenet10", "imagenet_dogs")


def eval_transform(image_size: int, dataset: str) -> T.Compose:
    """Deterministic evaluation transform.

    Fixed-size datasets of at most 96 px (CIFAR, digits, STL-10, ImageNet 64x64, Tiny ImageNet):
    resize to ``image_size`` if it differs, no crop (ProPos's test transform on CIFAR and
    STL-10). ProPos's ImageNet subsets: Resize(256) + CenterCrop(224) + bicubic resize to
    ``image_size`` (ProPos's code). Other datasets of larger, varying images: ImageNet-style
    Resize(256/224 * size) + CenterCrop(size). At 224 px the last two are the same.
    """
    native = dataset_info(dataset).image_size
    if native <= FIXED_SIZE_MAX:
        ops = [] if native == image_size else [T.Resize((image_size, image_size))]
    elif dataset in PROPOS_IMAGENET_SUBSETS:
        ops = [T.Resize(256), T.CenterCrop(224)]
        if image_size != 224:
            ops.append(T.Resize((image_size, image_size),
                                interpolation=T.InterpolationMode.BICUBIC))
    else:
        ops = [T.Resize(round(image_size * 256 / 224)), T.CenterCrop(image_size)]
    return T.Compose(ops + _to_tensor(dataset))


def probe_transform(image_size: int, dataset: str) -> T.Compose:
    """Training transform of a linear probe / fine-tune: RandomResizedCrop + flip (ImageNet
    protocol), or random crop with size/8 padding + flip for fixed-size datasets of <= 96 px."""
    native = dataset_info(dataset).image_size
    if native <= FIXED_SIZE_MAX:
        ops = [] if native == image_size else [T.Resize((image_size, image_size))]
        ops += [T.RandomCrop(image_size, padding=image_size // 8), T.RandomHorizontalFlip()]
    else:
        ops = [T.RandomResizedCrop(image_size), T.RandomHorizontalFlip()]
    return T.Compose(ops + _to_tensor(dataset))
