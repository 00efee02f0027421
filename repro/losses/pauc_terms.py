"""PAUC's prototype terms (Mo et al., "Rethinking prototypical contrastive learning through
alignment, uniformity and correlation", eq. 4-7).

For one clustering m, with prototype vectors c (L2-normalised, C-dim):
- alignment (eq. 4): E_{(p,q) ~ positive pairs} ||c_p - c_q||_2^s
- uniformity (eq. 5): E_{(p,q) ~ all prototype pairs} exp(-t ||c_p - c_q||_2^2)
- correlation (eq. 6): E_{(p,q) ~ all prototype pairs} c_p . log(c_q / c_p)
PAUC has no public code; our reading (closest to PCL / ProPos, see repro/methods/pauc.py):
- NOTE: k-means centroids carry no gradient, so the terms are computed on differentiable
  in-batch prototypes (the L1-weighted, L2-normalised mean of the batch embeddings of each
  cluster, as ProPos eq. 6-7). A positive pair (p, q) is the same cluster's prototype from
  the query branch (p, with grad) and the momentum-key branch (q): "the prototypes that sample
  i belongs to" in its two views. Pairs for eq. 5-6 are the distinct clusters present in the
  batch, each unordered pair once (the diagonal is excluded).
- NOTE: eq. 6 takes the log of vector entries, which needs positive entries; we read each
  prototype as a distribution over dimensions, P_p = softmax(c_p / tau_c). Then eq. 6 is
  -KL(P_p || P_q), averaged over ordered pairs p != q.
- NOTE: eq. 5 is used as printed (no log, unlike Wang & Isola's uniformity loss).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _pairs(k: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.triu_indices(k, k, offset=1, device=device).unbind(0)


def prototype_alignment(c_q: torch.Tensor, c_k: torch.Tensor, s: float) -> torch.Tensor:
    """Eq. 4 over positive pairs: rows of c_q (P x C) against the same rows of c_k (P x C)."""
    return (c_q - c_k).norm(dim=1).pow(s).mean()


def prototype_uniformity(c: torch.Tensor, t: float) -> torch.Tensor:
    """Eq. 5 over the P(P-1)/2 distinct pairs of prototypes c (P x C); 0 when P < 2."""
    if c.shape[0] < 2:
        return c.sum() * 0.0
    i, j = _pairs(c.shape[0], c.device)
    sq = (c[i] - c[j]).pow(2).sum(dim=1)
    return torch.exp(-t * sq).mean()


def prototype_correlation(c: torch.Tensor, temperature: float) -> torch.Tensor:
    """Eq. 6 with P_p = softmax(c_p / temperature): mean over p != q of sum P_p log(P_q / P_p)."""
    n = c.shape[0]
    if n < 2:
        return c.sum() * 0.0
    logp = F.log_softmax(c / temperature, dim=1)  # P x C
    p = logp.exp()
    # sum_d P_p[d] (log P_q[d] - log P_p[d]) for every ordered pair: P x P
    cross = p @ logp.t() - (p * logp).sum(dim=1, keepdim=True)
    off = ~torch.eye(n, dtype=torch.bool, device=c.device)
    return cross[off].mean()
