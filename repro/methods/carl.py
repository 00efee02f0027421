"""CARL: Consistent Assignment for Representation Learning (Silva & Ramirez Rivera, SAC 2022).

Encoder f = ResNet trunk + 2-layer MLP head with BN (512 hidden, 128 out; sec. 3.2); K general
prototypes C are a bias-free linear layer on z = f(v) (eq. 2); p = softmax(z C^T) (eq. 3).
Loss (eq. 7) = consistency (eq. 4) + lambda_e * KL(batch-mean p || uniform) (eq. 5-6), with
lambda_e decayed linearly from b to a over the first E epochs (eq. 8;
``repro.train.schedules.carl_lambda_e``). No momentum encoder, no negatives, no E-step.
NOTE: the paper does not normalise z or C before eq. 2; we follow it (no normalisation).
NOTE: under DDP the batch mean of eq. 6 is taken over the all-gathered batch (with gradient).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from repro.distributed import gather_with_grad
from repro.losses.carl_consistency import consistency_loss, kl_to_uniform
from repro.methods.base import Method
from repro.models.heads import mlp_head
from repro.train.schedules import carl_lambda_e


@dataclass
class CARLConfig:
    dim: int = 128
    hidden_dim: int = 512
    num_prototypes: int = 100  # 100 CIFAR-10, 300 CIFAR-100/STL-10, 3000 ImageNet 64x64
    lambda_a: float = 1.5  # final KL weight a
    lambda_b: float = 4.0  # initial KL weight b
    lambda_decay_epochs: int = 100  # E


class CARL(Method):
    Config = CARLConfig

    def __init__(self, cfg: CARLConfig, trunk: nn.Module, feat_dim: int):
        super().__init__()
        self.cfg = cfg
        self.encoder = nn.Sequential(trunk, mlp_head(feat_dim, cfg.hidden_dim, cfg.dim, bn=True))
        self.prototypes = nn.Linear(cfg.dim, cfg.num_prototypes, bias=False)  # C: K x d

    def encoders(self) -> dict[str, nn.Module]:
        return {"query": self.encoder[0]}

    def assign(self, x):
        return self.prototypes(self.encoder(x)).softmax(dim=1)  # B x K, eq. 2-3

    def forward(self, views, index, epoch):
        p_a, p_b = self.assign(views[0]), self.assign(views[1])  # B x K each
        lam = carl_lambda_e(epoch, self.cfg.lambda_a, self.cfg.lambda_b,
                            self.cfg.lambda_decay_epochs)
        lc = consistency_loss(p_a, p_b)
        kl = 0.5 * (kl_to_uniform(gather_with_grad(p_a)) + kl_to_uniform(gather_with_grad(p_b)))
        return {"loss": lc + lam * kl, "consistency": lc.detach(), "kl": kl.detach(),
                "lambda_e": lam}
