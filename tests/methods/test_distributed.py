"""repro.distributed with two CPU processes (gloo): shuffled BN, gathers, the E-step
extractor's handling of DistributedSampler padding, ProPos's PSL gradient and mask per rank
(the authors' scheme), and SwAV's Sinkhorn across ranks (the authors' global one)."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

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
    # without the all-reduce (ProPos's GatherLayer) the slice keeps its own rank's gradient
    own = x.detach().clone().requires_grad_()
    (D.gather_with_grad(own, reduce_grads=False) * (rank + 1)).sum().backward()
    return {"plain": plain, "gathered": gathered.detach(), "grad": x.grad, "own_grad": own.grad}


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


N_PER_RANK, K_PSL = 4, 4
# Sample i's pseudo-label. Case "masked": cluster 3 is absent from rank 0's batch and clusters
# 0, 2 from rank 1's, all four are in the gathered batch. Case "full": every rank has all four.
PSL_LABELS = {"masked": torch.tensor([0, 1, 2, 0, 1, 1, 3, 3]),
              "full": torch.tensor([0, 1, 2, 3, 3, 2, 1, 0])}


def _psl_inputs():
    g = torch.Generator().manual_seed(3)
    q = torch.randn(WORLD * N_PER_RANK, 16, generator=g)  # online projections, unnormalised
    k = F.normalize(torch.randn(WORLD * N_PER_RANK, 16, generator=g), dim=1)  # target, as BYOL
    return q, k


def _propos_psl(rank):
    from repro.methods.propos import ProPos

    method = ProPos(ProPos.make_config({"dim": 16, "hidden_dim": 32, "num_clusters": K_PSL,
                                        "temperature": 0.5}), torch.nn.Identity(), 8)
    q_all, k_all = _psl_inputs()
    mine = slice(N_PER_RANK * rank, N_PER_RANK * (rank + 1))
    out = {}
    for case, pseudo_labels in PSL_LABELS.items():
        method.pseudo_labels = pseudo_labels
        local_labels = pseudo_labels[torch.arange(WORLD * N_PER_RANK)[mine]]
        q = q_all[mine].clone().requires_grad_()
        loss, present = method._psl(q, k_all[mine], D.concat_all_gather(local_labels),
                                    local_labels)
        loss.backward()
        out[case] = {"loss": loss.detach(), "present": present, "grad": q.grad}
    return out


def _sinkhorn(rank):
    from repro.losses.swav import sinkhorn_knopp

    scores = _sinkhorn_scores()
    mine = slice(6 * rank, 6 * rank + 6)
    return {"codes": sinkhorn_knopp(scores[mine], eps=0.05, n_iters=3)}


def _sinkhorn_scores():
    g = torch.Generator().manual_seed(4)
    scores = torch.rand(12, 5, generator=g) * 2 - 1  # cosines in [-1, 1]
    scores[6:] *= 0.5  # rank 1's top score is well below rank 0's
    return scores


CHECKS = {"shuffle": _shuffle_round_trip, "gathers": _gathers, "nt_xent": _nt_xent,
          "extractor": _extractor, "propos_psl": _propos_psl, "sinkhorn": _sinkhorn}


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
    for rank, r in enumerate(results["gathers"]):
        assert torch.equal(r["own_grad"], torch.full((3, 2), float(rank + 1)))


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


def _authors_psl(q, k, labels, mask_labels, num_clusters, temperature):
    """ProPos's PSL as the authors' byol_wrapper.py (cc35d8c) computes it, written out: centres
    of the gathered batch (compute_centers, L97-107); clusters absent from ``mask_labels`` get
    logits -10 in every row, a zero loss, and are left out of the mean (L122-133)."""
    q, k = F.normalize(q, dim=1), F.normalize(k, dim=1)
    centres_q, centres_k = [], []
    for c in range(num_clusters):
        members = labels == c
        centres_q.append(F.normalize(q[members].sum(0) / max(int(members.sum()), 1), dim=0))
        centres_k.append(F.normalize(k[members].sum(0) / max(int(members.sum()), 1), dim=0))
    absent = [c for c in range(num_clusters) if not bool((mask_labels == c).any())]
    total = q.new_zeros(())
    for c in range(num_clusters):
        if c in absent:
            continue
        row = [centres_q[c] @ (centres_k[c] if j == c else centres_q[j]) / temperature
               for j in range(num_clusters)]
        row = [torch.tensor(-10.0) if j in absent else x for j, x in enumerate(row)]
        total = total + torch.logsumexp(torch.stack(row), 0) - row[c]
    return total / (num_clusters - len(absent))


def test_propos_psl_gradient_and_mask_per_rank_follow_the_authors(results):
    q_all, k_all = _psl_inputs()
    n = N_PER_RANK
    for case, labels in PSL_LABELS.items():
        grads = []  # grads[s]: gradient of rank s's authors' loss w.r.t. the global batch
        for rank in range(WORLD):
            q = q_all.clone().requires_grad_()
            loss = _authors_psl(q, k_all, labels, labels[n * rank:n * (rank + 1)], K_PSL, 0.5)
            grads.append(torch.autograd.grad(loss, q)[0])
            got = results["propos_psl"][rank][case]
            assert torch.allclose(got["loss"], loss.detach(), atol=1e-5)
            assert torch.equal(got["present"], torch.bincount(labels[n * rank:n * (rank + 1)],
                                                              minlength=K_PSL) > 0)
        for rank in range(WORLD):
            mine = slice(n * rank, n * (rank + 1))
            got = results["propos_psl"][rank][case]["grad"]
            # the rank keeps its own loss's gradient (GatherLayer): no sum over ranks
            assert torch.allclose(got, grads[rank][mine], atol=1e-6)
            summed = sum(g[mine] for g in grads)  # what an all-reduced gather would give
            assert not torch.allclose(got, summed, atol=1e-3)
    # where every rank sees every cluster, the ranks' losses equal the one-process loss of the
    # whole batch, so after DDP's averaging a rank's PSL gradient is 1/W of that loss's
    q = q_all.clone().requires_grad_()
    labels = PSL_LABELS["full"]
    one_process = torch.autograd.grad(_authors_psl(q, k_all, labels, labels, K_PSL, 0.5), q)[0]
    ddp_average = torch.cat([r["full"]["grad"] for r in results["propos_psl"]]) / WORLD
    assert torch.allclose(ddp_average, one_process / WORLD, atol=1e-6)
    masked = [r["masked"]["present"].tolist() for r in results["propos_psl"]]
    assert masked == [[True, True, True, False], [False, True, False, True]]


def _official_sinkhorn(scores, eps, iters):
    """facebookresearch/swav main_swav.py distributed_sinkhorn (5e073db) on one process holding
    the whole batch, in float64 and without any max subtraction, as written there."""
    q = torch.exp(scores.double() / eps).t()  # K x B
    k, b = q.shape
    q /= q.sum()
    for _ in range(iters):
        q /= q.sum(dim=1, keepdim=True)
        q /= k
        q /= q.sum(dim=0, keepdim=True)
        q /= b
    return (q * b).t()


def test_sinkhorn_over_ranks_equals_one_sinkhorn_over_the_whole_batch(results):
    from repro.losses.swav import sinkhorn_knopp

    scores = _sinkhorn_scores()
    codes = torch.cat([r["codes"] for r in results["sinkhorn"]])  # 12 x 5, ranks in order
    official = _official_sinkhorn(scores, 0.05, 3).float()
    assert torch.allclose(codes, official, atol=1e-5)
    assert torch.allclose(codes, sinkhorn_knopp(scores, eps=0.05, n_iters=3), atol=1e-5)
