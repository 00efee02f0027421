"""The dataset registry: names, splits, missing data, torch-free import."""

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import repro.data as data
from repro.data import DATASET_INFO, DATASETS, MissingDataset, build_dataset
from repro.registry import UnknownName


def test_import_is_torch_free():
    code = "import sys, repro.data, repro.models; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).parents[2], check=True)
    assert out.stdout.strip() == "False"


def test_every_registered_dataset_has_info_and_a_builder():
    assert set(DATASETS.names()) == set(DATASET_INFO)
    for name in DATASETS.names():
        info = DATASET_INFO[name]
        assert callable(DATASETS.resolve(name))
        assert info.num_classes > 1 and info.image_size > 0 and info.splits
        assert "\n" not in info.how_to_get and info.how_to_get


@pytest.mark.parametrize("name", DATASETS.names())
def test_missing_data_names_the_path_and_how_to_get_it(name, tmp_path, monkeypatch):
    info = DATASET_INFO[name]
    reader = importlib.import_module(DATASETS.target(name).partition(":")[0])
    if hasattr(reader, "SYSTEM_FOLDER"):  # also read from a system-wide install: hide it
        monkeypatch.setattr(reader, "SYSTEM_FOLDER", tmp_path / "no-system-folder")
    if not info.folder:  # ships with a library: always available
        ds = build_dataset(name, info.splits[0], None, root=tmp_path)
        assert len(ds) > 0
        return
    with pytest.raises(MissingDataset) as err:
        build_dataset(name, info.splits[0], None, root=tmp_path)
    message = str(err.value)
    assert str((tmp_path / info.folder).resolve()) in message
    assert info.how_to_get in message
    assert isinstance(err.value, FileNotFoundError)


def test_unknown_dataset_lists_allowed_names():
    with pytest.raises(UnknownName) as err:
        build_dataset("cifar11", "train", None)
    for name in DATASETS.names():
        assert name in str(err.value)


def test_unknown_split_lists_allowed_splits():
    with pytest.raises(ValueError, match="allowed: train, test, train[+]test"):
        build_dataset("cifar10", "val", None)


def test_data_root_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("REPRO_DATA", str(tmp_path))
    assert data.data_root() == tmp_path
    monkeypatch.delenv("REPRO_DATA")
    assert data.data_root() == Path("data")


def test_is_synthetic_only_for_fixture_folders(fixture_root, tmp_path):
    assert data.is_synthetic("cifar10", fixture_root)
    assert data.is_synthetic("voc07", fixture_root)
    assert not data.is_synthetic("cifar100", fixture_root)
    assert not data.is_synthetic("cifar10", tmp_path)
    assert not data.is_synthetic("digits")
