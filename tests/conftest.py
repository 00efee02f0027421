import os
from pathlib import Path

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


@pytest.fixture(scope="session")
def debian() -> Path:
    """Debian's folder with the four real Fashion-MNIST files. Without them: skip, saying how to
    get them; under CI=true that is a failure instead (CI installs the package)."""
    from repro.data import fashion_mnist as FM

    system = Path(FM.SYSTEM_FOLDER)
    missing = [f"{name}.gz" for names in FM.FILES.values() for name in names
               if not (system / f"{name}.gz").is_file()]
    if missing:
        why = (f"real Fashion-MNIST is not in {system} (missing {', '.join(missing)}): "
               f"apt-get install dataset-fashion-mnist")
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    return system
