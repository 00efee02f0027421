"""The interface every self-supervised method implements.

A method owns its networks (built around a backbone trunk from ``repro.models``) and its
loss. ``forward(views, index, epoch)`` is one training step's loss, so the training loop can
wrap the whole method in DistributedDataParallel. The loop calls, per epoch:
``on_epoch_start(ctx)`` (E-steps), then per step ``forward`` -> backward -> optimiser step ->
``on_step_end(progress)`` (momentum updates).
"""

from __future__ import annotations

import abc
import dataclasses
from dataclasses import dataclass
from typing import Callable, ClassVar

import torch
from torch import nn

from repro.distributed import batch_shuffle, batch_unshuffle, world_size


@dataclass
class EpochContext:
    """What an epoch hook may use.

    ``extract(module)`` runs ``module`` over the whole training set under the evaluation
    transform (model in eval mode, no grad) and returns features N x D ordered by sample
    index, gathered across ranks with padded duplicates dropped.
    """

    epoch: int
    total_epochs: int
    num_samples: int
    extract: Callable[[nn.Module], torch.Tensor]
    seed: int = 0


class ConfigError(ValueError):
    """A method parameter that is unknown or has a wrong value."""


class Method(nn.Module, abc.ABC):
    Config: ClassVar[type]
    # Bump when a change alters results: it is part of every job's content key.
    version: ClassVar[int] = 1

    @classmethod
    def make_config(cls, params: dict):
        """Build ``Config`` from a dict; unknown keys raise with the allowed ones listed."""
        fields = {f.name for f in dataclasses.fields(cls.Config)}
        unknown = sorted(set(params) - fields)
        if unknown:
            raise ConfigError(
                f"unknown parameter(s) {', '.join(unknown)} for method {cls.__name__}; "
                f"allowed: {', '.join(sorted(fields))}"
            )
        return cls.Config(**params)

    def param_groups(self) -> list[dict]:
        """Optimiser parameter groups; a group may carry ``lr_scale`` (e.g. predictor x10)."""
        return [{"params": [p for p in self.parameters() if p.requires_grad]}]

    def on_epoch_start(self, ctx: EpochContext) -> dict[str, float]:
        return {}

    def on_step_end(self, progress: float) -> None:
        """Called after each optimiser step; ``progress`` in [0, 1] over the whole run."""

    def before_optimizer_step(self) -> None:
        """Called after the backward pass (gradients already averaged over ranks by DDP) and
        before the optimiser step, e.g. to drop a parameter's gradient for this step."""

    @abc.abstractmethod
    def encoders(self) -> dict[str, nn.Module]:
        """Backbone trunks evaluations may use, by name; "query" is the default."""

    @abc.abstractmethod
    def forward(self, views: list[torch.Tensor], index: torch.Tensor, epoch: int):
        """Return a dict with the scalar ``loss`` and any other scalars worth logging."""


@torch.no_grad()
def forward_shuffled_bn(encoder: nn.Module, x: torch.Tensor, bn_splits: int) -> torch.Tensor:
    """Key-encoder forward with shuffled BN (MoCo sec. 3.3).

    Across ranks the batch is shuffled between GPUs, so each BN sees a different sub-batch
    than the query encoder did. NOTE: in one process that has no effect, so, as the MoCo
    authors' CIFAR demo does with SplitBatchNorm (facebookresearch/moco
    colab/moco_cifar10_demo.ipynb, "Define base encoder" cell), the shuffled batch is
    normalised in ``bn_splits`` chunks, each with its own statistics, and every BN's running
    statistics take ONE update per step, with the chunks' mean / unbiased variance averaged
    (the demo's ``running_mean_split.view(num_splits, C).mean(dim=0)``), at the BN's momentum.
    """
    x_shuffled, idx_unshuffle = batch_shuffle(x)
    if world_size() == 1 and bn_splits > 1 and x.shape[0] >= 2 * bn_splits:
        out = _forward_split_bn(encoder, x_shuffled, bn_splits)
    else:
        out = encoder(x_shuffled)
    return batch_unshuffle(out, idx_unshuffle)


def _forward_split_bn(encoder: nn.Module, x: torch.Tensor, splits: int) -> torch.Tensor:
    """``encoder`` on ``splits`` chunks of ``x``; BN running statistics updated once.

    Each chunk starts from the same running statistics, so after chunk s a BN holds
    (1 - m) r + m stat_s; their average is (1 - m) r + m mean_s(stat_s), the demo's update.
    """
    bns = [m for m in encoder.modules()
           if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training
           and m.track_running_stats]
    start = [(bn.running_mean.clone(), bn.running_var.clone(), bn.num_batches_tracked.clone())
             for bn in bns]
    sums = [(torch.zeros_like(mean), torch.zeros_like(var)) for mean, var, _ in start]
    outs = []
    for chunk in x.chunk(splits):
        for bn, (mean, var, count) in zip(bns, start):
            bn.running_mean.copy_(mean)
            bn.running_var.copy_(var)
            bn.num_batches_tracked.copy_(count)
        outs.append(encoder(chunk))
        for bn, (mean_sum, var_sum) in zip(bns, sums):
            mean_sum.add_(bn.running_mean)
            var_sum.add_(bn.running_var)
    n = len(outs)
    for bn, (mean_sum, var_sum), (_, _, count) in zip(bns, sums, start):
        bn.running_mean.copy_(mean_sum / n)
        bn.running_var.copy_(var_sum / n)
        bn.num_batches_tracked.copy_(count + 1)
    return torch.cat(outs, dim=0)


@torch.no_grad()
def momentum_update(online: nn.Module, target: nn.Module, m: float) -> None:
    """target <- m * target + (1 - m) * online on parameters; BN statistics stay the target's."""
    for p_o, p_t in zip(online.parameters(), target.parameters()):
        p_t.mul_(m).add_(p_o.detach(), alpha=1.0 - m)
