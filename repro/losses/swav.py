"""SwAV's swapped prediction with Sinkhorn-Knopp codes (Caron et al. NeurIPS 2020, eq. 1-3).

Scores s = z C^T of L2-normalised features z (B x C) and prototypes C (K x C). Codes Q solve
the entropic equipartition problem (eq. 3) by Sinkhorn-Knopp on exp(s / eps) (3 iterations,
eps 0.05, as the authors' code): rows (prototypes) get mass 1/K, columns (samples) 1/B, and
Q is rescaled so each sample's code sums to 1. Swapped prediction (eq. 1-2):
    L = -1/2 sum_b [ q_b^(2) . log softmax(s_b^(1) / T) + q_b^(1) . log softmax(s_b^(2) / T) ]
averaged over the batch.
Under DDP the codes are those of one Sinkhorn over the batches of all ranks, as the authors'
``distributed_sinkhorn`` (facebookresearch/swav main_swav.py at 5e073db, last function):
B = local rows x world size, and the total and the row (prototype) sums are all-reduced.
NOTE: the authors exponentiate exp(scores / eps) directly; we subtract the max score first for
stability, the max over all ranks (all-reduce MAX), so the codes are unchanged.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F

from repro.distributed import is_distributed, world_size


@torch.no_grad()
def sinkhorn_knopp(scores: torch.Tensor, eps: float = 0.05, n_iters: int = 3) -> torch.Tensor:
    """Codes B x K (each row sums to 1) for scores B x K (B = this rank's rows)."""
    distributed = is_distributed() and world_size() > 1

    def _all(x, op=dist.ReduceOp.SUM):
        if distributed:
            dist.all_reduce(x, op=op)
        return x

    scores = scores.float()
    # a per-rank max would scale each rank's columns differently and change the codes
    top = _all(scores.max().clone(), dist.ReduceOp.MAX)
    q = torch.exp((scores - top) / eps).t()  # K x B
    k, b_local = q.shape
    b = b_local * world_size()
    q /= _all(q.sum())
    for _ in range(n_iters):
        q /= _all(q.sum(dim=1, keepdim=True))  # rows: each prototype mass 1/K
        q /= k
        q /= q.sum(dim=0, keepdim=True)  # columns: each sample mass 1/B
        q /= b
    return (q * b).t()  # B x K


def swapped_prediction_loss(
    scores_a: torch.Tensor, scores_b: torch.Tensor, codes_a: torch.Tensor,
    codes_b: torch.Tensor, temperature: float,
) -> torch.Tensor:
    """Eq. 1: view a predicts b's code and vice versa (scores B x K, codes B x K, no grad)."""
    log_pa = F.log_softmax(scores_a / temperature, dim=1)
    log_pb = F.log_softmax(scores_b / temperature, dim=1)
    return -0.5 * ((codes_b * log_pa).sum(dim=1) + (codes_a * log_pb).sum(dim=1)).mean()
