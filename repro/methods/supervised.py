"""Supervised: the same trunk trained with labels (the "supervised network of the same size"
reference row, no paper).

Encoder = trunk + a linear classifier on its pooled features, trained with cross-entropy
(optionally label-smoothed) on every view the recipe's ``views`` block produces (mean over
views); ``acc`` logs the batch accuracy. Only the trunk is an encoder: evaluations see the
same frozen features as for the self-supervised methods.

Labels: the training loop is label-free by design (it passes ``(views, index, epoch)``), so
this method reads them itself: on first use it builds ``params.dataset`` / ``split`` /
``subset`` with ``repro.data.build_dataset`` (subset seed 0, as the loop) and looks up
``targets[index]``, where ``index`` is the sample's position in the (sub)set the loop serves.
The targets are kept as a plain tensor attribute (CPU), outside the state dict: they are
data, re-read on resume.

NOTE: a recipe must set ``params.dataset``, ``params.split`` and ``params.subset`` equal to
its ``data`` block (``dataset``, ``split`` (default train), ``subset`` (absent = 0)); else
the labels belong to other images. Passing labels through the loop would change the loop of
every stored result, so the method re-reads them instead; ``repro.spec`` checks the equality
(``_recipe_consistency``). The method itself only notices an index past the end of its set.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from repro.data import build_dataset, check_split, dataset_info, dataset_targets
from repro.methods.base import ConfigError, Method
from repro.registry import UnknownName


@dataclass
class SupervisedConfig:
    dataset: str = ""  # must equal the recipe's data.dataset
    split: str = "train"  # must equal the recipe's data.split
    subset: int = 0  # must equal the recipe's data.subset; 0 = the whole split
    num_classes: int = 0  # 0 = the dataset's (DatasetInfo.num_classes)
    label_smoothing: float = 0.0


class Supervised(Method):
    Config = SupervisedConfig

    def __init__(self, cfg: SupervisedConfig, trunk: nn.Module, feat_dim: int):
        super().__init__()
        if not cfg.dataset:
            raise ConfigError("method supervised needs params.dataset (and split, subset): "
                              "the recipe's data block, from which it reads the labels")
        try:
            info = dataset_info(cfg.dataset)
            check_split(cfg.dataset, cfg.split)
        except (UnknownName, ValueError) as err:
            raise ConfigError(f"method supervised: {err}") from None
        if info.multilabel:
            raise ConfigError(f"method supervised: dataset {cfg.dataset!r} is multi-label; "
                              "allowed: a single-label dataset")
        if cfg.subset < 0 or cfg.num_classes < 0 or not 0.0 <= cfg.label_smoothing < 1.0:
            raise ConfigError(f"method supervised: subset {cfg.subset}, num_classes "
                              f"{cfg.num_classes}, label_smoothing {cfg.label_smoothing}; "
                              "allowed: subset >= 0, num_classes >= 0, 0 <= label_smoothing < 1")
        if feat_dim <= 0:
            raise ConfigError(f"method supervised: the backbone's feature dimension is "
                              f"{feat_dim} (e.g. pixels); allowed: a backbone with a known one")
        self.cfg = cfg
        self.num_classes = cfg.num_classes or info.num_classes
        self.trunk = trunk
        self.classifier = nn.Linear(feat_dim, self.num_classes)
        self._targets: torch.Tensor | None = None  # N int64, loaded on first use

    def _where(self) -> str:
        c = self.cfg
        return f"{c.dataset}/{c.split}" + (f" (subset {c.subset})" if c.subset else "")

    def targets(self) -> torch.Tensor:
        """Labels of the training (sub)set by sample index (CPU int64), read once."""
        if self._targets is None:
            c = self.cfg
            ds = build_dataset(c.dataset, c.split, None, subset=c.subset or None)
            y = dataset_targets(ds)
            if y.ndim != 1:
                raise ValueError(f"method supervised: {self._where()} has multi-label "
                                 "targets; allowed: one class per sample")
            if (y < 0).any():
                raise ValueError(f"method supervised: {self._where()} has "
                                 f"{int((y < 0).sum())} unlabelled samples (target -1); "
                                 "allowed: a labelled split")
            if len(y) and int(y.max()) >= self.num_classes:
                raise ValueError(f"method supervised: {self._where()} has label "
                                 f"{int(y.max())} >= num_classes {self.num_classes}")
            self._targets = torch.from_numpy(y)
        return self._targets

    def labels(self, index: torch.Tensor) -> torch.Tensor:
        """The labels of the samples at ``index`` (positions in the loop's (sub)set)."""
        targets = self.targets()
        index = torch.as_tensor(index).cpu().long()
        if len(index) and int(index.max()) >= len(targets):
            raise ValueError(f"method supervised: sample index {int(index.max())} outside "
                             f"{self._where()} ({len(targets)} samples): params.dataset/"
                             "split/subset must equal the recipe's data block")
        return targets[index]

    def on_epoch_start(self, ctx) -> dict[str, float]:
        self.targets()  # read the labels before the first step, not inside it
        return {}

    def param_groups(self) -> list[dict]:
        return [{"params": [*self.trunk.parameters(), *self.classifier.parameters()]}]

    def encoders(self) -> dict[str, nn.Module]:
        return {"query": self.trunk}

    def forward(self, views, index, epoch):
        y = self.labels(index).to(views[0].device)
        losses, accs = [], []
        for v in views:
            logits = self.classifier(self.trunk(v)).float()  # N x num_classes
            losses.append(F.cross_entropy(logits, y, label_smoothing=self.cfg.label_smoothing))
            accs.append((logits.argmax(1) == y).float().mean())
        loss = torch.stack(losses).mean()
        return {"loss": loss, "ce": loss.detach(), "acc": torch.stack(accs).mean()}
