"""Average precision as PASCAL VOC defines it, shared by the SVM and detection protocols.

Two variants of the devkit:
- ``"area"`` (VOC 2010+ devkit ``VOCap``): area under the precision envelope (precision made
  monotone from the right), summed where recall changes. This is the "non-interpolated"
  AP of the VOC07 SVM benchmark (Goyal et al. 2019; VISSL ``calculate_ap``).
- ``"11point"`` (VOC 2007 devkit): mean of the envelope at recall 0, 0.1, ..., 1.
"""

from __future__ import annotations

import numpy as np

AP_MODES = ("area", "11point")


def ap_from_pr(recall: np.ndarray, precision: np.ndarray, mode: str = "area") -> float:
    """AP of a precision/recall curve ordered by decreasing score."""
    if mode not in AP_MODES:
        raise ValueError(f"ap_from_pr: mode={mode!r}; allowed: {', '.join(AP_MODES)}")
    recall = np.asarray(recall, np.float64)
    precision = np.asarray(precision, np.float64)
    if mode == "11point":
        return float(np.mean([
            precision[recall >= t].max() if (recall >= t).any() else 0.0
            for t in np.linspace(0, 1, 11)
        ]))
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([0.0], precision, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]  # envelope: max precision at >= recall
    changed = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    return float(np.sum((mrec[changed] - mrec[changed - 1]) * mpre[changed]))


def ranking_ap(scores: np.ndarray, positive: np.ndarray, mode: str = "area") -> float:
    """AP of ranking items by ``scores`` (higher first) against boolean ``positive``.

    No positives -> 0.
    NOTE: items tied in score keep their input order (stable sort); VISSL's
    ``argsort(preds)[::-1]`` puts later ties first. Only exact ties are affected.
    """
    positive = np.asarray(positive, bool)
    npos = int(positive.sum())
    if npos == 0:
        return 0.0
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    tp = np.cumsum(positive[order])
    fp = np.cumsum(~positive[order])
    return ap_from_pr(tp / npos, tp / (tp + fp), mode)
