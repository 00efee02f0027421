import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
import torchvision

from repro.eval.detection import detection
from repro.eval.detection.config import config_names, load_config
from repro.eval.detection.convert import convert_state_dict, write_detectron2_checkpoint
from repro.eval.detection.torchvision_backend import build_detector
from repro.eval.detection.voc_eval import voc_detection_map, voc_detection_metrics
from repro.eval.types import ModelData


def _random_scene(rng, n_images=12, n_classes=3):
    anns, dets = [], []
    for _ in range(n_images):
        n = rng.integers(1, 4)
        xy = rng.uniform(0, 60, (n, 2))
        wh = rng.uniform(10, 40, (n, 2))
        boxes = np.hstack([xy, xy + wh])
        labels = rng.integers(0, n_classes, n)
        anns.append({"boxes": boxes, "labels": labels, "difficult": rng.random(n) < 0.2})
        m = rng.integers(0, 6)
        jitter = boxes[rng.integers(0, n, m)] + rng.normal(0, 4, (m, 4))
        dets.append({"boxes": jitter, "scores": rng.random(m),
                     "labels": rng.integers(0, n_classes, m)})
    return dets, anns


def _devkit_ap(dets, anns, cls, thresh=0.5):
    """The VOC2007 devkit's voc_eval + voc_ap(use_07_metric=True), written out directly."""
    recs, npos = {}, 0
    for i, a in enumerate(anns):
        sel = a["labels"] == cls
        recs[i] = {"bbox": a["boxes"][sel], "difficult": a["difficult"][sel],
                   "det": [False] * int(sel.sum())}
        npos += int((~a["difficult"][sel]).sum())
    ids, conf, bb = [], [], []
    for i, d in enumerate(dets):
        for b, s, lab in zip(d["boxes"], d["scores"], d["labels"]):
            if lab == cls:
                ids.append(i), conf.append(s), bb.append(b)
    order = np.argsort(-np.array(conf), kind="stable")
    tp, fp = np.zeros(len(ids)), np.zeros(len(ids))
    for r, d in enumerate(order):
        R, b = recs[ids[d]], bb[d]
        ovmax, jmax = -np.inf, -1
        for j, g in enumerate(R["bbox"]):
            iw = max(min(g[2], b[2]) - max(g[0], b[0]), 0)
            ih = max(min(g[3], b[3]) - max(g[1], b[1]), 0)
            inter = iw * ih
            union = (b[2] - b[0]) * (b[3] - b[1]) + (g[2] - g[0]) * (g[3] - g[1]) - inter
            if inter / union > ovmax:
                ovmax, jmax = inter / union, j
        if ovmax > thresh:
            if not R["difficult"][jmax]:
                if not R["det"][jmax]:
                    tp[r], R["det"][jmax] = 1, True
                else:
                    fp[r] = 1
        else:
            fp[r] = 1
    if npos == 0:
        return 0.0
    fp, tp = np.cumsum(fp), np.cumsum(tp)
    rec, prec = tp / npos, tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    ap = 0.0
    for t in np.arange(0.0, 1.1, 0.1):
        ap += (np.max(prec[rec >= t]) if np.sum(rec >= t) else 0.0) / 11.0
    return ap


@pytest.mark.parametrize("seed", range(4))
def test_voc07_ap_equals_devkit_definition(seed):
    dets, anns = _random_scene(np.random.default_rng(seed))
    _, aps = voc_detection_map(dets, anns, 3, mode="11point")
    for c in range(3):
        assert aps[c] == pytest.approx(100 * _devkit_ap(dets, anns, c))


