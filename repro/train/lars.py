"""LARS (You et al. 2017), as used by SimCLR/BYOL/CARL: layer-wise trust ratio on SGD+momentum.

For each parameter w with gradient g: g <- g + wd * w; if w is adapted,
g <- g * eta * ||w|| / ||g|| (when both norms are > 0); then heavy-ball momentum and
w <- w - lr * v. Biases and BN parameters (every parameter with fewer than 2 dimensions, or a
group with ``lars_exclude=True``) get neither weight decay nor adaptation, as in BYOL/SimCLR.

``larc=True`` is instead the LARC that SwAV wraps around SGD (facebookresearch/swav @ 04b8f43
main_swav.py main(), "build optimizer": apex ``LARC(optimizer, trust_coefficient=0.001,
clip=False)`` over ``model.parameters()`` with SGD weight decay): every parameter, biases and
BN included, gets weight decay and the trust ratio eta * ||w|| / (||g|| + wd * ||w|| + 1e-8)
(apex ``apex/parallel/LARC.py`` step), computed from the gradient before the decay is added.
"""

from __future__ import annotations

import torch
from torch.optim import Optimizer


class LARS(Optimizer):
    def __init__(self, params, lr: float, momentum: float = 0.9, weight_decay: float = 0.0,
                 eta: float = 0.001, exclude_1d: bool = True, larc: bool = False):
        if lr < 0 or momentum < 0 or weight_decay < 0 or eta <= 0:
            raise ValueError(f"LARS: lr={lr}, momentum={momentum}, weight_decay={weight_decay}, "
                             f"eta={eta}; need lr, momentum, weight_decay >= 0 and eta > 0")
        defaults = dict(lr=lr, momentum=momentum, weight_decay=weight_decay, eta=eta,
                        exclude_1d=exclude_1d and not larc, lars_exclude=False, larc=larc)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for w in group["params"]:
                if w.grad is None:
                    continue
                g = w.grad
                excluded = group["lars_exclude"] or (group["exclude_1d"] and w.ndim < 2)
                if group["larc"] and not group["lars_exclude"]:
                    g = _larc_gradient(w, g, group["weight_decay"], group["eta"])
                elif not excluded:
                    g = g.add(w, alpha=group["weight_decay"])
                    w_norm, g_norm = torch.norm(w), torch.norm(g)
                    trust = torch.where((w_norm > 0) & (g_norm > 0),
                                        group["eta"] * w_norm / g_norm, torch.ones_like(w_norm))
                    g = g.mul(trust)
                state = self.state[w]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.clone(g).detach()
                else:
                    state["momentum_buffer"].mul_(group["momentum"]).add_(g)
                w.add_(state["momentum_buffer"], alpha=-group["lr"])
        return loss


def _larc_gradient(w: torch.Tensor, g: torch.Tensor, wd: float, eta: float) -> torch.Tensor:
    """apex LARC (clip=False): (g + wd * w) * eta ||w|| / (||g|| + wd ||w|| + 1e-8); g unchanged
    (no decay either) when ||w|| or ||g|| is 0."""
    w_norm, g_norm = torch.norm(w), torch.norm(g)
    active = (w_norm > 0) & (g_norm > 0)
    trust = eta * w_norm / (g_norm + wd * w_norm + 1e-8)
    return torch.where(active, g.add(w, alpha=wd).mul(trust), g)
