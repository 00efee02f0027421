"""detectron2 path (MoCo's recipe; PCL Tables 6 and 9 at paper scale, GPUs required).

The backbone's torchvision-layout ResNet weights are converted to detectron2's pickle
format (``convert.py``), one of the shipped configs is loaded, and detectron2's
``DefaultTrainer`` trains and evaluates (VOC: ``PascalVOCDetectionEvaluator``, VOC07
11-point AP50/AP/AP75; COCO: ``COCOEvaluator``, box and mask AP).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

INSTALL_HINT = (
    "detection backend 'detectron2' needs detectron2, which is not installed. Install it for "
    "your torch/CUDA build, e.g. `pip install 'git+https://github.com/facebookresearch/"
    "detectron2.git'` (see https://detectron2.readthedocs.io/en/latest/tutorials/install.html),"
    " or use backend='torchvision' (runs anywhere)."
)


def require_detectron2():
    try:
        import detectron2  # noqa: F401
    except ImportError as err:
        raise ImportError(INSTALL_HINT) from err


def _register_extra_norm_head():
    """MoCo's Res5 ROI head with a norm after res5 (its configs name it)."""
    from detectron2.layers import get_norm
    from detectron2.modeling.roi_heads import ROI_HEADS_REGISTRY, Res5ROIHeads

    if "Res5ROIHeadsExtraNorm" in ROI_HEADS_REGISTRY:
        return

    @ROI_HEADS_REGISTRY.register()
    class Res5ROIHeadsExtraNorm(Res5ROIHeads):
        def _build_res5_block(self, cfg):
            seq, out_channels = super()._build_res5_block(cfg)
            seq.add_module("norm", get_norm(cfg.MODEL.RESNETS.NORM, out_channels))
            return seq, out_channels


def train_and_evaluate(backbone, root: str, *, seed: int, device: str, config: str,
                       output_dir: str, num_gpus: int, opts: Sequence[str]) -> dict:
    require_detectron2()
    import torch
    from detectron2.config import get_cfg
    from detectron2.engine import DefaultTrainer, launch
    from detectron2.evaluation import COCOEvaluator, PascalVOCDetectionEvaluator

    from repro.eval.detection.config import config_path
    from repro.eval.detection.convert import write_detectron2_checkpoint

    _register_extra_norm_head()
    out = Path(output_dir)
    weights = write_detectron2_checkpoint(backbone.state_dict(), out / "backbone_d2.pkl")
    os.environ.setdefault("DETECTRON2_DATASETS", str(root))  # voc_2007_* / coco_2017_* live here

    cfg = get_cfg()
    cfg.merge_from_file(str(config_path(config)) if not Path(config).is_file() else config)
    cfg.merge_from_list(list(opts))
    cfg.MODEL.WEIGHTS = str(weights)
    cfg.MODEL.DEVICE = device
    cfg.OUTPUT_DIR = str(out)
    cfg.SEED = seed
    if num_gpus <= 1 and cfg.MODEL.RESNETS.NORM == "SyncBN":
        # NOTE: SyncBN needs a process group; on one device it is plain BN (same statistics).
        cfg.MODEL.RESNETS.NORM = "BN"
    cfg.freeze()

    class Trainer(DefaultTrainer):
        @classmethod
        def build_evaluator(cls, cfg, dataset_name, output_folder=None):
            if "voc" in dataset_name:
                return PascalVOCDetectionEvaluator(dataset_name)
            return COCOEvaluator(dataset_name, output_dir=output_folder or cfg.OUTPUT_DIR)

    results = {}

    def main():
        trainer = Trainer(cfg)
        trainer.resume_or_load(resume=False)
        trainer.train()
        results.update(Trainer.test(cfg, trainer.model))

    if num_gpus > 1:
        launch(main, num_gpus)
        results.update(torch.load(out / "inference" / "results.pth", weights_only=True)
                       if (out / "inference" / "results.pth").is_file() else {})
    else:
        main()
    metrics = {}
    for task, values in results.items():  # "bbox" / "segm" -> {"AP", "AP50", "AP75", ...}
        tag = "" if task == "bbox" else f"_{task}"
        for key in ("AP", "AP50", "AP75"):
            if key in values:
                metrics[f"{key}{tag}"] = float(values[key])
    metrics["selection"] = {"iteration": {"value": int(cfg.SOLVER.MAX_ITER),
                                          "policy": "last_epoch"}}
    metrics["artifacts"] = {"backend": "detectron2", "config": config, "opts": list(opts),
                            "weights": str(weights)}
    return metrics
