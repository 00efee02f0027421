"""PAUC (Mo et al., "Rethinking prototypical contrastive learning through alignment,
uniformity and correlation", eq. 2-7): PCL plus three prototype terms.

Loss (eq. 7) = ProtoNCE (PCL's InfoNCE + prototype term, ``repro.methods.pcl.PCL``)
+ mean over the M clusterings of alpha * L_p-align (eq. 4) + beta * L_p-uniform (eq. 5)
+ gamma * L_p-corr (eq. 6); the terms start with the first E-step (after PCL's warm-up).
PAUC has no public code; how we read eq. 4-6 is in ``repro.losses.pauc_terms``: the
prototypes entering the terms are the in-batch centres of each E-step cluster, from the
query embeddings (with gradient) and the momentum keys (the positive partner).
NOTE: eq. 7 writes the three terms inside the negated sum, which would *maximise* the
alignment distance; we add each term with the sign its text describes (alignment pulls
positive prototypes together, uniformity and correlation push prototypes apart).
NOTE: the paper gives no values for alpha, beta, gamma, s, t. Defaults: s = 2, t = 2 (Wang &
Isola's align/uniform defaults), alpha = beta = 1 (their equal weighting), gamma = 0.1 and a
softmax temperature 0.1 for eq. 6 (our choice: keeps the -KL term of the order of the
others). All are Config fields, so a table can sweep them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from repro.distributed import concat_all_gather, gather_with_grad
from repro.losses.pauc_terms import (
    prototype_alignment,
    prototype_correlation,
    prototype_uniformity,
)
from repro.losses.proto_scattering import cluster_centres
from repro.methods.pcl import PCL, PCLConfig


@dataclass
class PAUCConfig(PCLConfig):
    alpha: float = 1.0  # alignment weight
    beta: float = 1.0  # uniformity weight
    gamma: float = 0.1  # correlation weight
    align_s: float = 2.0  # s of eq. 4
    uniform_t: float = 2.0  # t of eq. 5
    corr_temperature: float = 0.1  # softmax temperature reading eq. 6


def pauc_prototype_terms(q, k, labels, cfg: PAUCConfig) -> dict[str, torch.Tensor]:
    """Eq. 4-6 for one clustering: q (N x C, grad), k (N x C keys), labels (N cluster ids)."""
    present, compact = labels.unique(return_inverse=True)  # P clusters in the batch
    c_q = cluster_centres(q, compact, present.numel())  # P x C
    c_k = cluster_centres(k, compact, present.numel())  # P x C
    return {
        "p_align": prototype_alignment(c_q, c_k, cfg.align_s),
        "p_uniform": prototype_uniformity(c_q, cfg.uniform_t),
        "p_corr": prototype_correlation(c_q, cfg.corr_temperature),
    }


class PAUC(PCL):
    Config = PAUCConfig

    def prototype_terms(self, q, k, index):
        cfg = self.cfg
        all_q, all_k = gather_with_grad(q), concat_all_gather(k)  # (W*N) x C
        all_index = concat_all_gather(index)
        terms = [pauc_prototype_terms(all_q, all_k, c.assignments[all_index], cfg)
                 for c in self.clusterings]
        mean = {name: torch.stack([t[name] for t in terms]).mean() for name in terms[0]}
        extra = (cfg.alpha * mean["p_align"] + cfg.beta * mean["p_uniform"]
                 + cfg.gamma * mean["p_corr"])
        return extra, {name: v.detach() for name, v in mean.items()}
