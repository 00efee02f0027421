"""Learning-rate schedules as multiplicative factors of the base learning rate."""

from __future__ import annotations

import math


def lr_factor(optim: dict, epoch: int, step: int, steps_per_epoch: int) -> float:
    """Factor for ``epoch`` (0-based) and ``step`` within it.

    ``schedule``: "step" (x ``gamma`` at each of ``milestones``; PCL v1/MoCo v1),
    "cosine" (per epoch as MoCo v2/PCL v2 code does, or per step with ``per_step``),
    "constant". ``warmup_epochs`` adds a linear warm-up (per step): from 0, iteration i of W
    at (i + 1) / W, as ProPos/BYOL do; or, with ``warmup_start_lr`` s (null: from 0), SwAV's
    ``np.linspace(start_warmup, base_lr, W)`` (facebookresearch/swav main_swav.py, main():
    ``warmup_lr_schedule``): iteration i at s + (lr - s) * i / (W - 1).
    """
    total = optim["epochs"]
    per_step = optim.get("per_step", False)
    t = epoch + (step / steps_per_epoch if per_step else 0.0)
    warmup = optim.get("warmup_epochs", 0)
    if warmup and epoch + step / steps_per_epoch < warmup:
        iteration, iterations = epoch * steps_per_epoch + step, warmup * steps_per_epoch
        if optim.get("warmup_start_lr") is None:
            return (iteration + 1) / iterations
        start = optim["warmup_start_lr"] / optim["lr"]
        return start + (1.0 - start) * iteration / max(iterations - 1, 1)
    name = optim.get("schedule", "constant")
    if name == "step":
        passed = sum(1 for m in optim.get("milestones", []) if epoch >= m)
        return optim.get("gamma", 0.1) ** passed
    if name == "cosine":
        span = max(total - warmup, 1e-8)
        progress = min(max(t - warmup, 0.0) / span, 1.0)
        floor = optim.get("final_lr_fraction", 0.0)
        return floor + (1 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
    if name == "constant":
        return 1.0
    raise ValueError(f"optim.schedule must be one of step, cosine, constant; got {name!r}")


def carl_lambda_e(epoch: int, a: float, b: float, decay_epochs: int) -> float:
    """CARL eq. 8: KL weight decayed linearly from b (epoch 0) to a (epoch E), then held at a."""
    if decay_epochs <= 0 or epoch >= decay_epochs:
        return a
    return b - (b - a) * epoch / decay_epochs


def cosine_momentum(base: float, progress: float, final: float = 1.0) -> float:
    """BYOL's EMA schedule: m = final - (final - base) * (cos(pi * progress) + 1) / 2."""
    return final - (final - base) * (math.cos(math.pi * progress) + 1) / 2
