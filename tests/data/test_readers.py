"""Subsets, digits, CIFAR-20's mapping, ImageNet class lists and the folder/npz readers."""

import re

import numpy as np
import pytest
from PIL import Image

from repro.data import MissingDataset, build_dataset, dataset_targets
from repro.data.cifar import CIFAR20_CLASSES, CIFAR20_GROUPS, CIFAR100_CLASSES, FINE_TO_COARSE
from repro.data.digits import digits_images, digits_split
from repro.data.imagenet import CLASS_LISTS, class_list_dataset, read_class_list
from repro.data.indexed import stratified_subset

# ---------------------------------------------------------------- subsets


def test_stratified_subset_is_seeded_sorted_and_keeps_class_shares():
    targets = np.repeat(np.arange(4), [400, 300, 200, 100])
    a = stratified_subset(targets, 100, seed=0)
    assert np.array_equal(a, stratified_subset(targets, 100, seed=0))
    assert not np.array_equal(a, stratified_subset(targets, 100, seed=1))
    assert len(np.unique(a)) == 100 and np.all(np.diff(a) > 0)
    assert np.bincount(targets[a]).tolist() == [40, 30, 20, 10]


def test_stratified_subset_rounds_shares_to_the_exact_size():
    targets = np.repeat(np.arange(3), [5, 5, 5])
    chosen = stratified_subset(targets, 7, seed=0)
    assert len(chosen) == 7 and sorted(np.bincount(targets[chosen]).tolist()) == [2, 2, 3]


def test_multilabel_subset_is_uniform_and_seeded():
    targets = np.zeros((50, 20), np.int8)
    assert np.array_equal(stratified_subset(targets, 10, 3), stratified_subset(targets, 10, 3))
    with pytest.raises(ValueError, match="1..50"):
        stratified_subset(targets, 51, 0)


def test_subset_dataset_reindexes_and_is_deterministic(fixture_root):
    full = build_dataset("cifar10", "train", np.array, root=fixture_root)
    sub = build_dataset("cifar10", "train", np.array, root=fixture_root, subset=50, subset_seed=5)
    again = build_dataset("cifar10", "train", np.array, root=fixture_root, subset=50,
                          subset_seed=5)
    assert len(sub) == 50 and np.bincount(dataset_targets(sub)).tolist() == [5] * 10
    assert np.array_equal(sub.indices, again.indices)
    image, target, index = sub[49]
    original = int(sub.indices[49])
    assert index == 49 and target == full.targets[original]
    assert np.array_equal(image, full[original][0])


# ---------------------------------------------------------------- digits


def test_digits_has_ten_classes_and_a_fixed_stratified_third_as_test():
    train = build_dataset("digits", "train", np.array)
    test = build_dataset("digits", "test", np.array)
    y_train, y_test = dataset_targets(train), dataset_targets(test)
    assert len(train) + len(test) == 1797 and abs(len(test) - 1797 / 3) < 1
    assert set(y_train) == set(y_test) == set(range(10))
    share = np.bincount(y_test) / (np.bincount(y_test) + np.bincount(y_train))
    assert np.all(np.abs(share - 1 / 3) < 0.01)
    _, labels = digits_images()
    train_idx, test_idx = digits_split(labels, "train"), digits_split(labels, "test")
    assert np.intersect1d(train_idx, test_idx).size == 0
    assert np.array_equal(np.union1d(train_idx, test_idx), np.arange(1797))
    image, target, index = train[3]
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8 and index == 3
    assert np.array_equal(image[..., 0], image[..., 2]) and image.max() > 200


# ---------------------------------------------------------------- CIFAR-20


def test_cifar20_maps_all_100_fine_classes_into_20_groups_of_5():
    assert CIFAR100_CLASSES == tuple(sorted(CIFAR100_CLASSES)) and len(CIFAR100_CLASSES) == 100
    assert FINE_TO_COARSE.shape == (100,) and len(CIFAR20_CLASSES) == 20
    assert np.bincount(FINE_TO_COARSE).tolist() == [5] * 20
    grouped = sorted(f for group in CIFAR20_GROUPS.values() for f in group)
    assert grouped == sorted(CIFAR100_CLASSES)


@pytest.mark.parametrize("fine, coarse", [
    ("apple", "fruit_and_vegetables"), ("maple_tree", "trees"), ("whale", "aquatic_mammals"),
    ("worm", "non-insect_invertebrates"), ("tractor", "vehicles_2"), ("baby", "people"),
])
def test_cifar20_mapping_agrees_with_the_published_hierarchy(fine, coarse):
    assert CIFAR20_CLASSES[FINE_TO_COARSE[CIFAR100_CLASSES.index(fine)]] == coarse


