"""The prototype term of ProtoNCE (PCL, Li et al. ICLR 2021, eq. 11).

For each of the M clusterings, query v_i is pulled to its prototype c_s and pushed from r
negative prototypes, each similarity scaled by its prototype's concentration phi (eq. 12):

    -1/M sum_m log [exp(v_i . c_s^m / phi_s^m)
                    / sum_{j in {s} u negatives} exp(v_i . c_j^m / phi_j^m)]

The full ProtoNCE adds the InfoNCE term (eq. 1), which the method adds itself.

Authors' code details we follow: the positive columns are the batch's own prototypes
[c_{s(1)}, ..., c_{s(N)}] and row i's target is column i (so another batch member's
prototype can act as a negative even when it is the same cluster); the r negatives are
sampled uniformly without replacement from the clusters that are no batch member's positive.
NOTE: the authors sample exactly r; when fewer than r clusters remain (CIFAR-scale K), we
take all of them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def sample_negative_prototypes(
    pos_ids: torch.Tensor, num_clusters: int, r: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Ids of up to r clusters that are not in ``pos_ids``, drawn uniformly without replacement."""
    mask = torch.ones(num_clusters, dtype=torch.bool)
    mask[pos_ids.cpu()] = False
    candidates = torch.nonzero(mask, as_tuple=False).squeeze(1)  # K' candidates
    take = min(r, candidates.numel())
    choice = torch.randperm(candidates.numel(), generator=generator)[:take]
    return candidates[choice].to(pos_ids.device)


def proto_nce_logits(
    q: torch.Tensor,
    prototypes: torch.Tensor,
    phi: torch.Tensor,
    pos_ids: torch.Tensor,
    neg_ids: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits for one clustering.

    q: N x C normalised queries; prototypes: K x C normalised centroids; phi: K
    concentrations; pos_ids: N cluster of each query; neg_ids: r sampled negatives.
    Returns logits N x (N + r) and targets arange(N).
    """
    ids = torch.cat([pos_ids, neg_ids])  # (N + r)
    logits = q @ prototypes[ids].t()  # N x (N + r)
    logits = logits / phi[ids].unsqueeze(0)
    targets = torch.arange(q.shape[0], device=q.device)
    return logits, targets


def proto_nce_loss(
    q: torch.Tensor,
    clusterings: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
    index: torch.Tensor,
    r: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Mean over the M clusterings of the prototype cross-entropy.

    clusterings: per granularity (prototypes K x C, phi K, assignments Nd) with Nd the
    training-set size; index: N dataset indices of the batch.
    """
    losses = []
    for prototypes, phi, assignments in clusterings:
        pos_ids = assignments[index]  # N
        neg_ids = sample_negative_prototypes(pos_ids, prototypes.shape[0], r, generator)
        logits, targets = proto_nce_logits(q, prototypes, phi, pos_ids, neg_ids)
        losses.append(F.cross_entropy(logits, targets))
    return torch.stack(losses).mean()
