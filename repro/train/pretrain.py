"""The pretraining loop: any registered method, checkpoint every epoch, resume from the last.

Determinism: every epoch reseeds torch/numpy/random from (seed, epoch), so a run resumed
from an epoch checkpoint replays exactly what the uninterrupted run would have done.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import time
import uuid
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

from repro import distributed as D
from repro.data import build_dataset
from repro.data.transforms import build_views, eval_transform
from repro.methods import METHODS
from repro.methods.base import EpochContext
from repro.models import build_backbone
from repro.train.checkpoint import UnreadableCheckpoint, load, move_aside, save_atomic
from repro.train.embedding import head_states
from repro.train.schedules import lr_factor

CHECKPOINT = "checkpoint.pt"
ENCODERS = "encoders.pt"
RUN_INFO = "run.json"  # run id + fingerprint of the encoders, readable without torch


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or infinite; the job fails and writes no record."""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_method(recipe: dict):
    cls = METHODS.resolve(recipe["method"])
    cfg = cls.make_config(recipe.get("params", {}))
    trunk, feat_dim = build_backbone(**recipe["backbone"])
    return cls(cfg, trunk, feat_dim)


def build_optimizer(method: nn.Module, optim: dict) -> torch.optim.Optimizer:
    """SGD, LARS (SimCLR/BYOL: biases and BN excluded) or LARC (SwAV: every parameter).

    A method's group may carry ``lr_scale`` (its lr = base lr x scale) and ``fixed_lr``
    (its lr stays there, outside the schedule: SimSiam's ``--fix-pred-lr``).
    """
    groups = []
    for group in method.param_groups():
        scale = group.pop("lr_scale", 1.0)
        fixed = group.pop("fixed_lr", False)
        groups.append({**group, "lr": optim["lr"] * scale, "lr_scale": scale, "fixed_lr": fixed})
    name = optim.get("name", "sgd")
    if name == "sgd":
        return torch.optim.SGD(
            groups, lr=optim["lr"], momentum=optim.get("momentum", 0.9),
            weight_decay=optim.get("weight_decay", 0.0),
        )
    if name == "lars" or name == "larc":
        from repro.train.lars import LARS

        return LARS(
            groups, lr=optim["lr"], momentum=optim.get("momentum", 0.9),
            weight_decay=optim.get("weight_decay", 0.0), larc=name != "lars",
        )
    raise ValueError(f"optim.name must be 'sgd', 'lars' or 'larc', got {name!r}")


def set_learning_rates(optimizer: torch.optim.Optimizer, base_lr: float, factor: float) -> None:
    """Each group's lr = base_lr x its ``lr_scale`` x the schedule's ``factor`` (x 1 when the
    group has ``fixed_lr``)."""
    for group in optimizer.param_groups:
        scheduled = 1.0 if group.get("fixed_lr", False) else factor
        group["lr"] = base_lr * group.get("lr_scale", 1.0) * scheduled


def _autocast(precision: str, device: torch.device):
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if precision == "fp16":
        return torch.autocast(device.type, dtype=torch.float16)
    raise ValueError(f"runtime.precision must be fp32, bf16 or fp16; got {precision!r}")


def make_extractor(recipe: dict, device: torch.device, batch_size: int) -> Callable:
    """ctx.extract for E-steps: features of every training sample under the eval transform."""
    data = recipe["data"]
    dataset = build_dataset(
        data["dataset"], data.get("split", "train"),
        eval_transform(recipe["views"]["image_size"], data["dataset"]),
        subset=data.get("subset"),
    )

    @torch.no_grad()
    def extract(module: nn.Module) -> torch.Tensor:
        was_training = module.training
        module.eval()
        sampler = DistributedSampler(dataset, shuffle=False) if D.world_size() > 1 else None
        loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, shuffle=False,
                            num_workers=recipe.get("runtime", {}).get("num_workers", 0))
        feats, idxs = [], []
        for images, _, index in loader:
            feats.append(module(images.to(device)).float())
            idxs.append(index.to(device))
        feat, idx = torch.cat(feats), torch.cat(idxs)
        # Padded duplicates (DistributedSampler) carry identical features: writing them by
        # index counts each sample once (the authors' all_reduce of sums counts them twice).
        feat, idx = D.concat_all_gather(feat), D.concat_all_gather(idx)
        out = torch.zeros(len(dataset), feat.shape[1], device=device)
        out[idx] = feat
        module.train(was_training)
        return out

    extract.num_samples = len(dataset)
    return extract


