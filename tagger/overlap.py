"""Mask-overlap scores per example: mBO (mean best overlap) and mIoU (Hungarian-matched IoU).

Definitions followed: the object-centric learning framework (OCLF,
amazon-science/object-centric-learning-framework, ``ocl/metrics/masks.py``), whose
``UnsupervisedMaskIoUMetric`` gives mIoU with ``matching="hungarian"`` and whose
``AverageBestOverlapMetric`` (the same with ``matching="best_overlap"``) gives mBO, the score
DINOSAUR and later Slot Attention papers report. In both:

- predicted masks are hard: each pixel goes to its ``argmax`` group (first maximum on ties);
- ground-truth objects with an empty mask are dropped; an example with no object is skipped
  (here: NaN, which the means skip);
- IoU of true object r and group k is ``|r & k| / |r | k|`` (0 where the union is empty);
- mBO: for each object, the best IoU over all groups (a group may serve several objects),
  averaged over the example's objects;
- mIoU: objects and groups matched one-to-one maximising the total IoU
  (``scipy.optimize.linear_sum_assignment``); an object left unmatched (more objects than
  groups) counts 0; averaged over the example's objects.

Which pixels count. Here id 0 means "not scored": the background, and on Shapes also the
pixels where shapes overlap (on TextureMNIST the background is object 1 and is scored, as in
FG-ARI). By default the id-0 pixels are removed from the true objects *and* the groups before
IoU, which is OCLF with every id-0 pixel in its ``ignore`` mask (as its ``ignore_overlaps``
does for overlaps) and scores the same pixels as FG-ARI and AMI (:mod:`tagger.metrics`).
OCLF's MOVi setting, ``ignore_background=True``, instead drops only the background *object*
and keeps background pixels in the predicted masks, so a group spilling into the background
loses IoU; ``count_unscored=True`` gives that variant (id 0 taken as the background class).
object-centric-library (addtt) has no IoU score of this kind; its mean segmentation covering
(mSC) with ``num_ignored_objects`` is mBO in the ``count_unscored=True`` variant.

IoU tables come from :func:`tagger.metrics.contingency` (vectorised in torch, all examples
at once); only the assignment runs per example in scipy.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from .metrics import _as_tensor, contingency

__all__ = ["iou_table", "mbo", "miou"]


def _group_sizes(masks: torch.Tensor, step: int = 1000) -> torch.Tensor:
    """``(B, K)`` float64 pixels per argmax group over all pixels, ``step`` examples at a time."""
    B, K, D = masks.shape
    sizes = torch.zeros(B, K, dtype=torch.float64, device=masks.device)
    for start in range(0, B, step):
        pred = masks[start:start + step].max(dim=1).indices  # (b, D), first maximum like argmax
        sizes[start:start + step].scatter_add_(1, pred, torch.ones(pred.shape, dtype=torch.float64,
                                                                   device=masks.device))
    return sizes


def iou_table(objects, masks, count_unscored: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """IoU of every (true object, argmax group) pair.

    Args:
        objects: ``(B, P)`` integer object ids (tensor or numpy), 0 = not scored.
        masks: ``(B, K, P)`` group masks, soft or hard (tensor or numpy); argmax per pixel.
        count_unscored: also count the id-0 pixels in each group (OCLF's ``ignore_background``
            variant); by default they are removed from the groups too.

    Returns:
        ``(B, R, K)`` float64 IoU, row ``r`` for object id ``r + 1`` (``R = max(objects)``), and
        ``(B, R)`` bool: which objects occur in each example (rows of absent ids are 0).
    """
    inter = contingency(objects, masks)  # (B, R, K) scored pixels of object r in group k
    size_true = inter.sum(2)  # (B, R)
    if count_unscored:
        size_group = _group_sizes(_as_tensor(masks))  # (B, K) every pixel
    else:
        size_group = inter.sum(1)  # (B, K) scored pixels only
    union = size_true[:, :, None] + size_group[:, None, :] - inter  # (B, R, K)
    return inter / union.clamp(min=1), size_true > 0


def mbo(objects, masks, count_unscored: bool = False) -> torch.Tensor:
    """Mean best overlap per example: each object's best IoU over all groups, averaged over objects.

    As OCLF's ``AverageBestOverlapMetric`` per image (module docstring: which pixels count).

    Args:
        objects: ``(B, P)`` integer object ids, 0 = not scored.
        masks: ``(B, K, P)`` group masks (argmax per pixel).
        count_unscored: see :func:`iou_table`.

    Returns:
        ``(B,)`` float64 on the device of ``masks``; NaN for an example with no object.
    """
    iou, present = iou_table(objects, masks, count_unscored)
    best = iou.max(dim=2).values  # (B, R)
    count = present.sum(1)  # (B,)
    total = torch.where(present, best, 0.0).sum(1)
    return torch.where(count > 0, total / count.clamp(min=1), torch.nan)


def miou(objects, masks, count_unscored: bool = False) -> torch.Tensor:
    """Mean IoU per example after matching objects and groups one-to-one (Hungarian, total IoU).

    As OCLF's ``UnsupervisedMaskIoUMetric(matching="hungarian")`` per image: an object left
    without a group (more objects than groups) counts 0 (module docstring: which pixels count).

    Args:
        objects: ``(B, P)`` integer object ids, 0 = not scored.
        masks: ``(B, K, P)`` group masks (argmax per pixel).
        count_unscored: see :func:`iou_table`.

    Returns:
        ``(B,)`` float64 on the device of ``masks``; NaN for an example with no object.
    """
    iou, present = iou_table(objects, masks, count_unscored)
    device = iou.device
    iou, present = iou.cpu().numpy(), present.cpu().numpy()
    out = np.full(len(iou), np.nan)
    for b in np.flatnonzero(present.any(1)):
        table = iou[b][present[b]]  # (objects here, K)
        rows, cols = linear_sum_assignment(table, maximize=True)
        out[b] = table[rows, cols].sum() / len(table)  # unmatched objects add 0
    return torch.from_numpy(out).to(device)
