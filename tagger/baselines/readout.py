"""How sharp can a Tagger's masks be? The rank bound of its mask read-out.

Tagger reads each group's mask logits out of the mapping's bottom layer, ``c * norm(W_m u_k)``
with ``u_k`` of width H0: every group's logit image lies in one fixed H0-dimensional subspace
of the P-pixel images (up to a per-pixel offset shared by all groups, which the softmax over
groups ignores). :func:`subspace` finds the best rank-r subspace for true object indicator
images (PCA), :func:`model_basis` the one a trained model's masks span, and :func:`score`
the FG-ARI of the argmax over objects of the indicators projected onto a subspace: what masks
confined to it can draw at best (in the least-squares sense). ``scripts/mask_rank.py`` runs it.
"""
from __future__ import annotations

import numpy as np
import torch

from ..evaluate import infer_in_batches
from ..metrics import ari


def indicators(objects: np.ndarray, count: int) -> np.ndarray:
    """``(N, count, P)`` float64 one-hot images of object ids 0..count-1 (0 = background)."""
    ids = np.arange(count)[None, :, None]  # (1, O, 1)
    return (objects[:, None, :] == ids).astype(np.float64)  # (N, O, P)


def subspace(train_objects: np.ndarray, count: int, rank: int) -> tuple[np.ndarray, np.ndarray]:
    """The mean indicator image ``(P,)`` and the first ``rank`` principal directions ``(P, rank)``
    of the training scenes' indicator images, best first (any first r of them: the best rank r)."""
    images = indicators(train_objects, count).reshape(-1, train_objects.shape[1])  # (N*O, P)
    mean = images.mean(axis=0)  # (P,)
    centred = images - mean
    _, vectors = np.linalg.eigh(centred.T @ centred)  # ascending eigenvalues; (P, P)
    return mean, vectors[:, ::-1][:, :rank]


def score(objects: np.ndarray, count: int, mean: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """``(N,)`` FG-ARI of the argmax over objects of each indicator projected on ``basis`` (P, r)."""
    centred = indicators(objects, count) - mean  # (N, O, P)
    drawn = (centred @ basis) @ basis.T  # (N, O, P): the closest image the subspace holds
    return ari(torch.from_numpy(objects.astype(np.int64)), torch.from_numpy(drawn)).numpy()


def model_basis(model, features: np.ndarray, iterations: int, seed: int) -> np.ndarray:
    """``(P, H0)`` orthonormal directions spanning ``model``'s last-iteration log masks on ``features``."""
    masks = infer_in_batches(model, torch.as_tensor(features), last_only=True, iterations=iterations,
                             generator=torch.Generator().manual_seed(seed)).masks[0]  # (N, K, P)
    log_masks = masks.clamp_min(1e-30).log().double()
    logs = (log_masks - log_masks.mean(dim=1, keepdim=True)).flatten(0, 1)  # (N*K, P)
    _, _, vt = torch.linalg.svd(logs, full_matrices=False)  # vt (min(NK, P), P)
    return vt[:model.config.widths[0]].T.numpy()
