"""repro.distributed with two CPU processes (gloo): shuffled BN, gathers, and the E-step
extractor's handling of DistributedSampler padding."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from repro import distributed as D

WORLD = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(WORLD))
    torch.set_num_threads(1)
    assert D.init_from_env(backend="gloo")
    try:  # one process group runs every check (spawning costs more than the checks)
        for check, fn in CHECKS.items():
            torch.save(fn(rank), os.path.join(out_dir, f"{check}_{rank}.pt"))
    finally:
        dist.destroy_process_group()


def _shuffle_round_trip(rank):
    x = torch.arange(6, dtype=torch.float32).unsqueeze(1) + 100 * rank  # 6 x 1, distinct
    shuffled, idx_unshuffle = D.batch_shuffle(x)
    back = D.batch_unshuffle(shuffled, idx_unshuffle)
    return {"x": x, "shuffled": shuffled, "back": back}


def _gathers(rank):
    x = torch.full((3, 2), float(rank + 1), requires_grad=True)
    plain = D.concat_all_gather(x.detach())
    gathered = D.gather_with_grad(x)
    # each rank weights the whole gathered batch by (rank + 1): the gradient of the own slice
    # is the sum over ranks, 1 + 2 = 3
    (gathered * (rank + 1)).sum().backward()
    return {"plain": plain, "gathered": gathered.detach(), "grad": x.grad}


def _nt_xent(rank):
    from repro.losses.nt_xent import nt_xent_loss

    g = torch.Generator().manual_seed(0)
    z_a, z_b = torch.randn(8, 4, generator=g), torch.randn(8, 4, generator=g)
    mine = slice(4 * rank, 4 * rank + 4)
    local = nt_xent_loss(z_a[mine], z_b[mine], 0.5)
    mean = local.detach().clone()
    dist.all_reduce(mean)
    return {"distributed": mean / WORLD, "z_a": z_a, "z_b": z_b}


class _MeanPixel(torch.nn.Module):
    def forward(self, x):
        return x.flatten(1).mean(1, keepdim=True)  # N x 1


def _extractor(rank):
    from repro.train.pretrain import make_extractor

    recipe = {"data": {"dataset": "digits", "split": "train", "subset": 15},
              "views": {"image_size": 8}}
    extract = make_extractor(recipe, torch.device("cpu"), batch_size=4)
    return {"features": extract(_MeanPixel()), "n": extract.num_samples}


CHECKS = {"shuffle": _shuffle_round_trip, "gathers": _gathers, "nt_xent": _nt_xent,
          "extractor": _extractor}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    mp.spawn(_worker, args=(_free_port(), str(out)), nprocs=WORLD, join=True)
    return {check: [torch.load(out / f"{check}_{r}.pt") for r in range(WORLD)]
            for check in CHECKS}


def test_batch_shuffle_round_trip_across_ranks(results):
    r0, r1 = results["shuffle"]
    assert torch.equal(r0["back"], r0["x"]) and torch.equal(r1["back"], r1["x"])
    everything = torch.cat([r0["x"], r1["x"]]).flatten().sort().values
    shuffled = torch.cat([r0["shuffled"], r1["shuffled"]]).flatten().sort().values
    assert torch.equal(everything, shuffled)  # a permutation of the global batch
    assert not torch.equal(r0["shuffled"], r0["x"])  # and samples moved


def test_gathers_and_gradients(results):
    for r in results["gathers"]:
        expected = torch.cat([torch.full((3, 2), 1.0), torch.full((3, 2), 2.0)])
        assert torch.equal(r["plain"], expected) and torch.equal(r["gathered"], expected)
        assert torch.equal(r["grad"], torch.full((3, 2), 3.0))


def test_nt_xent_over_ranks_equals_one_process(results):
    from repro.losses.nt_xent import nt_xent_loss

    for r in results["nt_xent"]:  # the one-process loss is computed here, outside the group
        assert torch.allclose(r["distributed"], nt_xent_loss(r["z_a"], r["z_b"], 0.5), atol=1e-5)


def test_extractor_counts_padded_samples_once(results):
    from repro.data import build_dataset
    from repro.data.transforms import eval_transform

    ds = build_dataset("digits", "train", eval_transform(8, "digits"), subset=15)
    direct = torch.stack([ds[i][0].mean() for i in range(len(ds))]).unsqueeze(1)  # 15 x 1
    for r in results["extractor"]:
        assert r["n"] == 15  # 15 samples over 2 ranks: the sampler pads one duplicate
        assert torch.allclose(r["features"], direct, atol=1e-6)
