"""CIFAR-10, CIFAR-100 and CIFAR-20 (CIFAR-100's 20 super-classes), read by torchvision."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
from torchvision.datasets import CIFAR10, CIFAR100

from repro.data import SYNTHETIC_MARKER, require_path
from repro.data.indexed import Concat

# CIFAR-100's fine classes in label order (the `fine_label_names` of the official `meta` file).
CIFAR100_CLASSES = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle",
    "bottle", "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle",
    "caterpillar", "cattle", "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch",
    "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox",
    "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion",
    "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse", "mushroom",
    "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road",
    "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake",
    "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank",
    "telephone", "television", "tiger", "tractor", "train", "trout", "tulip", "turtle",
    "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
)

# The CIFAR-100 class hierarchy (Krizhevsky 2009, and the `coarse_labels` of the official files):
# super-class, in coarse-label order -> its five fine classes. SCAN and ProPos use this grouping.
CIFAR20_GROUPS = {
    "aquatic_mammals": ("beaver", "dolphin", "otter", "seal", "whale"),
    "fish": ("aquarium_fish", "flatfish", "ray", "shark", "trout"),
    "flowers": ("orchid", "poppy", "rose", "sunflower", "tulip"),
    "food_containers": ("bottle", "bowl", "can", "cup", "plate"),
    "fruit_and_vegetables": ("apple", "mushroom", "orange", "pear", "sweet_pepper"),
    "household_electrical_devices": ("clock", "keyboard", "lamp", "telephone", "television"),
    "household_furniture": ("bed", "chair", "couch", "table", "wardrobe"),
    "insects": ("bee", "beetle", "butterfly", "caterpillar", "cockroach"),
    "large_carnivores": ("bear", "leopard", "lion", "tiger", "wolf"),
    "large_man-made_outdoor_things": ("bridge", "castle", "house", "road", "skyscraper"),
    "large_natural_outdoor_scenes": ("cloud", "forest", "mountain", "plain", "sea"),
    "large_omnivores_and_herbivores": ("camel", "cattle", "chimpanzee", "elephant", "kangaroo"),
    "medium_mammals": ("fox", "porcupine", "possum", "raccoon", "skunk"),
    "non-insect_invertebrates": ("crab", "lobster", "snail", "spider", "worm"),
    "people": ("baby", "boy", "girl", "man", "woman"),
    "reptiles": ("crocodile", "dinosaur", "lizard", "snake", "turtle"),
    "small_mammals": ("hamster", "mouse", "rabbit", "shrew", "squirrel"),
    "trees": ("maple_tree", "oak_tree", "palm_tree", "pine_tree", "willow_tree"),
    "vehicles_1": ("bicycle", "bus", "motorcycle", "pickup_truck", "train"),
    "vehicles_2": ("lawn_mower", "rocket", "streetcar", "tank", "tractor"),
}
CIFAR20_CLASSES = tuple(CIFAR20_GROUPS)


def _fine_to_coarse() -> np.ndarray:
    coarse_of = {fine: c for c, group in enumerate(CIFAR20_GROUPS.values()) for fine in group}
    return np.array([coarse_of[fine] for fine in CIFAR100_CLASSES], dtype=np.int64)


# FINE_TO_COARSE[fine label] = coarse label.
FINE_TO_COARSE = _fine_to_coarse()


class FixtureCIFAR10(CIFAR10):
    """torchvision's CIFAR10 reading a synthetic fixture from ``repro.data.fixtures``.

    NOTE: torchvision checks the md5 sums of the real CIFAR-10 files, which a synthetic fixture
    cannot match. This subclass accepts the files only when the fixture's marker file sits next to
    them; everything else (unpickling, array layout, PIL conversion) is torchvision's own code.
    """

    def _folder(self) -> str:
        return os.path.join(self.root, self.base_folder)

    def _check_integrity(self) -> bool:
        folder = self._folder()
        names = [SYNTHETIC_MARKER, self.meta["filename"]]
        names += [name for name, _ in self.train_list + self.test_list]
        return all(os.path.isfile(os.path.join(folder, name)) for name in names)

    def _load_meta(self) -> None:
        with open(os.path.join(self._folder(), self.meta["filename"]), "rb") as f:
            self.classes = pickle.load(f, encoding="latin1")[self.meta["key"]]
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}


def _read(reader: type, name: str, root: Path, split: str) -> tuple[Concat, np.ndarray]:
    folder = require_path(name, root / reader.base_folder)
    try:
        parts = [reader(str(root), train=(part == "train")) for part in split.split("+")]
    except RuntimeError as err:  # torchvision's md5 check failed
        raise RuntimeError(f"dataset {name!r}: files in {folder.resolve()} are incomplete or "
                           f"not the official ones ({err})") from err
    targets = np.concatenate([np.asarray(p.targets, dtype=np.int64) for p in parts])
    return Concat(*parts), targets


def cifar10(root: Path, split: str) -> tuple[Concat, np.ndarray]:
    synthetic = (root / CIFAR10.base_folder / SYNTHETIC_MARKER).is_file()
    return _read(FixtureCIFAR10 if synthetic else CIFAR10, "cifar10", root, split)


def cifar100(root: Path, split: str) -> tuple[Concat, np.ndarray]:
    return _read(CIFAR100, "cifar100", root, split)


def cifar20(root: Path, split: str) -> tuple[Concat, np.ndarray]:
    # torchvision keeps only CIFAR-100's fine labels; the coarse ones are recovered by table.
    base, fine = _read(CIFAR100, "cifar20", root, split)
    return base, FINE_TO_COARSE[fine]
