"""Prototypical Contrastive Learning (Li et al. ICLR 2021), v1 and v2.

EM on MoCo: E-step (sec. 3.2) = k-means at M granularities on momentum features of the
training set (evaluation transform) once per epoch after ``warmup_epochs`` of InfoNCE only;
M-step = ProtoNCE (eq. 11) = InfoNCE (eq. 1) + the mean prototype term with concentration
phi (eq. 12). v1/v2 differ as MoCo v1/v2 do (head, temperature, views, schedule).
Authors' code details (see ``repro.losses.proto_nce`` and ``repro.methods.estep``): k-means
niter 20, nredo 5, 10..1000 points per centroid, seed = granularity index; phi clipped to
its 10-90th percentile and rescaled to mean tau.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from repro.losses.proto_nce import proto_nce_loss
from repro.methods.base import EpochContext
from repro.methods.estep import Clustering, cluster_features
from repro.methods.moco import MoCo, MoCoConfig


@dataclass
class PCLConfig(MoCoConfig):
    queue_size: int = 16384
    temperature: float = 0.1  # v1 0.1, v2 0.2
    num_clusters: list[int] = field(default_factory=lambda: [25000, 50000, 100000])
    num_neg_prototypes: int = 16384  # r
    warmup_epochs: int = 20
    kmeans_niter: int = 20
    kmeans_nredo: int = 5


class PCL(MoCo):
    Config = PCLConfig

    def __init__(self, cfg: PCLConfig, trunk: nn.Module, feat_dim: int):
        super().__init__(cfg, trunk, feat_dim)
        self.clusterings: list[Clustering] = []

    def on_epoch_start(self, ctx: EpochContext) -> dict[str, float]:
        if ctx.epoch < self.cfg.warmup_epochs:
            self.clusterings = []
            return {}
        features = ctx.extract(self.encoder_k)  # N x C momentum features, eval transform
        too_many = [k for k in self.cfg.num_clusters if k > features.shape[0]]
        if too_many:
            raise ValueError(
                f"num_clusters {too_many} exceed the {features.shape[0]} training samples"
            )
        self.clusterings = cluster_features(
            features, self.cfg.num_clusters, temperature=self.cfg.temperature,
            niter=self.cfg.kmeans_niter, nredo=self.cfg.kmeans_nredo,
        )
        return {
            f"phi_mean_k{c.prototypes.shape[0]}": float(c.phi.mean()) for c in self.clusterings
        }

    def prototype_terms(self, q, k, index) -> tuple[torch.Tensor, dict]:
        """Extra loss terms once prototypes exist (none in PCL; PAUC adds its three)."""
        return q.new_zeros(()), {}

    def forward(self, views, index, epoch):
        q, k, out = self.instance_step(views)  # q, k: N x C
        loss = out["loss"]
        if self.clusterings:
            index = index.to(q.device)
            proto = proto_nce_loss(
                q,
                [(c.prototypes, c.phi, c.assignments) for c in self.clusterings],
                index,
                self.cfg.num_neg_prototypes,
            )
            extra, logs = self.prototype_terms(q, k, index)
            loss = loss + proto + extra
            out["proto_nce"] = proto.detach()
            out.update(logs)
        out["loss"] = loss
        return out
