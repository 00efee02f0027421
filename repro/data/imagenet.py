"""ImageNet, its class subsets, Tiny ImageNet and 64x64 downsampled ImageNet."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
from torchvision.datasets import ImageFolder

from repro.data import MissingDataset, data_root, dataset_info, require_path
from repro.data.indexed import ArrayImages, ImageFiles, IndexedDataset, stratified_subset

CLASS_LISTS = Path(__file__).parent / "class_lists"


def read_class_list(path: Path) -> list[str]:
    """wnids of a class-list file: first word of each line; '#' starts a comment."""
    words = [line.split("#")[0].split() for line in Path(path).read_text().splitlines()]
    return [w[0] for w in words if w]


class _ClassListFolder(ImageFolder):
    """ImageFolder restricted to the wnids of a class list (labels in sorted wnid order)."""

    def __init__(self, root: str, wnids: list[str]):
        self._wnids = sorted(wnids)
        super().__init__(root)

    def find_classes(self, directory: str) -> tuple[list[str], dict[str, int]]:
        missing = [w for w in self._wnids if not (Path(directory) / w).is_dir()]
        if missing:
            raise MissingDataset(
                f"{len(missing)} class folders of the list are missing under "
                f"{Path(directory).resolve()}, e.g. {', '.join(missing[:5])}. "
                f"How to get them: {dataset_info('imagenet').how_to_get}")
        return list(self._wnids), {w: i for i, w in enumerate(self._wnids)}


def _folder(name: str, root: Path, split: str, wnids: list[str] | None):
    path = require_path(name, root / "imagenet" / split)
    base = ImageFolder(str(path)) if wnids is None else _ClassListFolder(str(path), wnids)
    return base, np.asarray(base.targets, dtype=np.int64)


def imagenet(root: Path, split: str):
    return _folder("imagenet", root, split, None)


def imagenet10(root: Path, split: str):
    return _folder("imagenet10", root, split, read_class_list(CLASS_LISTS / "imagenet10.txt"))


def imagenet_dogs(root: Path, split: str):
    return _folder("imagenet_dogs", root, split,
                   read_class_list(CLASS_LISTS / "imagenet_dogs.txt"))


def imagenet100(root: Path, split: str):
    return _folder("imagenet100", root, split, read_class_list(CLASS_LISTS / "imagenet100.txt"))


def class_list_dataset(class_list: Path, split: str, transform: Callable[[Any], Any] | None,
                       root: Path | None = None, subset: int | None = None,
                       subset_seed: int = 0) -> IndexedDataset:
    """Like ``build_dataset`` for an ImageNet subset given by any class-list file."""
    if split not in ("train", "val"):
        raise ValueError(f"ImageNet subsets have splits train, val; got {split!r}")
    root = Path(root) if root is not None else data_root()
    base, targets = _folder("imagenet", root, split, read_class_list(class_list))
    indices = None if subset is None else stratified_subset(targets, subset, subset_seed)
    return IndexedDataset(base, targets, transform, indices, name=Path(class_list).stem,
                          split=split)


def tiny_imagenet(root: Path, split: str) -> tuple[ImageFiles, np.ndarray]:
    """tiny-imagenet-200: train/<wnid>/images/*.JPEG; val/images + val/val_annotations.txt.
    Labels follow the sorted wnids of wnids.txt (ImageFolder's convention)."""
    folder = require_path("tiny_imagenet", root / "tiny-imagenet-200")
    wnids = sorted(read_class_list(require_path("tiny_imagenet", folder / "wnids.txt")))
    label = {w: i for i, w in enumerate(wnids)}
    if split == "train":
        files = [(str(p), label[w]) for w in wnids
                 for p in sorted((folder / "train" / w / "images").glob("*.JPEG"))]
    else:
        annotations = require_path("tiny_imagenet", folder / "val" / "val_annotations.txt")
        rows = [line.split("\t") for line in annotations.read_text().splitlines() if line]
        files = [(str(folder / "val" / "images" / r[0]), label[r[1]]) for r in rows]
    return ImageFiles([f for f, _ in files]), np.array([y for _, y in files], dtype=np.int64)


def _npz_arrays(files: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    images, labels = [], []
    for f in files:
        with np.load(f) as batch:
            # rows are channel planes R, G, B of 64 x 64, like CIFAR
            images.append(batch["data"].reshape(-1, 3, 64, 64).transpose(0, 2, 3, 1))
            labels.append(np.asarray(batch["labels"], dtype=np.int64) - 1)  # 1-based on disk
    return np.concatenate(images), np.concatenate(labels)


def imagenet64(root: Path, split: str) -> tuple[ArrayImages, np.ndarray]:
    """Downsampled ImageNet 64x64 (Chrabaszcz et al. 2017) npz batches.

    Labels are the files' own (ILSVRC devkit order, made 0-based), not sorted-wnid order.
    NOTE: the whole split is decoded into memory (train: ~15.7 GB as uint8).
    """
    folder = require_path("imagenet64", root / "imagenet64")
    pattern = "train_data_batch_*.npz" if split == "train" else "val_data.npz"
    files = sorted(folder.rglob(pattern), key=lambda p: int(p.stem.split("_")[-1])
                   if split == "train" else 0)
    if not files:
        raise MissingDataset(f"dataset 'imagenet64': no {pattern} under {folder.resolve()}. "
                             f"How to get it: {dataset_info('imagenet64').how_to_get}")
    images, labels = _npz_arrays(files)
    return ArrayImages(images), labels
