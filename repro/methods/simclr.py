"""SimCLR (Chen et al. ICML 2020): two views, one encoder, NT-Xent (eq. 1) over the batch.

Encoder = trunk + projection head Linear-BN-ReLU-Linear (hidden = trunk width, out 128), as
the authors' CIFAR code; temperature 0.5 (CIFAR; CARL's appendix used 0.2).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from repro.losses.nt_xent import nt_xent_loss
from repro.methods.base import Method
from repro.models.heads import mlp_head


@dataclass
class SimCLRConfig:
    dim: int = 128
    hidden_dim: int = 0  # 0 = the trunk's width
    temperature: float = 0.5


class SimCLR(Method):
    Config = SimCLRConfig

    def __init__(self, cfg: SimCLRConfig, trunk: nn.Module, feat_dim: int):
        super().__init__()
        self.cfg = cfg
        hidden = cfg.hidden_dim or feat_dim
        self.encoder = nn.Sequential(trunk, mlp_head(feat_dim, hidden, cfg.dim, bn=True))

    def encoders(self) -> dict[str, nn.Module]:
        return {"query": self.encoder[0]}

    def forward(self, views, index, epoch):
        z_a, z_b = self.encoder(views[0]), self.encoder(views[1])  # N x C each
        loss = nt_xent_loss(z_a, z_b, self.cfg.temperature)
        return {"loss": loss, "nt_xent": loss.detach()}
