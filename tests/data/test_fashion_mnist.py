"""Fashion-MNIST on the real files (Debian's dataset-fashion-mnist): sizes, labels, images,
normalisation constants, where the files are looked for, and the data fingerprint."""

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import repro.data.fingerprint as F
from repro.data import DATASET_INFO, MissingDataset, build_dataset, is_synthetic
from repro.data import fashion_mnist as FM
from repro.data.transforms import MEAN_STD

SYSTEM = Path(FM.SYSTEM_FOLDER)  # as installed, before any test hides it (`debian`: conftest)
TEST_FILES = [f"{name}.gz" for name in FM.FILES["test"]]


@pytest.fixture(scope="session")
def train(debian):
    """The training split as read from Debian's folder (decoded once per session)."""
    return FM.fashion_mnist(Path("/nonexistent-data-root"), "train")


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    """A private hash cache and an empty memo (as in test_fingerprint.py)."""
    monkeypatch.setenv("REPRO_CACHE", str(tmp_path / "cache"))
    F.clear_memo()
    yield
    F.clear_memo()


def _hide_system_folder(monkeypatch, tmp_path):
    missing = tmp_path / "no-system-folder"
    monkeypatch.setattr(FM, "SYSTEM_FOLDER", missing)
    monkeypatch.setattr(F, "FASHION_MNIST_SYSTEM_FOLDER", str(missing))


