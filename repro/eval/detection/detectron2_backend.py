"""detectron2 path (MoCo's recipe; PCL Tables 6 and 9 at paper scale, GPUs required).

The backbone's torchvision-layout ResNet weights are converted to detectron2's pickle
format (``convert.py``), one of the shipped configs is loaded, and detectron2's
``DefaultTrainer`` trains and evaluates (VOC: ``PascalVOCDetectionEvaluator``, VOC07
11-point AP50/AP/AP75; COCO: ``COCOEvaluator``, box and mask AP).

Every process runs ``detectron2_worker``. ``detectron2.engine.launch`` hands it to
``torch.multiprocessing.spawn`` when ``num_gpus > 1`` and calls it in this process otherwise
(facebookresearch/detectron2@09c4fa9 detectron2/engine/launch.py L55-62), so the worker and
its arguments must pickle: a module-level function and a ``Detectron2Job`` of plain values;
each process rebuilds the config (and its registries) itself. detectron2 writes no results
file, and ``DefaultTrainer.test`` returns metrics that are valid on the main process only
(detectron2/engine/defaults.py ``DefaultTrainer.test``), so rank 0 writes them to
``<output_dir>/repro_results.<run id>.json`` (atomically) and the caller reads them back.
The module imports without detectron2; ``train_and_evaluate``, ``build_cfg`` and
``train_and_test_detectron2`` need it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

DATASETS_ENV = "DETECTRON2_DATASETS"

INSTALL_HINT = (
    "detection backend 'detectron2' needs detectron2, which is not installed. Install it for "
    "your torch/CUDA build, e.g. `pip install 'git+https://github.com/facebookresearch/"
    "detectron2.git'` (see https://detectron2.readthedocs.io/en/latest/tutorials/install.html),"
    " or use backend='torchvision' (runs anywhere)."
)


class MissingResults(RuntimeError):
    """A detectron2 run ended without rank 0's results file."""


@dataclass(frozen=True)
class Detectron2Job:
    """What each detectron2 process needs; plain values, so it pickles under spawn."""

    config: str  # path of the YAML config
    opts: tuple[str, ...]
    weights: str  # converted backbone (.pkl)
    output_dir: str
    datasets_root: str  # $DETECTRON2_DATASETS: holds VOC2007/, VOC2012/, coco/
    device: str
    seed: int
    num_gpus: int
    run_id: str  # names this call's results file, so another run's is never read back

    @property
    def results_path(self) -> Path:
        return Path(self.output_dir) / f"repro_results.{self.run_id}.json"


def require_detectron2():
    try:
        import detectron2  # noqa: F401
    except ImportError as err:
        raise ImportError(INSTALL_HINT) from err


def datasets_root(root: str | Path, dataset_names: Sequence[str]) -> Path:
    """The folder detectron2's builtin datasets are registered under: it reads
    ``$DETECTRON2_DATASETS/VOC2007`` and ``.../coco`` (detectron2/data/datasets/builtin.py
    ``register_all_pascal_voc``; the root is read once, when that module is imported). Our
    data root keeps VOC in ``VOCdevkit/`` (``repro.data.voc``) and COCO in ``coco/``."""
    root = Path(root)
    voc = [n for n in dataset_names if n.startswith("voc_")]
    if voc and len(voc) != len(dataset_names):
        raise ValueError(f"detectron2 datasets {list(dataset_names)}: VOC and non-VOC datasets "
                         "in one config need one root; split the config")
    return root / "VOCdevkit" if voc else root


def use_datasets_root(path: str) -> None:
    """Point ``$DETECTRON2_DATASETS`` at ``path`` before detectron2 registers its datasets;
    once registered (at import, once per process) another root cannot take effect."""
    registered = "detectron2.data.datasets.builtin" in sys.modules
    if registered and os.environ.get(DATASETS_ENV) != path:
        raise RuntimeError(f"detectron2 registered its datasets under "
                           f"{os.environ.get(DATASETS_ENV)!r} in this process; this config "
                           f"needs {DATASETS_ENV}={path}: run it in a fresh process")
    os.environ[DATASETS_ENV] = path


