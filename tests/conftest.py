import os

import pytest


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """Store, runs, logs, data and hash-cache roots under tmp_path (digits needs no files)."""
    for env, sub in (("REPRO_STORE", "store"), ("REPRO_RUNS", "runs"), ("REPRO_LOGS", "logs"),
                     ("REPRO_DATA", "data"), ("REPRO_CACHE", "cache")):
        monkeypatch.setenv(env, str(tmp_path / sub))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def pytest_configure(config):
    # Two cores: keep torch from oversubscribing when tests spawn processes.
    os.environ.setdefault("OMP_NUM_THREADS", "2")
