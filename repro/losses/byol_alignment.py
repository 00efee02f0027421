"""BYOL alignment and ProPos positive sampling alignment (PSA).

BYOL (Grill et al. 2020, eq. 2) / ProPos (Huang et al. 2022, eq. 3): for the online
prediction p = g(f(x)) and the target projection z' = f'(x+), both L2-normalised,
    L = ||p - z'||^2 = 2 - 2 cos(p, z').
ProPos PSA (eq. 9-10): the online projection is perturbed before the predictor,
    v = f(x) + sigma * eps,  eps ~ N(0, I),   L_psa = ||g(v) - f'(x+)||^2.
When sigma = 0, PSA is BYOL's loss. Shapes: p, z' are N x C; the loss is the batch mean.
NOTE: the authors' code logs -2 cos (no constant 2); the gradient is the same. We return
2 - 2 cos so the value is the squared distance of eq. 3/10.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def positive_sampling(z: torch.Tensor, sigma: float) -> torch.Tensor:
    """ProPos eq. 9: v = z + sigma * eps, reparametrised (z: N x C, unnormalised)."""
    if sigma <= 0:
        return z
    return z + sigma * torch.randn_like(z)


def byol_alignment_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of 2 - 2 cos(prediction_i, target_i); target carries no gradient."""
    cos = F.cosine_similarity(prediction, target.detach(), dim=1)  # N
    return (2 - 2 * cos).mean()
