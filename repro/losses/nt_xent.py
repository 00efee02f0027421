"""NT-Xent, SimCLR's loss (Chen et al. ICML 2020, eq. 1).

For 2N L2-normalised projections (views a and b of N images), pair i's loss is
    l(i, j) = -log exp(sim(z_i, z_j)/T) / sum_{k != i} exp(sim(z_i, z_k)/T)
and L averages l over all 2N ordered positive pairs. Under DDP the negatives are gathered
from every rank (with gradient), as SimCLR's TPU/GPU code does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from repro.distributed import gather_with_grad, rank


def nt_xent_loss(z_a: torch.Tensor, z_b: torch.Tensor, temperature: float) -> torch.Tensor:
    """z_a, z_b: N x C projections (normalised here) of the two views of this rank's batch."""
    z_a, z_b = F.normalize(z_a, dim=1), F.normalize(z_b, dim=1)
    n = z_a.shape[0]
    all_a, all_b = gather_with_grad(z_a), gather_with_grad(z_b)  # (W*N) x C
    big = all_a.shape[0]
    offset = rank() * n if big != n else 0
    keys = torch.cat([all_a, all_b], dim=0)  # 2WN x C
    queries = torch.cat([z_a, z_b], dim=0)  # 2N x C
    logits = queries @ keys.t() / temperature  # 2N x 2WN
    rows = torch.arange(n, device=z_a.device)
    own = torch.cat([rows + offset, rows + big + offset])  # column of each query itself
    positive = torch.cat([rows + big + offset, rows + offset])  # column of its other view
    self_mask = torch.zeros_like(logits, dtype=torch.bool)
    self_mask[torch.arange(2 * n, device=z_a.device), own] = True
    logits = logits.masked_fill(self_mask, float("-inf"))  # k != i
    return F.cross_entropy(logits, positive)
