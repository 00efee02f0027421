"""Faster R-CNN / Mask R-CNN from torchvision around our backbone (runs anywhere, CPU too).

Two backbone layouts:
- ``arch="fpn"``: a ResNet with ``conv1, bn1, layer1..layer4`` (found inside ``backbone``)
  becomes a ResNet-FPN body (PCL Table 6: R50-FPN Faster R-CNN, frozen conv body, frozen BN).
- ``arch="c4"``: any backbone through ``backbone.feature_maps(x)`` (its last stage), one
  feature level, ``feat_dim`` channels. NOTE: torchvision has no Res5-ROI-head C4 model;
  this single-level variant puts a 2-FC box head on the last stage instead.
``freeze=True`` freezes every backbone parameter and replaces its BatchNorms by
``FrozenBatchNorm2d`` (running statistics fixed); the FPN, RPN and heads always train.

NOTE: PCL trained with MMDetection; this is torchvision's Faster R-CNN with PCL's optimiser
(SGD batch 8, lr 0.05, wd 1e-4, 15 epochs, x0.1 at 12, MMDetection's linear warm-up of 500
iterations from lr/1000), single-scale resize (``detection``'s defaults: min side 600, max
1000, MMDetection's VOC scale (1000, 600)) and horizontal flip. Only VOC07 splits are read (no
VOC2012 reader yet), so the VOC07+12 column needs the detectron2 backend. Mean of 3 runs = 3
seeds by the caller.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn
from PIL import Image
from torchvision.models.detection import FasterRCNN, MaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops.misc import FrozenBatchNorm2d
from torchvision.transforms.functional import pil_to_tensor

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def freeze_batchnorm(module: nn.Module) -> nn.Module:
    """A copy-free swap of every BatchNorm2d for a FrozenBatchNorm2d with the same stats."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps)
            for key in ("weight", "bias", "running_mean", "running_var"):
                getattr(frozen, key).copy_(getattr(child, key).detach())
            setattr(module, name, frozen)
        else:
            freeze_batchnorm(child)
    return module


def find_resnet(backbone: nn.Module) -> nn.Module:
    for m in backbone.modules():
        if all(hasattr(m, a) for a in ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4")):
            return m
    raise ValueError("detection arch='fpn' needs a ResNet (conv1, bn1, layer1..layer4) inside "
                     "the backbone; use arch='c4' for other backbones")


class _LastStage(nn.Module):
    def __init__(self, backbone: nn.Module, channels: int):
        super().__init__()
        self.body = backbone
        self.out_channels = channels

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"0": self.body.feature_maps(x)}  # N x C x H/s x W/s


def build_detector(backbone: nn.Module, feat_dim: int, num_classes: int, *, arch: str = "fpn",
                   freeze: bool = True, mask: bool = False, min_size: int = 800,
                   max_size: int = 1333, detector_kwargs: dict | None = None) -> nn.Module:
    """torchvision (Mask|Faster) R-CNN with ``num_classes`` foreground classes.

    ``detector_kwargs`` go to torchvision's constructor (e.g. ``box_batch_size_per_image``,
    ``rpn_pre_nms_top_n_train``: smoke runs shrink them).
    """
    if arch not in ("fpn", "c4"):
        raise ValueError(f"detection: arch={arch!r}; allowed: 'fpn', 'c4'")
    if freeze:
        freeze_batchnorm(backbone)
        for p in backbone.parameters():
            p.requires_grad_(False)
    if arch == "fpn":
        resnet = find_resnet(backbone)
        widths = [_out_channels(getattr(resnet, f"layer{i}")) for i in range(1, 5)]
        body = BackboneWithFPN(resnet, {f"layer{i + 1}": str(i) for i in range(4)}, widths,
                               256)
        anchors = AnchorGenerator(((32,), (64,), (128,), (256,), (512,)), ((0.5, 1.0, 2.0),) * 5)
        pool = MultiScaleRoIAlign(["0", "1", "2", "3"], 7, 2)
        mask_pool = MultiScaleRoIAlign(["0", "1", "2", "3"], 14, 2)
    else:
        body = _LastStage(backbone, feat_dim)
        anchors = AnchorGenerator(((32, 64, 128, 256, 512),), ((0.5, 1.0, 2.0),))
        pool = MultiScaleRoIAlign(["0"], 7, 2)
        mask_pool = MultiScaleRoIAlign(["0"], 14, 2)
    common = dict(num_classes=num_classes + 1, rpn_anchor_generator=anchors, box_roi_pool=pool,
                  min_size=min_size, max_size=max_size, image_mean=IMAGENET_MEAN,
                  image_std=IMAGENET_STD, **(detector_kwargs or {}))
    if mask:
        return MaskRCNN(body, mask_roi_pool=mask_pool, **common)
    return FasterRCNN(body, **common)


