"""SwAV (Caron et al. NeurIPS 2020): online codes by Sinkhorn-Knopp, swapped prediction.

Encoder = trunk + projection head Linear-BN-ReLU-Linear (hidden 2048, out 128), features
L2-normalised; K prototypes = a bias-free linear layer whose rows are re-normalised before
every step. Following the authors' code (facebookresearch/swav @ 04b8f43, main_swav.py train
and src/resnet50.py forward):
- multi-crop: ``views`` may hold 2 large crops then smaller ones (``repro.data.transforms``
  recipe ``swav``); consecutive crops of one resolution go through the trunk as one batch,
  and the head takes all crops as one batch (resnet50.py ``forward``: ``idx_crops``, then
  ``forward_head`` on the concatenation), so BN statistics span those crops;
- codes: Sinkhorn-Knopp (eps 0.05, 3 iterations) on the scores of crops 0 and 1
  (``crops_for_assign``), preceded by a queue of their past features (``queue_length`` per
  crop) that is filled from epoch ``epoch_queue_starts`` on and used once full (the
  authors' ``queue[i, -1, :] == 0`` test);
- loss (eq. 4 with multi-crop): each assigned crop's code is predicted from every other
  crop at temperature 0.1, averaged over the V - 1 others, then over the two assigned crops;
- prototypes are not updated during the first ``freeze_prototypes_niters`` iterations (their
  gradient is dropped before the optimiser step, as the authors do after the backward pass).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from repro import distributed as D
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
    queue_length: int = 0  # per assigned crop; 0 = no queue
    epoch_queue_starts: int = 15
    freeze_prototypes_niters: int = 0  # the authors' scripts: 313 (batch 4096), 5005 (batch 256)


class SwAV(Method):
    Config = SwAVConfig

    def __init__(self, cfg: SwAVConfig, trunk: nn.Module, feat_dim: int):
        super().__init__()
        self.cfg = cfg
        self.encoder = nn.Sequential(trunk, mlp_head(feat_dim, cfg.hidden_dim, cfg.dim, bn=True))
        self.prototypes = nn.Linear(cfg.dim, cfg.num_prototypes, bias=False)  # K x C
        # NOTE: queue_length is the total over ranks, as the authors' --queue_length: each
        # rank keeps queue_length // world_size of its own features (main_swav.py)
        self.queue_length = cfg.queue_length // D.world_size()
        self.register_buffer("queue", torch.zeros(2, self.queue_length, cfg.dim))
        self.register_buffer("queue_filled", torch.zeros(1, dtype=torch.long))
        self.register_buffer("steps_done", torch.zeros(1, dtype=torch.long))

    def encoders(self) -> dict[str, nn.Module]:
        return {"query": self.encoder[0]}

    def embed(self, views: list[torch.Tensor]) -> torch.Tensor:
        """L2-normalised projections (V*B) x C of all crops, crops in order."""
        trunk, head = self.encoder
        feats, start = [], 0
        while start < len(views):  # one trunk batch per run of same-resolution crops
            end = start + 1
            while end < len(views) and views[end].shape[-2:] == views[start].shape[-2:]:
                end += 1
            feats.append(trunk(torch.cat(views[start:end])))
            start = end
        return F.normalize(head(torch.cat(feats)), dim=1)

    def _codes(self, scores: torch.Tensor, crop: int, weight: torch.Tensor) -> torch.Tensor:
        """Sinkhorn codes B x K of this batch's scores, the full queue's scores prepended."""
        length = self.queue_length
        if length > 0 and int(self.queue_filled) == length:
            queued = self.queue[crop] @ weight.detach().t()  # L x K
            scores = torch.cat([queued, scores.detach()])
            return sinkhorn_knopp(scores, self.cfg.epsilon, self.cfg.sinkhorn_iterations)[length:]
        return sinkhorn_knopp(scores.detach(), self.cfg.epsilon, self.cfg.sinkhorn_iterations)

    @torch.no_grad()
    def _enqueue(self, feats: list[torch.Tensor]) -> None:
        length = self.queue_length
        b = min(feats[0].shape[0], length)
        for crop, z in enumerate(feats):  # newest first, as the authors' queue
            self.queue[crop, b:] = self.queue[crop, :-b].clone()
            self.queue[crop, :b] = z[:b].detach()
        self.queue_filled[0] = min(int(self.queue_filled) + b, length)

    def forward(self, views, index, epoch):
        with torch.no_grad():
            self.prototypes.weight.copy_(F.normalize(self.prototypes.weight, dim=1))
        weight = self.prototypes.weight
        z = self.embed(views).chunk(len(views))  # V x [B x C]
        scores = [zi @ weight.t() for zi in z]  # V x [B x K]
        codes = [self._codes(scores[crop], crop, weight) for crop in (0, 1)]
        if self.queue_length > 0 and epoch >= self.cfg.epoch_queue_starts:
            self._enqueue(list(z[:2]))
        # crops 0 and 1 predict each other; every further crop predicts both codes
        loss = swapped_prediction_loss(scores[0], scores[1], codes[0], codes[1],
                                       self.cfg.temperature)
        for s in scores[2:]:
            loss = loss + swapped_prediction_loss(s, s, codes[0], codes[1], self.cfg.temperature)
        loss = loss / (len(views) - 1)
        return {"loss": loss, "swapped_prediction": loss.detach()}

    def before_optimizer_step(self) -> None:
        # the authors drop the prototypes' gradient after the backward pass (and DDP's
        # all-reduce) during the first freeze_prototypes_niters iterations, so the optimiser
        # skips them (no weight decay, no momentum); a detached weight in forward would leave
        # DDP waiting for a gradient that never comes
        if int(self.steps_done) < self.cfg.freeze_prototypes_niters:
            self.prototypes.weight.grad = None

    def on_step_end(self, progress: float) -> None:
        self.steps_done += 1
