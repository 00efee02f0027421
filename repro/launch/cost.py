"""What a job will cost, before it is submitted (no torch): ``repro launch --dry-run``.

    cost (device-seconds) = training passes / train rate + forward passes / inference rate
                            (+ STARTUP_S per job on CPU)

A *training pass* is one image (one view) through forward + backward + update of the
backbone; a *forward pass* one image through the backbone without gradients (a momentum or
target encoder, an E-step's feature extraction, an evaluation's feature extraction, a frozen
backbone under a linear probe). Rates come from ``THROUGHPUT``: images/s per GPU at GPU scales,
images per CPU-second on this machine at CPU scales, by device, architecture, image size and
stem, each row with its source. The result is GPU-hours (device-seconds summed over the job's
GPUs, assuming DDP scales linearly) where a job's resources request GPUs, else CPU-minutes
(summed over its CPUs).

Passes of a pretraining job, per epoch (N = the size of its data split or ``subset``, from
``SPLIT_SIZES``; the loader drops the last partial batch, so (N // batch) * batch images):
  - training passes: images x the views the method trains on (``METHOD_VIEWS``: 2 for the
    two-view methods SimCLR, BYOL, SimSiam, SwAV, CARL and ProPos; 1 for MoCo/PCL/PAUC's query;
    ``views.options.n_views`` for the supervised reference). SwAV and CARL are two-crop here
    (``repro/methods/README.md``): their recipes have no multi-crop parameter.
  - forward passes: images x the views a momentum/target encoder embeds (MoCo/PCL/PAUC's key,
    BYOL/ProPos's target on both views when ``symmetric``), plus the E-step: N forward passes
    in each epoch whose ``on_epoch_start`` extracts features (PCL/PAUC: every epoch from
    ``warmup_epochs``; ProPos: every ``reassign_every``-th epoch from ``warmup_epochs``, from
    the first with ``data_resample``). The k-means itself is not counted (faiss: seconds to
    minutes per E-step).
Passes of an evaluation job (image size: ``features.image_size``, else the recipe's):
  - feature protocols: N_train + N_test forward passes (the extraction; cached features
    shared by several evaluations of one run are counted for each, so this is an upper
    bound). The protocol's own CPU work (SVM grids, k-means, kNN, a probe on cached features)
    is not counted.
  - ``linear_probe_augmented``: epochs x N_train + N_test forward passes (frozen backbone).
  - ``finetune``, ``finetune_carl``: epochs x round(label_fraction x N_train) training passes
    + N_test forward passes.
  - ``detection``: iterations x images per batch training passes + N_test forward passes at
    the detector rates of ``THROUGHPUT`` (detectron2: the config's SOLVER.MAX_ITER and
    IMS_PER_BATCH, with ``opts``; torchvision: ``max_iter`` or epochs x batches).
A job whose architecture, dataset or protocol has no entry here is ``cost unknown (<why>)``.

All rates are fp32 (every shipped recipe is); a bf16/fp16 recipe is estimated at fp32 rates.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

GPU_DEVICES = ("V100", "A100")
DEFAULT_GPU = "V100"  # the GPU of PCL, PAUC and ProPos's runs; `--constraint a100` selects A100
CPU = "cpu"
# CPU seconds each job spends outside its image passes (start-up, data fingerprints, writing):
# the median of duration_s - train_seconds of the stored smoke pretraining records is 1.7 s.
STARTUP_S = {CPU: 2.0}

# ---------------------------------------------------------------------------------------------
# Dataset sizes: images per split, the official counts (synthetic fixtures: FIXTURE_SIZES).
# CIFAR-10/100 (and CIFAR-20, CIFAR-100's super-classes): 50,000 train / 10,000 test
#   (Krizhevsky 2009; https://www.cs.toronto.edu/~kriz/cifar.html).
# digits: scikit-learn's 1,797 images, our fixed stratified split 2/3 train (1,198) and 1/3 test
#   (599) (repro/data/digits.py).
# Fashion-MNIST: 60,000 / 10,000 (Xiao et al. 2017; github.com/zalandoresearch/fashion-mnist).
# ImageNet (ILSVRC2012): 1,281,167 train / 50,000 val (Russakovsky et al. 2015); Downsampled
#   ImageNet 64x64 has the same images (Chrabaszcz et al. 2017).
# ImageNet-10 / ImageNet-Dogs: 10 / 15 ILSVRC2012 classes (repro/data/class_lists) of 1,300
#   train and 50 val images each: 13,000 / 500 and 19,500 / 750 (ProPos Table 1: 13,000 and
#   19,500).
# ImageNet-100: the 100 CMC classes (class_lists/imagenet100.txt): 126,689 train / 5,000 val
#   (Tian et al. 2019, CMC).
# Places205: 2,448,873 train / 20,500 val (100 per class) (Zhou et al. 2014).
# STL-10: 5,000 train, 8,000 test, 100,000 unlabeled (Coates et al. 2011).
# Tiny-ImageNet: 100,000 train / 10,000 val (200 classes x 500 / 50; cs231n).
# VOC2007: 5,011 trainval / 4,952 test (Everingham et al. 2010).
SPLIT_SIZES: dict[str, dict[str, int]] = {
    "cifar10": {"train": 50_000, "test": 10_000, "train+test": 60_000},
    "cifar100": {"train": 50_000, "test": 10_000, "train+test": 60_000},
    "cifar20": {"train": 50_000, "test": 10_000, "train+test": 60_000},
    "digits": {"train": 1_198, "test": 599},
    "fashion_mnist": {"train": 60_000, "test": 10_000, "train+test": 70_000},
    "imagenet": {"train": 1_281_167, "val": 50_000},
    "imagenet10": {"train": 13_000, "val": 500},
    "imagenet100": {"train": 126_689, "val": 5_000},
    "imagenet64": {"train": 1_281_167, "val": 50_000},
    "imagenet_dogs": {"train": 19_500, "val": 750},
    "places205": {"train": 2_448_873, "val": 20_500},
    "stl10": {"unlabeled": 100_000, "train": 5_000, "test": 8_000,
              "train+unlabeled": 105_000, "train+test": 13_000},
    "tiny_imagenet": {"train": 100_000, "val": 10_000},
    "voc07": {"trainval": 5_011, "test": 4_952},
}
# The synthetic fixtures `repro data fixture` writes (repro/data/fixtures.py defaults).
FIXTURE_SIZES: dict[str, dict[str, int]] = {
    "cifar10": SPLIT_SIZES["cifar10"],
    "voc07": {"trainval": 400, "test": 400},
}

# ---------------------------------------------------------------------------------------------
# Methods: (views trained through the backbone, views through a momentum/target encoder) per
# image. "n" = the recipe's views.options.n_views (default 2).
METHOD_VIEWS: dict[str, tuple] = {
    "byol": (2, 2),  # online on both views, target on both (symmetric=True; else 1, 1)
    "carl": (2, 0),
    "moco": (1, 1),  # query view trained, key view through the momentum encoder
    "pauc": (1, 1),
    "pcl": (1, 1),
    "pcl_fixed_phi": (1, 1),
    "propos": (2, 2),  # BYOL's branches
    "simclr": (2, 0),
    "simsiam": (2, 0),
    "supervised": ("n", 0),
    "swav": (2, 0),  # views[:2]: no multi-crop
    "untrained": (0, 0),  # nothing trained: one epoch of data loading
}
# The E-step fields of the methods' Config dataclasses that a recipe may leave out (checked
# against the dataclasses by tests/launch/test_cost.py).
METHOD_DEFAULTS: dict[str, dict] = {
    "byol": {"symmetric": True},
    "pauc": {"warmup_epochs": 20},
    "pcl": {"warmup_epochs": 20},
    "propos": {"symmetric": True, "warmup_epochs": 50, "reassign_every": 1,
               "data_resample": False},
}

# ---------------------------------------------------------------------------------------------
# Throughput.


@dataclass(frozen=True)
class Throughput:
    device: str  # "V100" | "A100": per GPU; "cpu": per CPU core of our 2-core machines
    arch: str  # a backbone, or "faster_rcnn_fpn" / "faster_rcnn_c4" (detection protocol)
    image_size: int  # input side, px
    cifar_stem: bool  # 3x3 stride-1 stem, no max-pool: 16x the pixels of the strided stem
    train: float | None  # images/s, forward + backward + update
    infer: float  # images/s, forward only
    source: str


# torchvision's model table (pytorch.org/vision/stable/models.html), GFLOPS at 224 px.
GFLOPS = {"resnet18": 1.81, "resnet34": 3.66, "resnet50": 4.09}
# NVIDIA DeepLearningExamples, PyTorch ResNet50 v1.5 README (NGC pytorch-21.03), 1 GPU, batch
# 256: training V100-16GB FP32 367 img/s, A100-80GB TF32 938 img/s; inference V100-16GB FP32
# 1261 img/s. PyTorch runs fp32 convolutions as TF32 on A100 by default.
NVIDIA_V100_TRAIN, NVIDIA_A100_TRAIN, NVIDIA_V100_INFER = 367.0, 938.0, 1261.0
INFER_PER_TRAIN = NVIDIA_V100_INFER / NVIDIA_V100_TRAIN  # 3.44 forward passes per training pass
A100_PER_V100 = NVIDIA_A100_TRAIN / NVIDIA_V100_TRAIN  # 2.56
CPU_INFER_PER_TRAIN = 3.0  # backward ~ 2 forwards (see the CPU rows)


def _byol_rate(images: float, epochs: int, hours: float, gpus: int) -> float:
    """Training passes/s per GPU implied by a BYOL run: each image is 2 training passes
    (online) + 2 forward passes (target) = 2 + 2 / INFER_PER_TRAIN training passes."""
    per_gpu = images * epochs / (hours * 3600 * gpus)
    return per_gpu * (2 + 2 / INFER_PER_TRAIN)


# MoCo v1, ImageNet-1M, 200 epochs, ResNet-50: 53 h on 8 V100 (facebookresearch/moco README,
# "Linear Classification"). Each image: 1 training pass (query) + 1 forward pass (key).
_MOCO_S_PER_IMAGE = 53 * 3600 * 8 / (200 * 1_281_167)  # 5.96 ms of GPU time
_R50_224_TRAIN = 1 / (_MOCO_S_PER_IMAGE - 1 / NVIDIA_V100_INFER)  # 194 img/s
# ProPos Table 7: BYOL, 1,000 epochs, 4 V100, ResNet-50: CIFAR-10 (60,000 images, 32 px)
# 9.0 h; STL-10 (105,000, 96 px) 14.7 h, ImageNet-10 (13,000, 96 px) 1.7 h, ImageNet-Dogs
# (19,500, 96 px) 2.6 h.
_R50_32_TRAIN = _byol_rate(60_000, 1000, 9.0, 4)  # 1195
_R50_96_TRAIN = sum(_byol_rate(n, 1000, h, 4) for n, h in
                    ((105_000, 14.7), (13_000, 1.7), (19_500, 2.6))) / 3  # 1332

_V100_R50 = (
    Throughput("V100", "resnet50", 224, False, _R50_224_TRAIN, NVIDIA_V100_INFER,
               "train: MoCo v1 200 epochs on ImageNet-1M in 53 h on 8 V100 "
               "(facebookresearch/moco README) = 5.96 ms per image of 1 training + 1 forward "
               "pass, less the forward at the inference rate (54% of NVIDIA's DALI-fed 367 "
               "img/s: research code decoding ImageNet JPEGs); infer: NVIDIA "
               "DeepLearningExamples ResNet50 v1.5 PyTorch README, V100-16GB FP32 batch 256. "
               "Checks: PCL ~5 days on 4 V100 (PCL sec. 4) is estimated at 4.9 days"),
    Throughput("V100", "resnet50", 96, False, _R50_96_TRAIN, _R50_96_TRAIN * INFER_PER_TRAIN,
               "ProPos Table 7 (BYOL, 1,000 epochs, 4 V100, ResNet-50): STL-10 14.7 h, "
               "ImageNet-10 1.7 h, ImageNet-Dogs 2.6 h at 96 px = 496 / 531 / 521 BYOL "
               "images/s per GPU; each image = 2 training + 2 forward passes; infer = train x "
               "3.44 (NVIDIA V100 FP32 inference / training, 1261 / 367)"),
    Throughput("V100", "resnet50", 32, True, _R50_32_TRAIN, _R50_32_TRAIN * INFER_PER_TRAIN,
               "ProPos Table 7 (BYOL, 1,000 epochs, 4 V100, ResNet-50): CIFAR-10 (60,000 "
               "images, 32 px, CIFAR stem) 9.0 h = 463 BYOL images/s per GPU; each image = 2 "
               "training + 2 forward passes; infer = train x 3.44 (NVIDIA 1261 / 367)"),
)


def _by_flops(row: Throughput, arch: str) -> Throughput:
    f = GFLOPS[row.arch] / GFLOPS[arch]
    return Throughput(row.device, arch, row.image_size, row.cifar_stem, row.train * f,
                      row.infer * f, f"derived: the {row.arch} row at {row.image_size} px x "
                      f"{f:.2f}, the torchvision GFLOPS ratio {GFLOPS[row.arch]} / "
                      f"{GFLOPS[arch]} (no published {arch} figure at this size)")


def _on_a100(row: Throughput) -> Throughput:
    return Throughput("A100", row.arch, row.image_size, row.cifar_stem,
                      row.train and row.train * A100_PER_V100, row.infer * A100_PER_V100,
                      f"derived: the V100 row x {A100_PER_V100:.2f}, NVIDIA "
                      "DeepLearningExamples' 1-GPU ResNet-50 training throughput A100-80GB TF32 "
                      "938 / V100-16GB FP32 367 img/s (fp32 convolutions run as TF32 on A100)")


_V100_BACKBONES = _V100_R50 + tuple(_by_flops(r, a) for a in ("resnet34", "resnet18")
                                    for r in _V100_R50)
# detectron2 MODEL_ZOO.md (8 V100, PyTorch 1.3, 2 images per GPU): faster_rcnn_R_50_FPN_1x
# 0.210 s/iter for 16 images, inference 0.038 s/image; faster_rcnn_R_50_C4_1x 0.551 s/iter,
# 0.102 s/image. COCO-sized images at 640-800 px; a frozen body trains somewhat faster.
_V100_DETECTION = (
    Throughput("V100", "faster_rcnn_fpn", 800, False, 16 / 0.210 / 8, 1 / 0.038,
               "detectron2 MODEL_ZOO.md, faster_rcnn_R_50_FPN_1x: 0.210 s/iter (16 images on "
               "8 V100), inference 0.038 s/image"),
    Throughput("V100", "faster_rcnn_c4", 800, False, 16 / 0.551 / 8, 1 / 0.102,
               "detectron2 MODEL_ZOO.md, faster_rcnn_R_50_C4_1x: 0.551 s/iter (16 images on "
               "8 V100), inference 0.102 s/image"),
)

# CPU rows: images per CPU-second on our 2-core machines, fp32, one thread per job and two
# jobs sharing the two cores (how `repro launch` runs the CPU scales); infer = 3 x train
# (backward ~ 2 forwards; check: PCL's four smoke E-steps, 12,000 forward passes, add 17 s to
# MoCo's smoke run, ~700/s against the 819/s of the 32 px row).
_FASHION = ("experiments/shared/real/fashion.yaml notes, measured at commit 3a9588d: SimCLR on "
            "10,000 Fashion-MNIST images (78 batches of 128, 2 views), 2 jobs sharing the 2 "
            "cores: ")
# The stored smoke detection records (torchvision backend, resnet18_tiny, 128-224 px, 40
# iterations x 2 images + 50 test images): median duration_s 333 s (FPN, frozen body) and 101 s
# (C4, trained body), 4 records each; with infer = 3 x train, t = (80 + 50 / 3) / duration.
_DET_CPU = {"fpn": (80 + 50 / 3) / 333, "c4": (80 + 50 / 3) / 101}
_CPU_ROWS = (
    Throughput(CPU, "resnet18_tiny", 28, False, 600_000 / 1_555, 3 * 600_000 / 1_555,
               "the stored real-scale records of commit dfa50b9 (Fashion-MNIST, 10,000 images x "
               "30 epochs x 2 trained views, 2 jobs sharing the 2 cores): SimCLR, SimSiam, SwAV "
               "and CARL took 22.3-26.6 CPU-min, median 1,555 s. At 28 px the per-image "
               "augmentation (PIL crop, colour jitter, ~1 ms a view) costs more than the "
               "network, so methods with extra forward passes (MoCo's keys, BYOL's target) are "
               "within 0.7-1.4x of this figure. (The 17 s/epoch measured at commit 3a9588d "
               "for choosing the size was 3x too fast.)"),
    Throughput(CPU, "resnet18_tiny", 28, True, 19_968 / 56, 3 * 19_968 / 56,
               _FASHION + "56 s/epoch with the CIFAR stem"),
    Throughput(CPU, "resnet18", 28, False, 19_968 / 87, 3 * 19_968 / 87,
               _FASHION + "87 s/epoch (full ResNet-18, strided stem)"),
    Throughput(CPU, "resnet18_tiny", 32, True, 19_968 / 56 * (28 / 32) ** 2,
               3 * 19_968 / 56 * (28 / 32) ** 2,
               "derived: the 28 px CIFAR-stem row x (28/32)^2 pixels; the stored smoke "
               "records agree (SimCLR smoke, 35,328 views in 123 s: 287/s per job). "
               "machine-figures.md's ~115-125 images/s is one job on 2 threads at batch 256"),
    Throughput(CPU, "resnet18_tiny", 16, True, 46_080 / 35, 3 * 46_080 / 35,
               "results/digits/methods.json at commit ab212df (since replaced by the digits "
               "scale; 1 thread): SimCLR, 20 epochs x 9 batches of 128 x 2 views of 16 px "
               "digits in 35 s"),
    Throughput(CPU, "resnet18", 32, True, 36 / 2, 3 * 36 / 2,
               "machine-figures.md: ResNet-18, CIFAR stem, 32 px, batch 256, fp32, 2 threads: "
               "32-40 views/s, i.e. ~18 per CPU-second"),
    Throughput(CPU, "pixels", 28, False, None, 3100,
               "measured for this table: eval_transform(28, fashion_mnist) on 2,000 images, "
               "1 thread, another job running (the identity backbone costs only the data "
               "pipeline)"),
    Throughput(CPU, "pixels", 16, True, None, 3100,
               "as the 28 px row (the digits pipeline resizes 32 -> 16 px: no cheaper)"),
    Throughput(CPU, "pixels", 32, True, None, 3100 * (28 / 32) ** 2,
               "derived: the 28 px row x (28/32)^2 pixels"),
    Throughput(CPU, "faster_rcnn_fpn", 224, False, _DET_CPU["fpn"], 3 * _DET_CPU["fpn"],
               "the 4 stored smoke det_voc07 records (torchvision Faster R-CNN FPN, frozen "
               "resnet18_tiny body, 128-224 px): median 333 s for 80 training + 50 test "
               "images; split with infer = 3 x train"),
    Throughput(CPU, "faster_rcnn_c4", 224, False, _DET_CPU["c4"], 3 * _DET_CPU["c4"],
               "the 4 stored smoke det_coco records (torchvision Faster R-CNN C4 on the VOC07 "
               "fixture, resnet18_tiny trained, 128-224 px): median 101 s for 80 training + 50 "
               "test images; split with infer = 3 x train"),
)

THROUGHPUT: tuple[Throughput, ...] = (
    _V100_BACKBONES + _V100_DETECTION + tuple(_on_a100(r) for r in _V100_BACKBONES
                                              + _V100_DETECTION) + _CPU_ROWS
)


class UnknownCost(LookupError):
    """No figure for this job; the message says what is missing."""


def _effective_side(size: int, cifar_stem: bool) -> int:
    return size * 4 if cifar_stem else size  # the strided stem divides each side by 4


def throughput(device: str, arch: str, image_size: int, cifar_stem: bool = False
               ) -> tuple[Throughput, str]:
    """The row for (device, arch, size, stem): exact, else the same device and architecture's
    row of the nearest effective resolution scaled by the pixel ratio (FLOPs ~ pixels).
    Returns (row, how it was used)."""
    rows = [r for r in THROUGHPUT if r.device == device and r.arch == arch]
    if not rows:
        raise UnknownCost(f"no {device} throughput for {arch}")
    if arch.startswith("faster_rcnn"):  # detectors: one row per device, their own image sizes
        return rows[0], f"{arch} ({rows[0].image_size} px)"
    for r in rows:
        if r.image_size == image_size and r.cifar_stem == cifar_stem:
            return r, f"{arch} {image_size} px{' CIFAR stem' if cifar_stem else ''}"
    side = _effective_side(image_size, cifar_stem)
    best = min(rows, key=lambda r: abs(math.log(_effective_side(r.image_size, r.cifar_stem)
                                                / side)))
    f = (_effective_side(best.image_size, best.cifar_stem) / side) ** 2
    scaled = Throughput(device, arch, image_size, cifar_stem, best.train and best.train * f,
                        best.infer * f, best.source)
    return scaled, (f"{arch} {image_size} px{' CIFAR stem' if cifar_stem else ''}, scaled x"
                    f"{f:.2f} from the {best.image_size} px row")


def dataset_size(ref: dict, sources: dict | None = None) -> int:
    """Images of a data reference {dataset, split, subset} (its ``subset`` when smaller)."""
    name, split = ref["dataset"], ref.get("split") or "train"
    synthetic = (sources or {}).get(name) == "synthetic"
    table = FIXTURE_SIZES if synthetic and name in FIXTURE_SIZES else SPLIT_SIZES
    if name not in table:
        raise UnknownCost(f"no size for dataset {name}")
    if split not in table[name]:
        raise UnknownCost(f"no size for {name} split {split}")
    n = table[name][split]
    return min(n, int(ref["subset"])) if ref.get("subset") else n


# ---------------------------------------------------------------------------------------------
# Estimates.


@dataclass
class Estimate:
    seconds: float | None  # device-seconds: GPU-seconds or CPU-seconds, summed over units
    device: str  # "V100" | "A100" | "cpu"
    units: int  # GPUs or CPUs of the job
    kind: str = "pretrain"
    why: str | None = None  # why it is unknown
    basis: list[str] = field(default_factory=list)

    @property
    def gpu(self) -> bool:
        return self.device != CPU

    @property
    def known(self) -> bool:
        return self.seconds is not None

    @property
    def amount(self) -> float:
        """GPU-hours or CPU-minutes."""
        return self.seconds / 3600 if self.gpu else self.seconds / 60

    @property
    def unit(self) -> str:
        return "GPU-h" if self.gpu else "CPU-min"

    def text(self) -> str:
        if not self.known:
            return f"cost unknown ({self.why})"
        if self.amount < 0.01:
            return f"<0.01 {self.unit}"
        return f"~{fmt(self.amount)} {self.unit}"


def fmt(x: float) -> str:
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.0f}"
    if x >= 1:
        return f"{x:.1f}"
    return f"{x:.2g}"


def device_for(resources: dict, kind: str = "pretrain") -> tuple[str, int]:
    """(device, units) of a job with these resources: its GPUs (nodes x gpus_per_node for
    pretraining; an evaluation is one process), else its CPUs."""
    gpus = int(resources.get("gpus_per_node") or 0)
    if gpus > 0:
        nodes = int(resources.get("nodes") or 1) if kind == "pretrain" else 1
        wanted = str(resources.get("constraint") or "").lower()
        device = next((d for d in GPU_DEVICES if d.lower() in wanted), DEFAULT_GPU)
        return device, gpus * nodes
    return CPU, max(1, int(resources.get("cpus_per_task") or 1))


def _images_per_epoch(n: int, batch: int) -> int:
    return (n // batch) * batch if n >= batch else n


# A method that subclasses another without changing its Config or E-step: it warms up and
# clusters as that one (its defaults and E-step cost are looked up under it).
VARIANT_OF: dict[str, str] = {"pcl_fixed_phi": "pcl"}


def family(method: str) -> str:
    """The method whose E-step settings ``method`` has (itself unless a VARIANT_OF)."""
    return VARIANT_OF.get(method, method)


def estep_epochs(method: str, params: dict, epochs: int) -> int:
    """Epochs whose E-step extracts features of the whole training set."""
    method = family(method)
    p = {**METHOD_DEFAULTS.get(method, {}), **params}
    if method in ("pcl", "pauc"):
        return max(0, epochs - int(p["warmup_epochs"]))
    if method == "propos":
        count, labelled = 0, False
        for e in range(epochs):
            due = e % int(p["reassign_every"]) == 0 or not labelled
            if not due or (e < int(p["warmup_epochs"]) and not p["data_resample"]):
                continue
            count, labelled = count + 1, True
        return count
    return 0


def pretrain_passes(recipe: dict, sources: dict | None = None) -> tuple[float, float, list]:
    """(training passes, forward passes, basis lines) of a pretraining recipe."""
    method, params = recipe["method"], recipe.get("params", {})
    if method not in METHOD_VIEWS:
        raise UnknownCost(f"no views factor for method {method}")
    n = dataset_size(recipe["data"], sources)
    optim = recipe["optim"]
    epochs = int(optim["epochs"])
    seen = _images_per_epoch(n, int(optim["batch_size"])) * epochs
    trained, momentum = METHOD_VIEWS[method]
    if trained == "n":
        trained = int(recipe.get("views", {}).get("options", {}).get("n_views", 2))
    if method in ("byol", "propos") and not {**METHOD_DEFAULTS[method], **params}["symmetric"]:
        trained, momentum = 1, 1
    esteps = estep_epochs(method, params, epochs)
    basis = [f"{n:,} images x {epochs} epochs x {trained} trained"
             + (f" + {momentum} momentum-encoder" if momentum else "") + " view(s)"]
    if esteps:
        basis.append(f"{esteps} E-step extraction(s) of {n:,} images")
    return seen * trained, seen * momentum + esteps * n, basis


def _detection_passes(params: dict, n_train: int, n_test: int) -> tuple[float, float, str]:
    """(training images, test images, detector) of a detection evaluation."""
    if params.get("backend", "torchvision") == "detectron2":
        from repro.eval.detection.config import load_config  # yaml only, no torch

        cfg = load_config(params.get("config", "pascal_voc_R_50_FPN_frozen_pcl"))
        solver = dict(cfg.get("SOLVER", {}))
        opts = list(params.get("opts", ()))
        for key, value in zip(opts[::2], opts[1::2]):
            if key in ("SOLVER.MAX_ITER", "SOLVER.IMS_PER_BATCH"):
                solver[key.split(".")[1]] = int(value)
        name = str(cfg.get("MODEL", {}).get("BACKBONE", {}).get("NAME", "")).lower()
        head = "faster_rcnn_fpn" if "fpn" in name else "faster_rcnn_c4"
        return int(solver["MAX_ITER"]) * int(solver["IMS_PER_BATCH"]), n_test, head
    batch = int(params.get("batch_size", 8))
    iters = params.get("max_iter")
    if iters is None:
        iters = math.ceil(float(params.get("epochs", 15)) * max(1, math.ceil(n_train / batch)))
    limit = params.get("limit_test_images")
    head = "faster_rcnn_fpn" if params.get("arch", "fpn") == "fpn" else "faster_rcnn_c4"
    return int(iters) * batch, min(n_test, int(limit)) if limit else n_test, head


def eval_passes(ev: dict, recipe: dict, sources: dict | None = None
                ) -> tuple[float, float, list, str | None]:
    """(training passes, forward passes, basis, detector arch or None) of an evaluation."""
    protocol, params = ev["protocol"], ev.get("params", {})
    n_train, n_test = dataset_size(ev["train"], sources), dataset_size(ev["test"], sources)
    from repro.eval import PROTOCOL_INPUTS  # no torch

    if protocol not in PROTOCOL_INPUTS:
        raise UnknownCost(f"unknown protocol {protocol}")
    if protocol == "detection":
        train, test, head = _detection_passes(params, n_train, n_test)
        return train, test, [f"{train:,} detector training images + {test:,} test images"], head
    if PROTOCOL_INPUTS[protocol] == "features":
        return 0, n_train + n_test, [f"features of {n_train:,} + {n_test:,} images"], None
    limit = params.get("limit_batches")
    per_epoch = n_train
    if protocol == "linear_probe_augmented":
        if limit:
            per_epoch = min(n_train, int(limit) * int(params.get("batch_size", 256)))
        epochs = int(params.get("epochs", 100))
        return 0, epochs * per_epoch + n_test, [
            f"{epochs} epochs x {per_epoch:,} frozen-backbone images + {n_test:,} test"], None
    if protocol in ("finetune", "finetune_carl"):
        labelled = max(1, round(float(params.get("label_fraction", 1.0)) * n_train))
        epochs = int(params.get("epochs", 20 if protocol == "finetune" else 50))
        return epochs * labelled, n_test, [
            f"{epochs} epochs x {labelled:,} labelled images + {n_test:,} test"], None
    raise UnknownCost(f"no cost model for protocol {protocol}")


def _seconds(train: float, forward: float, row: Throughput) -> float:
    if train and not row.train:
        raise UnknownCost(f"no {row.device} training rate for {row.arch}")
    return (train / row.train if train else 0.0) + forward / row.infer


def estimate_pretrain(recipe: dict, resources: dict | None = None,
                      sources: dict | None = None) -> Estimate:
    device, units = device_for(resources or {}, "pretrain")
    try:
        train, forward, basis = pretrain_passes(recipe, sources)
        bb = recipe["backbone"]
        row, how = throughput(device, bb["arch"], int(recipe["views"]["image_size"]),
                              bool(bb.get("cifar_stem", False)))
        secs = _seconds(train, forward, row) + STARTUP_S.get(device, 0.0) * units
    except UnknownCost as err:
        return Estimate(None, device, units, "pretrain", str(err))
    return Estimate(secs, device, units, "pretrain", None, basis + [f"at {how} on {device}"])


def estimate_eval(ev: dict, recipe: dict, resources: dict | None = None,
                  sources: dict | None = None) -> Estimate:
    device, units = device_for(resources or {}, "eval")
    try:
        train, forward, basis, head = eval_passes(ev, recipe, sources)
        bb = recipe["backbone"]
        size = int(ev.get("features", {}).get("image_size") or recipe["views"]["image_size"])
        if head is not None:
            row, how = throughput(device, head, 0)
        else:
            row, how = throughput(device, bb["arch"], size, bool(bb.get("cifar_stem", False)))
        secs = _seconds(train, forward, row) + STARTUP_S.get(device, 0.0) * units
    except UnknownCost as err:
        return Estimate(None, device, units, "eval", str(err))
    return Estimate(secs, device, units, "eval", None, basis + [f"at {how} on {device}"])


def estimate_job(job, resources: dict | None = None, sources: dict | None = None) -> Estimate:
    """The estimate of a ``repro.jobs.Job`` with ``resources`` (default: its spec's)."""
    res = job.payload.get("resources", {}) if resources is None else resources
    if job.kind == "pretrain":
        return estimate_pretrain(job.payload["recipe"], res, sources)
    return estimate_eval(job.payload["eval"], job.payload["recipe"], res, sources)


def total_line(estimates: list[Estimate], cores: int | None = None) -> str:
    """``estimated total: ...``: GPU-hours and/or CPU-minutes, pretraining and evaluation,
    the wall time one job at a time (or on ``cores`` CPUs for local CPU runs), and how many
    jobs could not be estimated."""
    parts = []
    for gpu in (True, False):
        known = [e for e in estimates if e.known and e.gpu == gpu]
        if not known:
            continue
        unit = known[0].unit
        amount = sum(e.amount for e in known)
        by_kind = {k: sum(e.amount for e in known if e.kind == k) for k in ("pretrain", "eval")}
        split = ""
        if all(by_kind.values()):
            split = (f"pretraining {fmt(by_kind['pretrain'])}, "
                     f"evaluation {fmt(by_kind['eval'])}; ")
        wall_s = sum(e.seconds / e.units for e in known)
        if gpu:
            devices = sorted({e.device for e in known})
            per = {e.kind: e.units for e in known}
            counts = sorted({e.units for e in known})
            if len(counts) == 1:
                where = f"{counts[0]} {'/'.join(devices)} ≈ {fmt(wall_s / 3600)} h wall"
            else:
                where = (f"{'/'.join(devices)}, ≈ {fmt(wall_s / 3600)} h wall one job at a "
                         f"time: {per.get('pretrain', '?')} GPU(s) per pretraining, "
                         f"{per.get('eval', '?')} per evaluation")
            parts.append(f"~{fmt(amount)} {unit} ({split}{where})")
        else:
            cpus = sorted({e.units for e in known})
            per = f"{'/'.join(map(str, cpus))} CPU per job"
            if cores:
                at_once = max(1, cores // max(cpus))
                wall = f"≈ {fmt(wall_s / 60 / at_once)} min wall on {cores} cores"
            else:
                wall = f"≈ {fmt(wall_s / 60)} min wall one job at a time"
            parts.append(f"~{fmt(amount)} {unit} ({split}{per}; {wall})")
    unknown = [e for e in estimates if not e.known]
    text = " + ".join(parts) if parts else "unknown"
    if unknown:
        why = sorted({e.why for e in unknown})
        text += (f"; {len(unknown)} job(s) cost unknown ({'; '.join(why[:3])}"
                 f"{'; ...' if len(why) > 3 else ''})")
    return f"estimated total: {text}"


def local_cores() -> int:
    return os.cpu_count() or 1
