"""The dataset every builder's data is served through: items are (image, target, index)."""

from __future__ import annotations

import copy
from typing import Any, Callable, Sequence

import numpy as np
from PIL import Image
from torch.utils.data import Dataset


class IndexedDataset(Dataset):
    """``(transform(image), target, i)`` for i in 0..len-1.

    base: anything with ``base[j] -> (PIL image, ignored)`` and ``len(base)``.
    targets: labels of every sample of ``base`` (N, or N x C for multi-label).
    indices: which samples of ``base`` to serve (None = all), in order.
    """

    def __init__(
        self,
        base: Any,
        targets: np.ndarray,
        transform: Callable[[Image.Image], Any] | None,
        indices: np.ndarray | None = None,
        name: str = "",
        split: str = "",
    ):
        if len(targets) != len(base):
            raise ValueError(f"{name}/{split}: {len(targets)} targets for {len(base)} samples")
        self.base = base
        self.indices = np.arange(len(base)) if indices is None else np.asarray(indices, np.int64)
        self.targets = np.asarray(targets)[self.indices]
        self.transform = transform
        self.name = name
        self.split = split

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[Any, Any, int]:
        image, _ = self.base[int(self.indices[i])]
        if self.transform is not None:
            image = self.transform(image)
        target = self.targets[i]
        return image, (target.copy() if target.ndim else int(target)), i

    def with_transform(self, transform: Callable[[Image.Image], Any] | None) -> IndexedDataset:
        """The same samples with another transform (e.g. the evaluation one for an E-step)."""
        other = copy.copy(self)
        other.transform = transform
        return other

    def __repr__(self) -> str:
        return (f"IndexedDataset({self.name}/{self.split}, n={len(self)}, "
                f"transform={self.transform})")


def stratified_subset(targets: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Sorted indices of a seeded subset of ``n`` samples, stratified by label.

    Each label value (-1 = unlabelled counts as one) keeps its share of ``n``, rounded by largest
    remainder. Multi-label targets are sampled uniformly.
    """
    targets = np.asarray(targets)
    total = len(targets)
    if not 0 < n <= total:
        raise ValueError(f"subset must be in 1..{total}, got {n}")
    rng = np.random.default_rng(seed)
    if targets.ndim != 1:
        return np.sort(rng.choice(total, size=n, replace=False))
    values, inverse = np.unique(targets, return_inverse=True)
    counts = np.bincount(inverse, minlength=len(values))
    share = counts * (n / total)
    quota = np.floor(share).astype(np.int64)
    left = n - int(quota.sum())
    quota[np.argsort(-(share - quota), kind="stable")[:left]] += 1
    chosen = [
        rng.permutation(np.flatnonzero(inverse == c))[: quota[c]] for c in range(len(values))
    ]
    return np.sort(np.concatenate(chosen))


class ArrayImages:
    """Images held as a uint8 N x H x W x C array (C = 3, or 1 for grey), served as PIL RGB."""

    def __init__(self, images: np.ndarray):
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, j: int) -> tuple[Image.Image, int]:
        return Image.fromarray(np.asarray(self.images[j])).convert("RGB"), -1


class ImageFiles:
    """Images read from a list of files, served as PIL RGB."""

    def __init__(self, paths: Sequence[str]):
        self.paths = list(paths)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, j: int) -> tuple[Image.Image, int]:
        with open(self.paths[j], "rb") as f:
            return Image.open(f).convert("RGB"), -1


class Concat:
    """Samples of several bases one after another (e.g. CIFAR train+test)."""

    def __init__(self, *parts: Any):
        self.parts = parts
        self.offsets = np.cumsum([0] + [len(p) for p in parts])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, j: int) -> Any:
        part = int(np.searchsorted(self.offsets, j, side="right")) - 1
        return self.parts[part][j - int(self.offsets[part])]