def _out_channels(layer: nn.Module) -> int:
    last = layer[-1] if isinstance(layer, nn.Sequential) else layer  # a stage or one block
    for name in ("bn3", "bn2"):  # Bottleneck / BasicBlock
        if hasattr(last, name):
            return getattr(last, name).weight.shape[0]
    raise ValueError(f"cannot infer the output width of {type(last).__name__}")


class VOCDetection(torch.utils.data.Dataset):
    """VOC images (as float tensors in [0, 1]) with their boxes; difficult boxes are kept
    out of training targets (as detectron2's VOC loader does not: NOTE below)."""

    def __init__(self, root: str | Path, split: str, *, flip: bool = False, seed: int = 0):
        from repro.data import voc07_annotations

        self.folder = Path(root) / "VOCdevkit" / "VOC2007"
        self.records = voc07_annotations(Path(root), split)
        self.flip = flip
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int):
        rec = self.records[i]
        with Image.open(self.folder / "JPEGImages" / rec["filename"]) as im:
            image = pil_to_tensor(im.convert("RGB")).float() / 255  # 3 x H x W
        boxes = torch.from_numpy(rec["boxes"]).clone()
        # NOTE: detectron2 trains on difficult boxes too; torchvision's recipe and
        # MMDetection drop them. We drop them from training targets (never from eval).
        keep = torch.from_numpy(~rec["difficult"])
        if self.flip and self.rng.random() < 0.5:
            image = image.flip(-1)
            w = image.shape[-1]
            boxes = torch.stack([w - boxes[:, 2], boxes[:, 1], w - boxes[:, 0], boxes[:, 3]], 1)
        target = {"boxes": boxes[keep], "labels": torch.from_numpy(rec["labels"])[keep] + 1}
        return image, target, i


def _collate(batch):
    return tuple(zip(*batch))


def train_and_evaluate(backbone: nn.Module, root: str | Path, feat_dim: int, *, seed: int,
                       device: str, arch: str, freeze: bool, train_split: str,
                       test_split: str, batch_size: int, lr: float, momentum: float,
                       weight_decay: float, epochs: float, milestones: Sequence[float],
                       gamma: float, warmup_iters: int, max_iter: int | None, min_size: int,
                       max_size: int, limit_test_images: int | None,
                       ap_mode: str, detector_kwargs: dict | None = None) -> dict:
    from repro.eval.detection.voc_eval import voc_detection_metrics

    torch.manual_seed(seed)
    model = build_detector(backbone, feat_dim, 20, arch=arch, freeze=freeze,
                           min_size=min_size, max_size=max_size,
                           detector_kwargs=detector_kwargs).to(device)
    train_set = VOCDetection(root, train_split, flip=True, seed=seed)
    loader = torch.utils.data.DataLoader(train_set, batch_size=batch_size, shuffle=True,
                                         collate_fn=_collate, drop_last=True,
                                         generator=torch.Generator().manual_seed(seed))
    iters_per_epoch = max(1, len(loader))
    total = max_iter if max_iter is not None else int(math.ceil(epochs * iters_per_epoch))
    steps = [int(m * iters_per_epoch) for m in milestones]
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    it = 0
    model.train()
    while it < total:
        for images, targets, _ in loader:
            if it >= total:
                break
            scale = gamma ** sum(it >= s for s in steps)
            if it < warmup_iters:  # linear warm-up from lr/1000 (MMDetection default)
                scale *= 0.001 + (1 - 0.001) * it / warmup_iters
            for group in opt.param_groups:
                group["lr"] = lr * scale
            losses = model([im.to(device) for im in images],
                           [{k: v.to(device) for k, v in t.items()} for t in targets])
            loss = sum(losses.values())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            it += 1

    test_set = VOCDetection(root, test_split)
    n_test = len(test_set) if limit_test_images is None else min(limit_test_images,
                                                                   len(test_set))
    model.eval()
    detections = []
    with torch.no_grad():
        for i in range(n_test):
            image, _, _ = test_set[i]
            out = model([image.to(device)])[0]
            detections.append({"boxes": out["boxes"].cpu().numpy(),
                               "scores": out["scores"].cpu().numpy(),
                               "labels": out["labels"].cpu().numpy() - 1})
    metrics = voc_detection_metrics(detections, test_set.records[:n_test], 20, mode=ap_mode)
    metrics["selection"] = {"iteration": {"value": total, "policy": "last_epoch"}}
    metrics["artifacts"] = {"backend": "torchvision", "arch": arch, "freeze": freeze,
                            "iterations": total, "test_images": n_test, "ap_mode": ap_mode,
                            "detector_kwargs": dict(detector_kwargs or {})}
    return metrics
