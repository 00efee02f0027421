"""STL-10, read by torchvision."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torchvision.datasets import STL10

from repro.data import require_path
from repro.data.indexed import Concat


def stl10(root: Path, split: str) -> tuple[Concat, np.ndarray]:
    """Splits: unlabeled, train, test, train+unlabeled (torchvision's), and train+test (the
    clustering protocol of ProPos). Unlabelled images have target -1."""
    folder = require_path("stl10", root / STL10.base_folder)
    parts = []
    for part in (["train", "test"] if split == "train+test" else [split]):
        try:
            parts.append(STL10(str(root), split=part))
        except RuntimeError as err:  # torchvision's md5 check failed
            raise RuntimeError(f"dataset 'stl10': files in {folder.resolve()} are incomplete or "
                               f"not the official ones ({err})") from err
    targets = np.concatenate([np.asarray(p.labels, dtype=np.int64) for p in parts])
    return Concat(*parts), targets
