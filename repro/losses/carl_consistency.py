"""CARL's objective (Silva & Ramirez Rivera, SAC 2022, eq. 2-7).

Energies q_i = z_i C^T (eq. 2, C = K learnable prototypes, a bias-free linear layer),
assignments p_i = softmax(q_i) (eq. 3). Shapes: p_a, p_b are B x K.
- Consistency (eq. 4): L_c = -1/B sum_i log <p_i^a, p_i^+>.
- Uniform prior (eq. 5-6): L_KL = KL(P_hat || U) = log K + sum_c P_hat_c log P_hat_c, with
  P_hat the batch mean of the assignments.
- Total (eq. 7): L_c + lambda_e * L_KL, lambda_e from ``repro.train.schedules.carl_lambda_e``.
NOTE: the dot product is clamped at ``eps`` before the log (as the authors' later CARP code
does), so two disjoint assignments give a large finite loss, not infinity.
NOTE: eq. 5 does not say which views enter P_hat; we average the KL of each view's batch
mean (the two views play symmetric roles everywhere else in the loss).
"""

from __future__ import annotations

import math

import torch

EPS = 1e-7


def consistency_loss(p_a: torch.Tensor, p_b: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Eq. 4: -mean_i log <p_a[i], p_b[i]> (clamped at eps)."""
    agreement = (p_a * p_b).sum(dim=1)  # B
    return -torch.log(agreement.clamp(min=eps)).mean()


def kl_to_uniform(p: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Eq. 5-6: KL(mean_i p_i || uniform over K) for B x K assignments."""
    p_hat = p.mean(dim=0)  # K
    return math.log(p.shape[1]) + (p_hat * torch.log(p_hat.clamp(min=eps))).sum()


def carl_loss(p_a: torch.Tensor, p_b: torch.Tensor, lambda_e: float) -> dict[str, torch.Tensor]:
    """Eq. 7 with its parts: {"loss", "consistency", "kl"}."""
    lc = consistency_loss(p_a, p_b)
    kl = 0.5 * (kl_to_uniform(p_a) + kl_to_uniform(p_b))
    return {"loss": lc + lambda_e * kl, "consistency": lc, "kl": kl}
