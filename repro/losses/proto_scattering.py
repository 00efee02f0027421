"""Prototype scattering loss, PSL (ProPos, Huang et al. TPAMI 2022, eq. 4, 6, 7).

In-batch cluster centres (eq. 6-7): mu_k = sum_x p(k|x) f(x) / ||.||, with p(k|x) the one-hot
E-step assignment; computed as the L1-normalised weights times the embeddings, then
L2-normalised, as the authors' ``compute_centers`` does. PSL (eq. 4) for the K prototypes
of the online (mu) and target (mu') branches:
    L = 1/K sum_k -log exp(mu_k.mu'_k/T) / (exp(mu_k.mu'_k/T) + sum_{j != k} exp(mu_k.mu_j/T))
i.e. logits = mu mu^T / T with the diagonal replaced by mu_k.mu'_k / T, target = diagonal.

Empty clusters (K > batch; "we zero out the losses and logits of empty clusters"), as the
authors' code does: the columns of clusters absent from the batch are set to -10 (so
exp(-10) still enters each present row's denominator), the rows of absent clusters
contribute 0, and the sum is divided by the number of present clusters. Which clusters count
as present is the caller's ``present`` mask: under DDP the authors take it from each rank's own
batch while the centres come from the gathered batch (``repro.methods.propos``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

ABSENT_LOGIT = -10.0


def cluster_centres(x: torch.Tensor, labels: torch.Tensor, num_clusters: int) -> torch.Tensor:
    """K x C L2-normalised in-batch centres of x (N x C) under hard labels (N); absent -> 0."""
    weight = F.one_hot(labels, num_clusters).t().to(x.dtype)  # K x N
    weight = F.normalize(weight, p=1, dim=1)  # L1: mean over each cluster's members
    return F.normalize(weight @ x, dim=1)  # K x C


def proto_scattering_loss(
    q_centres: torch.Tensor, k_centres: torch.Tensor, present: torch.Tensor, temperature: float
) -> torch.Tensor:
    """PSL from online centres q_centres (K x C, with grad), target centres k_centres (K x C)
    and present (K bool: the cluster has at least one member in the batch)."""
    k = q_centres.shape[0]
    logits = (q_centres @ q_centres.t()).float() / temperature  # K x K
    diag = (q_centres * k_centres.detach()).sum(dim=1).float() / temperature  # K
    eye = torch.eye(k, dtype=torch.bool, device=logits.device)
    logits = torch.where(eye, diag.unsqueeze(1).expand(k, k), logits)
    logits = logits.masked_fill(~present.unsqueeze(0), ABSENT_LOGIT)  # absent columns
    per_cluster = torch.logsumexp(logits, dim=1) - logits.diagonal()  # K
    per_cluster = per_cluster.masked_fill(~present, 0.0)  # absent rows
    return per_cluster.sum() / present.sum().clamp(min=1)
