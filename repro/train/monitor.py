"""An optional, cheap kNN monitor of a pretraining run (``recipe["monitor"]["knn"]``).

After an epoch, the query encoder's pooled features of a small labelled held-out set are
classified by weighted kNN (``repro.eval.knn.knn_classifier``, the protocol of PCL Table 4 /
InstDisc) against a small labelled reference set; the top-1 (%) goes in the epoch's history as
``knn_top1`` and so in the record and ``repro curves``. Both sets go through the evaluation
transform. Rank 0 computes it; the training itself is unchanged (the next epoch reseeds every
generator, and the encoder returns to training mode).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from repro.data import build_dataset
from repro.data.transforms import eval_transform
from repro.eval.knn import knn_classifier

DEFAULTS = {"k": 20, "temperature": 0.07, "every": 1}


class KnnMonitor:
    def __init__(self, config: dict, image_size: int, device: torch.device):
        self.config = {**DEFAULTS, **config}
        self.device = device
        self.sets = {part: build_dataset(ref["dataset"], ref.get("split", "train"),
                                         eval_transform(image_size, ref["dataset"]),
                                         subset=ref.get("subset"))
                     for part, ref in (("train", config["train"]), ("test", config["test"]))}

    def due(self, epoch: int, epochs: int) -> bool:
        """After every ``every``-th epoch and after the last."""
        return (epoch + 1) % int(self.config["every"]) == 0 or epoch + 1 == epochs

    @torch.no_grad()
    def _features(self, encoder: nn.Module, dataset) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for images, labels, _ in DataLoader(dataset, batch_size=256, shuffle=False):
            xs.append(encoder(images.to(self.device)).float().cpu())
            ys.append(torch.as_tensor(labels))
        return torch.cat(xs).numpy(), torch.cat(ys).numpy()

    def __call__(self, method) -> float:
        encoders = method.encoders()
        encoder = encoders.get("query", next(iter(encoders.values())))
        was_training = encoder.training
        encoder.eval()
        try:
            tr_x, tr_y = self._features(encoder, self.sets["train"])
            te_x, te_y = self._features(encoder, self.sets["test"])
        finally:
            encoder.train(was_training)
        k = min(int(self.config["k"]), len(tr_x))
        res = knn_classifier(tr_x, tr_y, te_x, te_y, k=(k,),
                             temperature=float(self.config["temperature"]))
        return float(res[k][0])