def _copy_test_split(folder: Path, gunzip: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in TEST_FILES:
        if gunzip:
            (folder / name[: -len(".gz")]).write_bytes(gzip.decompress((SYSTEM / name)
                                                                       .read_bytes()))
        else:
            shutil.copy(SYSTEM / name, folder / name)
    return folder


def _relabel_first(labels_gz: Path) -> int:
    """Give the first sample of a gzipped labels file another label; returns it."""
    data = bytearray(gzip.decompress(labels_gz.read_bytes()))
    data[8] = (data[8] + 1) % 10  # after the IDX header (magic, count)
    labels_gz.write_bytes(gzip.compress(bytes(data)))
    return data[8]


# ----------------------------------------------------------------------------- the data


def test_sizes_and_balanced_labels(debian, train):
    base, targets = train
    assert len(base) == len(targets) == 60000 and targets.dtype == np.int64
    assert np.bincount(targets, minlength=10).tolist() == [6000] * 10
    test = build_dataset("fashion_mnist", "test", None, root=Path("/nonexistent-data-root"))
    assert len(test) == 10000
    assert np.bincount(test.targets, minlength=10).tolist() == [1000] * 10
    both = build_dataset("fashion_mnist", "train+test", None, root=Path("/nonexistent"))
    assert len(both) == 70000
    assert np.array_equal(both.targets, np.concatenate([targets, test.targets]))
    assert np.asarray(both[60000][0]).tobytes() == np.asarray(test[0][0]).tobytes()


def test_first_training_sample_is_an_ankle_boot_served_grey(train):
    base, targets = train
    assert targets[0] == 9 and FM.CLASSES[9] == "Ankle boot"
    ds = build_dataset("fashion_mnist", "train", None, root=Path("/nonexistent-data-root"))
    image, target, index = ds[0]
    assert isinstance(image, Image.Image) and (target, index) == (9, 0)
    assert image.mode == "L" and image.size == (28, 28)
    for j in (0, 1, 59999):
        assert np.array_equal(np.asarray(base[j][0]), base.images[j])
    assert np.asarray(image).max() > 0


def test_grey_images_give_the_tensors_rgb_images_would(train):
    """Every view recipe and the evaluation/probe transforms: the grey image with the grey
    level repeated after ToTensor equals, bit for bit and under the same seed, the pipeline
    on the RGB image (grey repeated), which is what the backbones were given before."""
    import torch
    from torchvision import transforms as T

    from repro.data.transforms import (
        RECIPES,
        GreyToRGB,
        build_views,
        eval_transform,
        probe_transform,
    )

    images = [base_image for base_image, _ in (train[0][j] for j in range(40))]

    def as_rgb(pipeline):  # the same transforms without the channel repeat
        return T.Compose([t for t in pipeline.transforms if not isinstance(t, GreyToRGB)])

    pipelines = [p for name in sorted(RECIPES)
                 for p in build_views(name, 28, dataset="fashion_mnist").pipelines]
    pipelines += [eval_transform(28, "fashion_mnist"), probe_transform(28, "fashion_mnist"),
                  eval_transform(16, "fashion_mnist")]
    for pipeline in pipelines:
        assert any(isinstance(t, GreyToRGB) for t in pipeline.transforms)
        torch.manual_seed(0)
        grey = [pipeline(im) for im in images]
        torch.manual_seed(0)
        rgb = [as_rgb(pipeline)(im.convert("RGB")) for im in images]
        assert all(g.shape == (3, *g.shape[1:]) for g in grey)
        assert all(torch.equal(g, r) for g, r in zip(grey, rgb)), pipeline


def test_pixel_statistics_match_the_normalisation_constants(train):
    images = train[0].images
    total = squares = 0
    for chunk in np.array_split(images, 10):
        c = chunk.astype(np.int64)
        total, squares = total + int(c.sum()), squares + int((c * c).sum())
    mean = total / images.size / 255
    std = (squares / images.size / 255**2 - mean**2) ** 0.5
    means, stds = MEAN_STD["fashion_mnist"]
    assert len(set(means)) == len(set(stds)) == 1 and len(means) == len(stds) == 3
    assert mean == pytest.approx(means[0], abs=5e-4) and std == pytest.approx(stds[0], abs=5e-4)


def test_subset_is_stratified(debian):
    ds = build_dataset("fashion_mnist", "train", None, root=Path("/nonexistent"), subset=1000)
    assert len(ds) == 1000 and np.bincount(ds.targets, minlength=10).tolist() == [100] * 10
    again = build_dataset("fashion_mnist", "train", None, root=Path("/nonexistent"),
                          subset=1000)
    assert np.array_equal(ds.indices, again.indices)


def test_decoding_is_cached_per_process(train):
    before = FM._decode.cache_info().hits
    base, _ = FM.fashion_mnist(Path("/nonexistent-data-root"), "train")
    assert base.images is train[0].images and FM._decode.cache_info().hits == before + 2
    assert not base.images.flags.writeable


# ----------------------------------------------------------------------------- where


def test_the_data_root_folder_wins_over_debian(debian, tmp_path, monkeypatch):
    folder = _copy_test_split(tmp_path / "fashion-mnist")
    relabelled = _relabel_first(folder / TEST_FILES[1])
    monkeypatch.setenv("REPRO_DATA", str(tmp_path))
    assert FM.split_files(tmp_path, "test") == tuple(folder / f for f in TEST_FILES)
    ds = build_dataset("fashion_mnist", "test", None)
    official = build_dataset("fashion_mnist", "test", None, root=Path("/nonexistent"))
    assert ds.targets[0] == relabelled != official.targets[0]
    assert np.array_equal(ds.targets[1:], official.targets[1:])
    # the train split is not in the folder: it still comes from Debian's
    assert FM.split_files(tmp_path, "train")[0].parent == SYSTEM
    assert not is_synthetic("fashion_mnist")


def test_torchvisions_raw_layout_with_unzipped_files(debian, tmp_path):
    raw = _copy_test_split(tmp_path / "FashionMNIST" / "raw", gunzip=True)
    _copy_test_split(raw)  # torchvision's download leaves the .gz next to them
    images, labels = FM.split_files(tmp_path, "test")
    assert (images, labels) == tuple(raw / name for name in FM.FILES["test"])
    _, ours = FM.fashion_mnist(tmp_path, "test")
    base, official = FM.fashion_mnist(Path("/nonexistent"), "test")
    assert np.array_equal(ours, official)
    assert np.array_equal(FM.read_idx(images, labels=False), base.images)
    # an incomplete folder earlier in the search is passed over
    (tmp_path / "fashion-mnist").mkdir()
    shutil.copy(SYSTEM / TEST_FILES[0], tmp_path / "fashion-mnist")
    assert FM.split_files(tmp_path, "test") == (images, labels)


def test_missing_everywhere_says_where_and_how(tmp_path, monkeypatch):
    _hide_system_folder(monkeypatch, tmp_path)
    (tmp_path / "fashion-mnist").mkdir()
    with pytest.raises(MissingDataset) as err:
        build_dataset("fashion_mnist", "train", None, root=tmp_path)
    message = str(err.value)
    for folder in ("fashion-mnist", "FashionMNIST/raw", "no-system-folder"):
        assert str((tmp_path / folder).resolve()) in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "torchvision.datasets.FashionMNIST(<root>, download=True)" in message
    assert DATASET_INFO["fashion_mnist"].how_to_get in message
    assert isinstance(err.value, FileNotFoundError)


def test_constants_match_torchvision_and_the_fingerprint_copies():
    from torchvision.datasets import FashionMNIST

    assert [n.removesuffix(".gz") for n, _ in FashionMNIST.resources] == [
        *FM.FILES["train"], *FM.FILES["test"]]
    assert FM.CLASSES == tuple(FashionMNIST.classes)
    tv = FashionMNIST.__new__(FashionMNIST)  # raw_folder without reading anything
    tv.root = "ROOT"
    assert Path(tv.raw_folder) == Path("ROOT") / FM.FOLDERS[1]
    assert FM.FOLDERS[0] == DATASET_INFO["fashion_mnist"].folder
    assert F.FASHION_MNIST_FOLDERS == FM.FOLDERS
    assert Path(F.FASHION_MNIST_SYSTEM_FOLDER) == FM.SYSTEM_FOLDER
    assert F.FASHION_MNIST_FILES == FM.FILES and F.FASHION_MNIST_SUFFIXES == FM.SUFFIXES
    assert set(FM.FILES) | {"train+test"} == set(DATASET_INFO["fashion_mnist"].splits)


# ----------------------------------------------------------------------------- fingerprint


def test_fingerprint_same_bytes_anywhere_same_digest(debian, tmp_path, fresh_cache):
    official = {s: F.data_fingerprint("fashion_mnist", s, tmp_path / "empty")
                for s in ("train", "test", None)}
    assert len(set(official.values())) == 3 and None not in official.values()
    folder = _copy_test_split(tmp_path / "root" / "fashion-mnist")
    assert F.data_fingerprint("fashion_mnist", "test", tmp_path / "root") == official["test"]

    data = bytearray((folder / TEST_FILES[0]).read_bytes())  # a changed byte
    data[1000] ^= 0xFF
    (folder / TEST_FILES[0]).write_bytes(bytes(data))
    assert F.data_fingerprint("fashion_mnist", "test", tmp_path / "root") != official["test"]
    assert F.data_fingerprint("fashion_mnist", "train", tmp_path / "root") == official["train"]

    # unzipped files are other bytes than the .gz: another digest (never a false match)
    raw = _copy_test_split(tmp_path / "tv" / "FashionMNIST" / "raw", gunzip=True)
    unzipped = F.data_fingerprint("fashion_mnist", "test", tmp_path / "tv")
    assert unzipped not in (None, official["test"])
    shutil.copytree(raw, tmp_path / "other" / "fashion-mnist")
    assert F.data_fingerprint("fashion_mnist", "test", tmp_path / "other") == unzipped


def test_fingerprint_and_presence_without_the_system_folder(tmp_path, monkeypatch,
                                                            fresh_cache):
    from repro import tables
    from repro.launch import data as launch_data

    monkeypatch.setenv("REPRO_DATA", str(tmp_path / "data"))
    monkeypatch.setattr(tables.J, "datasets_used", lambda table, scale: ["fashion_mnist"])
    if (SYSTEM / TEST_FILES[0]).is_file():  # read from Debian's folder: real
        assert F.data_present("fashion_mnist")
        assert launch_data.prepare(["fashion_mnist"], "real") == {"fashion_mnist": "real"}
        assert tables.source_candidates(None, "any") == [{"fashion_mnist": "real"}]
    _hide_system_folder(monkeypatch, tmp_path)
    assert not F.data_present("fashion_mnist")
    assert F.data_fingerprint("fashion_mnist", None) is None
    with pytest.raises(MissingDataset, match="apt-get install dataset-fashion-mnist"):
        launch_data.prepare(["fashion_mnist"], "real")
    assert len(tables.source_candidates(None, "any")) == 2  # real or synthetic: unknown
