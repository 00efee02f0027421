"""Places205, as an ImageFolder tree or through the official train/val csv lists."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torchvision.datasets import ImageFolder

from repro.data import MissingDataset, dataset_info, require_path
from repro.data.indexed import ImageFiles

# where the official archive puts the images, relative to <root>/places205
IMAGE_DIRS = ("images256", "data/vision/torralba/deeplearning/images256")


def places205(root: Path, split: str):
    """<root>/places205/{train,val}/<category>/ if present; otherwise the official
    trainvalsplit_places205/{split}_places205.csv ("relative/path.jpg label" per line)."""
    folder = require_path("places205", root / "places205")
    if (folder / split).is_dir():
        base = ImageFolder(str(folder / split))
        return base, np.asarray(base.targets, dtype=np.int64)
    csv = folder / "trainvalsplit_places205" / f"{split}_places205.csv"
    images = next((folder / d for d in IMAGE_DIRS if (folder / d).is_dir()), None)
    if not csv.is_file() or images is None:
        raise MissingDataset(
            f"dataset 'places205': neither {(folder / split).resolve()} nor {csv.resolve()} with "
            f"an image folder ({' or '.join(IMAGE_DIRS)}). "
            f"How to get it: {dataset_info('places205').how_to_get}")
    rows = [line.split() for line in csv.read_text().splitlines() if line.strip()]
    paths = [str(images / r[0]) for r in rows]
    return ImageFiles(paths), np.array([int(r[1]) for r in rows], dtype=np.int64)