def test_perfect_predictions_score_100_in_both_variants():
    _, anns = _random_scene(np.random.default_rng(0))
    perfect = [{"boxes": a["boxes"], "scores": np.ones(len(a["boxes"])),
                "labels": a["labels"]} for a in anns]
    for mode in ("11point", "area"):
        assert voc_detection_metrics(perfect, anns, 3, mode=mode) == pytest.approx(
            {"AP50": 100.0, "AP75": 100.0, "AP": 100.0})
    # a duplicate detection is a false positive below the true one: still 100 at the top
    dup = [{"boxes": np.vstack([d["boxes"], d["boxes"]]),
            "scores": np.r_[d["scores"], 0.5 * d["scores"]],
            "labels": np.r_[d["labels"], d["labels"]]} for d in perfect]
    assert voc_detection_map(dup, anns, 3)[0] == pytest.approx(100.0)


def test_detectron2_conversion_key_mapping_and_shapes(tmp_path):
    sd = torchvision.models.resnet50().state_dict()
    wrapped = {f"module.encoder_q.{k}": v for k, v in sd.items()}
    wrapped["module.queue"] = torch.zeros(3)  # not part of the ResNet: ignored
    out = convert_state_dict(wrapped)
    assert out["stem.conv1.weight"].shape == (64, 3, 7, 7)
    assert out["stem.conv1.norm.running_var"].shape == (64,)
    assert out["res2.0.shortcut.weight"].shape == (256, 64, 1, 1)
    assert out["res2.0.shortcut.norm.bias"].shape == (256,)
    assert out["res5.2.conv3.norm.weight"].shape == (2048,)
    assert out["res4.5.conv2.weight"].shape == (256, 256, 3, 3)
    assert not any(k.startswith("fc") or "num_batches" in k for k in out)
    n_expected = sum(1 for k in sd if not k.startswith("fc.") and "num_batches" not in k)
    assert len(out) == n_expected
    np.testing.assert_array_equal(out["res3.1.conv1.weight"], sd["layer2.1.conv1.weight"].numpy())
    path = write_detectron2_checkpoint(wrapped, tmp_path / "w.pkl")
    payload = pickle.loads(Path(path).read_bytes())
    assert payload["matching_heuristics"] is True and len(payload["model"]) == n_expected


def test_configs_load_without_detectron2():
    assert {"pascal_voc_R_50_C4_24k_moco", "coco_R_50_C4_2x_moco",
            "pascal_voc_R_50_FPN_frozen_pcl"} <= set(config_names())
    voc = load_config("pascal_voc_R_50_C4_24k_moco")
    assert voc["MODEL"]["BACKBONE"]["FREEZE_AT"] == 0  # from the base file
    assert voc["MODEL"]["RESNETS"]["NORM"] == "SyncBN"
    assert voc["SOLVER"]["STEPS"] == (18000, 22000) and voc["SOLVER"]["MAX_ITER"] == 24000
    assert voc["SOLVER"]["BASE_LR"] == 0.02 and voc["SOLVER"]["IMS_PER_BATCH"] == 16
    coco = load_config("coco_R_50_C4_2x_moco")
    assert coco["MODEL"]["MASK_ON"] is True and coco["SOLVER"]["MAX_ITER"] == 180000
    pcl = load_config("pascal_voc_R_50_FPN_frozen_pcl")
    assert pcl["MODEL"]["BACKBONE"]["FREEZE_AT"] == 5
    assert pcl["MODEL"]["RESNETS"]["NORM"] == "FrozenBN"
    with pytest.raises(ValueError, match="allowed"):
        load_config("nope")


def test_detectron2_backend_missing_gives_install_hint(tmp_path):
    try:
        import detectron2  # noqa: F401
    except ImportError:
        data = ModelData(None, None, 20, 2048, root=str(tmp_path))
        with pytest.raises(ImportError, match="pip install"):
            detection(torchvision.models.resnet50(), data, seed=0, backend="detectron2",
                      output_dir=str(tmp_path / "d2"))
    with pytest.raises(ValueError, match="allowed"):
        detection(None, ModelData(None, None, 20, 1, root="."), seed=0, backend="mmdet")


