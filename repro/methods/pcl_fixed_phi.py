"""PCL with a fixed concentration: the ablation of PCL Fig. 3(a) (Li et al. ICLR 2021).

Everything is ``repro.methods.pcl.PCL`` (E-step, ProtoNCE eq. 11) except that every prototype's
concentration is phi = tau (the InfoNCE temperature), instead of eq. 12's per-cluster estimate.
NOTE: the paper says "fixed" without a value; tau is the value eq. 10 assigns to InfoNCE's
instance prototypes (sec. 3.2) and the mean to which eq. 12's estimates are normalised, so
the two variants differ only in how phi is spread over the clusters.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from repro.methods.base import EpochContext
from repro.methods.pcl import PCL


class PCLFixedPhi(PCL):
    """PCL's Config and E-step; phi replaced by tau after each E-step."""

    def on_epoch_start(self, ctx: EpochContext) -> dict[str, float]:
        logs = super().on_epoch_start(ctx)  # PCL's E-step, with eq. 12's phi
        self.clusterings = [
            replace(c, phi=torch.full_like(c.phi, self.cfg.temperature))  # K
            for c in self.clusterings
        ]
        return {name: self.cfg.temperature for name in logs}  # phi_mean_k<K> = tau
