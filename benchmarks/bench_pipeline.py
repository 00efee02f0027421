"""PCL Table 3 pipeline figures: the E-step at CIFAR granularities and a fully stored rerun.

- E-step: PCL's k-means for K in {250, 500, 1000} on 60000 x 128 L2-normalised features
  (faiss, GPU index when a GPU is present), niter 20, nredo 5 as the authors' code, plus phi.
- Rerun: `repro launch experiments/pcl/table3.yaml --scale smoke` when every result is
  stored must train nothing and finish in seconds (target <= 10 s).
- `--cold`: also time a cold smoke run in a fresh store (target <= 10 minutes on 2 cores).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from repro.methods.estep import cluster_features

ROOT = Path(__file__).resolve().parents[1]


def bench_estep(n=60000, d=128, ks=(250, 500, 1000), nredo=5):
    torch.manual_seed(0)
    centers = torch.nn.functional.normalize(torch.randn(2000, d), dim=1)
    feats = centers[torch.randint(0, 2000, (n,))] + 0.3 * torch.randn(n, d)
    t = time.perf_counter()
    out = cluster_features(feats, list(ks), temperature=0.1, nredo=nredo)
    dt = time.perf_counter() - t
    return dt, [int(c.assignments.unique().numel()) for c in out]


def bench_rerun():
    env = dict(os.environ)
    t = time.perf_counter()
    proc = subprocess.run([str(ROOT / ".venv/bin/repro"), "launch",
                           "experiments/pcl/table3.yaml", "--scale", "smoke"],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t
    summary = [l for l in proc.stdout.splitlines() if "jobs," in l]
    return dt, proc.returncode, summary[-1] if summary else proc.stdout[-300:]


if __name__ == "__main__":
    print(f"torch threads {torch.get_num_threads()}, GPU: {torch.cuda.is_available()}")
    dt, used = bench_estep(nredo=1)
    print(f"E-step K=250+500+1000 on 60000x128, nredo=1: {dt:.1f} s (non-empty clusters {used})")
    dt, used = bench_estep(nredo=5)
    print(f"E-step K=250+500+1000 on 60000x128, nredo=5 (authors'): {dt:.1f} s")
    dt, rc, summary = bench_rerun()
    print(f"make table3 rerun with every result stored: {dt:.1f} s (exit {rc}); {summary}")
    if "--cold" in sys.argv:
        with tempfile.TemporaryDirectory() as tmp:
            env = dict(os.environ, REPRO_STORE=f"{tmp}/store", REPRO_RUNS=f"{tmp}/runs",
                       REPRO_LOGS=f"{tmp}/logs")
            t = time.perf_counter()
            subprocess.run([str(ROOT / ".venv/bin/repro"), "launch",
                            "experiments/pcl/table3.yaml", "--scale", "smoke"], cwd=ROOT,
                           env=env, check=True, capture_output=True)
            print(f"make table3 cold (fresh store, data present): "
                  f"{time.perf_counter() - t:.0f} s")
