"""SimSiam's symmetrised negative cosine (Chen & He, CVPR 2021, eq. 1-2).

D(p, z) = -cos(p, stopgrad(z)); L = D(p1, z2)/2 + D(p2, z1)/2. Shapes: N x C.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def negative_cosine(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of -cos(p_i, z_i), with no gradient through z (eq. 1 + stop-grad)."""
    return -F.cosine_similarity(p, z.detach(), dim=1).mean()


def simsiam_loss(p1, p2, z1, z2) -> torch.Tensor:
    """Eq. 2: the symmetric loss of two views' predictions p and projections z."""
    return 0.5 * negative_cosine(p1, z2) + 0.5 * negative_cosine(p2, z1)