def test_frozen_fpn_detector_freezes_conv_body_and_bn():
    resnet = torchvision.models.resnet18()
    model = build_detector(resnet, 512, 20, arch="fpn", freeze=True, min_size=64, max_size=64)
    body = model.backbone.body
    assert not any(p.requires_grad for p in body.parameters())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in body.modules())
    assert all(p.requires_grad for p in model.backbone.fpn.parameters())
    assert all(p.requires_grad for p in model.roi_heads.parameters())


class _Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, stride=4)
        self.bn = nn.BatchNorm2d(16)

    def feature_maps(self, x):
        return torch.relu(self.bn(self.conv(x)))

    def forward(self, x):
        return self.feature_maps(x).mean((2, 3))


def test_torchvision_backend_runs_on_voc_fixture(tmp_path):
    from repro.data.fixtures import write_voc07_fixture

    write_voc07_fixture(tmp_path, n_trainval=6, n_test=3, image_size=64)
    small = dict(rpn_pre_nms_top_n_train=100, rpn_post_nms_top_n_train=50,
                 rpn_pre_nms_top_n_test=50, rpn_post_nms_top_n_test=20,
                 box_batch_size_per_image=32, rpn_batch_size_per_image=32)
    out = detection(_Tiny(), ModelData(None, None, 20, 16, root=str(tmp_path)), seed=0,
                    arch="c4", freeze=False, max_iter=2, batch_size=2, min_size=64, max_size=64,
                    warmup_iters=1, detector_kwargs=small)
    assert 0.0 <= out["AP50"] <= 100.0 and 0.0 <= out["AP"] <= out["AP50"] + 1e-9
    assert out["selection"]["iteration"] == {"value": 2, "policy": "last_epoch"}
    assert out["artifacts"]["test_images"] == 3


# --- detectron2 path without detectron2: the pieces around detectron2's own calls ------------

def test_pcl_fpn_config_is_mmdetection_single_scale_1000x600():
    import inspect

    inp = load_config("pascal_voc_R_50_FPN_frozen_pcl")["INPUT"]
    assert inp["MIN_SIZE_TRAIN"] == (600,) and inp["MAX_SIZE_TRAIN"] == 1000
    assert inp["MIN_SIZE_TEST"] == 600 and inp["MAX_SIZE_TEST"] == 1000
    # MoCo's C4 recipe keeps its multi-scale training
    assert load_config("pascal_voc_R_50_C4_24k_moco")["INPUT"]["MIN_SIZE_TRAIN"][0] == 480
    params = inspect.signature(detection).parameters  # the torchvision backend's defaults
    assert (params["min_size"].default, params["max_size"].default) == (600, 1000)


def _job(tmp_path, num_gpus=2, run_id="abc"):
    from repro.eval.detection.detectron2_backend import Detectron2Job

    return Detectron2Job(config="c.yaml", opts=("SOLVER.MAX_ITER", "7"), weights="w.pkl",
                         output_dir=str(tmp_path), datasets_root=str(tmp_path), device="cuda",
                         seed=3, num_gpus=num_gpus, run_id=run_id)


def _stub_train_and_test(job):
    """Stands in for detectron2 training + DefaultTrainer.test: each rank returns its own."""
    import torch.distributed as dist

    rank = dist.get_rank() if dist.is_initialized() else 0
    return {"bbox": {"AP": np.float32(10.0 + rank), "AP50": 20.0 + rank, "AP75": 5.0},
            "segm": {"AP": 1.5}}


