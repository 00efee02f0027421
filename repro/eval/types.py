"""The inputs evaluations receive. Plain arrays: no torch, no methods."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Features:
    """Frozen features of one split.

    x: N x D float32. y: N int64 class labels, or N x C int8 multi-label targets with
    1 = present, 0 = present only as "difficult", -1 = absent (VOC convention).
    index: N int64 sample indices into the dataset split.
    """

    x: np.ndarray
    y: np.ndarray
    index: np.ndarray

    def __post_init__(self) -> None:
        if self.x.ndim != 2:
            raise ValueError(f"features must be N x D, got shape {self.x.shape}")
        if len(self.y) != len(self.x) or len(self.index) != len(self.x):
            raise ValueError(
                f"features/labels/index lengths differ: {len(self.x)}, {len(self.y)}, "
                f"{len(self.index)}"
            )

    @property
    def multilabel(self) -> bool:
        return self.y.ndim == 2


@dataclass
class ModelData:
    """Datasets for protocols that need images (fine-tuning, augmented probes, detection).

    Each dataset's ``__getitem__`` returns ``(image, target, index)``; ``train`` carries the
    training transform and ``test`` the evaluation transform. ``root`` is the data root for
    protocols that read their own files (detection).
    """

    train: object
    test: object
    num_classes: int
    feat_dim: int
    val: object | None = None
    root: str | None = None
