"""SimCLR (Chen et al. ICML 2020): two views, one encoder, NT-Xent (eq. 1) over the batch.

Encoder = trunk + projection head (hidden = trunk width, out 128). As the authors' code
(google-research/simclr v1): head Linear-BN-ReLU-Linear-BN, the output BN with a scale and no
shift (model_util.py ``projection_head``, 'nonlinear' mode), and both views go through the
network as one batch of 2N (model.py ``build_model_fn``: ``tf.concat(features_list, 0)``), so
BN statistics span both views. ``hidden_bn`` / ``out_bn`` turn the head's BNs off: CARL's
SimCLR competitor has none (CARL appendix A.2: only CARL, SwAV and BYOL heads have BN).
Temperature 0.5 (CIFAR; CARL's appendix used 0.2).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from repro.losses.nt_xent import nt_xent_loss
from repro.methods.base import Method
from repro.models.heads import simclr_head


@dataclass
class SimCLRConfig:
    dim: int = 128
    hidden_dim: int = 0  # 0 = the trunk's width
    temperature: float = 0.5
    hidden_bn: bool = True  # the authors' head; CARL's competitor: False
    out_bn: bool = True  # the authors' head; CARL's competitor: False


class SimCLR(Method):
    Config = SimCLRConfig

    def __init__(self, cfg: SimCLRConfig, trunk: nn.Module, feat_dim: int):
        super().__init__()
        self.cfg = cfg
        hidden = cfg.hidden_dim or feat_dim
        head = simclr_head(feat_dim, hidden, cfg.dim, hidden_bn=cfg.hidden_bn, out_bn=cfg.out_bn)
        self.encoder = nn.Sequential(trunk, head)

    def encoders(self) -> dict[str, nn.Module]:
        return {"query": self.encoder[0]}

    def forward(self, views, index, epoch):
        z_a, z_b = self.encoder(torch.cat(views[:2])).chunk(2)  # N x C each
        loss = nt_xent_loss(z_a, z_b, self.cfg.temperature)
        return {"loss": loss, "nt_xent": loss.detach()}
