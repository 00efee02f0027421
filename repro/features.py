"""Extract frozen features of a dataset split with a backbone, cached on disk as .npz.

Evaluations receive these arrays (``repro.eval.types.Features``); they never see a method.
Layers: ``pooled`` = the trunk's pooled output (N x D); ``conv5_avgpool`` = the last conv
stage average-pooled to ``pool`` x ``pool`` and flattened (the Places205 protocol of PCL /
Goyal et al. pools ResNet-50 conv5 to ~9k dimensions: pool=2 gives 2048*4 = 8192);
``embedding`` = the L2-normalised output of the projection head (N x C, e.g. PCL's 128-d),
the space a method's prototypes live in; the module passed is then the encoder with its head
(``repro.train.embedding.load_embedder``), not the bare trunk. This is what PCL clusters:
main_pcl.py ``compute_features`` calls pcl/builder.py ``MoCo.forward(is_eval=True)``, which
returns ``normalize(encoder_k(x))`` (salesforce/PCL@964da1f, builder.py L127-130); PCL
Table 5 (appendix F) scores those clusterings.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from repro.data import build_dataset, dataset_targets
from repro.data.transforms import eval_transform
from repro.eval.types import Features
from repro.jobs import content_key

LAYERS = ("pooled", "conv5_avgpool", "embedding")


@torch.no_grad()
def extract_features(backbone: nn.Module, dataset, *, layer: str = "pooled", pool: int = 2,
                     batch_size: int = 256, device: str = "cpu") -> np.ndarray:
    if layer not in LAYERS:
        raise ValueError(f"features.layer {layer!r}; allowed: {', '.join(LAYERS)}")
    backbone = backbone.to(device).eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    out = []
    for images, _, _ in loader:
        images = images.to(device)
        if layer == "pooled":
            feat = backbone(images)  # N x D
        elif layer == "embedding":
            feat = F.normalize(backbone(images), dim=1)  # N x C, unit norm
        else:
            maps = backbone.feature_maps(images)  # N x C x h x w
            feat = F.adaptive_avg_pool2d(maps, pool).flatten(1)  # N x C*pool*pool
        out.append(feat.float().cpu())
    return torch.cat(out).numpy()


def cached_features(backbone: nn.Module, ref: dict, *, cache_dir: Path, encoder: str,
                    layer: str = "pooled", pool: int = 2, image_size: int,
                    device: str = "cpu", log=print, made_by: dict | None = None) -> Features:
    """Features of data ``ref`` ({dataset, split, subset}); computed once per cache key.

    ``made_by``: what else determines the features (the pretraining run, the extraction
    code, the data files); it is part of the cache key, so a change never reuses a file.
    """
    ident = {"encoder": encoder, "layer": layer,
             "pool": pool if layer == "conv5_avgpool" else None,  # only that layer reads it
             "image_size": image_size, "data": ref}
    if made_by:
        ident["made_by"] = made_by
    path = Path(cache_dir) / f"{content_key(ident)}.npz"
    if path.exists():
        with np.load(path) as z:
            return Features(x=z["x"], y=z["y"], index=z["index"])
    dataset = build_dataset(ref["dataset"], ref.get("split", "train"),
                            eval_transform(image_size, ref["dataset"]), subset=ref.get("subset"))
    x = extract_features(backbone, dataset, layer=layer, pool=pool, device=device)
    y = np.asarray(dataset_targets(dataset))
    index = np.arange(len(dataset), dtype=np.int64)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz")
    os.close(fd)
    np.savez(tmp, x=x, y=y, index=index)
    os.replace(tmp, path)
    log(f"cached features {ref} ({x.shape[0]} x {x.shape[1]}) at {path}")
    return Features(x=x, y=y, index=index)
