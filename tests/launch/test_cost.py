"""The cost estimate of `repro launch --dry-run` (repro/launch/cost.py)."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from repro.cli import main
from repro.launch import cost as C

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = Path(__file__).resolve().parent / "cluster_table.yaml"
CPU = {"cpus_per_task": 1}
GPU4 = {"nodes": 1, "gpus_per_node": 4}

SIMCLR = {
    "method": "simclr", "params": {"dim": 64},
    "backbone": {"arch": "resnet18_tiny", "cifar_stem": True},
    "data": {"dataset": "cifar10", "split": "train", "subset": 1000},
    "views": {"name": "simclr", "image_size": 32},
    "optim": {"name": "sgd", "lr": 0.1, "batch_size": 100, "epochs": 2},
}


def _recipe(**changes) -> dict:
    r = copy.deepcopy(SIMCLR)
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node = r
        for p in parents:
            node = node[p]
        node[leaf] = value
    return r


def _work_s(recipe: dict, resources=CPU) -> float:
    est = C.estimate_pretrain(recipe, resources)
    assert est.known, est.why
    return est.seconds - C.STARTUP_S.get(est.device, 0.0) * est.units


def test_estimate_is_linear_in_epochs_and_dataset_size():
    base = _work_s(_recipe())
    assert _work_s(_recipe(optim__epochs=4)) == pytest.approx(2 * base)
    assert _work_s(_recipe(optim__epochs=20)) == pytest.approx(10 * base)
    assert _work_s(_recipe(data__subset=3000)) == pytest.approx(3 * base)
    # the whole split when there is no subset: CIFAR-10's 50,000 training images
    assert _work_s(_recipe(data__subset=None)) == pytest.approx(50 * base)
    # and on a GPU scale too, where it is GPU-hours
    gpu = C.estimate_pretrain(_recipe(backbone__arch="resnet50"), GPU4)
    gpu2 = C.estimate_pretrain(_recipe(backbone__arch="resnet50", optim__epochs=4), GPU4)
    assert gpu.unit == "GPU-h" and gpu2.seconds == pytest.approx(2 * gpu.seconds)


def test_views_factor():
    train2, fwd2, _ = C.pretrain_passes(_recipe())  # SimCLR: 2 trained views
    assert (train2, fwd2) == (2 * 2 * 1000, 0)
    train, fwd, _ = C.pretrain_passes(_recipe(method="moco"))  # query trained, key forward
    assert (train, fwd) == (2 * 1000, 2 * 1000)
    train, fwd, _ = C.pretrain_passes(_recipe(method="byol"))  # symmetric: both, both
    assert (train, fwd) == (4 * 1000, 4 * 1000)
    train, fwd, _ = C.pretrain_passes(_recipe(method="byol", params={"symmetric": False}))
    assert (train, fwd) == (2 * 1000, 2 * 1000)
    sup = _recipe(method="supervised", views={"name": "propos_cifar", "image_size": 32,
                                              "options": {"n_views": 1}})
    assert C.pretrain_passes(sup)[:2] == (2 * 1000, 0)
    assert C.pretrain_passes(_recipe(method="untrained"))[:2] == (0, 0)
    # a two-view method costs twice a one-view one on the same images, all else equal
    assert _work_s(_recipe()) == pytest.approx(2 * _work_s(sup))
    # the last partial batch is dropped, as the loader does
    assert C.pretrain_passes(_recipe(data__subset=1050))[0] == train2


def test_estep_epochs_follow_the_methods():
    assert C.estep_epochs("pcl", {"warmup_epochs": 20}, 200) == 180
    assert C.estep_epochs("pauc", {}, 200) == 180  # PCL's default warm-up
    assert C.estep_epochs("propos", {}, 1000) == 950
    assert C.estep_epochs("propos", {"reassign_every": 10}, 1000) == 95
    assert C.estep_epochs("propos", {"data_resample": True, "warmup_epochs": 10}, 30) == 30
    assert C.estep_epochs("moco", {}, 200) == 0
    pcl = _recipe(method="pcl", params={"warmup_epochs": 1}, optim__epochs=4)
    assert C.pretrain_passes(pcl)[1] == 4 * 1000 + 3 * 1000  # keys + three extractions


def test_method_tables_cover_the_registry_and_match_the_configs():
    from repro.methods import METHODS

    assert set(C.METHOD_VIEWS) == set(METHODS.names())
    for method, defaults in C.METHOD_DEFAULTS.items():
        fields = {f.name: f.default for f in dataclasses.fields(METHODS.resolve(method).Config)}
        for key, value in defaults.items():
            assert fields[key] == value, (method, key)


def test_dataset_sizes_cover_every_registered_dataset_and_split():
    from repro.data import DATASET_INFO, DATASETS

    assert set(C.SPLIT_SIZES) == set(DATASETS.names()) == set(DATASET_INFO)
    for name, info in DATASET_INFO.items():
        assert set(info.splits) <= set(C.SPLIT_SIZES[name]), name
        assert all(n > 0 for n in C.SPLIT_SIZES[name].values())
        sizes = C.SPLIT_SIZES[name]
        for combo, n in sizes.items():  # "train+test" is the sum of its parts
            if "+" in combo:
                assert n == sum(sizes[p] for p in combo.split("+")), (name, combo)
    for name in ("imagenet10", "imagenet_dogs"):  # 1,300 train and 50 val images per class
        k = DATASET_INFO[name].num_classes
        assert C.SPLIT_SIZES[name] == {"train": 1300 * k, "val": 50 * k}


def test_digits_and_fixture_sizes_are_the_code_s():
    from repro.data import fixtures
    from repro.data.digits import digits_split

    labels = __import__("sklearn.datasets", fromlist=["load_digits"]).load_digits().target
    for split in ("train", "test"):
        assert len(digits_split(labels, split)) == C.SPLIT_SIZES["digits"][split]
    defaults = inspect.signature(fixtures.write_voc07_fixture).parameters
    assert C.FIXTURE_SIZES["voc07"] == {"trainval": defaults["n_trainval"].default,
                                        "test": defaults["n_test"].default}
    defaults = inspect.signature(fixtures.write_cifar10_fixture).parameters
    assert C.FIXTURE_SIZES["cifar10"]["train"] == defaults["n_train"].default
    assert C.dataset_size({"dataset": "voc07", "split": "test"}, {"voc07": "synthetic"}) == 400
    assert C.dataset_size({"dataset": "voc07", "split": "test"}, {"voc07": "real"}) == 4952


def test_throughput_rows_have_sources_and_cover_the_grid():
    for row in C.THROUGHPUT:
        assert len(row.source) > 30, row
        assert row.infer > 0 and (row.train is None or row.train > 0), row
    have = {(r.device, r.arch, r.image_size) for r in C.THROUGHPUT}
    for device in ("V100", "A100"):
        for arch in ("resnet18", "resnet34", "resnet50"):
            for size in (32, 96, 224):
                assert (device, arch, size) in have, (device, arch, size)
        assert (device, "faster_rcnn_fpn", 800) in have
    for arch in ("resnet18_tiny", "pixels"):
        for size in (16, 28, 32):
            assert (C.CPU, arch, size) in have, (arch, size)
    # a size between rows is scaled from the nearest one by the pixel ratio
    row, how = C.throughput("V100", "resnet18", 64, True)
    ref = next(r for r in C.THROUGHPUT if (r.device, r.arch, r.image_size) ==
               ("V100", "resnet18", 224))
    assert row.train == pytest.approx(ref.train * (224 / 256) ** 2) and "scaled" in how
    with pytest.raises(C.UnknownCost, match="no V100 throughput for resnet18_tiny"):
        C.throughput("V100", "resnet18_tiny", 32, True)


def test_constraint_selects_the_gpu_and_gpus_do_not_change_gpu_hours():
    r = _recipe(backbone__arch="resnet50", backbone__cifar_stem=False, views__image_size=224)
    v100 = C.estimate_pretrain(r, GPU4)
    a100 = C.estimate_pretrain(r, {**GPU4, "constraint": "a100"})
    assert (v100.device, a100.device) == ("V100", "A100")
    assert v100.seconds / a100.seconds == pytest.approx(C.A100_PER_V100)
    eight = C.estimate_pretrain(r, {"nodes": 2, "gpus_per_node": 4})
    assert eight.units == 8 and eight.seconds == pytest.approx(v100.seconds)


def test_detectron2_iterations_come_from_the_config_and_opts():
    recipe = _recipe(backbone__arch="resnet50", backbone__cifar_stem=False,
                     views__image_size=224)
    ev = {"protocol": "detection", "train": {"dataset": "voc07", "split": "trainval"},
          "test": {"dataset": "voc07", "split": "test"},
          "params": {"backend": "detectron2", "config": "pascal_voc_R_50_FPN_frozen_pcl"}}
    train, test, _, head = C.eval_passes(ev, recipe)
    assert (train, test, head) == (9405 * 8, 4952, "faster_rcnn_fpn")
    ev["params"]["opts"] = ["SOLVER.MAX_ITER", "31035"]
    assert C.eval_passes(ev, recipe)[0] == 31035 * 8
    est = C.estimate_eval(ev, recipe, {"gpus_per_node": 1})
    assert est.known and est.unit == "GPU-h"


def test_dry_run_of_pcl_table3_at_paper_scale_shows_each_job_s_cost_and_a_total(
        isolated, capsys):
    assert main(["launch", str(ROOT / "experiments/pcl/table3.yaml"), "--scale", "paper",
                 "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    jobs = [line for line in out if "would run" in line]
    assert len(jobs) == 16
    for line in jobs:
        assert re.search(r"  \[~[\d.,]+ GPU-h\]$|  \[<0\.01 GPU-h\]$", line), line
    pre = [float(re.search(r"~([\d,.]+) GPU-h", line).group(1).replace(",", ""))
           for line in jobs if "would run pretrain" in line]
    assert len(pre) == 4 and all(300 < h < 700 for h in pre)  # PCL: ~5 days on 4 V100
    (total,) = [line for line in out if line.startswith("estimated total:")]
    assert re.match(r"estimated total: ~[\d,]+ GPU-h \(pretraining [\d,]+, evaluation "
                    r"[\d,.]+; V100, ≈ [\d,]+ h wall one job at a time", total), total
    assert "unknown" not in total


def test_unknown_costs_are_said_per_job_and_counted_in_the_total(isolated, capsys):
    from repro.launch import launch
    from repro.spec import load_table

    lines = []
    out = launch(load_table(CLUSTER), "cluster", "local", dry_run=True, log=lines.append)
    jobs = [line for line in lines if "would run" in line]
    assert len(jobs) == 6 and all(
        line.endswith("[cost unknown (no V100 throughput for resnet18_tiny)]") for line in jobs)
    assert lines[-1] == ("estimated total: unknown; 6 job(s) cost unknown (no V100 throughput "
                         "for resnet18_tiny)")
    assert set(out["estimates"]) == {j.key for j in out["todo"]}


def test_smoke_estimate_is_within_3x_of_a_stored_record():
    """PCL v1 smoke (CIFAR-10 subset 3000, resnet18_tiny, 6 epochs, 4 E-steps) as stored."""
    records = [json.loads(p.read_text()) for p in (ROOT / "results/store").glob("*/*.json")]
    (rec,) = [r for r in records if r["label"] == "pretrain pcl_v1_in100 seed 0"
              and r["context"]["scale"] == "smoke"]
    est = C.estimate_pretrain(rec["recipe"], {"cpus_per_task": 1}, rec["data_sources"])
    assert est.unit == "CPU-min"
    assert 1 / 3 < est.seconds / rec["duration_s"] < 3, (est.seconds, rec["duration_s"])


def test_cost_imports_no_torch():
    code = ("import sys, repro.launch.cost as c; "
            "c.estimate_pretrain({'method': 'moco', 'backbone': {'arch': 'resnet50'}, "
            "'data': {'dataset': 'imagenet', 'split': 'train'}, 'views': {'image_size': 224}, "
            "'optim': {'epochs': 200, 'batch_size': 256}}, {'gpus_per_node': 4}); "
            "assert 'torch' not in sys.modules")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_total_line_wall_time():
    four = [C.Estimate(3600 * 40, "V100", 4), C.Estimate(3600 * 84, "V100", 4)]
    assert C.total_line(four) == "estimated total: ~124 GPU-h (4 V100 ≈ 31 h wall)"
    cpu = [C.Estimate(600, C.CPU, 1), C.Estimate(120, C.CPU, 1, "eval"),
           C.Estimate(None, C.CPU, 1, "eval", "no size for dataset x")]
    assert C.total_line(cpu, cores=2) == (
        "estimated total: ~12 CPU-min (pretraining 10, evaluation 2.0; 1 CPU per job; "
        "≈ 6.0 min wall on 2 cores); 1 job(s) cost unknown (no size for dataset x)")
