"""Small synthetic datasets shared by the data tests (written once per session)."""

from pathlib import Path

import pytest

from repro.data.fixtures import write_cifar10_fixture, write_voc07_fixture

# sizes of the session's CIFAR-10 fixture
N_TRAIN, N_TEST = 500, 200


@pytest.fixture(scope="session")
def cifar_sizes() -> tuple[int, int]:
    return N_TRAIN, N_TEST


@pytest.fixture(scope="session")
def fixture_root(tmp_path_factory) -> Path:
    """A data root holding a small CIFAR-10 fixture and a small VOC2007 fixture."""
    root = tmp_path_factory.mktemp("data")
    write_cifar10_fixture(root, n_train=N_TRAIN, n_test=N_TEST, seed=0)
    write_voc07_fixture(root, n_trainval=40, n_test=30, image_size=96, seed=0)
    return root
