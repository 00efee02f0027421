"""Semi-supervised fine-tuning on a labelled fraction (PCL Table 2; CARL Table 3).

The whole network (backbone + a new linear classifier) is trained on a class-stratified
fraction of the labelled train split and scored on the test split at the last epoch.

- ``finetune`` (PCL, ImageNet 1% / 10%): SGD batch 256, momentum 0.9, wd 5e-4, lr 0.01
  for the backbone and 0.1 (10%) or 1.0 (1%) for the classifier, 20 epochs, lr x0.2 at
  epochs 12 and 16; top-5 reported (top-1 too).
- ``finetune_carl`` (CARL, STL-10 1% / 10% / 100%): 50 epochs, top-1.

Label subsets: the SimCLR split files (the standard ImageNet 1%/10% lists) are not
downloadable here. Pass ``split_file`` (one image file name per line, SimCLR format) to use
them; otherwise a seeded class-stratified subset is drawn (``repro.data`` stratified
sampling) and its dataset indices are returned in ``artifacts["label_indices"]``.
NOTE: generated subsets are not the SimCLR ones (same size and class balance, other images).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn

from repro.eval.linear_probe import _loader, evaluate_topk, train_classifier
from repro.eval.types import ModelData


def _targets(dataset) -> np.ndarray:
    targets = getattr(dataset, "targets", None)
    if targets is None:
        raise TypeError(f"finetune: {type(dataset).__name__} has no `targets` array")
    return np.asarray(targets)


def _file_names(dataset) -> list[str]:
    base, indices = getattr(dataset, "base", None), getattr(dataset, "indices", None)
    paths = getattr(base, "paths", None)
    if paths is None or indices is None:
        raise TypeError(f"finetune: split_file needs a dataset built from image files "
                        f"(repro.data ImageFiles); got {type(dataset).__name__}")
    return [os.path.basename(paths[int(j)]) for j in indices]


def subset_from_split_file(dataset, split_file: str | Path) -> np.ndarray:
    """Sorted positions in ``dataset`` of the images a SimCLR-format split file lists."""
    wanted = [line.strip() for line in Path(split_file).read_text().splitlines() if line.strip()]
    position = {name: i for i, name in enumerate(_file_names(dataset))}
    missing = [name for name in wanted if name not in position]
    if missing:
        raise ValueError(f"{split_file}: {len(missing)} of {len(wanted)} listed images are not "
                         f"in the train split, e.g. {missing[:3]}")
    return np.sort(np.array([position[name] for name in wanted], np.int64))


def label_subset(dataset, fraction: float, seed: int) -> np.ndarray:
    """Sorted positions of a seeded class-stratified ``fraction`` of ``dataset``."""
    from repro.data.indexed import stratified_subset

    if not 0 < fraction <= 1:
        raise ValueError(f"finetune: label_fraction must be in (0, 1], got {fraction}")
    targets = _targets(dataset)
    if fraction == 1:
        return np.arange(len(targets))
    n = max(len(np.unique(targets)), int(round(fraction * len(targets))))
    return stratified_subset(targets, n, seed)


class _Classifier(nn.Module):
    def __init__(self, backbone: nn.Module, feat_dim: int, num_classes: int):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(feat_dim, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(images).flatten(1))  # N x num_classes


def _finetune(backbone, data: ModelData, *, seed, device, label_fraction, split_file, epochs,
              batch_size, lr_backbone, lr_head, momentum, weight_decay, milestones, gamma,
              topk, num_workers, limit_batches) -> dict:
    torch.manual_seed(seed)
    if split_file is not None:
        rows, source = subset_from_split_file(data.train, split_file), str(split_file)
    else:
        rows, source = label_subset(data.train, label_fraction, seed), "generated"
    model = _Classifier(backbone, data.feat_dim, data.num_classes).to(device)
    for p in model.parameters():
        p.requires_grad_(True)
    opt = torch.optim.SGD(
        [{"params": model.backbone.parameters(), "lr": lr_backbone, "base": lr_backbone},
         {"params": model.head.parameters(), "lr": lr_head, "base": lr_head}],
        momentum=momentum, weight_decay=weight_decay,
    )
    train_loader = _loader(torch.utils.data.Subset(data.train, rows.tolist()), batch_size,
                           True, seed, num_workers)
    train_classifier(model, opt, train_loader, epochs=epochs, lr=lr_head,
                     milestones=milestones, gamma=gamma, device=device,
                     limit_batches=limit_batches)
    test_loader = _loader(data.test, batch_size, False, seed, num_workers)
    out = evaluate_topk(model, test_loader, topk, device, limit_batches)
    index = getattr(data.train, "indices", None)
    label_indices = (np.asarray(index)[rows] if index is not None else rows).tolist()
    out["selection"] = {"epoch": {"value": epochs, "policy": "last_epoch"},
                        "lr_head": {"value": lr_head, "policy": "fixed"}}
    out["artifacts"] = {"label_fraction": label_fraction, "label_source": source,
                        "num_labelled": len(rows), "label_indices": label_indices}
    if limit_batches is not None:
        out["artifacts"]["limit_batches"] = limit_batches
    return out


def finetune(
    backbone: nn.Module,
    data: ModelData,
    *,
    seed: int,
    device: str = "cpu",
    label_fraction: float = 0.01,
    split_file: str | None = None,
    epochs: int = 20,
    batch_size: int = 256,
    lr_backbone: float = 0.01,
    lr_head: float | None = None,
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    milestones: Sequence[int] = (12, 16),
    gamma: float = 0.2,
    topk: Sequence[int] = (1, 5),
    num_workers: int = 0,
    limit_batches: int | None = None,
) -> dict:
    """PCL Table 2 fine-tuning; ``lr_head`` defaults to 1.0 for <= 1% labels, else 0.1."""
    if lr_head is None:
        lr_head = 1.0 if label_fraction <= 0.01 else 0.1
    return _finetune(backbone, data, seed=seed, device=device, label_fraction=label_fraction,
                     split_file=split_file, epochs=epochs, batch_size=batch_size,
                     lr_backbone=lr_backbone, lr_head=lr_head, momentum=momentum,
                     weight_decay=weight_decay, milestones=milestones, gamma=gamma,
                     topk=topk, num_workers=num_workers, limit_batches=limit_batches)


def finetune_carl(
    backbone: nn.Module,
    data: ModelData,
    *,
    seed: int,
    device: str = "cpu",
    label_fraction: float = 0.1,
    split_file: str | None = None,
    epochs: int = 50,
    batch_size: int = 256,
    lr_backbone: float = 0.01,
    lr_head: float = 0.1,
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    milestones: Sequence[int] = (30, 40),
    gamma: float = 0.2,
    topk: Sequence[int] = (1,),
    num_workers: int = 0,
    limit_batches: int | None = None,
) -> dict:
    """CARL Table 3 STL-10 fine-tuning (1% / 10% / 100% of the labelled train split).

    NOTE: CARL gives only "50 epochs"; the optimiser is PCL's recipe with its steps moved to
    60% and 80% of the 50 epochs (30, 40).
    """
    return _finetune(backbone, data, seed=seed, device=device, label_fraction=label_fraction,
                     split_file=split_file, epochs=epochs, batch_size=batch_size,
                     lr_backbone=lr_backbone, lr_head=lr_head, momentum=momentum,
                     weight_decay=weight_decay, milestones=milestones, gamma=gamma,
                     topk=topk, num_workers=num_workers, limit_batches=limit_batches)
