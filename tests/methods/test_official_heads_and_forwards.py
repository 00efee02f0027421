"""SimSiam, SimCLR and SwAV as their authors' code builds and runs them: heads, how the views
go through the network (BN statistics), SimSiam's fixed predictor lr, SwAV's multi-crop loss,
queue and prototype freezing. Each test recomputes what the authors' code does."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tiny_methods import BACKBONE, TINY_PARAMS, tiny_images
from torch import nn

from repro.losses.nt_xent import nt_xent_loss
from repro.losses.simsiam import simsiam_loss
from repro.losses.swav import sinkhorn_knopp
from repro.models.heads import ScaleOnlyBatchNorm1d
from repro.train.pretrain import build_method, build_optimizer, set_learning_rates

B = 8


def _build(name: str, **extra):
    torch.manual_seed(0)
    return build_method({"method": name, "params": {**TINY_PARAMS[name], **extra},
                         "backbone": BACKBONE}).train()


def _kinds(seq):
    return [type(m).__name__ for m in seq]


def _views(n=2, size=8):
    return [tiny_images(B, size=size, seed=s) for s in range(n)]


# ---- SimSiam (facebookresearch/simsiam simsiam/builder.py, main_simsiam.py) ----

def test_simsiam_projector_is_the_authors_three_layers_by_default():
    projector = _build("simsiam").encoder[1]
    assert _kinds(projector) == ["Linear", "BatchNorm1d", "ReLU"] * 2 + ["Linear", "BatchNorm1d"]
    assert all(m.bias is None for m in projector if isinstance(m, nn.Linear))
    assert not projector[-1].affine
    two = _build("simsiam", projector_layers=2, projector_out_affine=True).encoder[1]
    assert _kinds(two) == ["Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d"]
    assert two[-1].affine  # ProPos's re-run keeps the output BN's affine parameters


def test_simsiam_predictor_lr_is_fixed_at_the_base_lr():
    method = _build("simsiam")
    opt = build_optimizer(method, {"lr": 0.05})
    set_learning_rates(opt, 0.05, 0.2)  # late in the cosine
    lrs = {id(p): g["lr"] for g in opt.param_groups for p in g["params"]}
    assert all(lrs[id(p)] == 0.05 for p in method.predictor.parameters())
    assert all(lrs[id(p)] == pytest.approx(0.01) for p in method.encoder.parameters())
    opt = build_optimizer(_build("simsiam", fix_predictor_lr=False), {"lr": 0.05})
    set_learning_rates(opt, 0.05, 0.2)
    assert all(g["lr"] == pytest.approx(0.01) for g in opt.param_groups)


@pytest.mark.parametrize("joint", [False, True])
def test_simsiam_views_go_through_bn_apart_or_together(joint):
    method = _build("simsiam", joint_views=joint)
    views = _views()
    torch.manual_seed(1)
    loss = method(views, torch.arange(B), 0)["loss"]
    if joint:  # ProPos simsiam_wrapper.py: encoder(cat(x1, x2)), BN over 2N
        z1, z2 = method.encoder(torch.cat(views)).chunk(2)
    else:  # the authors' builder.py: z1 = encoder(x1), z2 = encoder(x2)
        z1, z2 = method.encoder(views[0]), method.encoder(views[1])
    expected = simsiam_loss(method.predictor(z1), method.predictor(z2), z1, z2)
    torch.testing.assert_close(loss, expected)


# ---- SimCLR (google-research/simclr v1 model_util.py projection_head, model.py) ----

def test_simclr_head_has_bn_in_both_layers_and_a_scale_only_output_bn():
    head = _build("simclr").encoder[1]
    assert _kinds(head) == ["Linear", "BatchNorm1d", "ReLU", "Linear", "ScaleOnlyBatchNorm1d"]
    assert head[0].bias is None and head[3].bias is None
    out_bn = head[-1]
    with torch.no_grad():
        out_bn.weight.copy_(torch.arange(1.0, out_bn.weight.numel() + 1))
    x = torch.randn(32, out_bn.weight.numel()) * 3 + 5
    expected = (x - x.mean(0)) / torch.sqrt(x.var(0, unbiased=False) + 1e-5) * out_bn.weight
    torch.testing.assert_close(out_bn.train()(x), expected, atol=1e-4, rtol=1e-4)
    assert isinstance(out_bn, ScaleOnlyBatchNorm1d) and not hasattr(out_bn, "bias")
    plain = _build("simclr", hidden_bn=False, out_bn=False).encoder[1]  # CARL appendix A.2
    assert _kinds(plain) == ["Linear", "ReLU", "Linear"] and plain[0].bias is not None


def test_simclr_encodes_both_views_as_one_batch():
    method = _build("simclr")
    views = _views()
    loss = method(views, torch.arange(B), 0)["loss"]
    z_a, z_b = method.encoder(torch.cat(views)).chunk(2)  # model.py: tf.concat(features_list, 0)
    torch.testing.assert_close(loss, nt_xent_loss(z_a, z_b, method.cfg.temperature))
    apart = nt_xent_loss(method.encoder(views[0]), method.encoder(views[1]), 0.5)
    assert not torch.allclose(loss, apart)  # BN statistics over 2N change the result


# ---- SwAV (facebookresearch/swav main_swav.py train, src/resnet50.py forward) ----

def _swav_reference_loss(scores, codes, temperature):
    """main_swav.py: for each assigned crop, the mean over every other crop of -q . log p."""
    loss = 0
    for i, q in enumerate(codes):
        subloss = 0
        for v in np.delete(np.arange(len(scores)), i):
            p = F.softmax(scores[v] / temperature, dim=1)
            subloss -= torch.mean(torch.sum(q * torch.log(p), dim=1))
        loss += subloss / (len(scores) - 1)
    return loss / len(codes)


def _swav_reference_embed(method, views):
    """resnet50.py forward: one trunk batch per resolution, one head batch for all crops."""
    trunk, head = method.encoder
    large, small = torch.cat(views[:2]), torch.cat(views[2:])
    return F.normalize(head(torch.cat([trunk(large), trunk(small)])), dim=1)


def test_swav_multi_crop_loss_and_forward_are_the_authors():
    method = _build("swav", queue_length=0)
    views = _views(2, size=8) + _views(3, size=6)  # 2 large + 3 small crops
    loss = method(views, torch.arange(B), 0)["loss"]
    z = _swav_reference_embed(method, views).chunk(5)
    scores = [zi @ method.prototypes.weight.t() for zi in z]
    codes = [sinkhorn_knopp(s.detach(), 0.05, 3) for s in scores[:2]]
    torch.testing.assert_close(loss, _swav_reference_loss(scores, codes, 0.1))


def test_swav_queue_fills_from_its_start_epoch_and_is_used_once_full():
    method = _build("swav", queue_length=2 * B, epoch_queue_starts=1)
    views = _views()
    method(views, torch.arange(B), epoch=0)
    assert int(method.queue_filled) == 0  # not before epoch_queue_starts
    for step in range(2):  # two batches fill it; until then codes come from the batch alone
        before = method.queue.clone()
        z = method.embed(views).chunk(2)
        expected = sinkhorn_knopp((z[0] @ method.prototypes.weight.t()).detach(), 0.05, 3)
        torch.testing.assert_close(method._codes(z[0] @ method.prototypes.weight.t(), 0,
                                                 method.prototypes.weight), expected)
        method(views, torch.arange(B), epoch=1)
        assert int(method.queue_filled) == B * (step + 1)
        torch.testing.assert_close(method.queue[:, B:], before[:, :B])  # newest first
    weight = method.prototypes.weight
    scores = method.embed(views).chunk(2)[1] @ weight.t()
    full = torch.cat([method.queue[1] @ weight.t(), scores]).detach()
    torch.testing.assert_close(method._codes(scores, 1, weight),
                               sinkhorn_knopp(full, 0.05, 3)[2 * B:])


def test_swav_prototypes_are_frozen_for_the_first_iterations():
    """As the authors: the backward pass reaches the prototypes (DDP sees a gradient for every
    parameter) and the gradient is dropped before the step, so SGD with momentum and weight
    decay leaves them exactly as they were."""
    method = _build("swav", queue_length=0, freeze_prototypes_niters=2)
    opt = torch.optim.SGD(method.parameters(), lr=0.5, momentum=0.9, weight_decay=0.1)
    grads, weights = [], []
    for _ in range(3):
        opt.zero_grad(set_to_none=True)
        method(_views(), torch.arange(B), 0)["loss"].backward()
        assert method.prototypes.weight.grad is not None
        method.before_optimizer_step()
        grads.append(method.prototypes.weight.grad)
        before = method.prototypes.weight.detach().clone()
        opt.step()
        weights.append(torch.equal(before, method.prototypes.weight.detach()))
        method.on_step_end(0.0)
    assert grads[0] is None and grads[1] is None and grads[2] is not None
    assert weights == [True, True, False]


def test_swav_queue_length_is_the_total_over_ranks(monkeypatch):
    """The authors' --queue_length counts every rank's queue: each keeps length // world."""
    from repro import distributed as D

    assert _build("swav", queue_length=64).queue.shape[1] == 64
    monkeypatch.setattr(D, "world_size", lambda: 4)
    method = _build("swav", queue_length=64)
    assert method.queue.shape[1] == 16 and method.queue_length == 16
