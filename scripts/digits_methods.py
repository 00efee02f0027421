"""Every registered method, briefly pretrained on real images (scikit-learn digits), then
k-means (k = 10) on its features of the test split, next to k-means on raw pixels.

Run:   .venv/bin/python scripts/digits_methods.py            (~10 min on 2 CPU cores)
       .venv/bin/python scripts/digits_methods.py --quick    (1 epoch each, a pipeline check)
Writes results/digits/methods.md and results/digits/methods.json.

Scale: 1198 training digits (32x32 RGB upscales of 8x8 scans, served at ``--image-size``),
resnet18_tiny (CIFAR stem), a few epochs, one seed. Not a paper number: it shows that each
method learns features that cluster real images, and how it compares with raw pixels.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from repro.cluster.kmeans import faiss_kmeans  # noqa: E402
from repro.data import build_dataset, dataset_targets  # noqa: E402
from repro.data.transforms import eval_transform  # noqa: E402
from repro.eval.clustering import ari, clustering_accuracy, nmi  # noqa: E402
from repro.features import extract_features  # noqa: E402
from repro.methods import METHODS  # noqa: E402
from repro.models import build_backbone  # noqa: E402
from repro.train.pretrain import load_encoder, pretrain  # noqa: E402

K = 10
# Small heads and short-run momenta; everything else is each method's default.
PARAMS = {
    "byol": {"dim": 64, "hidden_dim": 256, "momentum": 0.99, "bn_splits": 4},
    "carl": {"dim": 64, "hidden_dim": 256, "num_prototypes": 100},
    "moco": {"dim": 64, "queue_size": 1024, "head": "mlp", "momentum": 0.99,
             "temperature": 0.2, "bn_splits": 4},
    "pauc": {"dim": 64, "queue_size": 1024, "head": "mlp", "momentum": 0.99,
             "temperature": 0.2, "bn_splits": 4, "num_clusters": [10, 20, 40],
             "num_neg_prototypes": 16},
    "pcl": {"dim": 64, "queue_size": 1024, "head": "mlp", "momentum": 0.99,
            "temperature": 0.2, "bn_splits": 4, "num_clusters": [10, 20, 40],
            "num_neg_prototypes": 16},
    "propos": {"dim": 64, "hidden_dim": 256, "momentum": 0.99, "bn_splits": 4,
               "num_clusters": K, "kmeans_niter": 50, "kmeans_nredo": 3},
    "simclr": {"dim": 64, "hidden_dim": 128, "temperature": 0.5},
    "simsiam": {"dim": 256, "projector_hidden_dim": 256, "predictor_hidden_dim": 64},
    "swav": {"dim": 64, "hidden_dim": 256, "num_prototypes": 100},
}


def recipe(name: str, epochs: int, image_size: int) -> dict:
    params = dict(PARAMS.get(name, {}))
    warm = max(1, epochs // 3)  # E-step methods: InfoNCE/BYOL only for the first third
    if name in ("pcl", "pauc", "propos"):
        params["warmup_epochs"] = warm
    if name == "carl":
        params["lambda_decay_epochs"] = max(1, epochs // 2)
    return {
        "method": name, "params": params,
        "backbone": {"arch": "resnet18_tiny", "cifar_stem": True},
        "data": {"dataset": "digits", "split": "train"},
        "views": {"name": "simclr", "image_size": image_size, "options": {"dataset": "digits"}},
        "optim": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4,
                  "batch_size": 128, "epochs": epochs, "schedule": "cosine",
                  "warmup_epochs": 1, "per_step": True},
        "runtime": {"threads": 1},  # 1 thread: faster than 2 on a shared 2-core machine
    }


def kmeans_scores(x: np.ndarray, labels: np.ndarray, seed: int) -> dict[str, float]:
    km = faiss_kmeans(x.astype(np.float32), K, niter=100, nredo=10, seed=seed)
    pred = km.assignments
    return {"nmi": nmi(labels, pred), "acc": clustering_accuracy(labels, pred),
            "ari": ari(labels, pred)}


def l2n(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def commit() -> str:
    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout
    head = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    return head + (" + uncommitted changes" if git("status", "--porcelain").strip() else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--image-size", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--methods", nargs="*", default=METHODS.names())
    ap.add_argument("--quick", action="store_true", help="1 epoch per method")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "digits")
    ap.add_argument("--render", action="store_true",
                    help="only re-render methods.md from the existing methods.json")
    args = ap.parse_args()
    if args.render:
        saved = json.loads((args.out / "methods.json").read_text())
        sys.argv = saved["meta"]["command"].split()[1:]
        write(argparse.Namespace(**{**vars(args), "image_size": saved["meta"]["image_size"],
                                    "seed": saved["meta"]["seed"]}),
              saved["meta"]["epochs"], saved["rows"], saved["meta"]["commit"])
        return
    epochs = 1 if args.quick else args.epochs
    started_at = commit()  # the code that runs, even if the tree changes during the run
    torch.set_num_threads(1)

    test = build_dataset("digits", "test", eval_transform(args.image_size, "digits"))
    labels = dataset_targets(test)
    pixels = torch.stack([test[i][0] for i in range(len(test))]).flatten(1).numpy()
    rows = {"raw pixels": {**kmeans_scores(pixels, labels, args.seed), "dim": pixels.shape[1],
                           "train_seconds": 0.0}}
    print("raw pixels", rows["raw pixels"], flush=True)
    torch.manual_seed(args.seed)
    random_trunk, dim = build_backbone("resnet18_tiny", cifar_stem=True)
    feats = extract_features(random_trunk, test, batch_size=256)
    rows["untrained trunk"] = {**kmeans_scores(l2n(feats), labels, args.seed), "dim": dim,
                               "train_seconds": 0.0}
    print("untrained trunk", rows["untrained trunk"], flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.methods:
            run_dir = Path(tmp) / name
            t0 = time.time()
            summary = pretrain(recipe(name, epochs, args.image_size), run_dir, seed=args.seed,
                               log=lambda *_: None)
            trunk, dim = load_encoder(run_dir, "query")
            feats = extract_features(trunk, test, batch_size=256)
            rows[name] = {**kmeans_scores(l2n(feats), labels, args.seed), "dim": dim,
                          "train_seconds": round(time.time() - t0, 1),
                          "final_loss": summary["final_loss"]}
            print(name, rows[name], flush=True)
    write(args, epochs, rows, started_at)


def write(args, epochs: int, rows: dict, commit_id: str | None = None) -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    command = "python scripts/digits_methods.py " + " ".join(sys.argv[1:])
    meta = {"data": "real: scikit-learn digits (1198 train / 599 test, stratified, seed 0)",
            "backbone": "resnet18_tiny, CIFAR stem", "image_size": args.image_size,
            "epochs": epochs, "batch_size": 128, "seed": args.seed, "commit": commit_id or commit(),
            "command": command.strip(), "kmeans": "faiss, k=10, 100 iterations, 10 restarts"}
    (args.out / "methods.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    raw = rows["raw pixels"]
    lines = [
        "# Clustering digits with features of briefly pretrained methods",
        "",
        f"Real data: scikit-learn `digits` (8x8 scans served as {args.image_size}x"
        f"{args.image_size} RGB), pretraining on the 1198-image train split, k-means (k=10) on "
        "L2-normalised pooled trunk features of the 599-image test split; raw pixels = k-means "
        "on the same test images' (normalised) pixels; untrained trunk = the randomly "
        "initialised resnet18_tiny (seed as below), a floor every method should beat.",
        f"Scale: resnet18_tiny (CIFAR stem), {epochs} epochs, batch 128, SGD lr 0.1 cosine, "
        f"seed {args.seed} (one seed: differences of a few points are within noise). "
        "Augmentation: SimCLR recipe (its horizontal flip is not label-preserving for digits).",
        f"Commit: {meta['commit']}. Command: `{meta['command']}`.",
        "Not comparable with any paper number: a CPU check that each method learns.",
        "",
        "| method | NMI | ACC | ARI | NMI > raw pixels | NMI > untrained trunk | train s "
        "| final loss |",
        "|---|---|---|---|---|---|---|---|",
    ]
    untrained = rows["untrained trunk"]
    for name, r in rows.items():
        base = name in ("raw pixels", "untrained trunk")
        beats_raw = "-" if base else ("yes" if r["nmi"] > raw["nmi"] else "no")
        beats_init = "-" if base else ("yes" if r["nmi"] > untrained["nmi"] else "no")
        loss = r.get("final_loss")
        lines.append(f"| {name} | {r['nmi']:.3f} | {r['acc']:.3f} | {r['ari']:.3f} | "
                     f"{beats_raw} | {beats_init} | {r['train_seconds']:.0f} | "
                     f"{'' if loss is None else f'{loss:.3f}'} |")
    trained = {n: r for n, r in rows.items() if n not in ("raw pixels", "untrained trunk")}
    winners = [n for n, r in trained.items() if r["nmi"] > raw["nmi"]]
    losers = [n for n, r in trained.items() if r["nmi"] <= untrained["nmi"]]
    lines += ["", "Methods whose features beat k-means on raw pixels (NMI): "
              + (", ".join(winners) if winners else "none at this scale") + ".",
              "Methods not better than the untrained trunk (NMI): "
              + (", ".join(losers) if losers else "none") + "."]
    swav = trained.get("swav")
    protos = PARAMS["swav"]["num_prototypes"]
    if swav and abs(swav["final_loss"] - math.log(protos)) < 0.05:
        lines.append(f"SwAV's loss ended at ln K = {math.log(protos):.3f}: uniform predictions "
                     "and codes, the collapse the SwAV authors warn about for small batches "
                     "without a queue (their advice: a queue, a smaller epsilon).")
    (args.out / "methods.md").write_text("\n".join(lines) + "\n")
    print((args.out / "methods.md").read_text())


if __name__ == "__main__":
    main()
