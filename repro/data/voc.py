"""PASCAL VOC 2007: multi-label image classification targets and detection boxes."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

import numpy as np

from repro.data import check_split, data_root, require_path
from repro.data.indexed import ImageFiles

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)


def _voc_folder(root: Path | None) -> Path:
    root = Path(root) if root is not None else data_root()
    return require_path("voc07", root / "VOCdevkit" / "VOC2007")


def voc07_ids(folder: Path, split: str) -> list[str]:
    listing = require_path("voc07", folder / "ImageSets" / "Main" / f"{split}.txt")
    return [line.split()[0] for line in listing.read_text().splitlines() if line.strip()]


def voc07_targets(folder: Path, split: str, ids: list[str]) -> np.ndarray:
    """N x 20 int8 from ImageSets/Main/<class>_<split>.txt: 1 present, 0 difficult only,
    -1 absent."""
    row = {image_id: i for i, image_id in enumerate(ids)}
    targets = np.full((len(ids), len(VOC_CLASSES)), -1, dtype=np.int8)
    for c, name in enumerate(VOC_CLASSES):
        path = require_path("voc07", folder / "ImageSets" / "Main" / f"{name}_{split}.txt")
        for line in path.read_text().splitlines():
            if line.strip():
                image_id, flag = line.split()
                targets[row[image_id], c] = int(flag)
    return targets


def voc07(root: Path, split: str) -> tuple[ImageFiles, np.ndarray]:
    folder = _voc_folder(root)
    ids = voc07_ids(folder, split)
    paths = [str(folder / "JPEGImages" / f"{i}.jpg") for i in ids]
    return ImageFiles(paths), voc07_targets(folder, split, ids)


def voc07_annotations(root: Path | None, split: str) -> list[dict]:
    """Objects of every image of ``split``, in the order of ``ImageSets/Main/<split>.txt``.

    Each item: filename, boxes (n x 4 float32 xyxy), labels (n int64 indexes into VOC_CLASSES),
    difficult (n bool). root: the data root (None = ``data_root()``).
    NOTE: boxes are converted from VOC's 1-based inclusive pixel indices to 0-based corners by
    subtracting 1 from xmin and ymin only (detectron2's convention), so x1 - x0 is the width.
    """
    check_split("voc07", split)
    folder = _voc_folder(root)
    records = []
    for image_id in voc07_ids(folder, split):
        tree = ElementTree.parse(folder / "Annotations" / f"{image_id}.xml").getroot()
        boxes, labels, difficult = [], [], []
        for obj in tree.findall("object"):
            b = obj.find("bndbox")
            x0, y0, x1, y1 = (float(b.find(k).text) for k in ("xmin", "ymin", "xmax", "ymax"))
            boxes.append((x0 - 1, y0 - 1, x1, y1))
            labels.append(VOC_CLASSES.index(obj.find("name").text.strip()))
            flag = obj.find("difficult")
            difficult.append(flag is not None and int(flag.text) == 1)
        records.append({
            "filename": tree.findtext("filename", f"{image_id}.jpg"),
            "boxes": np.array(boxes, dtype=np.float32).reshape(-1, 4),
            "labels": np.array(labels, dtype=np.int64),
            "difficult": np.array(difficult, dtype=bool),
        })
    return records