def _spawned_rank(local_rank, main_func, world_size, init_file, args):
    """detectron2's ``_distributed_worker`` in miniature: a process group, then main_func."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", world_size=world_size,
                            rank=local_rank)
    try:
        main_func(*args)
    finally:
        dist.destroy_process_group()


def _spawn_launch(main_func, num_gpus_per_machine, num_machines=1, machine_rank=0,
                  dist_url=None, args=()):
    """``detectron2.engine.launch``'s signature and behaviour: ``mp.spawn`` for > 1 process
    (every argument is pickled), a direct call for one."""
    import tempfile

    import torch.multiprocessing as mp

    if num_gpus_per_machine == 1:
        return main_func(*args)
    init = tempfile.NamedTemporaryFile(delete=False).name
    os.unlink(init)
    mp.spawn(_spawned_rank, nprocs=num_gpus_per_machine,
             args=(main_func, num_gpus_per_machine, init, args), daemon=False)


def test_detectron2_worker_and_job_pickle(tmp_path):
    from repro.eval.detection import detectron2_backend as D

    job = _job(tmp_path)
    assert pickle.loads(pickle.dumps(job)) == job
    assert pickle.loads(pickle.dumps(D.detectron2_worker)) is D.detectron2_worker
    assert pickle.loads(pickle.dumps(D.train_and_test_detectron2)) is D.train_and_test_detectron2


def test_results_file_round_trip_is_atomic_and_keyed_by_run(tmp_path):
    from repro.eval.detection import detectron2_backend as D

    job = _job(tmp_path)
    results = {"bbox": {"AP": np.float64(41.25), "AP50": 60.5}, "segm": {"AP": np.float32(35)}}
    D.write_results(results, job.results_path)
    assert D.read_results(job.results_path) == {"bbox": {"AP": 41.25, "AP50": 60.5},
                                                "segm": {"AP": 35.0}}
    assert [p.name for p in tmp_path.iterdir()] == ["repro_results.abc.json"]  # no temp file
    with pytest.raises(D.MissingResults, match="rank 0 wrote no"):
        D.read_results(_job(tmp_path, run_id="other").results_path)


@pytest.mark.parametrize("num_gpus", [1, 2])
def test_run_detectron2_returns_rank_0_results_through_spawn(tmp_path, num_gpus):
    from repro.eval.detection.detectron2_backend import results_to_metrics, run_detectron2

    job = _job(tmp_path, num_gpus=num_gpus)
    results = run_detectron2(job, _spawn_launch, _stub_train_and_test)
    assert results == {"bbox": {"AP": 10.0, "AP50": 20.0, "AP75": 5.0}, "segm": {"AP": 1.5}}
    metrics = results_to_metrics(results, job, 7, "c")
    assert {k: metrics[k] for k in ("AP", "AP50", "AP75", "AP_segm")} == {
        "AP": 10.0, "AP50": 20.0, "AP75": 5.0, "AP_segm": 1.5}
    assert metrics["selection"]["iteration"]["value"] == 7


def test_detectron2_datasets_root_matches_our_data_layout(tmp_path, monkeypatch):
    import sys

    from repro.eval.detection import detectron2_backend as D

    voc = load_config("pascal_voc_R_50_FPN_frozen_pcl")
    names = D._dataset_names(voc, ["DATASETS.TRAIN", "('voc_2007_trainval', 'voc_2012_trainval')"])
    assert names == ["voc_2007_trainval", "voc_2012_trainval", "voc_2007_test"]
    assert D.datasets_root(tmp_path, names) == tmp_path / "VOCdevkit"  # repro.data.voc layout
    coco = D._dataset_names(load_config("coco_R_50_C4_2x_moco"), [])
    assert D.datasets_root(tmp_path, coco) == tmp_path
    with pytest.raises(ValueError, match="one root"):
        D.datasets_root(tmp_path, ["voc_2007_test", "coco_2017_val"])
    assert D._opt(["SOLVER.MAX_ITER", "31035"], "SOLVER.MAX_ITER", 9405) == 31035
    monkeypatch.setenv(D.DATASETS_ENV, "/elsewhere")
    monkeypatch.setitem(sys.modules, "detectron2.data.datasets.builtin", object())
    with pytest.raises(RuntimeError, match="fresh process"):
        D.use_datasets_root(str(tmp_path))
