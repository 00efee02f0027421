"""Self-supervised methods, looked up by name (torch-free at import time).

Each entry is a ``Method`` subclass; ``repro.methods.base`` documents the interface.
Tests iterate over this registry, so a new method is tested as soon as it is listed.
"""

from repro.registry import Registry

METHODS = Registry(
    "method",
    {
        "byol": "repro.methods.byol:BYOL",
        "carl": "repro.methods.carl:CARL",
        "moco": "repro.methods.moco:MoCo",
        "pauc": "repro.methods.pauc:PAUC",
        "pcl": "repro.methods.pcl:PCL",
        "pcl_fixed_phi": "repro.methods.pcl_fixed_phi:PCLFixedPhi",
        "propos": "repro.methods.propos:ProPos",
        "simclr": "repro.methods.simclr:SimCLR",
        "simsiam": "repro.methods.simsiam:SimSiam",
        "supervised": "repro.methods.supervised:Supervised",
        "swav": "repro.methods.swav:SwAV",
        "untrained": "repro.methods.untrained:Untrained",
    },
)