def _resume_state(ckpt_path: Path, device, tag: dict, log: Callable) -> dict | None:
    """The checkpoint to resume from, or None. A checkpoint that cannot be read, or that was
    written by other code or data (``tag["digest"]`` differs), is moved aside and the run
    starts from scratch: resuming it would mix two runs, and failing would fail forever."""
    if not ckpt_path.exists():
        return None
    try:
        state = load(ckpt_path, map_location=device)
    except UnreadableCheckpoint as err:
        moved = move_aside(ckpt_path, "unreadable")
        log(f"WARNING: {err}; moved to {moved}; training starts from scratch")
        return None
    if tag.get("digest") is not None and state.get("tag", {}).get("digest") != tag["digest"]:
        moved = move_aside(ckpt_path, "stale")
        log(f"WARNING: {ckpt_path} was written by other code or data than this run's; moved "
            f"to {moved}; training starts from scratch")
        return None
    return state


def pretrain(recipe: dict, run_dir: Path, *, seed: int, log: Callable = print,
             stop_after_epoch: int | None = None, tag: dict | None = None) -> dict:
    """Train ``recipe`` into ``run_dir``; resume from ``run_dir/checkpoint.pt`` if present.

    Returns a summary (per-epoch mean of every logged scalar, time and throughput summed over
    the attempts that resumed the run, the number of attempts, run id).
    ``stop_after_epoch`` ends the call early after that epoch's checkpoint (tests, requeue).
    ``tag``: ``{"run_id", "digest"}``: the run's identity, kept in the checkpoint (a resumed
    run keeps its first run id) and in the encoders; a checkpoint with another digest is not
    resumed.
    """
    run_dir = Path(run_dir)
    tag = dict(tag or {})
    tag.setdefault("run_id", uuid.uuid4().hex[:16])
    runtime = recipe.get("runtime", {})
    if runtime.get("threads"):
        torch.set_num_threads(int(runtime["threads"]))
    D.init_from_env()
    default_device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(runtime.get("device") or default_device)
    optim = recipe["optim"]
    world = D.world_size()
    if optim["batch_size"] % world:
        raise ValueError(f"optim.batch_size {optim['batch_size']} is not divisible by "
                         f"{world} ranks")

    seed_everything(seed)
    method = build_method(recipe).to(device)
    if runtime.get("channels_last"):
        method = method.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(method, optim)
    precision = runtime.get("precision", "fp32")
    # fp16 needs loss scaling against gradient underflow; bf16 and fp32 do not.
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    history: list[dict] = []
    start_epoch = 0
    # Time and images of the epochs already trained, summed over attempts (requeues): a
    # resumed run adds its own. NOTE: the unfinished epoch of an interrupted attempt is redone
    # and counted once, so ``train_seconds`` is the time the kept work took.
    spent = {"train_seconds": 0.0, "images_seen": 0, "attempts": 1}
    ckpt_path = run_dir / CHECKPOINT
    state = _resume_state(ckpt_path, device, tag, log)
    if state is not None:
        method.load_state_dict(state["method"])
        optimizer.load_state_dict(state["optimizer"])
        if "scaler" in state:
            scaler.load_state_dict(state["scaler"])
        start_epoch, history = state["epoch"], state["history"]
        spent = dict(state.get("spent", spent))
        spent["attempts"] += 1
        tag["run_id"] = state.get("tag", {}).get("run_id", tag["run_id"])
        log(f"resumed from {ckpt_path} at epoch {start_epoch}")
    model = method
    if world > 1:
        ids = [device.index] if device.type == "cuda" else None
        model = nn.parallel.DistributedDataParallel(method, device_ids=ids)

    views = build_views(recipe["views"]["name"], recipe["views"]["image_size"],
                        **recipe["views"].get("options", {}))
    data = recipe["data"]
    dataset = build_dataset(data["dataset"], data.get("split", "train"), views,
                            subset=data.get("subset"))
    local_bs = optim["batch_size"] // world
    if len(dataset) < optim["batch_size"]:
        raise ValueError(f"optim.batch_size {optim['batch_size']} exceeds the "
                         f"{len(dataset)} training samples")
    extract = make_extractor(recipe, device, batch_size=max(local_bs, 256))
    epochs = optim["epochs"]
    monitor = None
    if recipe.get("monitor", {}).get("knn") and D.rank() == 0:
        from repro.train.monitor import KnnMonitor

        monitor = KnnMonitor(recipe["monitor"]["knn"], recipe["views"]["image_size"], device)
    t_start, images_seen = time.time(), 0

    for epoch in range(start_epoch, epochs):
        seed_everything(seed * 100003 + epoch)
        ctx = EpochContext(epoch=epoch, total_epochs=epochs, num_samples=extract.num_samples,
                           extract=extract, seed=seed)
        epoch_log = {k: float(v) for k, v in method.on_epoch_start(ctx).items()}
        if world > 1:
            sampler = DistributedSampler(dataset, shuffle=True, seed=seed, drop_last=True)
            sampler.set_epoch(epoch)
        else:
            sampler = RandomSampler(dataset)
        weights = getattr(method, "sample_weights", None)  # e.g. ProPos data_resample
        if weights is not None:  # with replacement; each rank takes every world-th draw
            drawn = torch.multinomial(weights.double(), len(dataset), replacement=True,
                                      generator=torch.Generator().manual_seed(seed + epoch))
            sampler = drawn[D.rank()::world].tolist()
        loader = DataLoader(dataset, batch_size=local_bs, sampler=sampler, drop_last=True,
                            num_workers=runtime.get("num_workers", 0))
        steps = len(loader)
        sums: dict[str, float] = {}
        model.train()
        for step, (images, _, index) in enumerate(loader):
            set_learning_rates(optimizer, optim["lr"], lr_factor(optim, epoch, step, steps))
            images = [v.to(device, non_blocking=True) for v in images]
            if runtime.get("channels_last"):
                images = [v.contiguous(memory_format=torch.channels_last) for v in images]
            with _autocast(precision, device):
                out = model(images, index, epoch)
            loss = out["loss"]
            if not torch.isfinite(loss):
                raise NonFiniteLoss(
                    f"{recipe['method']}: loss is {loss.item()} at epoch {epoch} step {step}; "
                    "no checkpoint or record was written for this epoch"
                )
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            method.before_optimizer_step()
            scaler.step(optimizer)
            scaler.update()
            method.on_step_end((epoch * steps + step + 1) / (epochs * steps))
            for k, v in out.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach() if torch.is_tensor(v) else v)
            images_seen += images[0].shape[0] * world
        epoch_log.update({k: v / max(steps, 1) for k, v in sums.items()})
        epoch_log["epoch"] = epoch
        epoch_log["lr"] = optimizer.param_groups[0]["lr"]
        if monitor is not None and monitor.due(epoch, epochs):
            epoch_log["knn_top1"] = monitor(method)
        history.append(epoch_log)
        log(f"epoch {epoch + 1}/{epochs} " + " ".join(
            f"{k}={v:.4g}" for k, v in epoch_log.items() if k != "epoch"))
        if D.rank() == 0:
            save_atomic({"method": method.state_dict(), "optimizer": optimizer.state_dict(),
                         "scaler": scaler.state_dict(), "epoch": epoch + 1,
                         "history": history, "tag": tag,
                         "spent": {**spent, "train_seconds": spent["train_seconds"]
                                   + time.time() - t_start,
                                   "images_seen": spent["images_seen"] + images_seen}},
                        ckpt_path)
        if stop_after_epoch is not None and epoch + 1 >= stop_after_epoch and epoch + 1 < epochs:
            return {"stopped_at_epoch": epoch + 1, "history": history}

    elapsed = spent["train_seconds"] + time.time() - t_start
    images_seen += spent["images_seen"]
    if D.rank() == 0:
        save_atomic({
            "backbone": dict(recipe["backbone"]),
            "encoders": {name: m.state_dict() for name, m in method.encoders().items()},
            "heads": head_states(method),  # for the ``embedding`` feature layer
            "tag": tag,
        }, run_dir / ENCODERS)
        write_run_info(run_dir, tag)
    final = history[-1] if history else {}
    return {
        "epochs": epochs,
        "final_loss": final.get("loss", math.nan),
        "history": history,
        "train_seconds": elapsed,
        "images_per_second": images_seen / elapsed if elapsed > 0 else None,
        "world_size": world,
        "attempts": spent["attempts"],
        "run_id": tag["run_id"],
    }


def write_run_info(run_dir: Path, tag: dict) -> None:
    """``run.json`` next to the encoders: which run made them (read by the launcher)."""
    path = Path(run_dir) / RUN_INFO
    tmp = path.with_name(f".{RUN_INFO}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(tag, sort_keys=True))
    os.replace(tmp, path)


def read_run_info(run_dir: Path) -> dict | None:
    try:
        return json.loads((Path(run_dir) / RUN_INFO).read_text())
    except (OSError, ValueError):
        return None


def load_encoder(run_dir: Path, which: str = "query") -> tuple[nn.Module, int]:
    """A trained backbone trunk (eval mode) and its feature dimension, from ``encoders.pt``."""
    state = load(Path(run_dir) / ENCODERS)
    if which not in state["encoders"]:
        raise KeyError(f"encoder {which!r} not in {run_dir / ENCODERS}; "
                       f"allowed: {', '.join(state['encoders'])}")
    trunk, feat_dim = build_backbone(**state["backbone"])
    trunk.load_state_dict(state["encoders"][which])
    return trunk.eval(), feat_dim
