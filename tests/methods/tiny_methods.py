"""Tiny settings shared by the method tests: every registered method gets a small config."""

from __future__ import annotations

import torch

# Method -> parameters that shrink it for CPU tests. A method missing here is still tested,
# with its default (paper-size) heads.
TINY_PARAMS = {
    "byol": {"dim": 16, "hidden_dim": 32, "bn_splits": 2},
    "carl": {"dim": 16, "hidden_dim": 32, "num_prototypes": 8, "lambda_decay_epochs": 2},
    "moco": {"dim": 16, "queue_size": 64, "head": "mlp", "bn_splits": 2, "momentum": 0.99},
    "pauc": {"dim": 16, "queue_size": 64, "head": "mlp", "bn_splits": 2, "momentum": 0.99,
             "num_clusters": [4, 6], "num_neg_prototypes": 2, "warmup_epochs": 0},
    "pcl": {"dim": 16, "queue_size": 64, "head": "mlp", "bn_splits": 2, "momentum": 0.99,
            "num_clusters": [4, 6], "num_neg_prototypes": 2, "warmup_epochs": 0},
    "pcl_fixed_phi": {"dim": 16, "queue_size": 64, "head": "mlp", "bn_splits": 2,
                      "momentum": 0.99, "num_clusters": [4, 6], "num_neg_prototypes": 2,
                      "warmup_epochs": 0},
    "propos": {"dim": 16, "hidden_dim": 32, "bn_splits": 2, "num_clusters": 4,
               "warmup_epochs": 0, "kmeans_niter": 10, "kmeans_nredo": 2},
    "simclr": {"dim": 16, "hidden_dim": 32},
    "simsiam": {"dim": 32, "projector_hidden_dim": 32, "predictor_hidden_dim": 16},
    # the labels of test_resume.py's data block (digits train, stratified subset of 32)
    "supervised": {"dataset": "digits", "subset": 32},
    "swav": {"dim": 16, "hidden_dim": 32, "num_prototypes": 8, "queue_length": 32,
             "epoch_queue_starts": 0},
    "untrained": {},
}

BACKBONE = {"arch": "resnet18_tiny", "cifar_stem": True}


def tiny_images(n: int = 64, size: int = 8, seed: int = 0) -> torch.Tensor:
    """n random images 3 x size x size with some structure (4 colour classes + noise)."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(4, 3, 1, 1, generator=g)
    cls = torch.arange(n) % 4
    return base[cls] + 0.5 * torch.randn(n, 3, size, size, generator=g)
