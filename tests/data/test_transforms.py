"""Augmentation recipes: per-image randomness, view counts, blur policy, eval transforms."""

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as T

from repro.data.transforms import RECIPES, build_views, eval_transform, mean_std, probe_transform
from repro.registry import UnknownName


def _image(size=32, seed=0):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))


def _ops(views, kind):
    found = []
    for pipeline in views.pipelines:
        for op in pipeline.transforms:
            inner = op.transforms if isinstance(op, T.RandomApply) else [op]
            found += [o for o in inner if isinstance(o, kind)]
    return found


@pytest.mark.parametrize("name", sorted(RECIPES))
@pytest.mark.parametrize("n_views", [1, 2, 4])
def test_recipes_return_n_views_of_the_requested_size(name, n_views):
    views = build_views(name, 24, n_views=n_views, dataset="cifar10")(_image(40))
    assert len(views) == n_views
    # swav: views 2+ are SwAV's small crops, 96/224 of the size
    sides = [10 if name == "swav" and v >= 2 else 24 for v in range(n_views)]
    assert [tuple(v.shape) for v in views] == [(3, s, s) for s in sides]
    assert all(v.dtype == torch.float32 for v in views)


def test_swav_multi_crop_is_the_authors_2x224_plus_6x96():
    views = build_views("swav", 224, n_views=8)
    assert [tuple(v.shape[1:]) for v in views(_image(256))] == [(224, 224)] * 2 + [(96, 96)] * 6
    crops = _ops(views, T.RandomResizedCrop)
    assert [(c.size, c.scale) for c in crops] == ([((224, 224), (0.14, 1.0))] * 2
                                                 + [((96, 96), (0.05, 0.14))] * 6)
    blurs = _ops(views, T.GaussianBlur)  # p = 0.5, a 23-px kernel at both sizes
    assert len(blurs) == 8 and all(b.kernel_size == (23, 23) for b in blurs)
    jitter = _ops(views, T.ColorJitter)[0]
    assert jitter.brightness == pytest.approx((0.2, 1.8))
    assert jitter.hue == pytest.approx((-0.2, 0.2))


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_views_differ_per_image_within_a_batch(name):
    # the same picture at 8 batch positions: a batch-level transform would give 8 equal crops
    augment = build_views(name, 32, n_views=2, dataset="cifar10")
    dataset = [augment(_image()) for _ in range(8)]
    first_views = torch.stack([views[0] for views in dataset])
    distinct = {tuple(v.flatten()[:64].tolist()) for v in first_views}
    assert len(distinct) == 8
    assert not torch.equal(dataset[0][0], dataset[0][1])


def test_blur_follows_the_recipe_and_image_size():
    assert _ops(build_views("moco_v2", 224), T.GaussianBlur)
    assert not _ops(build_views("moco_v2", 32), T.GaussianBlur)  # CIFAR ports drop blur
    assert not _ops(build_views("moco_v1", 224), T.GaussianBlur)
    assert not _ops(build_views("propos_cifar", 32), T.GaussianBlur)
    assert _ops(build_views("propos_cifar", 32, blur=True), T.GaussianBlur)
    (blur,) = _ops(build_views("simclr", 224), T.GaussianBlur)
    assert blur.kernel_size == (23, 23) and tuple(blur.sigma) == (0.1, 2.0)


def test_recipe_parameters():
    (crop,) = _ops(build_views("propos_cifar", 32), T.RandomResizedCrop)
    assert crop.scale == (0.08, 1.0)
    (crop,) = _ops(build_views("moco_v1", 224), T.RandomResizedCrop)
    (jitter,) = _ops(build_views("moco_v1", 224), T.ColorJitter)
    assert crop.scale == (0.2, 1.0) and jitter.hue == (-0.4, 0.4)
    (jitter,) = _ops(build_views("moco_v2", 224), T.ColorJitter)
    assert jitter.brightness == (0.6, 1.4) and jitter.hue == (-0.1, 0.1)


def test_byol_views_are_asymmetric():
    views = build_views("byol", 96)
    first, second = views.pipelines
    blur_p = [op.p for p in (first, second) for op in p.transforms
              if isinstance(op, T.RandomApply) and isinstance(op.transforms[0], T.GaussianBlur)]
    solarize_p = [op.p for p in (first, second) for op in p.transforms
                  if isinstance(op, T.RandomSolarize)]
    assert blur_p == [1.0, 0.1] and solarize_p == [0.0, 0.2]


def test_unknown_recipe_lists_allowed_names():
    with pytest.raises(UnknownName, match="allowed: byol, moco_v1, moco_v2, propos_cifar, simclr"):
        build_views("mocov2", 32)


def test_eval_transform_is_deterministic_and_sized():
    image = _image(32)
    cifar = eval_transform(32, "cifar10")
    assert torch.equal(cifar(image), cifar(image)) and cifar(image).shape == (3, 32, 32)
    wide = Image.new("RGB", (400, 300))
    assert eval_transform(224, "imagenet")(wide).shape == (3, 224, 224)
    assert eval_transform(64, "cifar10")(image).shape == (3, 64, 64)


@pytest.mark.parametrize("dataset", ["cifar10", "cifar100", "digits", "imagenet", "stl10"])
def test_normalisation_centres_the_dataset_mean(dataset):
    mean, std = mean_std(dataset)
    colour = tuple(round(255 * m) for m in mean)
    size = 32 if dataset != "imagenet" else 224
    out = eval_transform(size, dataset)(Image.new("RGB", (size, size), colour))
    assert out.abs().max() < 0.02


def test_probe_transform_shapes():
    assert probe_transform(32, "cifar10")(_image(32)).shape == (3, 32, 32)
    assert probe_transform(224, "imagenet")(Image.new("RGB", (300, 260))).shape == (3, 224, 224)


def _propos_test_transform(image: Image.Image, img_size: int, resized_crop: bool) -> torch.Tensor:
    """Hzzone/ProPos models/basic_template.py TrainTask.test_transform (--test_resized_crop as
    config/imagenetdogs_r34_propos.yml sets it) with normalize()'s ImageNet constants (used for
    'stl10' and, by default, the ImageNet subsets), transcribed."""
    if resized_crop:
        image = T.Compose([T.Resize(256), T.CenterCrop(224)])(image)
    if image.size != (img_size, img_size):
        image = image.resize((img_size, img_size))  # PIL default filter
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    return T.Normalize(mean, std)(T.ToTensor()(image))


@pytest.mark.parametrize("dataset", ["imagenet10", "imagenet_dogs"])
@pytest.mark.parametrize("size", [96, 224])
def test_propos_imagenet_subsets_evaluate_as_the_authors_test_transform(dataset, size):
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (300, 410, 3), dtype=np.uint8))
    assert torch.equal(eval_transform(size, dataset)(image),
                       _propos_test_transform(image, size, resized_crop=True))


def test_stl10_evaluates_unresized_with_imagenet_statistics_as_propos():
    rng = np.random.default_rng(1)
    image = Image.fromarray(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8))
    # ProPos: test_transform's resize is a no-op at 96 px; normalize('stl10') = ImageNet's
    assert torch.equal(eval_transform(96, "stl10")(image),
                       _propos_test_transform(image, 96, resized_crop=False))