def test_cifar20_coarse_labels_equal_the_official_coarse_indices():
    # a few entries of the `coarse_labels` the official CIFAR-100 files carry (SCAN's table)
    official = {0: 4, 1: 1, 2: 14, 3: 8, 4: 0, 47: 17, 58: 18, 81: 19, 99: 13}
    assert {f: int(FINE_TO_COARSE[f]) for f in official} == official


# ---------------------------------------------------------------- ImageNet class lists


@pytest.mark.parametrize("name, size", [("imagenet10", 10), ("imagenet_dogs", 15),
                                        ("imagenet100", 100)])
def test_class_lists_are_unique_wnids(name, size):
    wnids = read_class_list(CLASS_LISTS / f"{name}.txt")
    assert len(wnids) == len(set(wnids)) == size
    assert all(re.fullmatch(r"n\d{8}", w) for w in wnids)


def _jpeg(path, colour):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (20, 12), colour).save(path)


def test_imagenet_subset_keeps_listed_classes_in_sorted_order(tmp_path):
    for wnid in ("n00000003", "n00000001", "n00000002"):
        for k in range(2):
            _jpeg(tmp_path / "imagenet" / "val" / wnid / f"{wnid}_{k}.JPEG", (k, 0, 0))
    listing = tmp_path / "mine.txt"
    listing.write_text("# my subset\nn00000003 third\nn00000001\n")
    ds = class_list_dataset(listing, "val", np.array, root=tmp_path)
    assert len(ds) == 4 and dataset_targets(ds).tolist() == [0, 0, 1, 1]
    assert ds.base.classes == ["n00000001", "n00000003"]
    listing.write_text("n00000009\n")
    with pytest.raises(MissingDataset, match="n00000009"):
        class_list_dataset(listing, "val", None, root=tmp_path)


def test_tiny_imagenet_reads_its_own_layout(tmp_path):
    folder = tmp_path / "tiny-imagenet-200"
    folder.mkdir()
    (folder / "wnids.txt").write_text("n00000002\nn00000001\n")
    for wnid in ("n00000001", "n00000002"):
        _jpeg(folder / "train" / wnid / "images" / f"{wnid}_0.JPEG", (10, 0, 0))
    _jpeg(folder / "val" / "images" / "val_0.JPEG", (0, 0, 0))
    _jpeg(folder / "val" / "images" / "val_1.JPEG", (0, 0, 0))
    (folder / "val" / "val_annotations.txt").write_text(
        "val_0.JPEG\tn00000002\t0\t0\t5\t5\nval_1.JPEG\tn00000001\t0\t0\t5\t5\n")
    assert dataset_targets(build_dataset("tiny_imagenet", "train", None, root=tmp_path)).tolist() \
        == [0, 1]
    val = build_dataset("tiny_imagenet", "val", np.array, root=tmp_path)
    assert dataset_targets(val).tolist() == [1, 0] and val[0][0].shape == (12, 20, 3)


def test_imagenet64_reads_npz_batches(tmp_path):
    folder = tmp_path / "imagenet64" / "Imagenet64_val_npz"
    folder.mkdir(parents=True)
    pixels = np.zeros((3, 3 * 64 * 64), np.uint8)
    pixels[1, : 64 * 64] = 255  # image 1: red plane full
    np.savez(folder / "val_data.npz", data=pixels, labels=np.array([1, 1000, 7]))
    ds = build_dataset("imagenet64", "val", np.array, root=tmp_path)
    assert dataset_targets(ds).tolist() == [0, 999, 6]
    image = ds[1][0]
    assert image.shape == (64, 64, 3) and image[..., 0].min() == 255 and image[..., 1].max() == 0


def test_places205_reads_the_official_csv_lists(tmp_path):
    folder = tmp_path / "places205"
    _jpeg(folder / "images256" / "a" / "abbey" / "x.jpg", (0, 0, 0))
    _jpeg(folder / "images256" / "b" / "bar" / "y.jpg", (0, 0, 0))
    (folder / "trainvalsplit_places205").mkdir()
    (folder / "trainvalsplit_places205" / "val_places205.csv").write_text(
        "a/abbey/x.jpg 0\nb/bar/y.jpg 12\n")
    ds = build_dataset("places205", "val", np.array, root=tmp_path)
    assert dataset_targets(ds).tolist() == [0, 12] and ds[1][0].shape == (12, 20, 3)
    with pytest.raises(MissingDataset, match="train_places205.csv"):
        build_dataset("places205", "train", None, root=tmp_path)
