"""SimSiam (Chen & He, CVPR 2021): projector + predictor, stop-gradient, symmetric -cos (eq. 1-2).

Projector: Linear-BN-ReLU-Linear-BN (the CIFAR variant's 2 layers, output BN without affine);
predictor: bottleneck Linear-BN-ReLU-Linear (dim 2048, hidden 512).
NOTE: the ImageNet projector has 3 layers; we use the 2-layer CIFAR variant of the paper's
sec. 5 / appendix. NOTE: the authors keep the predictor's lr fixed (not decayed);
our schedule scales every group alike, so the predictor is decayed with the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from repro.losses.simsiam import simsiam_loss
from repro.methods.base import Method
from repro.models.heads import mlp_head


@dataclass
class SimSiamConfig:
    dim: int = 2048
    projector_hidden_dim: int = 2048
    predictor_hidden_dim: int = 512


class SimSiam(Method):
    Config = SimSiamConfig

    def __init__(self, cfg: SimSiamConfig, trunk: nn.Module, feat_dim: int):
        super().__init__()
        self.cfg = cfg
        projector = mlp_head(feat_dim, cfg.projector_hidden_dim, cfg.dim, bn=True, last_bn=True)
        self.encoder = nn.Sequential(trunk, projector)
        self.predictor = mlp_head(cfg.dim, cfg.predictor_hidden_dim, cfg.dim, bn=True)

    def encoders(self) -> dict[str, nn.Module]:
        return {"query": self.encoder[0]}

    def forward(self, views, index, epoch):
        z1, z2 = self.encoder(views[0]), self.encoder(views[1])  # N x C
        p1, p2 = self.predictor(z1), self.predictor(z2)  # N x C
        loss = simsiam_loss(p1, p2, z1, z2)
        return {"loss": loss, "neg_cosine": loss.detach()}
