"""Fashion-MNIST (Xiao et al. 2017): 28x28 grey images of 10 clothing classes, served grey.

The original gzipped IDX files (the ones torchvision's ``FashionMNIST`` downloads) are looked
for, per split, in these folders in order; the first holding both files of the split wins:

1. ``<root>/fashion-mnist/`` (``<root>`` = the data root, ``$REPRO_DATA``);
2. ``<root>/FashionMNIST/raw/``, what ``torchvision.datasets.FashionMNIST(root, download=True)``
   creates;
3. ``SYSTEM_FOLDER``, where Debian's package ``dataset-fashion-mnist`` installs them.

Each file may be gzipped (``<name>.gz``) or not (``<name>``); the unzipped one is read when a
folder holds both (torchvision's download leaves both). ``repro.data.fingerprint`` mirrors this
search (``FASHION_MNIST_*``; a test checks the copies).

Images are served as grey (mode "L") PIL images; the transforms of ``repro.data.transforms``
repeat the grey level in the three channels after ``ToTensor`` (``GREY_DATASETS``), so the
backbones get RGB input. NOTE: the same tensors as serving RGB images (every augmentation of
the recipes treats the three equal channels alike and draws the same random numbers; a test
checks it bit for bit) at about half the augmentation cost, which at 28 px is most of a
pretraining's time.
"""

from __future__ import annotations

import functools
import gzip
import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from torchvision.datasets.mnist import read_image_file, read_label_file

from repro.data import MissingDataset, dataset_info
from repro.data.indexed import Concat

# Where the files are looked for: folders under the data root, in order, then SYSTEM_FOLDER.
FOLDERS = ("fashion-mnist", "FashionMNIST/raw")
SYSTEM_FOLDER = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist
# split -> (images file, labels file), without the ".gz" (torchvision's FashionMNIST names)
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
SUFFIXES = ("", ".gz")  # per file: the unzipped one first
# torchvision's FashionMNIST.classes, in label order
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
           "Bag", "Ankle boot")


class Grey:
    """Grey images held as a uint8 N x H x W array, served as grey (mode "L") PIL images."""

    def __init__(self, images: np.ndarray):
        if images.ndim != 3 or images.dtype != np.uint8:
            raise ValueError(f"expected uint8 N x H x W images, got {images.dtype} "
                             f"{images.shape}")
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, j: int) -> tuple[Image.Image, int]:
        return Image.fromarray(np.ascontiguousarray(self.images[j]), mode="L"), -1


def search_folders(root: Path) -> list[Path]:
    """The folders looked in, in order."""
    return [Path(root) / f for f in FOLDERS] + [Path(SYSTEM_FOLDER)]


def _file_in(folder: Path, name: str) -> Path | None:
    for suffix in SUFFIXES:
        path = folder / f"{name}{suffix}"
        if path.is_file():
            return path
    return None


def split_files(root: Path, part: str) -> tuple[Path, Path]:
    """(images, labels) file of ``part`` ("train" or "test") from the first folder holding
    both; ``MissingDataset`` naming every folder looked in when none does."""
    folders = search_folders(root)
    for folder in folders:
        images, labels = (_file_in(folder, name) for name in FILES[part])
        if images is not None and labels is not None:
            return images, labels
    wanted = " and ".join(f"{name}[.gz]" for name in FILES[part])
    looked = ", ".join(str(f.resolve()) for f in folders)
    raise MissingDataset(
        f"dataset 'fashion_mnist': no {wanted} in any of {looked}. "
        f"How to get it: {dataset_info('fashion_mnist').how_to_get}"
    )


@functools.lru_cache(maxsize=8)
def _decode(path: str, labels: bool, size: int, mtime_ns: int) -> np.ndarray:
    """The array of one IDX file, parsed by torchvision (cached per process; the size and
    mtime in the key make an edited file decode again)."""
    read = read_label_file if labels else read_image_file
    if path.endswith(".gz"):
        # NOTE: torchvision 0.29's read_sn3_pascalvincent_tensor (behind read_image_file and
        # read_label_file) opens its path with plain open(): no .gz support (its docstring
        # still says "compressed filename", the code no longer does), and it has no bytes
        # entry point. So the .gz is decompressed in memory with gzip and its bytes handed to
        # torchvision's parser through a temporary file, deleted right after.
        with gzip.open(path, "rb") as f:
            raw = f.read()
        with tempfile.TemporaryDirectory(prefix="repro-fashion-mnist-") as tmp:
            plain = os.path.join(tmp, os.path.basename(path)[: -len(".gz")])
            with open(plain, "wb") as f:
                f.write(raw)
            del raw
            array = read(plain).numpy()
    else:
        array = read(path).numpy()
    array.flags.writeable = False  # shared by every build of this process
    return array


def read_idx(path: Path, labels: bool) -> np.ndarray:
    """int64 labels (N) or uint8 images (N x 28 x 28) of an IDX file, gzipped or not."""
    st = os.stat(path)
    return _decode(str(Path(path).resolve()), labels, st.st_size, st.st_mtime_ns)


def fashion_mnist(root: Path, split: str) -> tuple[Grey | Concat, np.ndarray]:
    bases, targets = [], []
    for part in split.split("+"):
        images_file, labels_file = split_files(root, part)
        images, labels = read_idx(images_file, False), read_idx(labels_file, True)
        if len(images) != len(labels):
            raise ValueError(f"dataset 'fashion_mnist': {len(images)} images in {images_file} "
                             f"but {len(labels)} labels in {labels_file}")
        bases.append(Grey(images))
        targets.append(labels.astype(np.int64))
    base = bases[0] if len(bases) == 1 else Concat(*bases)
    return base, np.concatenate(targets)
