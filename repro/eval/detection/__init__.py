"""Object detection transfer (PCL Table 6: frozen R50-FPN Faster R-CNN on VOC; Table 9: Mask
R-CNN R50-C4 on COCO, MoCo's recipe).

One protocol, two backends:
- ``"torchvision"`` (default, runs on CPU): torchvision Faster R-CNN around our backbone,
  trained and scored on VOC07 from ``data.root`` with our VOC07 AP (``voc_eval``).
- ``"detectron2"``: MoCo's path (converted weights, the shipped YAML configs); GPUs.
"""

from __future__ import annotations

from typing import Sequence

BACKENDS = ("torchvision", "detectron2")


def detection(
    backbone,
    data,
    *,
    seed: int,
    device: str = "cpu",
    backend: str = "torchvision",
    # torchvision backend: PCL appendix E recipe (MMDetection): batch 8, lr 0.05, 15 epochs
    arch: str = "fpn",
    freeze: bool = True,
    train_split: str = "trainval",
    test_split: str = "test",
    batch_size: int = 8,
    lr: float = 0.05,
    momentum: float = 0.9,
    weight_decay: float = 1e-4,
    epochs: float = 15,
    milestones: Sequence[float] = (12,),
    gamma: float = 0.1,
    warmup_iters: int = 500,
    max_iter: int | None = None,
    min_size: int = 600,  # MMDetection's VOC scale (1000, 600), as PCL's detection runs
    max_size: int = 1000,
    limit_test_images: int | None = None,
    ap_mode: str = "11point",
    detector_kwargs: dict | None = None,
    # detectron2 backend
    config: str = "pascal_voc_R_50_FPN_frozen_pcl",
    output_dir: str = "detectron2_output",
    num_gpus: int = 1,
    opts: Sequence[str] = (),
) -> dict:
    """AP50 / AP75 / AP in % on VOC07 test (plus mask APs on COCO with detectron2)."""
    if backend not in BACKENDS:
        raise ValueError(f"detection: backend={backend!r}; allowed: {', '.join(BACKENDS)}")
    if data.root is None:
        raise ValueError("detection: ModelData.root must name the data root holding "
                         "VOCdevkit/VOC2007 (and coco/ for COCO configs)")
    if backend == "detectron2":
        from repro.eval.detection.detectron2_backend import train_and_evaluate

        return train_and_evaluate(backbone, data.root, seed=seed, device=device,
                                  config=config, output_dir=output_dir, num_gpus=num_gpus,
                                  opts=opts)
    from repro.eval.detection.torchvision_backend import train_and_evaluate

    return train_and_evaluate(
        backbone, data.root, data.feat_dim, seed=seed, device=device, arch=arch,
        freeze=freeze, train_split=train_split, test_split=test_split, batch_size=batch_size,
        lr=lr, momentum=momentum, weight_decay=weight_decay, epochs=epochs,
        milestones=milestones, gamma=gamma, warmup_iters=warmup_iters, max_iter=max_iter,
        min_size=min_size, max_size=max_size, limit_test_images=limit_test_images,
        ap_mode=ap_mode, detector_kwargs=detector_kwargs,
    )
