"""SwAV (Caron et al. NeurIPS 2020): online codes by Sinkhorn-Knopp, swapped prediction.

Encoder = trunk + projection head Linear-BN-ReLU-Linear (hidden 2048, out 128), features
L2-normalised; K prototypes = a bias-free linear layer whose rows are re-normalised before
every step (authors' code). Codes: Sinkhorn-Knopp (eps 0.05, 3 iterations) on the scores of
the batch, optionally preceded by a queue of past features (``queue_length`` per view, used
from ``epoch_queue_starts``); loss = swapped prediction at temperature 0.1
(``repro.losses.swav``). Prototypes are frozen (no gradient) for ``freeze_prototypes_epochs``.
NOTE: two crops only (no multi-crop); the authors freeze the prototypes for 313 iterations,
we count whole epochs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from repro.losses.swav import sinkhorn_knopp, swapped_prediction_loss
from repro.methods.base import Method
from repro.models.heads import mlp_head


@dataclass
class SwAVConfig:
    dim: int = 128
    hidden_dim: int = 2048
    num_prototypes: int = 3000
    temperature: float = 0.1
    epsilon: float = 0.05
    sinkhorn_iterations: int = 3
    queue_length: int = 0  # per view; 0 = no queue
    epoch_queue_starts: int = 15
    freeze_prototypes_epochs: int = 0


class SwAV(Method):
    Config = SwAVConfig

    def __init__(self, cfg: SwAVConfig, trunk: nn.Module, feat_dim: int):
        super().__init__()
        self.cfg = cfg
        self.encoder = nn.Sequential(trunk, mlp_head(feat_dim, cfg.hidden_dim, cfg.dim, bn=True))
        self.prototypes = nn.Linear(cfg.dim, cfg.num_prototypes, bias=False)  # K x C
        self.register_buffer("queue", torch.zeros(2, cfg.queue_length, cfg.dim))
        self.register_buffer("queue_filled", torch.zeros(1, dtype=torch.long))

    def encoders(self) -> dict[str, nn.Module]:
        return {"query": self.encoder[0]}

    def _codes(self, scores: torch.Tensor, view: int, weight: torch.Tensor, epoch: int):
        """Sinkhorn codes of this batch's scores (B x K), with queued scores prepended."""
        filled = int(self.queue_filled)
        if self.cfg.queue_length > 0 and epoch >= self.cfg.epoch_queue_starts and filled > 0:
            queued = self.queue[view, :filled] @ weight.detach().t()  # L x K
            scores = torch.cat([queued, scores.detach()])
            return sinkhorn_knopp(scores, self.cfg.epsilon, self.cfg.sinkhorn_iterations)[filled:]
        return sinkhorn_knopp(scores.detach(), self.cfg.epsilon, self.cfg.sinkhorn_iterations)

    @torch.no_grad()
    def _enqueue(self, feats: list[torch.Tensor]) -> None:
        length = self.cfg.queue_length
        b = min(feats[0].shape[0], length)
        for v, z in enumerate(feats):  # newest first, as the authors' queue
            self.queue[v, b:] = self.queue[v, :-b].clone()
            self.queue[v, :b] = z[:b].detach()
        self.queue_filled[0] = min(int(self.queue_filled) + b, length)

    def forward(self, views, index, epoch):
        with torch.no_grad():
            self.prototypes.weight.copy_(F.normalize(self.prototypes.weight, dim=1))
        weight = self.prototypes.weight
        if epoch < self.cfg.freeze_prototypes_epochs:
            weight = weight.detach()
        z = [F.normalize(self.encoder(v), dim=1) for v in views[:2]]  # B x C each
        scores = [zi @ weight.t() for zi in z]  # B x K each
        codes = [self._codes(s, v, weight, epoch) for v, s in enumerate(scores)]
        loss = swapped_prediction_loss(scores[0], scores[1], codes[0], codes[1],
                                       self.cfg.temperature)
        if self.cfg.queue_length > 0:
            self._enqueue(z)
        return {"loss": loss, "swapped_prediction": loss.detach()}
