"""scikit-learn's 8x8 handwritten digits, served as 32x32 RGB images.

Real data that ships with scikit-learn, so CPU smoke runs always have something to learn from.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from repro.data.indexed import ArrayImages

TEST_FRACTION = 1 / 3
SPLIT_SEED = 0


def digits_images() -> tuple[np.ndarray, np.ndarray]:
    """All 1797 digits as uint8 N x 32 x 32 x 3 (bilinear upscale of the 0..16 grey levels)
    and their int64 labels."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    grey = np.round(bunch.images * (255 / 16)).astype(np.uint8)  # N x 8 x 8
    big = np.stack([np.asarray(Image.fromarray(g).resize((32, 32), Image.BILINEAR))
                    for g in grey])
    return np.repeat(big[..., None], 3, axis=3), bunch.target.astype(np.int64)


def digits_split(labels: np.ndarray, split: str) -> np.ndarray:
    """Sorted indices of a fixed stratified split: 1/3 test, the rest train (seed 0)."""
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(np.arange(len(labels)), test_size=TEST_FRACTION,
                                   stratify=labels, random_state=SPLIT_SEED)
    return np.sort(train if split == "train" else test)


def digits(root: Path, split: str) -> tuple[ArrayImages, np.ndarray]:
    images, labels = digits_images()
    keep = digits_split(labels, split)
    return ArrayImages(images[keep]), labels[keep]
