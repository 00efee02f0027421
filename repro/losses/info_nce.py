"""InfoNCE with a queue of negatives (PCL eq. 1; MoCo, He et al. 2020, eq. 1)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def info_nce_logits(
    q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, temperature: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """MoCo's logits and targets.

    q: N x C L2-normalised queries; k: N x C L2-normalised positive keys (no grad);
    queue: C x K negatives. Returns logits N x (1+K) and targets N (all zero: the
    positive is column 0).
    """
    l_pos = torch.einsum("nc,nc->n", q, k).unsqueeze(-1)  # N x 1
    l_neg = torch.einsum("nc,ck->nk", q, queue)  # N x K
    logits = torch.cat([l_pos, l_neg], dim=1) / temperature  # N x (1+K)
    targets = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)
    return logits, targets


def info_nce_loss(
    q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, temperature: float
) -> torch.Tensor:
    """-log exp(q.k+/tau) / (exp(q.k+/tau) + sum_j exp(q.k_j/tau)), averaged over the batch."""
    logits, targets = info_nce_logits(q, k, queue, temperature)
    return F.cross_entropy(logits, targets)
