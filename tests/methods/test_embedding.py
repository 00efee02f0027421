"""The ``embedding`` feature layer: projection heads are saved with the trained encoders and
the exported features are the L2-normalised head output of the stored encoder, which is what
PCL clusters (salesforce/PCL pcl/builder.py L127-130: ``normalize(encoder_k(x))``)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from tiny_methods import BACKBONE, TINY_PARAMS

from repro.data import build_dataset
from repro.data.transforms import eval_transform
from repro.features import cached_features
from repro.methods import METHODS
from repro.train.checkpoint import load
from repro.train.embedding import NoEmbedding, load_embedder, projectors
from repro.train.pretrain import CHECKPOINT, ENCODERS, build_method, pretrain

HEADLESS = {"supervised", "untrained"}  # a trunk and nothing else (or a classifier)
DATA = {"dataset": "digits", "split": "train", "subset": 32}


def _recipe(name: str) -> dict:
    return {
        "method": name, "params": TINY_PARAMS.get(name, {}), "backbone": BACKBONE, "data": DATA,
        "views": {"name": "simclr", "image_size": 8, "options": {"dataset": "digits"}},
        "optim": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4,
                  "batch_size": 16, "epochs": 1},
    }


@pytest.mark.parametrize("name", METHODS.names())
def test_every_method_with_a_head_exposes_it_for_each_encoder(name):
    method = build_method(_recipe(name))
    found = projectors(method)
    if name in HEADLESS:
        assert found == {}
        return
    assert set(found) == set(method.encoders())
    for enc, seq in found.items():
        assert seq[0] is method.encoders()[enc]
        x = torch.randn(2, 3, 8, 8)
        seq.eval()
        assert seq(x).shape[1] == method.cfg.dim  # the head's output, not the trunk's


# (method, encoder, the attribute holding that encoder's trunk + head in the method)
CASES = [("pcl", "momentum", "encoder_k"), ("byol", "momentum", "target"),
         ("simclr", "query", "encoder")]


@pytest.mark.parametrize("name,encoder,attr", CASES)
def test_exported_embedding_is_the_stored_heads_normalised_output(name, encoder, attr,
                                                                   tmp_path):
    recipe = _recipe(name)
    run = tmp_path / "run"
    pretrain(recipe, run, seed=0, log=lambda *_: None)
    assert encoder in load(run / ENCODERS)["heads"]

    embedder = load_embedder(run, encoder, recipe)
    feats = cached_features(embedder, DATA, cache_dir=tmp_path / "cache", encoder=encoder,
                            layer="embedding", image_size=8, log=lambda *_: None)

    # The authors' path on the trained model: normalize(encoder_k(x)) in eval mode.
    trained = build_method(recipe)
    trained.load_state_dict(load(run / CHECKPOINT)["method"])
    trained.eval()
    data = build_dataset("digits", "train", eval_transform(8, "digits"), subset=32)
    images = torch.stack([data[i][0] for i in range(5)])
    with torch.no_grad():
        direct = F.normalize(getattr(trained, attr)(images), dim=1)  # 5 x dim
    assert feats.x.shape == (32, recipe["params"]["dim"])
    torch.testing.assert_close(torch.from_numpy(feats.x[:5]), direct, rtol=1e-5, atol=1e-6)
    assert torch.allclose(torch.from_numpy(feats.x).norm(dim=1), torch.ones(32), atol=1e-5)
    pooled = cached_features(load_embedder(run, encoder, recipe)[0], DATA,
                             cache_dir=tmp_path / "cache", encoder=encoder, layer="pooled",
                             image_size=8, log=lambda *_: None)
    assert pooled.x.shape[1] != feats.x.shape[1]  # a different cache file, another space


def test_a_method_without_a_head_has_no_embedding(tmp_path):
    recipe = _recipe("untrained")
    pretrain(recipe, tmp_path, seed=0, log=lambda *_: None)
    with pytest.raises(NoEmbedding, match="no projection head for encoder 'query'.*none"):
        load_embedder(tmp_path, "query", recipe)
