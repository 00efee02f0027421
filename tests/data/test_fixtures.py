"""Synthetic CIFAR-10 and VOC2007 fixtures: on-disk layout, round trip, learnable structure."""

import json
import pickle
import shutil
import time

import numpy as np
import pytest
import torch
from torchvision.datasets import CIFAR10

from repro.data import SYNTHETIC_MARKER, build_dataset, dataset_targets, voc07_annotations
from repro.data.cifar import FixtureCIFAR10
from repro.data.fixtures import (
    CIFAR10_CLASSES,
    FIXTURES,
    VOC_OBJECTS,
    write_cifar10_fixture,
    write_voc07_fixture,
)
from repro.data.voc import VOC_CLASSES


def _unpickle(path):
    with open(path, "rb") as f:
        return pickle.load(f, encoding="latin1")


def test_cifar_files_have_the_official_keys_and_dtypes(fixture_root, cifar_sizes):
    n_train, n_test = cifar_sizes
    folder = fixture_root / "cifar-10-batches-py"
    sizes = []
    for name in [f"data_batch_{b}" for b in range(1, 6)] + ["test_batch"]:
        batch = _unpickle(folder / name)
        assert set(batch) == {"batch_label", "labels", "data", "filenames"}
        assert batch["data"].dtype == np.uint8 and batch["data"].shape[1] == 3072
        assert all(type(y) is int and 0 <= y < 10 for y in batch["labels"])
        assert len(batch["filenames"]) == len(batch["labels"]) == len(batch["data"])
        assert isinstance(batch["batch_label"], str)
        sizes.append(len(batch["labels"]))
    assert sum(sizes[:5]) == n_train and sizes[5] == n_test
    meta = _unpickle(folder / "batches.meta")
    assert meta["label_names"] == list(CIFAR10_CLASSES) and meta["num_vis"] == 3072
    marker = json.loads((folder / SYNTHETIC_MARKER).read_text())
    assert marker["synthetic"] is True and marker["n_train"] == n_train


