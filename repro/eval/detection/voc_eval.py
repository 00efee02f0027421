"""PASCAL VOC detection AP (the VOC 2007 devkit ``VOCevaldet`` rule), per class and mean.

Per class: detections of all images sorted by score; each is a true positive if its best-IoU
ground-truth box of that class in its image has IoU > ``iou`` and was not matched before;
a match to a "difficult" box is ignored (neither TP nor FP), and difficult boxes are not
counted in the number of positives. AP is the 11-point (VOC07) or area (VOC 2010+) variant.

NOTE: boxes are continuous corners (``repro.data.voc07_annotations`` subtracts 1 from xmin,
ymin), so IoU uses x1 - x0 as the width; the devkit's +1 pixel on 1-based inclusive corners
is not applied (detectron2's evaluator applies it to the raw XML corners).
NOTE: the mean runs over classes with at least one non-difficult ground-truth box (the devkit
averages all 20; on real VOC07 test every class has one, so they agree; on tiny fixtures an
absent class would otherwise add a spurious 0).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from repro.eval.average_precision import ap_from_pr


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one xyxy box with M xyxy boxes."""
    iw = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    ih = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = iw * ih
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, np.finfo(np.float64).eps)


def class_ap(detections: Sequence[dict], annotations: Sequence[dict], cls: int, *,
             iou: float = 0.5, mode: str = "11point") -> float:
    """AP of class ``cls``. detections[i]: boxes (n x 4), scores (n), labels (n) of image i;
    annotations[i]: boxes, labels, difficult of image i."""
    gt = []
    npos = 0
    for ann in annotations:
        keep = np.asarray(ann["labels"]) == cls
        difficult = np.asarray(ann["difficult"], bool)[keep]
        gt.append({"boxes": np.asarray(ann["boxes"], np.float64)[keep], "difficult": difficult,
                   "matched": np.zeros(keep.sum(), bool)})
        npos += int((~difficult).sum())
    image_ids, scores, boxes = [], [], []
    for i, det in enumerate(detections):
        keep = np.asarray(det["labels"]) == cls
        image_ids += [i] * int(keep.sum())
        scores.append(np.asarray(det["scores"], np.float64)[keep])
        boxes.append(np.asarray(det["boxes"], np.float64).reshape(-1, 4)[keep])
    if npos == 0:
        return 0.0
    scores, boxes = np.concatenate(scores), np.concatenate(boxes)
    order = np.argsort(-scores, kind="stable")
    tp, fp = np.zeros(len(order)), np.zeros(len(order))
    for rank, d in enumerate(order):
        g = gt[image_ids[d]]
        overlaps = box_iou(boxes[d], g["boxes"]) if len(g["boxes"]) else np.zeros(0)
        best = int(overlaps.argmax()) if len(overlaps) else -1
        if best >= 0 and overlaps[best] > iou:
            if g["difficult"][best]:
                continue
            if not g["matched"][best]:
                tp[rank], g["matched"][best] = 1, True
            else:
                fp[rank] = 1
        else:
            fp[rank] = 1
    tp, fp = np.cumsum(tp), np.cumsum(fp)
    recall = tp / npos
    precision = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    return ap_from_pr(recall, precision, mode)


def voc_detection_map(detections: Sequence[dict], annotations: Sequence[dict],
                      num_classes: int, *, iou: float = 0.5,
                      mode: str = "11point") -> tuple[float, list[float]]:
    """Mean AP (%) over classes that have non-difficult ground truth, and per-class APs (%)."""
    if len(detections) != len(annotations):
        raise ValueError(f"{len(detections)} detection lists for {len(annotations)} images")
    aps, present = [], []
    for c in range(num_classes):
        aps.append(100.0 * class_ap(detections, annotations, c, iou=iou, mode=mode))
        present.append(any(((np.asarray(a["labels"]) == c) & ~np.asarray(a["difficult"], bool))
                           .any() for a in annotations))
    used = [ap for ap, p in zip(aps, present) if p]
    return (float(np.mean(used)) if used else 0.0), aps


def voc_detection_metrics(detections, annotations, num_classes: int,
                          mode: str = "11point") -> dict:
    """AP50, AP75 and AP (mean over IoU 0.50:0.95), in %, as detectron2 reports VOC."""
    thresholds = np.arange(0.5, 0.96, 0.05)
    maps = {round(float(t), 2): voc_detection_map(detections, annotations, num_classes,
                                                  iou=float(t), mode=mode)[0]
            for t in thresholds}
    return {"AP50": maps[0.5], "AP75": maps[0.75], "AP": float(np.mean(list(maps.values())))}