def write_results(results: dict, path: Path) -> None:
    """Write ``{task: {metric: value}}`` as JSON; readers never see a partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(results, f, default=float)  # numpy scalars -> float
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def read_results(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise MissingResults(f"detectron2 finished without results: rank 0 wrote no {path} "
                             "(see the detectron2 log in that folder)")
    return json.loads(path.read_text())


def _rank() -> int:
    import torch.distributed as dist

    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def detectron2_worker(job: Detectron2Job, train_and_test: Callable[[Detectron2Job], dict]) -> None:
    """Run in every process (``launch``'s ``main_func``): train and evaluate, then rank 0
    writes the results. ``train_and_test(job) -> {task: {metric: value}}`` is a module-level
    function (``train_and_test_detectron2``; tests pass a stub)."""
    results = train_and_test(job)
    if _rank() == 0:
        write_results(dict(results), job.results_path)


def run_detectron2(job: Detectron2Job, launch: Callable,
                   train_and_test: Callable[[Detectron2Job], dict] | None = None) -> dict:
    """Run ``job`` in ``job.num_gpus`` processes with ``launch`` (``detectron2.engine.launch``
    or a stand-in with its signature) and return rank 0's results."""
    job.results_path.unlink(missing_ok=True)
    launch(detectron2_worker, job.num_gpus, dist_url="auto",
           args=(job, train_and_test or train_and_test_detectron2))
    return read_results(job.results_path)


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


def build_cfg(job: Detectron2Job):
    """The frozen detectron2 config of ``job`` (the shipped YAML, then ``opts``)."""
    from detectron2.config import get_cfg

    cfg = get_cfg()
    cfg.merge_from_file(job.config)
    cfg.merge_from_list(list(job.opts))
    cfg.MODEL.WEIGHTS = job.weights
    cfg.MODEL.DEVICE = job.device
    cfg.OUTPUT_DIR = job.output_dir
    cfg.SEED = job.seed
    if job.num_gpus <= 1 and cfg.MODEL.RESNETS.NORM == "SyncBN":
        # NOTE: SyncBN needs a process group; on one device it is plain BN (same statistics).
        cfg.MODEL.RESNETS.NORM = "BN"
    cfg.freeze()
    return cfg


def train_and_test_detectron2(job: Detectron2Job) -> dict:
    """One process's share: ``DefaultTrainer.train()``, then ``DefaultTrainer.test()`` (the
    evaluator gathers every rank's predictions; its metrics are valid on the main process).
    ``train()``'s final EvalHook pass also evaluates, but returns its results only in some
    detectron2 versions, so the public ``test()`` is called (one more pass over the test set)."""
    use_datasets_root(job.datasets_root)
    from detectron2.engine import DefaultTrainer, default_setup
    from detectron2.evaluation import COCOEvaluator, PascalVOCDetectionEvaluator

    _register_extra_norm_head()  # registries are per process: spawned ranks register again
    cfg = build_cfg(job)
    # logging, config.yaml in OUTPUT_DIR, and the seed: cfg.SEED + rank
    default_setup(cfg, argparse.Namespace(config_file=job.config, eval_only=False))

    class Trainer(DefaultTrainer):
        @classmethod
        def build_evaluator(cls, cfg, dataset_name, output_folder=None):
            if "voc" in dataset_name:
                return PascalVOCDetectionEvaluator(dataset_name)
            return COCOEvaluator(dataset_name, output_dir=output_folder or cfg.OUTPUT_DIR)

    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train()
    return Trainer.test(cfg, trainer.model)


def results_to_metrics(results: dict, job: Detectron2Job, max_iter: int, config: str) -> dict:
    """``{"bbox": {"AP": ..}, "segm": {..}}`` -> ``AP``, ``AP50``, ``AP75``, ``AP_segm``, ..."""
    metrics = {}
    for task, values in results.items():
        tag = "" if task == "bbox" else f"_{task}"
        for key in ("AP", "AP50", "AP75"):
            if key in values:
                metrics[f"{key}{tag}"] = float(values[key])
    metrics["selection"] = {"iteration": {"value": int(max_iter), "policy": "last_epoch"}}
    metrics["artifacts"] = {"backend": "detectron2", "config": config, "opts": list(job.opts),
                            "weights": job.weights, "num_gpus": job.num_gpus}
    return metrics


def train_and_evaluate(backbone, root: str, *, seed: int, device: str, config: str,
                       output_dir: str, num_gpus: int, opts: Sequence[str]) -> dict:
    require_detectron2()  # the package only: its datasets register with detectron2.data
    from repro.eval.detection.config import config_path, load_config
    from repro.eval.detection.convert import write_detectron2_checkpoint

    path = Path(config) if Path(config).is_file() else config_path(config)
    shipped = load_config(path)
    out = Path(output_dir)
    job = Detectron2Job(
        config=str(path), opts=tuple(str(o) for o in opts),
        weights=str(write_detectron2_checkpoint(backbone.state_dict(), out / "backbone_d2.pkl")),
        output_dir=str(out), datasets_root=str(datasets_root(root, _dataset_names(shipped, opts))),
        device=device, seed=seed, num_gpus=num_gpus, run_id=uuid.uuid4().hex[:12])
    use_datasets_root(job.datasets_root)  # before detectron2.engine imports detectron2.data
    from detectron2.engine import launch

    results = run_detectron2(job, launch)
    max_iter = _opt(opts, "SOLVER.MAX_ITER", shipped.get("SOLVER", {}).get("MAX_ITER"))
    return results_to_metrics(results, job, max_iter, config)


def _opt(opts: Sequence[str], key: str, default):
    """The value ``opts`` (KEY VALUE pairs) gives ``key``, as a Python literal, or ``default``."""
    import ast

    pairs = dict(zip(opts[::2], opts[1::2]))
    if key not in pairs:
        return default
    try:
        return ast.literal_eval(pairs[key])
    except (ValueError, SyntaxError):
        return pairs[key]


def _dataset_names(cfg: dict, opts: Sequence[str]) -> list[str]:
    datasets = cfg.get("DATASETS", {})
    train = _opt(opts, "DATASETS.TRAIN", datasets.get("TRAIN", ()))
    test = _opt(opts, "DATASETS.TEST", datasets.get("TEST", ()))
    return [*train, *test]
