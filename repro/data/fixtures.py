"""Synthetic stand-ins for datasets we cannot download here, in the datasets' own disk layout.

Each image shows a textured object on a smooth coloured background. The object's texture type
(stripes, rings, checks, dots, ...) is the class; its position, size, period, phase, colours and
the background are random, and pixel noise is added. Texture survives random resized crops,
flips, colour jitter and grayscale, so self-supervised training has something to learn that a
random network does not already separate well; a weak class-dependent hue prior (like real
classes' colour statistics) lets raw-pixel classifiers beat chance, but not by much.

Every writer drops ``SYNTHETIC_FIXTURE.json`` in the dataset folder (``repro.data.is_synthetic``).
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
from PIL import Image

from repro import __version__
from repro.data import SYNTHETIC_MARKER
from repro.data.voc import VOC_CLASSES

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
N_TEXTURES = 10
VOC_OBJECTS = "SYNTHETIC_OBJECTS.json"


def _write_marker(folder: Path, **details) -> None:
    record = {"synthetic": True, "writer": f"repro.data.fixtures ({__version__})", **details}
    (folder / SYNTHETIC_MARKER).write_text(json.dumps(record, indent=2) + "\n")


# ----------------------------------------------------------------------------- textures


def _texture(kind: int, dx: np.ndarray, dy: np.ndarray, period: np.ndarray, phase: np.ndarray,
             theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Texture ``kind`` in [0, 1], n x H x W, at offsets (dx, dy) from each object's centre.

    period, phase, theta: n x 1 x 1 (pixels, radians, radians).
    """
    u = dx * np.cos(theta) + dy * np.sin(theta)  # along the (jittered) x axis
    v = -dx * np.sin(theta) + dy * np.cos(theta)
    wave = 2 * np.pi / period
    if kind == 0:  # horizontal stripes
        t = np.cos(wave * v + phase)
    elif kind == 1:  # vertical stripes
        t = np.cos(wave * u + phase)
    elif kind == 2:  # diagonal stripes: theta carries +-45 degrees (a flip swaps the diagonals)
        t = np.cos(wave * u + phase)
    elif kind == 3:  # checkerboard
        t = np.sign(np.cos(wave * u + phase) * np.cos(wave * v + phase))
    elif kind == 4:  # concentric rings
        t = np.cos(wave * np.hypot(dx, dy) + phase)
    elif kind == 5:  # grid of dots
        t = 2.0 * ((np.cos(wave * u) + np.cos(wave * v)) > 1.0) - 1
    elif kind == 6:  # radial spokes
        t = np.cos(7 * np.arctan2(dy, dx) + phase)
    elif kind == 7:  # hollow ring (one thick outline)
        radius = np.hypot(dx, dy) / (1.6 * period)
        t = 2.0 * (np.abs(radius - 1.5) < 0.45) - 1
    elif kind == 8:  # thin cross-hatch lines
        t = 2.0 * ((np.cos(wave * u) > 0.7) | (np.cos(wave * v) > 0.7)) - 1
    elif kind == 9:  # speckle
        t = rng.choice([-1.0, 1.0], size=dx.shape)
    else:
        raise ValueError(f"texture kind must be in 0..{N_TEXTURES - 1}, got {kind}")
    return 0.5 + 0.5 * np.sign(t) * np.abs(t) ** 0.5  # sharpen the sinusoids


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Vectorised HSV -> RGB, all inputs n (h in [0, 1)); returns n x 3."""
    k = (np.array([5.0, 3.0, 1.0]) + 6 * h[:, None]) % 6
    return v[:, None] - v[:, None] * s[:, None] * np.clip(np.minimum(k, 4 - k), 0, 1)


def _object_colours(rng: np.random.Generator, hue_center: np.ndarray) -> tuple[np.ndarray, ...]:
    """A bright colour near each class hue and a dark random one: n x 3 each, luminance apart."""
    n = len(hue_center)
    bright = _hsv_to_rgb((hue_center + rng.normal(0, 0.12, n)) % 1,
                         rng.uniform(0.4, 1.0, n), rng.uniform(0.6, 1.0, n))
    dark = _hsv_to_rgb(rng.uniform(0, 1, n), rng.uniform(0, 1, n), rng.uniform(0.0, 0.35, n))
    return bright, dark


def _backgrounds(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """Smooth random colour fields, n x size x size x 3 in [0, 1]: a 3x3 grid, interpolated."""
    grid = rng.uniform(0.1, 0.9, (n, 1, 1, 3)) + rng.normal(0, 0.15, (n, 3, 3, 3))
    ramp = np.linspace(0, 2, size, dtype=np.float32)
    knots = np.arange(3, dtype=np.float32)
    weights = np.clip(1 - np.abs(ramp[:, None] - knots[None, :]), 0, 1)  # size x 3
    rows = np.einsum("yi,nijc->nyjc", weights, grid.astype(np.float32))  # n x size x 3 x 3
    field = np.einsum("nyjc,xj->nyxc", rows, weights, optimize=True)
    return np.clip(field, 0, 1, out=field)


def _textured_images(rng: np.random.Generator, labels: np.ndarray, size: int, n_classes: int,
                     filled: bool = False) -> np.ndarray:
    """One textured disc per image on a background; uint8 n x size x size x 3.

    Texture = label % N_TEXTURES; the bright colour's hue is drawn around label / n_classes.
    filled: the texture covers the whole image (no disc, no background).
    """
    n = len(labels)
    kind = labels % N_TEXTURES
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    cx, cy = (rng.uniform(0.3, 0.7, (2, n, 1, 1)) * size).astype(np.float32)
    radius = (rng.uniform(0.25, 0.45, (n, 1, 1)) * size).astype(np.float32)
    aspect = rng.uniform(0.75, 1.33, (n, 1, 1)).astype(np.float32)
    dx, dy = xx - cx, yy - cy
    inside = np.clip((1 - np.hypot(dx / aspect, dy * aspect) / radius) * radius, 0, 1)
    if filled:
        inside = np.ones_like(inside)

    period = (rng.uniform(0.12, 0.22, (n, 1, 1)) * size).astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi, (n, 1, 1)).astype(np.float32)
    theta = rng.normal(0, 0.12, (n, 1, 1)).astype(np.float32)
    theta[kind == 2] += np.pi / 4 * rng.choice([-1, 1], size=int((kind == 2).sum()))[:, None, None]
    texture = np.empty((n, size, size), np.float32)
    for k in np.unique(kind):
        sel = kind == k
        texture[sel] = _texture(int(k), dx[sel], dy[sel], period[sel], phase[sel], theta[sel], rng)

    colours = _object_colours(rng, labels / n_classes)
    bright, dark = (c.astype(np.float32)[:, None, None] for c in colours)
    alpha = inside[..., None]
    image = _backgrounds(rng, n, size)
    image += alpha * (dark + texture[..., None] * (bright - dark) - image)
    image += 0.04 * rng.standard_normal(image.shape, dtype=np.float32)
    np.clip(image, 0, 1, out=image)
    return (image * 255 + 0.5).astype(np.uint8)


# ----------------------------------------------------------------------------- CIFAR-10


def _cifar_batch(rng: np.random.Generator, labels: np.ndarray, batch_label: str,
                 first: int, chunk: int = 5000) -> dict:
    images = np.concatenate(
        [_textured_images(rng, labels[i:i + chunk], 32, 10) for i in range(0, len(labels), chunk)]
    ) if len(labels) else np.zeros((0, 32, 32, 3), np.uint8)
    return {  # the keys and dtypes of the official python-pickle batches
        "batch_label": batch_label,
        "labels": [int(y) for y in labels],
        "data": np.ascontiguousarray(images.transpose(0, 3, 1, 2).reshape(len(labels), 3072)),
        "filenames": [f"synthetic_{CIFAR10_CLASSES[y]}_{first + i:06d}.png"
                      for i, y in enumerate(labels)],
    }


def _balanced_labels(rng: np.random.Generator, n: int, classes: int) -> np.ndarray:
    return rng.permutation(np.arange(n) % classes).astype(np.int64)


def write_cifar10_fixture(root: Path, n_train: int = 50000, n_test: int = 10000,
                          seed: int = 0) -> Path:
    """Write a synthetic CIFAR-10 in torchvision's layout under ``root``; returns the folder.

    ``root/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}`` are pickled dicts
    with the official keys and dtypes (``data``: uint8 N x 3072, channel planes R, G, B).
    """
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    train_labels = _balanced_labels(rng, n_train, 10)
    batches = np.array_split(np.arange(n_train), 5)
    for b, idx in enumerate(batches, start=1):
        batch = _cifar_batch(rng, train_labels[idx], f"training batch {b} of 5",
                             int(idx[0]) if len(idx) else 0)
        with open(folder / f"data_batch_{b}", "wb") as f:
            pickle.dump(batch, f, protocol=2)
    test = _cifar_batch(rng, _balanced_labels(rng, n_test, 10), "testing batch 1 of 1", n_train)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump(test, f, protocol=2)
    meta = {"num_cases_per_batch": max(len(i) for i in batches),
            "label_names": list(CIFAR10_CLASSES), "num_vis": 3072}
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump(meta, f, protocol=2)
    _write_marker(folder, dataset="cifar10", n_train=n_train, n_test=n_test, seed=seed)
    return folder


# ----------------------------------------------------------------------------- VOC2007


def _voc_image(rng: np.random.Generator, size: int) -> tuple[np.ndarray, list[dict]]:
    """A size x size image with 1-3 textured boxes; boxes are 0-based [x0, y0, x1, y1)."""
    image = _backgrounds(rng, 1, size)[0]
    objects = []
    for _ in range(int(rng.integers(1, 4))):
        label = int(rng.integers(0, len(VOC_CLASSES)))
        w, h = rng.integers(size // 4, size * 3 // 5, 2)
        x0, y0 = int(rng.integers(0, size - w + 1)), int(rng.integers(0, size - h + 1))
        # the class's texture, drawn at this box's size, pasted into the box
        patch = _textured_images(rng, np.array([label]), int(max(w, h)), len(VOC_CLASSES),
                                 filled=True)
        image[y0:y0 + h, x0:x0 + w] = patch[0, :h, :w] / 255.0
        objects.append({"label": label, "box": (x0, y0, x0 + int(w), y0 + int(h)),
                        "difficult": bool(rng.uniform() < 0.1)})
    return (image * 255 + 0.5).astype(np.uint8), objects


def _voc_xml(image_id: str, size: int, objects: list[dict]) -> bytes:
    ann = ElementTree.Element("annotation")
    ElementTree.SubElement(ann, "folder").text = "VOC2007"
    ElementTree.SubElement(ann, "filename").text = f"{image_id}.jpg"
    dims = ElementTree.SubElement(ann, "size")
    for tag, value in (("width", size), ("height", size), ("depth", 3)):
        ElementTree.SubElement(dims, tag).text = str(value)
    for obj in objects:
        node = ElementTree.SubElement(ann, "object")
        ElementTree.SubElement(node, "name").text = VOC_CLASSES[obj["label"]]
        ElementTree.SubElement(node, "pose").text = "Unspecified"
        ElementTree.SubElement(node, "truncated").text = "0"
        ElementTree.SubElement(node, "difficult").text = str(int(obj["difficult"]))
        box = ElementTree.SubElement(node, "bndbox")
        x0, y0, x1, y1 = obj["box"]
        # VOC coordinates are 1-based and inclusive
        for tag, value in (("xmin", x0 + 1), ("ymin", y0 + 1), ("xmax", x1), ("ymax", y1)):
            ElementTree.SubElement(box, tag).text = str(value)
    return ElementTree.tostring(ann)


def write_voc07_fixture(root: Path, n_trainval: int = 400, n_test: int = 400,
                        image_size: int = 96, seed: int = 0) -> Path:
    """Write a synthetic ``root/VOCdevkit/VOC2007`` tree; returns that folder.

    JPEGImages/<id>.jpg, Annotations/<id>.xml (boxes, difficult flags) and
    ImageSets/Main/{<split>.txt, <class>_<split>.txt} for train, val, trainval and test, with
    the official 1 / 0 (difficult only) / -1 convention. SYNTHETIC_OBJECTS.json records the
    objects drawn (label index, 0-based [x0, y0, x1, y1) box, difficult) per image id.
    """
    folder = Path(root) / "VOCdevkit" / "VOC2007"
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    ids = [f"{i + 1:06d}" for i in range(n_trainval + n_test)]
    presence, drawn = {}, {}
    for image_id in ids:
        pixels, objects = _voc_image(rng, image_size)
        drawn[image_id] = objects
        Image.fromarray(pixels).save(folder / "JPEGImages" / f"{image_id}.jpg", quality=90)
        (folder / "Annotations" / f"{image_id}.xml").write_bytes(
            _voc_xml(image_id, image_size, objects))
        flags = np.full(len(VOC_CLASSES), -1, np.int8)
        for obj in objects:
            flags[obj["label"]] = max(flags[obj["label"]], 0 if obj["difficult"] else 1)
        presence[image_id] = flags
    trainval = ids[:n_trainval]
    splits = {"trainval": trainval, "train": trainval[::2], "val": trainval[1::2],
              "test": ids[n_trainval:]}
    for split, members in splits.items():
        main = folder / "ImageSets" / "Main"
        (main / f"{split}.txt").write_text("".join(f"{i}\n" for i in members))
        for c, name in enumerate(VOC_CLASSES):
            (main / f"{name}_{split}.txt").write_text(
                "".join(f"{i} {int(presence[i][c]):2d}\n" for i in members))
    # what was drawn, for tests: 0-based [x0, y0, x1, y1) boxes
    (folder / VOC_OBJECTS).write_text(json.dumps(drawn))
    _write_marker(folder, dataset="voc07", n_trainval=n_trainval, n_test=n_test,
                  image_size=image_size, seed=seed)
    return folder


FIXTURES = {"cifar10": write_cifar10_fixture, "voc07": write_voc07_fixture}
