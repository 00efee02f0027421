"""Linear classifiers on frozen features.

- ``linear_probe``: on cached features (``Features``), the cheap path used by every table
  whose features fit in memory (CIFAR/STL for CARL Table 2, cross-domain transfer in CARL
  Table 3, small-scale ImageNet probes).
- ``linear_probe_augmented``: the MoCo/PCL ImageNet recipe, where each epoch sees a fresh
  RandomResizedCrop + flip of every training image, so features cannot be cached.
- ``linear_probe_carl``: ``linear_probe`` with CARL's defaults (He et al. [22] protocol on
  the 512-d ResNet-18 pool); the caller runs 3 seeds and reports mean and std.

Every probe reports the last epoch (policy ``last_epoch``): never the best epoch on test.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from repro.eval.types import Features, ModelData


def topk_correct(logits: torch.Tensor, target: torch.Tensor, topk: Sequence[int]) -> list[int]:
    """Number of rows whose target is among the k highest logits, for each k."""
    kmax = min(max(topk), logits.shape[1])
    pred = logits.topk(kmax, dim=1).indices  # N x kmax
    hit = pred == target[:, None]  # N x kmax
    return [int(hit[:, : min(k, kmax)].any(1).sum()) for k in topk]


def _labels(f: Features, name: str) -> np.ndarray:
    if f.multilabel:
        raise ValueError(f"linear_probe: {name} labels are multi-label; use svm_voc07")
    return f.y.astype(np.int64)


def _step_lr(optimizer, epoch: int, lr: float, milestones: Sequence[int], gamma: float):
    """Step schedule; a group with its own ``base`` lr (fine-tuning) is scaled from that."""
    factor = gamma ** sum(epoch >= m for m in milestones)
    for group in optimizer.param_groups:
        group["lr"] = group.get("base", lr) * factor


def train_classifier(model: nn.Module, opt, loader, *, epochs: int, lr: float,
                     milestones: Sequence[int], gamma: float, device: str,
                     limit_batches: int | None = None) -> None:
    """Supervised cross-entropy epochs with a step schedule (probes and fine-tuning)."""
    for epoch in range(epochs):
        _step_lr(opt, epoch, lr, milestones, gamma)
        model.train()
        for b, (images, target, _) in enumerate(loader):
            if limit_batches is not None and b >= limit_batches:
                break
            loss = F.cross_entropy(model(images.to(device)), target.to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()


def _selection(epochs: int, lr: float) -> dict:
    return {"epoch": {"value": epochs, "policy": "last_epoch"},
            "lr": {"value": lr, "policy": "fixed"}}


def _l2_normalize(x: torch.Tensor, normalize: bool) -> torch.Tensor:
    return F.normalize(x, dim=1) if normalize else x


def linear_probe(
    train: Features,
    test: Features,
    *,
    seed: int,
    epochs: int,
    lr: float,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    batch_size: int = 256,
    milestones: Sequence[int] = (),
    gamma: float = 0.1,
    normalize: bool = False,
    topk: Sequence[int] = (1, 5),
    num_classes: int | None = None,
) -> dict:
    """Train ``nn.Linear(D, C)`` with SGD and a step schedule; top-k test accuracy in %.

    Deterministic given ``seed`` (initialisation and shuffling use their own generators).
    """
    y_train, y_test = _labels(train, "train"), _labels(test, "test")
    c = num_classes or int(max(y_train.max(), y_test.max())) + 1
    gen = torch.Generator().manual_seed(seed)
    x_train = _l2_normalize(torch.from_numpy(np.ascontiguousarray(train.x, np.float32)), normalize)
    x_test = _l2_normalize(torch.from_numpy(np.ascontiguousarray(test.x, np.float32)), normalize)
    t_train, t_test = torch.from_numpy(y_train), torch.from_numpy(y_test)

    head = nn.Linear(x_train.shape[1], c)
    with torch.no_grad():  # MoCo's lincls init: N(0, 0.01) weights, zero bias
        head.weight.normal_(0.0, 0.01, generator=gen)
        head.bias.zero_()
    opt = torch.optim.SGD(head.parameters(), lr=lr, momentum=momentum,
                          weight_decay=weight_decay)
    n = len(x_train)
    for epoch in range(epochs):
        _step_lr(opt, epoch, lr, milestones, gamma)
        order = torch.randperm(n, generator=gen)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            loss = F.cross_entropy(head(x_train[idx]), t_train[idx])  # batch x C logits
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    with torch.no_grad():
        correct = [0] * len(topk)
        for start in range(0, len(x_test), 4096):
            logits = head(x_test[start:start + 4096])
            for i, hit in enumerate(topk_correct(logits, t_test[start:start + 4096], topk)):
                correct[i] += hit
    out = {f"top{k}": 100.0 * correct[i] / len(x_test) for i, k in enumerate(topk)}
    out["selection"] = _selection(epochs, lr)
    return out


def linear_probe_carl(train: Features, test: Features, *, seed: int, epochs: int = 100,
                      lr: float = 0.1, **params) -> dict:
    """CARL Table 2 / Table 3 (cross-domain, 50 epochs there) linear evaluation.

    NOTE: CARL cites He et al. [22] without its optimiser values; we use SGD lr 0.1,
    momentum 0.9, wd 0, batch 256, 100 epochs, steps x0.1 at 60 and 80 on the 512-d
    ResNet-18 pool, top-1 (mean and std over 3 seeds by the caller).
    """
    params.setdefault("milestones", (int(epochs * 0.6), int(epochs * 0.8)))
    params.setdefault("topk", (1, 5))
    return linear_probe(train, test, seed=seed, epochs=epochs, lr=lr, **params)


class _FrozenProbe(nn.Module):
    def __init__(self, backbone: nn.Module, feat_dim: int, num_classes: int):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(feat_dim, num_classes)

    def train(self, mode: bool = True):  # the backbone stays in eval mode (frozen BN stats)
        super().train(mode)
        self.backbone.eval()
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            feats = self.backbone(images)  # N x feat_dim
        return self.head(feats.flatten(1))


def _loader(dataset, batch_size: int, shuffle: bool, seed: int, num_workers: int):
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers,
        generator=torch.Generator().manual_seed(seed) if shuffle else None, drop_last=False,
    )


def evaluate_topk(model: nn.Module, loader, topk: Sequence[int], device: str,
                  limit_batches: int | None = None) -> dict:
    model.eval()
    correct, total = [0] * len(topk), 0
    with torch.no_grad():
        for b, (images, target, _) in enumerate(loader):
            if limit_batches is not None and b >= limit_batches:
                break
            logits = model(images.to(device))
            for i, hit in enumerate(topk_correct(logits, target.to(device), topk)):
                correct[i] += hit
            total += len(target)
    return {f"top{k}": 100.0 * correct[i] / max(total, 1) for i, k in enumerate(topk)}


def linear_probe_augmented(
    backbone: nn.Module,
    data: ModelData,
    *,
    seed: int,
    device: str = "cpu",
    epochs: int = 100,
    lr: float = 10.0,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    batch_size: int = 256,
    milestones: Sequence[int] = (60, 80),
    gamma: float = 0.1,
    topk: Sequence[int] = (1, 5),
    num_workers: int = 0,
    limit_batches: int | None = None,
) -> dict:
    """MoCo/PCL ImageNet linear classification on a frozen backbone.

    Augmentation comes from ``data.train``'s transform (RandomResizedCrop 224 + flip) and
    evaluation from ``data.test``'s (Resize 256 + CenterCrop 224). PCL's paper uses lr 10,
    its README lr 5, MoCo lr 30: pass ``lr`` from the table spec. ``limit_batches`` caps the
    batches per epoch and at test time (smoke runs only; recorded in the result).
    """
    torch.manual_seed(seed)
    for p in backbone.parameters():
        p.requires_grad_(False)
    model = _FrozenProbe(backbone, data.feat_dim, data.num_classes).to(device)
    with torch.no_grad():
        model.head.weight.normal_(0.0, 0.01)
        model.head.bias.zero_()
    opt = torch.optim.SGD(model.head.parameters(), lr=lr, momentum=momentum,
                          weight_decay=weight_decay)
    train_loader = _loader(data.train, batch_size, True, seed, num_workers)
    train_classifier(model, opt, train_loader, epochs=epochs, lr=lr, milestones=milestones,
                     gamma=gamma, device=device, limit_batches=limit_batches)
    test_loader = _loader(data.test, batch_size, False, seed, num_workers)
    out = evaluate_topk(model, test_loader, topk, device, limit_batches)
    out["selection"] = _selection(epochs, lr)
    if limit_batches is not None:
        out["artifacts"] = {"limit_batches": limit_batches}
    return out