def test_cifar_fixture_round_trips_through_torchvision(fixture_root, cifar_sizes):
    n_train, n_test = cifar_sizes
    train = FixtureCIFAR10(str(fixture_root), train=True)
    test = FixtureCIFAR10(str(fixture_root), train=False)
    assert isinstance(train, CIFAR10)
    assert train.data.shape == (n_train, 32, 32, 3) and train.data.dtype == np.uint8
    assert len(test) == n_test and train.classes == list(CIFAR10_CLASSES)
    assert np.bincount(train.targets, minlength=10).tolist() == [n_train // 10] * 10
    # torchvision's planar -> HWC conversion reproduces the raw pickle's red plane
    raw = _unpickle(fixture_root / "cifar-10-batches-py" / "data_batch_1")
    assert np.array_equal(train.data[0, :, :, 0].ravel(), raw["data"][0, :1024])
    image, label = train[0]
    assert image.size == (32, 32) and label == raw["labels"][0]


def test_fixture_is_accepted_only_with_its_marker(fixture_root, tmp_path):
    with pytest.raises(RuntimeError):  # the md5 check of the real files
        CIFAR10(str(fixture_root), train=True)
    shutil.copytree(fixture_root / "cifar-10-batches-py", tmp_path / "cifar-10-batches-py")
    (tmp_path / "cifar-10-batches-py" / SYNTHETIC_MARKER).unlink()
    with pytest.raises(RuntimeError):
        FixtureCIFAR10(str(tmp_path), train=True)


def test_build_dataset_serves_the_fixture_with_indexes(fixture_root, cifar_sizes):
    n_train, n_test = cifar_sizes
    ds = build_dataset("cifar10", "train+test", None, root=fixture_root)
    assert len(ds) == n_train + n_test
    image, target, index = ds[n_train + 3]
    assert index == n_train + 3 and image.size == (32, 32)
    assert target == FixtureCIFAR10(str(fixture_root), train=False).targets[3]
    assert dataset_targets(ds).dtype == np.int64 and len(dataset_targets(ds)) == len(ds)


def test_cifar_fixture_is_deterministic_in_its_seed(tmp_path):
    a = write_cifar10_fixture(tmp_path / "a", n_train=50, n_test=10, seed=3)
    b = write_cifar10_fixture(tmp_path / "b", n_train=50, n_test=10, seed=3)
    c = write_cifar10_fixture(tmp_path / "c", n_train=50, n_test=10, seed=4)
    same = (a / "data_batch_2").read_bytes() == (b / "data_batch_2").read_bytes()
    assert same and (a / "test_batch").read_bytes() != (c / "test_batch").read_bytes()


def test_classes_have_structure_raw_pixels_only_partly_reveal(fixture_root):
    train = FixtureCIFAR10(str(fixture_root), train=True)
    test = FixtureCIFAR10(str(fixture_root), train=False)
    x = train.data.reshape(len(train), -1).astype(np.float32) / 255
    y = np.asarray(train.targets)
    xt = test.data.reshape(len(test), -1).astype(np.float32) / 255
    means = np.stack([x[y == c].mean(0) for c in range(10)])
    nearest_mean = ((xt[:, None] - means[None]) ** 2).sum(-1).argmin(1)
    accuracy = (nearest_mean == np.asarray(test.targets)).mean()
    # chance is 0.1 (std ~0.02 at 200 test images); measured 0.2-0.3 over seeds
    assert 0.16 < accuracy < 0.6
    # not a solid colour per class: images of one class vary a lot in mean colour
    colour = train.data.reshape(len(train), -1, 3).mean(1)
    assert colour[y == 0].std(0).min() > 15


def test_voc_fixture_parses_back_to_the_boxes_written(fixture_root):
    folder = fixture_root / "VOCdevkit" / "VOC2007"
    drawn = json.loads((folder / VOC_OBJECTS).read_text())
    records = voc07_annotations(fixture_root, "test")
    assert len(records) == 30
    for record in records:
        objects = drawn[record["filename"].removesuffix(".jpg")]
        assert record["boxes"].dtype == np.float32 and record["boxes"].shape == (len(objects), 4)
        np.testing.assert_array_equal(record["boxes"], [o["box"] for o in objects])
        assert record["labels"].tolist() == [o["label"] for o in objects]
        assert record["difficult"].tolist() == [o["difficult"] for o in objects]
        assert 1 <= len(objects) <= 3


def test_voc_targets_follow_the_1_0_minus1_convention(fixture_root):
    ds = build_dataset("voc07", "trainval", None, root=fixture_root)
    targets = dataset_targets(ds)
    assert targets.shape == (40, len(VOC_CLASSES)) and targets.dtype == np.int8
    for row, record in zip(targets, voc07_annotations(fixture_root, "trainval")):
        expected = np.full(len(VOC_CLASSES), -1)
        for label, difficult in zip(record["labels"], record["difficult"]):
            expected[label] = max(expected[label], 0 if difficult else 1)
        np.testing.assert_array_equal(row, expected)
    image, target, index = ds[7]
    assert image.size == (96, 96) and index == 7 and np.array_equal(target, targets[7])
    batch = next(iter(torch.utils.data.DataLoader(ds.with_transform(np.array), batch_size=4)))
    assert batch[1].shape == (4, len(VOC_CLASSES))


def test_voc_boxes_hold_texture(fixture_root):
    record = voc07_annotations(fixture_root, "trainval")[0]
    image, _, _ = build_dataset("voc07", "trainval", np.asarray, root=fixture_root)[0]
    x0, y0, x1, y1 = record["boxes"][-1].astype(int)  # the last object drawn is never occluded
    assert image[y0:y1, x0:x1].std() > 20


def test_fixture_writers_are_exposed_by_name():
    assert FIXTURES == {"cifar10": write_cifar10_fixture, "voc07": write_voc07_fixture}


@pytest.mark.smoke
def test_full_size_cifar_fixture_writes_fast(tmp_path):
    start = time.perf_counter()
    folder = write_cifar10_fixture(tmp_path)
    assert time.perf_counter() - start < 20
    assert len(FixtureCIFAR10(str(tmp_path), train=True)) == 50000
    assert (folder / SYNTHETIC_MARKER).is_file()
