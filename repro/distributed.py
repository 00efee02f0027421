"""torch.distributed helpers shared by training, methods and the E-step.

Every function works unchanged in a single process (world size 1), so methods call them
unconditionally.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def init_from_env(backend: str | None = None) -> bool:
    """Initialise the process group from RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT if set.

    NCCL on GPUs, gloo on CPU. Returns whether a group with more than one rank exists.
    """
    if is_distributed():
        return world_size() > 1
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return False
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        # LOCAL_RANK indexes the node's GPUs; where Slurm binds one GPU per task, each task
        # sees a single device, hence the modulo.
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local % max(torch.cuda.device_count(), 1))
    dist.init_process_group(backend=backend, init_method="env://")
    return True


@torch.no_grad()
def concat_all_gather(tensor: torch.Tensor) -> torch.Tensor:
    """All-gather along dim 0 without gradient (equal sizes on every rank)."""
    if not is_distributed() or world_size() == 1:
        return tensor
    out = [torch.empty_like(tensor) for _ in range(world_size())]
    dist.all_gather(out, tensor.contiguous())
    return torch.cat(out, dim=0)


class _GatherWithGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, tensor, reduce_grads):
        ctx.reduce_grads = reduce_grads
        out = [torch.empty_like(tensor) for _ in range(world_size())]
        dist.all_gather(out, tensor.contiguous())
        return tuple(out)

    @staticmethod
    def backward(ctx, *grads):
        if not ctx.reduce_grads:  # this rank's own loss only
            return grads[rank()].contiguous(), None
        stacked = torch.stack(grads)  # W x N x ...: every rank's loss w.r.t. every slice
        dist.all_reduce(stacked)
        return stacked[rank()], None


def gather_with_grad(tensor: torch.Tensor, reduce_grads: bool = True) -> torch.Tensor:
    """All-gather along dim 0; gradients flow back to each rank's own slice.

    ``reduce_grads=True``: the slice receives the sum over ranks of each rank's loss gradient,
    so when every rank computes the same loss of the gathered batch, DDP's averaging gives the
    gradient of that loss in one process (SimCLR-style; NT-Xent, CARL, PAUC).
    ``reduce_grads=False``: the slice receives only this rank's loss gradient, so after DDP's
    averaging it is 1/W of it, as ProPos's ``GatherLayer`` (Hzzone/ProPos
    utils/gather_layer.py L28-32 at 49fef06: backward returns ``grads[rank]``, no all-reduce).
    """
    if not is_distributed() or world_size() == 1:
        return tensor
    return torch.cat(_GatherWithGrad.apply(tensor, reduce_grads), dim=0)


def broadcast_object(obj, src: int = 0):
    """Send a picklable object from ``src`` to every rank (identity in one process)."""
    if not is_distributed() or world_size() == 1:
        return obj
    holder = [obj if rank() == src else None]
    dist.broadcast_object_list(holder, src=src)
    return holder[0]


@torch.no_grad()
def batch_shuffle(x: torch.Tensor, generator: torch.Generator | None = None):
    """Shuffled BN, step 1 (MoCo, He et al. 2020, sec. 3.3).

    Across ranks: gather the batch, permute it with a permutation drawn on rank 0 and give
    each rank its slice. In one process: permute the batch. Returns (x_shuffled, idx_unshuffle).
    """
    if not is_distributed() or world_size() == 1:
        perm = torch.randperm(x.shape[0], device=x.device, generator=generator)
        return x[perm], torch.argsort(perm)
    x_all = concat_all_gather(x)  # (world*N) x ...
    perm = torch.randperm(x_all.shape[0], device=x.device, generator=generator)
    dist.broadcast(perm, src=0)
    idx_unshuffle = torch.argsort(perm)
    mine = perm.view(world_size(), -1)[rank()]
    return x_all[mine], idx_unshuffle


@torch.no_grad()
def batch_unshuffle(x: torch.Tensor, idx_unshuffle: torch.Tensor) -> torch.Tensor:
    """Shuffled BN, step 2: undo ``batch_shuffle`` and return this rank's rows."""
    if not is_distributed() or world_size() == 1:
        return x[idx_unshuffle]
    x_all = concat_all_gather(x)
    mine = idx_unshuffle.view(world_size(), -1)[rank()]
    return x_all[mine]
