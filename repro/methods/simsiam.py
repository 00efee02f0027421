"""SimSiam (Chen & He, CVPR 2021): projector + predictor, stop-gradient, symmetric -cos (eq. 1-2).

Following the authors' code (facebookresearch/simsiam @ 39ac33e): projector =
``projector_layers`` x (Linear-BN[-ReLU]) with an affine-free output BN (3 layers on ImageNet,
simsiam/builder.py L21-31; 2 in the paper's CIFAR variant); predictor = bottleneck
Linear-BN-ReLU-Linear (dim 2048, hidden 512); each view forwarded on its own (builder.py
forward); ``fix_predictor_lr``: the predictor's lr stays at the base lr while the rest follows
the schedule (main_simsiam.py: main_worker's ``if args.fix_pred_lr:`` param groups with
``fix_lr``, and adjust_learning_rate; the README's command runs ``--fix-pred-lr``).
ProPos's re-run (Hzzone/ProPos models/simsiam/) differs in two ways, both options:
``projector_out_affine`` (its output BN keeps affine parameters) and ``joint_views`` (both
views in one forward, so BN statistics span 2N samples: simsiam_wrapper.py forward).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from repro.losses.simsiam import simsiam_loss
from repro.methods.base import Method
from repro.models.heads import mlp_head, simsiam_projector


@dataclass
class SimSiamConfig:
    dim: int = 2048
    projector_hidden_dim: int = 2048
    predictor_hidden_dim: int = 512
    projector_layers: int = 3  # 3 = the authors' ImageNet projector, 2 = the CIFAR variant
    projector_out_affine: bool = False  # ProPos's re-run: True
    fix_predictor_lr: bool = True  # --fix-pred-lr, on in the authors' README command
    joint_views: bool = False  # ProPos's re-run: True


class SimSiam(Method):
    Config = SimSiamConfig

    def __init__(self, cfg: SimSiamConfig, trunk: nn.Module, feat_dim: int):
        super().__init__()
        self.cfg = cfg
        projector = simsiam_projector(feat_dim, cfg.projector_hidden_dim, cfg.dim,
                                      cfg.projector_layers, out_affine=cfg.projector_out_affine)
        self.encoder = nn.Sequential(trunk, projector)
        self.predictor = mlp_head(cfg.dim, cfg.predictor_hidden_dim, cfg.dim, bn=True)

    def encoders(self) -> dict[str, nn.Module]:
        return {"query": self.encoder[0]}

    def param_groups(self) -> list[dict]:
        if not self.cfg.fix_predictor_lr:
            return super().param_groups()
        return [{"params": list(self.encoder.parameters())},
                {"params": list(self.predictor.parameters()), "fixed_lr": True}]

    def forward(self, views, index, epoch):
        if self.cfg.joint_views:
            z1, z2 = self.encoder(torch.cat(views[:2])).chunk(2)  # N x C each
        else:
            z1, z2 = self.encoder(views[0]), self.encoder(views[1])  # N x C
        p1, p2 = self.predictor(z1), self.predictor(z2)  # N x C
        loss = simsiam_loss(p1, p2, z1, z2)
        return {"loss": loss, "neg_cosine": loss.detach()}
