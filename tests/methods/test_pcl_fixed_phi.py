"""PCL with a fixed concentration (PCL Fig. 3(a)): PCL's E-step with phi = tau everywhere."""

from __future__ import annotations

import torch
from tiny_methods import BACKBONE, TINY_PARAMS, tiny_images

from repro.methods.base import EpochContext
from repro.train.pretrain import build_method


def _built(name: str):
    torch.manual_seed(0)
    return build_method({"method": name, "params": TINY_PARAMS[name], "backbone": BACKBONE})


def _context(images, epoch=0):
    @torch.no_grad()
    def extract(module):
        module.eval()
        return module(images)

    return EpochContext(epoch=epoch, total_epochs=2, num_samples=len(images), extract=extract)


def test_same_clusters_as_pcl_with_every_phi_equal_to_tau():
    images = tiny_images()
    pcl, fixed = _built("pcl"), _built("pcl_fixed_phi")
    logs_pcl = pcl.on_epoch_start(_context(images))
    logs_fixed = fixed.on_epoch_start(_context(images))
    tau = fixed.cfg.temperature
    assert len(fixed.clusterings) == len(pcl.clusterings) == 2
    for a, b in zip(pcl.clusterings, fixed.clusterings):
        assert torch.equal(a.assignments, b.assignments)
        assert torch.equal(a.prototypes, b.prototypes)
        assert torch.all(b.phi == tau) and b.phi.shape == a.phi.shape
        assert not torch.all(a.phi == tau)  # PCL's estimate spreads phi around tau
        assert abs(float(a.phi.mean()) - tau) < 1e-5
    assert set(logs_fixed) == set(logs_pcl) and all(v == tau for v in logs_fixed.values())


def test_warm_up_has_no_clusterings():
    params = {**TINY_PARAMS["pcl_fixed_phi"], "warmup_epochs": 1}
    method = build_method({"method": "pcl_fixed_phi", "params": params, "backbone": BACKBONE})
    assert method.on_epoch_start(_context(tiny_images(), epoch=0)) == {}
    assert method.clusterings == []
