"""BYOL (Grill et al. NeurIPS 2020) as ProPos builds it (Huang et al. TPAMI 2022, sec. 4.3).

Online network f = projector(trunk), predictor g, target f' = EMA of f (eq. 11). Projector and
predictor are FC-BN-ReLU-FC (hidden 4096, out 256). Loss (ProPos eq. 3 / BYOL eq. 2):
||g(f(x)) - f'(x+)||^2 on L2-normalised vectors, symmetrised (swap views, average). Following
the authors' code: EMA base m = 0.996, raised to 1 by BYOL's per-step cosine
m = 1 - (1 - m_base)(cos(pi k / K) + 1) / 2 when ``momentum_increase`` is on (Hzzone/ProPos
models/propos/byol.py adjust_learning_rate, k = iteration, K = all iterations). The authors'
configs turn it on (config/cifar10_r18_byol.yml, cifar20_r18_byol.yml, cifar20_r18_propos.yml,
cifar20_r34_propos.yml, imagenetdogs_r34_propos.yml, the ImageNet config) except
cifar10_r18_propos.yml; their flag's default (store_true) and ours is off, so recipes set it.
Shuffled BN for the target, predictor lr x10, predictor weights initialised N(0, 0.01) with
zero bias.
NOTE: the EMA update runs after the optimiser step (``on_step_end``); the authors update the
target inside ``forward``, i.e. before this step's update (a one-step lag of the target).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from repro.losses.byol_alignment import byol_alignment_loss, positive_sampling
from repro.methods.base import Method, forward_shuffled_bn, momentum_update
from repro.models.heads import mlp_head
from repro.train.schedules import cosine_momentum


@dataclass
class BYOLConfig:
    dim: int = 256
    hidden_dim: int = 4096
    momentum: float = 0.996
    momentum_increase: bool = False  # BYOL's cosine schedule of m to 1 (on in most ProPos configs)
    symmetric: bool = True
    shuffling_bn: bool = True
    bn_splits: int = 8  # single-process stand-in for shuffled BN (see forward_shuffled_bn)
    predictor_lr_scale: float = 10.0


class BYOL(Method):
    Config = BYOLConfig

    def __init__(self, cfg: BYOLConfig, trunk: nn.Module, feat_dim: int):
        super().__init__()
        self.cfg = cfg
        self.online = nn.Sequential(trunk, mlp_head(feat_dim, cfg.hidden_dim, cfg.dim, bn=True))
        self.target = copy.deepcopy(self.online)
        for p in self.target.parameters():
            p.requires_grad = False
        self.predictor = mlp_head(cfg.dim, cfg.hidden_dim, cfg.dim, bn=True)
        for m in self.predictor.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def encoders(self) -> dict[str, nn.Module]:
        return {"query": self.online[0], "momentum": self.target[0]}

    def param_groups(self) -> list[dict]:
        predictor = list(self.predictor.parameters())
        ids = {id(p) for p in predictor}
        rest = [p for p in self.parameters() if p.requires_grad and id(p) not in ids]
        return [{"params": rest}, {"params": predictor, "lr_scale": self.cfg.predictor_lr_scale}]

    @torch.no_grad()
    def embed_target(self, x: torch.Tensor) -> torch.Tensor:
        """L2-normalised target projections N x C (shuffled BN unless disabled)."""
        if self.cfg.shuffling_bn:
            return F.normalize(forward_shuffled_bn(self.target, x, self.cfg.bn_splits), dim=1)
        return F.normalize(self.target(x), dim=1)

    def branch(self, x_q: torch.Tensor, x_k: torch.Tensor, sigma: float = 0.0):
        """One direction: online x_q predicts target x_k. Returns (q N x C unnormalised online
        projection, k N x C normalised target projection, alignment loss)."""
        q = self.online(x_q)  # N x C
        k = self.embed_target(x_k)  # N x C
        p = self.predictor(positive_sampling(q, sigma))  # N x C
        return q, k, byol_alignment_loss(p, k)

    def forward(self, views, index, epoch):
        _, _, loss = self.branch(views[0], views[1])
        if self.cfg.symmetric:
            loss = 0.5 * (loss + self.branch(views[1], views[0])[2])
        return {"loss": loss, "alignment": loss.detach()}

    def ema_momentum(self, progress: float) -> float:
        if self.cfg.momentum_increase:
            return cosine_momentum(self.cfg.momentum, progress)
        return self.cfg.momentum

    def on_step_end(self, progress: float) -> None:
        momentum_update(self.online, self.target, self.ema_momentum(progress))
