"""Training-step throughput of every registered method and the cost of its E-step (CPU).

Run:   .venv/bin/python benchmarks/bench_methods.py                 (ResNet-18, batch 256)
       .venv/bin/python benchmarks/bench_methods.py --quick         (resnet18_tiny, 1 step)
Not a test. Step = forward of both views + backward + SGD step + on_step_end, at 32 px with
the CIFAR stem, after one untimed warm-up step; E-step methods are timed with their
prototype losses on (clusters from random features). E-step time = k-means alone (the method's
``on_epoch_start`` on random L2-normalised features of the CIFAR training-set size), without
the feature extraction pass, which costs one forward over the training set.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from repro.methods import METHODS  # noqa: E402
from repro.methods.base import EpochContext  # noqa: E402
from repro.train.pretrain import build_method, build_optimizer  # noqa: E402

# CIFAR-10 settings of each paper where the defaults are ImageNet's.
CIFAR_PARAMS = {
    "pcl": {"num_clusters": [250, 500, 1000], "warmup_epochs": 0},
    "pauc": {"num_clusters": [250, 500, 1000], "warmup_epochs": 0},
    "propos": {"num_clusters": 10, "warmup_epochs": 0},
    "swav": {"num_prototypes": 100},
}
HAS_ESTEP = ("pcl", "pauc", "propos")


def context(n: int, dim: int) -> EpochContext:
    feats = torch.nn.functional.normalize(torch.randn(n, dim), dim=1)
    return EpochContext(epoch=0, total_epochs=1, num_samples=n, extract=lambda module: feats)


def feature_dim(method) -> int:
    return method.cfg.dim


def time_steps(name: str, arch: str, batch: int, steps: int, size: int) -> float:
    torch.manual_seed(0)
    method = build_method({"method": name, "params": CIFAR_PARAMS.get(name, {}),
                           "backbone": {"arch": arch, "cifar_stem": True}})
    opt = build_optimizer(method, {"lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4})
    n_train = 2000
    if name in HAS_ESTEP:
        method.on_epoch_start(context(n_train, feature_dim(method)))
    views = [torch.randn(batch, 3, size, size), torch.randn(batch, 3, size, size)]
    index = torch.randint(0, n_train, (batch,))
    method.train()
    elapsed = 0.0
    for step in range(steps + 1):  # step 0 warms up
        t0 = time.perf_counter()
        out = method(views, index, 0)
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        opt.step()
        method.on_step_end(0.5)
        if step > 0:
            elapsed += time.perf_counter() - t0
    return batch * steps / elapsed


def time_estep(name: str, n: int) -> float:
    method = build_method({"method": name, "params": CIFAR_PARAMS.get(name, {}),
                           "backbone": {"arch": "resnet18_tiny", "cifar_stem": True}})
    ctx = context(n, feature_dim(method))
    t0 = time.perf_counter()
    method.on_epoch_start(ctx)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="resnet18")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--estep-n", type=int, default=50000, help="training-set size for k-means")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--methods", nargs="*", default=METHODS.names())
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.arch, args.steps, args.estep_n = "resnet18_tiny", 1, 5000
    torch.set_num_threads(args.threads)
    print(f"# {args.arch} (CIFAR stem), batch {args.batch}, {args.image_size} px, two views, "
          f"{args.steps} timed step(s) after 1 warm-up, {args.threads} threads, fp32; "
          f"E-step = k-means on N={args.estep_n} random features")
    print("| method | images/s | s/step | E-step s |")
    print("|---|---|---|---|")
    for name in args.methods:
        ips = time_steps(name, args.arch, args.batch, args.steps, args.image_size)
        estep = f"{time_estep(name, args.estep_n):.1f}" if name in HAS_ESTEP else "-"
        print(f"| {name} | {ips:.1f} | {args.batch / ips:.2f} | {estep} |", flush=True)


if __name__ == "__main__":
    main()
