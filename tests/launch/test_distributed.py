"""torch.distributed with gloo on two CPU processes: the E-step's feature gathering (padded
samples counted once), k-means on rank 0 broadcast to every rank, DDP giving the loss and
gradients of one process on the concatenated batch, and a whole pretraining job run by
submitit's local executor as two tasks."""

import copy
import json
import socket
from pathlib import Path

import torch
import torch.multiprocessing as mp
from torch import nn

from repro import distributed as D
from repro import jobs, store
from repro.launch import executor_for, job_dict
from repro.launch.runner import JobRunner
from repro.methods.estep import cluster_features
from repro.spec import load_table
from repro.train.pretrain import build_method, make_extractor

TINY = Path(__file__).resolve().parents[1] / "fixtures" / "tiny_table.yaml"
# 101 samples on 2 ranks: DistributedSampler pads rank 1 with a duplicate of sample 0
EXTRACT_RECIPE = {"data": {"dataset": "digits", "split": "train", "subset": 101},
                  "views": {"image_size": 16}, "runtime": {}}
CARL_RECIPE = {"method": "carl", "backbone": {"arch": "resnet18_tiny", "cifar_stem": True},
               "params": {"dim": 16, "hidden_dim": 32, "num_prototypes": 10}}
BATCH = 8


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _feature_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 8))


def _carl_and_batch():
    torch.manual_seed(0)
    method = build_method(CARL_RECIPE).eval()  # BN on running statistics: per-sample
    gen = torch.Generator().manual_seed(1)
    views = [torch.randn(BATCH, 3, 16, 16, generator=gen) for _ in range(2)]
    return method, views, torch.arange(BATCH)


def _grads(module: nn.Module) -> dict:
    return {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}


def _rank_main(rank: int, world: int, port: int, out_dir: str) -> None:
    import os

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    assert D.init_from_env() and D.world_size() == world
    extract = make_extractor(EXTRACT_RECIPE, torch.device("cpu"), batch_size=16)
    feats = extract(_feature_net())
    clusters = cluster_features(feats, [4], temperature=0.1, nredo=1)[0]

    method, views, index = _carl_and_batch()
    ddp = nn.parallel.DistributedDataParallel(method)
    mine = slice(rank * BATCH // world, (rank + 1) * BATCH // world)
    out = ddp([v[mine] for v in views], index[mine], 0)
    out["loss"].backward()
    torch.save({"feats": feats, "prototypes": clusters.prototypes, "phi": clusters.phi,
                "assignments": clusters.assignments, "loss": out["loss"].detach(),
                "grads": _grads(method)}, Path(out_dir) / f"rank{rank}.pt")
    torch.distributed.destroy_process_group()


def test_gloo_two_ranks_match_one_process(tmp_path):
    mp.spawn(_rank_main, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))

    # E-step: every sample once, in index order, identical to one process on all 101
    extract = make_extractor(EXTRACT_RECIPE, torch.device("cpu"), batch_size=16)
    single = extract(_feature_net())
    assert single.shape == (101, 8)
    for r in (r0, r1):
        torch.testing.assert_close(r["feats"], single)
    # k-means ran once (rank 0) and both ranks hold its result
    for name in ("prototypes", "phi", "assignments"):
        assert torch.equal(r0[name], r1[name]), name
    ref = cluster_features(single, [4], temperature=0.1, nredo=1)[0]
    assert torch.equal(ref.assignments, r0["assignments"])

    # DDP: mean of the per-rank losses and the averaged gradients equal one process on the
    # concatenated batch (CARL's KL term is taken over the all-gathered batch)
    method, views, index = _carl_and_batch()
    out = method(views, index, 0)
    out["loss"].backward()
    torch.testing.assert_close((r0["loss"] + r1["loss"]) / 2, out["loss"].detach())
    want = _grads(method)
    assert set(want) == set(r0["grads"])
    for name, g in want.items():
        torch.testing.assert_close(r0["grads"][name], g, rtol=1e-4, atol=1e-6)
        assert torch.equal(r0["grads"][name], r1["grads"][name])


def test_local_executor_two_tasks_pretrain_one_record(isolated):
    """submitit runs the job as 2 tasks; TorchDistributedEnvironment().export() sets the
    ranks up, DDP trains with gloo, only rank 0 writes the checkpoint and the record."""
    table = load_table(TINY)
    job = next(j for j in jobs.expand(table, "smoke", {"digits": "real"})
               if j.label == "pretrain pcl seed 0")
    job = copy.deepcopy(job)
    ex = executor_for("local", isolated / "logs", {"timeout_min": 10, "tasks_per_node": 2})
    sub = ex.submit(JobRunner(), job_dict(job, table, "smoke", {"digits": "real"}), None, None)
    results = sub.results()  # one per task
    assert results[1] is None and results[0]["key"] == job.key
    rec = store.get(job.key)
    assert rec == json.loads(json.dumps(results[0]))
    assert len(rec["history"]) == 2 and "proto_nce" in rec["history"][1]
    logs = [Path(str(sub.paths.stdout).replace("_0_log", f"_{t}_log")).read_text()
            for t in (0, 1)]
    assert "rank 0/2" in logs[0] and "rank 1/2" in logs[1]
    assert (isolated / "runs" / job.key / "encoders.pt").exists()
