"""Datasets, looked up by name.

Importing this package imports no torch: ``repro.spec`` can validate dataset names and splits
on a laptop. ``build_dataset`` imports the reader only when it is called.

Every dataset built here returns ``(image_after_transform, target, index)``; the index is the
sample's position in the (sub)set, which clustering methods use to find a sample's cluster.
All datasets live under one data root (``$REPRO_DATA``, default ``./data``), each in the folder
its ``DatasetInfo.folder`` names, in the layout its ``how_to_get`` describes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from repro.registry import Registry, UnknownName

if TYPE_CHECKING:  # pragma: no cover
    from repro.data.indexed import IndexedDataset

# The file every fixture writer drops in the dataset folder it writes.
SYNTHETIC_MARKER = "SYNTHETIC_FIXTURE.json"


class MissingDataset(FileNotFoundError):
    """The data of a dataset is not on disk; the message says where we looked and how to get it."""


@dataclass(frozen=True)
class DatasetInfo:
    num_classes: int
    image_size: int  # native side length of the images the dataset serves
    multilabel: bool
    splits: tuple[str, ...]
    how_to_get: str  # one line: where to obtain it, and the layout expected under the data root
    folder: str = ""  # the dataset's folder under the data root ("" = needs no files)


# name -> "module:builder". A builder is ``builder(root: Path, split: str) -> (base, targets)``:
# ``base[j]`` returns ``(PIL image, anything)`` and ``targets`` holds every label without decoding
# an image. Keep sorted; tests iterate over this registry.
DATASETS = Registry(
    "dataset",
    {
        "cifar10": "repro.data.cifar:cifar10",
        "cifar100": "repro.data.cifar:cifar100",
        "cifar20": "repro.data.cifar:cifar20",
        "digits": "repro.data.digits:digits",
        "fashion_mnist": "repro.data.fashion_mnist:fashion_mnist",
        "imagenet": "repro.data.imagenet:imagenet",
        "imagenet10": "repro.data.imagenet:imagenet10",
        "imagenet100": "repro.data.imagenet:imagenet100",
        "imagenet64": "repro.data.imagenet:imagenet64",
        "imagenet_dogs": "repro.data.imagenet:imagenet_dogs",
        "places205": "repro.data.places:places205",
        "stl10": "repro.data.stl10:stl10",
        "tiny_imagenet": "repro.data.imagenet:tiny_imagenet",
        "voc07": "repro.data.voc:voc07",
    },
)

_IMAGENET_HOW = (
    "ILSVRC2012 from https://image-net.org (registration); ImageFolder layout "
    "<root>/imagenet/{train,val}/<wnid>/*.JPEG (move val images into wnid folders)"
)

DATASET_INFO: dict[str, DatasetInfo] = {
    "cifar10": DatasetInfo(
        10, 32, False, ("train", "test", "train+test"),
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz extracted to "
        "<root>/cifar-10-batches-py/ (or `repro data fixture cifar10` for synthetic data)",
        "cifar-10-batches-py",
    ),
    "cifar100": DatasetInfo(
        100, 32, False, ("train", "test", "train+test"),
        "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz extracted to "
        "<root>/cifar-100-python/",
        "cifar-100-python",
    ),
    "cifar20": DatasetInfo(
        20, 32, False, ("train", "test", "train+test"),
        "CIFAR-100 (its 20 super-classes): "
        "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz extracted to "
        "<root>/cifar-100-python/",
        "cifar-100-python",
    ),
    "digits": DatasetInfo(
        10, 32, False, ("train", "test"),
        "ships with scikit-learn (sklearn.datasets.load_digits); nothing to download",
        "",
    ),
    "fashion_mnist": DatasetInfo(
        10, 28, False, ("train", "test", "train+test"),
        "`apt-get install dataset-fashion-mnist` (Debian; files in "
        "/usr/share/datasets/fashion-mnist/) or torchvision.datasets.FashionMNIST(<root>, "
        "download=True) (<root>/FashionMNIST/raw/), or the {train,t10k}-{images-idx3,"
        "labels-idx1}-ubyte.gz files of https://github.com/zalandoresearch/fashion-mnist in "
        "<root>/fashion-mnist/",
        "fashion-mnist",
    ),
    "imagenet": DatasetInfo(1000, 224, False, ("train", "val"), _IMAGENET_HOW, "imagenet"),
    "imagenet10": DatasetInfo(
        10, 224, False, ("train", "val"),
        _IMAGENET_HOW + "; classes from repro/data/class_lists/imagenet10.txt", "imagenet",
    ),
    "imagenet100": DatasetInfo(
        100, 224, False, ("train", "val"),
        _IMAGENET_HOW + "; classes from repro/data/class_lists/imagenet100.txt", "imagenet",
    ),
    "imagenet64": DatasetInfo(
        1000, 64, False, ("train", "val"),
        "Downsampled ImageNet 64x64 (npz) from https://image-net.org/download-images "
        "(Chrabaszcz et al. 2017); unzip so that <root>/imagenet64/ holds "
        "train_data_batch_1..10.npz and val_data.npz (any depth)",
        "imagenet64",
    ),
    "imagenet_dogs": DatasetInfo(
        15, 224, False, ("train", "val"),
        _IMAGENET_HOW + "; classes from repro/data/class_lists/imagenet_dogs.txt", "imagenet",
    ),
    "places205": DatasetInfo(
        205, 256, False, ("train", "val"),
        "Places205 from http://places.csail.mit.edu (registration); either ImageFolder "
        "<root>/places205/{train,val}/<category>/*.jpg or the official "
        "<root>/places205/trainvalsplit_places205/{train,val}_places205.csv with images under "
        "<root>/places205/images256/",
        "places205",
    ),
    "stl10": DatasetInfo(
        10, 96, False, ("unlabeled", "train", "test", "train+unlabeled", "train+test"),
        "https://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz extracted to "
        "<root>/stl10_binary/",
        "stl10_binary",
    ),
    "tiny_imagenet": DatasetInfo(
        200, 64, False, ("train", "val"),
        "http://cs231n.stanford.edu/tiny-imagenet-200.zip extracted to <root>/tiny-imagenet-200/ "
        "(wnids.txt, train/<wnid>/images/, val/images/ + val/val_annotations.txt)",
        "tiny-imagenet-200",
    ),
    "voc07": DatasetInfo(
        20, 500, True, ("trainval", "test"),
        "VOCtrainval_06-Nov-2007.tar and VOCtest_06-Nov-2007.tar from "
        "http://host.robots.ox.ac.uk/pascal/VOC/voc2007/ extracted into <root>/ so that "
        "<root>/VOCdevkit/VOC2007/{JPEGImages,Annotations,ImageSets/Main} exist "
        "(or `repro data fixture voc07` for synthetic data)",
        "VOCdevkit/VOC2007",
    ),
}


def data_root() -> Path:
    """The folder holding every dataset: ``$REPRO_DATA``, default ``./data``."""
    return Path(os.environ.get("REPRO_DATA", "data"))


def dataset_info(name: str) -> DatasetInfo:
    if name not in DATASET_INFO:
        raise UnknownName(f"unknown dataset {name!r}; allowed: {', '.join(sorted(DATASET_INFO))}")
    return DATASET_INFO[name]


def check_split(name: str, split: str) -> None:
    splits = dataset_info(name).splits
    if split not in splits:
        raise ValueError(f"dataset {name!r} has no split {split!r}; allowed: {', '.join(splits)}")


def require_path(name: str, path: Path) -> Path:
    """Return ``path`` if it exists, else raise ``MissingDataset`` naming it and how to get it."""
    if not path.exists():
        raise MissingDataset(
            f"dataset {name!r}: nothing at {path.resolve()}. "
            f"How to get it: {dataset_info(name).how_to_get}"
        )
    return path


def is_synthetic(name: str, root: Path | None = None) -> bool:
    """True when the data on disk for ``name`` was written by ``repro.data.fixtures``."""
    folder = dataset_info(name).folder
    if not folder:
        return False
    root = Path(root) if root is not None else data_root()
    return (root / folder / SYNTHETIC_MARKER).is_file()


def build_dataset(
    name: str,
    split: str,
    transform: Callable[[Any], Any] | None,
    root: Path | None = None,
    subset: int | None = None,
    subset_seed: int = 0,
) -> IndexedDataset:
    """The ``split`` of dataset ``name``; items are ``(transform(image), target, index)``.

    ``subset=n`` keeps a fixed, seeded, class-stratified subset of n samples (uniform when labels
    are unknown or multi-label); indexes are then 0..n-1 within the subset.
    """
    check_split(name, split)
    root = Path(root) if root is not None else data_root()
    base, targets = DATASETS.resolve(name)(root, split)
    from repro.data.indexed import IndexedDataset, stratified_subset

    indices = None if subset is None else stratified_subset(targets, subset, subset_seed)
    return IndexedDataset(base, targets, transform, indices, name=name, split=split)


def dataset_targets(ds: Any) -> np.ndarray:
    """Labels of every sample of ``ds``, without decoding images.

    N int64 class labels (-1 = unlabelled), or N x C int8 multi-label targets (1 present,
    0 difficult only, -1 absent).
    """
    targets = getattr(ds, "targets", None)
    if targets is None:
        raise TypeError(f"{type(ds).__name__} has no `targets`; build it with build_dataset")
    targets = np.asarray(targets)
    return targets.astype(np.int8 if targets.ndim == 2 else np.int64, copy=True)


def voc07_annotations(root: Path | None, split: str) -> list[dict]:
    """Boxes of VOC2007 ``split``; see ``repro.data.voc.voc07_annotations``."""
    from repro.data.voc import voc07_annotations as read

    return read(root, split)


__all__ = [
    "DATASETS",
    "DATASET_INFO",
    "DatasetInfo",
    "MissingDataset",
    "SYNTHETIC_MARKER",
    "build_dataset",
    "data_root",
    "dataset_info",
    "dataset_targets",
    "is_synthetic",
    "voc07_annotations",
]
