"""Make sure the datasets a table needs are on disk before jobs are expanded and run.

Scales with ``data: download-or-fixture`` (smoke) try torchvision's download of the real
dataset and, only when that is impossible (offline), write the synthetic fixture instead and
say so; anything computed on it is flagged synthetic. Other scales require the real data.
"""

from __future__ import annotations

import socket

from repro.data import DATASET_INFO, MissingDataset, data_root, is_synthetic
from repro.data.fingerprint import data_present
from repro.data.fixtures import FIXTURES

POLICIES = ("real", "download-or-fixture")


def _present(name: str) -> bool:
    # its folder under the data root, or wherever else its reader looks (Fashion-MNIST:
    # torchvision's layout, Debian's system folder)
    return data_present(name)


def _try_download(name: str, log) -> bool:
    if name != "cifar10":
        return False
    from torchvision.datasets import CIFAR10

    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(20)
    try:
        CIFAR10(str(data_root()), train=True, download=True)
        return True
    except Exception as err:  # offline: URLError, timeouts, refused connections
        log(f"could not download real {name} through torchvision: {type(err).__name__}: {err}")
        return False
    finally:
        socket.setdefaulttimeout(old)


def prepare(names: list[str], policy: str, log=print) -> dict[str, str]:
    """Ensure each dataset exists; returns {name: "real" | "synthetic"}."""
    if policy not in POLICIES:
        raise ValueError(f"scale data policy {policy!r}; allowed: {', '.join(POLICIES)}")
    sources = {}
    for name in names:
        if not _present(name):
            if policy == "real":
                raise MissingDataset(f"{name}: not found under {data_root()}; "
                                     f"{DATASET_INFO[name].how_to_get}")
            if not _try_download(name, log):
                if name not in FIXTURES:
                    raise MissingDataset(f"{name}: not found under {data_root()} and no "
                                         f"fixture exists; {DATASET_INFO[name].how_to_get}")
                log(f"WARNING: real {name} unavailable (offline); writing the SYNTHETIC "
                    f"fixture to {data_root()} — results on it are not a reproduction")
                FIXTURES[name](data_root())
        sources[name] = "synthetic" if is_synthetic(name) else "real"
    return sources
