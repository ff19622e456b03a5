"""Semi-supervised classification with Tagger (paper Table 2; docs/design.md, "Reference hyperparameters" and "Evaluation").

The Ladder's top layer gets ``classes + 1`` softmax units per group: one per digit class and a
last "no class" unit. The image's class distribution collapses the groups: drop the last unit,
normalise over groups and classes together, and sum over groups, so each group votes for
the digit it holds and an empty group can abstain. Two different digits have target
0.5 / 0.5; the error gives partial credit over the top two classes (the reference's
``sigmoid_mis_classification_rate``). Shapes: B batch, K groups, C classes, L labels per image.
"""
from __future__ import annotations

import numpy as np
import torch


def class_probabilities(top: torch.Tensor) -> torch.Tensor:
    """Image-level class distribution from the per-group top outputs.

    Args:
        top: ``(B, K, C + 1)`` softmax outputs of the mapping's top layer (last unit = no class).

    Returns:
        ``(B, C)``, summing to 1 per image.
    """
    scores = top[..., :-1]  # (B, K, C)
    return scores.sum(dim=1) / scores.sum(dim=(1, 2)).unsqueeze(-1)


def class_targets(labels: torch.Tensor, classes: int) -> torch.Tensor:
    """``(B, L)`` integer labels -> ``(B, C)`` targets: ``1 / L`` per label (1.0 when both digits agree)."""
    targets = torch.zeros(labels.shape[0], classes, device=labels.device)
    return targets.scatter_add_(1, labels, torch.full(labels.shape, 1.0 / labels.shape[1], device=labels.device))


def cross_entropy(probabilities: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean categorical cross-entropy ``-sum_c t_c log p_c`` against :func:`class_targets`. -> scalar

    Args:
        probabilities: ``(B, C)``; a class at exactly 0 is clamped to 1e-30 (0 * log 0 counts as 0).
        labels: ``(B, L)``.
    """
    targets = class_targets(labels, probabilities.shape[-1])
    return -(targets * torch.log(probabilities.clamp_min(1e-30))).sum(dim=-1).mean()


def class_cost(top: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The cross-entropy of the collapsed prediction :func:`class_probabilities`. -> scalar"""
    return cross_entropy(class_probabilities(top), labels)


def class_error(probabilities: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-image error in [0, 1] (the paper's Table 2 metric, as a fraction).

    One label: top-1 error. Two labels: ``1 - (labels among the top two classes) / 2``, and
    top-1 error when both digits are the same class.

    Args:
        probabilities: ``(B, C)``.
        labels: ``(B, L)`` with L = 1 or 2.
    """
    ranked = torch.argsort(probabilities, dim=-1, descending=True)  # (B, C)
    top1_wrong = (ranked[:, 0] != labels[:, 0]).float()
    if labels.shape[1] == 1:
        return top1_wrong
    top = ranked[:, :labels.shape[1]]  # (B, L)
    hits = (top.unsqueeze(2) == labels.unsqueeze(1)).float().sum(dim=(1, 2)) / labels.shape[1]
    same = labels[:, 0] == labels[:, 1]
    return torch.where(same, top1_wrong, 1.0 - hits)


def labeled_subset(first_labels: np.ndarray, count: int, seed: int, classes: int = 10) -> np.ndarray:
    """Indices of the labelled training examples, chosen as the reference chose them.

    The training indices are shuffled by ``numpy.random.RandomState(seed)``; with fewer labels
    than examples, ``count / classes`` per class are taken in that order, by the first
    label. ``count`` equal to the number of examples (or 0) means all of them.

    Args:
        first_labels: ``(N,)`` the first label of every training example as the reference
            stored it (for two digits see :func:`tagger.datasets.texture_mnist.original_label_order`).
        count: labelled examples wanted (a multiple of ``classes``), or 0 for all.
        seed: the run's seed.

    Returns:
        ``(count,)`` int64 indices, class by class.
    """
    order = np.arange(len(first_labels))
    np.random.RandomState(seed).shuffle(order)
    if count == 0 or count >= len(first_labels):
        return order
    if count % classes:
        raise ValueError(f"--labeled must be a multiple of {classes}, got {count}")
    per_class = count // classes
    chosen = [order[first_labels[order] == c][:per_class] for c in range(classes)]
    if any(len(c) < per_class for c in chosen):
        raise ValueError(f"not {per_class} examples of every class in the training split")
    return np.concatenate(chosen).astype(np.int64)
