"""Self-supervised methods, looked up by name (torch-free at import time).

Each entry is a ``Method`` subclass; ``repro.methods.base`` documents the interface.
Tests iterate over this registry, so a new method is tested as soon as it is listed.
"""

from repro.registry import Registry

METHODS = Registry(
    "method",
    {
        "moco": "repro.methods.moco:MoCo",
        "pcl": "repro.methods.pcl:PCL",
    },
)
