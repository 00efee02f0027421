"""ProPos (Huang et al., "Learning representation for clustering via prototype scattering and
positive sampling", TPAMI 2022), built on ``repro.methods.byol.BYOL``.

E-step (sec. 4.3.2): every ``reassign_every`` (r) epochs, spherical k-means (k-means++ init,
300 iterations, 10 restarts) on the target network's L2-normalised projector features of the
training set under the evaluation transform -> hard pseudo-labels p(k|x).
M-step (eq. 12): L = L_psa (eq. 10) + psl_weight * L_psl (eq. 4), both symmetrised; PSA noise
sigma and PSL are off during the first ``warmup_epochs`` (the authors' lr warm-up, 50 epochs).
In-batch centres (eq. 6-7) use the whole (all-gathered) batch, online with gradient.
Under DDP, as the authors' ``byol_wrapper.py`` (Hzzone/ProPos at cc35d8c): each rank's PSL
gradient reaches only its own rows (``GatherLayer``, L175; ``gather_with_grad(...,
reduce_grads=False)``), so after DDP's averaging PSL's gradient is 1/W of the one-process one;
the absent-cluster mask is taken from this rank's labels (L183; the gathered batch plus the
queue with a queue, L178-180).
Options from the authors' code: memory queue of target features for the centres (sec. 5.9,
``queue_size``), cluster-size resampling of the training set (``data_resample``: sample
weights N / n_k, drawn with replacement).
NOTE: the authors run k-means before every epoch, also during warm-up where its result is
unused (unless ``data_resample``); we skip the warm-up E-steps when ``data_resample`` is off.
NOTE: queue slots not yet filled are ignored; the authors start from random vectors labelled 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from repro.distributed import concat_all_gather, gather_with_grad
from repro.losses.proto_scattering import cluster_centres, proto_scattering_loss
from repro.methods.base import EpochContext
from repro.methods.byol import BYOL, BYOLConfig
from repro.methods.estep import cluster_features


@dataclass
class ProPosConfig(BYOLConfig):
    num_clusters: int = 10  # K = number of classes
    temperature: float = 0.5  # T of PSL
    psl_weight: float = 0.1  # lambda_psl
    sigma: float = 1e-3  # PSA noise std (1e-3 CIFAR, 1e-4 ImageNet)
    warmup_epochs: int = 50
    reassign_every: int = 1  # r
    kmeans_niter: int = 300
    kmeans_nredo: int = 10
    queue_size: int = 0  # sec. 5.9; 0 = in-batch centres only
    data_resample: bool = False


class ProPos(BYOL):
    Config = ProPosConfig

    def __init__(self, cfg: ProPosConfig, trunk: nn.Module, feat_dim: int):
        super().__init__(cfg, trunk, feat_dim)
        # Sized by the first E-step; persisted so a resumed run keeps its pseudo-labels.
        self.register_buffer("pseudo_labels", torch.zeros(0, dtype=torch.long))
        self.register_buffer("queue", torch.zeros(cfg.queue_size, cfg.dim))
        self.register_buffer("queue_index", torch.full((cfg.queue_size,), -1, dtype=torch.long))
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))
        self.sample_weights: torch.Tensor | None = None

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + "pseudo_labels"
        if key in state_dict:  # resize before loading: its length is the dataset's
            self.pseudo_labels = torch.empty_like(state_dict[key])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def psl_active(self, epoch: int) -> bool:
        return epoch >= self.cfg.warmup_epochs and self.pseudo_labels.numel() > 0

    def on_epoch_start(self, ctx: EpochContext) -> dict[str, float]:
        cfg = self.cfg
        due = ctx.epoch % cfg.reassign_every == 0 or self.pseudo_labels.numel() == 0
        if not due or (ctx.epoch < cfg.warmup_epochs and not cfg.data_resample):
            return self._resample_log()
        features = ctx.extract(self.target)  # N x C target projector features, eval transform
        (clustering,) = cluster_features(
            features, [cfg.num_clusters], temperature=None, spherical=True, init="kmeans++",
            niter=cfg.kmeans_niter, nredo=cfg.kmeans_nredo,
            # torch_clustering's k-means: empty clusters stay empty, every sample takes part
            empty_clusters="keep",
        )
        self.pseudo_labels = clustering.assignments.to(self.queue.device)
        return self._resample_log()

    def _resample_log(self) -> dict[str, float]:
        if self.pseudo_labels.numel() == 0:
            return {}
        counts = torch.bincount(self.pseudo_labels, minlength=self.cfg.num_clusters).float()
        if self.cfg.data_resample:  # authors: weight N / n_k for every sample of cluster k
            self.sample_weights = (self.pseudo_labels.numel() / counts)[self.pseudo_labels].cpu()
        return {"cluster_imbalance": float(counts.min() / counts.max())}

    def _psl(self, q, k, labels, local_labels):
        """PSL of the gathered batch (+ queue) for this rank's q, k (N x C) under the gathered
        labels (W*N); returns (loss, present: K bool mask of the clusters it counts)."""
        all_q = F.normalize(gather_with_grad(q, reduce_grads=False), dim=1)  # (W*N) x C
        all_k = concat_all_gather(k)  # (W*N) x C
        mask_labels = local_labels  # clusters absent from this rank's batch are masked
        if self.cfg.queue_size > 0:
            filled = self.queue_index >= 0
            queue_labels = self.pseudo_labels[self.queue_index[filled]]
            all_q = torch.cat([all_q, self.queue[filled]])
            all_k = torch.cat([all_k, self.queue[filled]])
            labels = mask_labels = torch.cat([labels, queue_labels])
        kc = self.cfg.num_clusters
        present = torch.bincount(mask_labels, minlength=kc) > 0  # K
        q_c, k_c = cluster_centres(all_q, labels, kc), cluster_centres(all_k, labels, kc)
        return proto_scattering_loss(q_c, k_c, present, self.cfg.temperature), present

    @torch.no_grad()
    def _enqueue(self, keys: torch.Tensor, index: torch.Tensor) -> None:
        n, size = keys.shape[0], self.cfg.queue_size
        ptr = int(self.queue_ptr)
        slots = (torch.arange(n, device=keys.device) + ptr) % size
        self.queue[slots] = keys[-size:] if n > size else keys
        self.queue_index[slots] = index[-size:] if n > size else index
        self.queue_ptr[0] = (ptr + n) % size

    def forward(self, views, index, epoch):
        active = self.psl_active(epoch)
        sigma = self.cfg.sigma if epoch >= self.cfg.warmup_epochs else 0.0
        directions = [(views[0], views[1]), (views[1], views[0])]
        if not self.cfg.symmetric:
            directions = directions[:1]
        labels = local_labels = None
        if active:
            local_labels = self.pseudo_labels[index.to(self.pseudo_labels.device)]  # N
            labels = concat_all_gather(local_labels)  # W*N
        align_terms, psl_terms, keys = [], [], []
        for x_q, x_k in directions:
            q, k, align = self.branch(x_q, x_k, sigma)
            align_terms.append(align)
            keys.append(k)
            if active:
                psl_terms.append(self._psl(q, k, labels, local_labels)[0])
        align = torch.stack(align_terms).mean()
        out = {"psa": align.detach()}
        loss = align
        if psl_terms:
            psl = torch.stack(psl_terms).mean()
            loss = loss + self.cfg.psl_weight * psl
            out["psl"] = psl.detach()
        if self.cfg.queue_size > 0:
            all_index = concat_all_gather(index.to(self.queue.device))
            for k in keys:
                self._enqueue(concat_all_gather(k), all_index)
        out["loss"] = loss
        return out
