"""MoCo v1 / v2 (He et al. 2020; Chen et al. 2020b): the instance-discrimination base of PCL.

Query encoder f_q = head(trunk); key encoder f_k is its momentum copy; negatives come from a
queue of past keys; keys use shuffled BN. v1 = linear head, tau 0.07; v2 = MLP head, tau 0.2
(with the stronger ``moco_v2`` views chosen in the recipe).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from repro.distributed import concat_all_gather
from repro.losses.info_nce import info_nce_logits
from repro.methods.base import Method, forward_shuffled_bn, momentum_update
from repro.models.heads import linear_head, mlp_head


@dataclass
class MoCoConfig:
    dim: int = 128
    queue_size: int = 65536
    momentum: float = 0.999
    temperature: float = 0.07
    head: str = "linear"  # "linear" (v1) or "mlp" (v2)
    bn_splits: int = 8  # single-process stand-in for shuffled BN (see forward_shuffled_bn)


def build_projector(trunk: nn.Module, feat_dim: int, head: str, dim: int) -> nn.Module:
    if head == "linear":
        return nn.Sequential(trunk, linear_head(feat_dim, dim))
    if head == "mlp":
        return nn.Sequential(trunk, mlp_head(feat_dim, feat_dim, dim, bn=False))
    raise ValueError(f"head must be 'linear' or 'mlp', got {head!r}")


class MoCo(Method):
    Config = MoCoConfig

    def __init__(self, cfg: MoCoConfig, trunk: nn.Module, feat_dim: int):
        super().__init__()
        self.cfg = cfg
        self.encoder_q = build_projector(trunk, feat_dim, cfg.head, cfg.dim)
        self.encoder_k = copy.deepcopy(self.encoder_q)
        for p in self.encoder_k.parameters():
            p.requires_grad = False
        queue = F.normalize(torch.randn(cfg.dim, cfg.queue_size), dim=0)  # C x K
        self.register_buffer("queue", queue)
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))

    def encoders(self) -> dict[str, nn.Module]:
        return {"query": self.encoder_q[0], "momentum": self.encoder_k[0]}

    @torch.no_grad()
    def _dequeue_and_enqueue(self, keys: torch.Tensor) -> None:
        keys = concat_all_gather(keys)  # (world*N) x C
        n = keys.shape[0]
        ptr = int(self.queue_ptr)
        # NOTE: MoCo asserts queue_size % batch == 0; we wrap around instead so any
        # smoke-scale batch size works.
        idx = (torch.arange(n, device=keys.device) + ptr) % self.cfg.queue_size
        self.queue[:, idx] = keys.t().to(self.queue.dtype)  # autocast may give bf16/fp16 keys
        self.queue_ptr[0] = (ptr + n) % self.cfg.queue_size

    def embed_query(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.encoder_q(x), dim=1)  # N x C

    @torch.no_grad()
    def embed_key(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(forward_shuffled_bn(self.encoder_k, x, self.cfg.bn_splits), dim=1)

    def instance_step(self, views) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """InfoNCE on (query, key) = (views[0], views[1]); enqueues the keys.

        Returns query and key embeddings (N x C each, for prototype terms) and the loss dict.
        """
        q = self.embed_query(views[0])  # N x C
        k = self.embed_key(views[1])  # N x C
        logits, targets = info_nce_logits(q, k, self.queue.clone().detach(), self.cfg.temperature)
        loss = F.cross_entropy(logits, targets)
        self._dequeue_and_enqueue(k)
        acc = (logits.argmax(dim=1) == targets).float().mean()
        return q, k, {"loss": loss, "info_nce": loss.detach(), "inst_acc": acc}

    def forward(self, views, index, epoch):
        return self.instance_step(views)[2]

    def on_step_end(self, progress: float) -> None:
        momentum_update(self.encoder_q, self.encoder_k, self.cfg.momentum)
