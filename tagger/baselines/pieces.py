"""Where a grouping of a multi-object scene goes wrong, piece by piece.

FG-ARI says how far a grouping is from the truth, not how it fails. Two failures look alike in
it and call for different fixes: *merging* (two pieces in one group: a colour clustering merges
pieces of one colour) and *fragmenting* (one piece spread over several groups). ``piece_errors``
takes the hard assignment (argmax group of every pixel) and measures both:

- purity: the share of a piece's pixels in its majority group (1 = the piece is whole);
- where the rest go: the background's majority group, another piece's majority group, or a
  group that is neither ("spare");
- merges: how often two pieces of a scene share a majority group, for pairs of different
  colours and pairs of the same colour.

``reconstruction_reach`` asks the same of the reconstructions, for any dataset: does a group
draw only what it owns, or the whole scene (so that the masks alone do the grouping)?
"""
from __future__ import annotations

import numpy as np


def piece_errors(objects: np.ndarray, assignment: np.ndarray, colors: np.ndarray, groups: int) -> dict:
    """Fragmenting and merging of pieces under a hard grouping.

    Args:
        objects: ``(N, P)`` integer ids per pixel, 0 = background, 1..O = pieces.
        assignment: ``(N, P)`` group index per pixel (e.g. ``masks.argmax(K)``), in ``[0, groups)``.
        colors: ``(N, O)`` colour id of each piece (equal ids = same colour).
        groups: K.

    Returns:
        ``purity`` (mean over present pieces), ``whole`` (share of pieces with purity >= 0.9),
        ``stray_to`` (shares of non-majority piece pixels going to the ``background`` /
        ``other_piece`` / ``spare`` groups), ``merged_distinct`` / ``merged_same`` (share of
        piece pairs of different / same colour with one majority group) and their pair counts.
    """
    objects, assignment, colors = np.asarray(objects), np.asarray(assignment), np.asarray(colors)
    n, entities = objects.shape[0], colors.shape[1] + 1
    one_hot = lambda ids, size: np.eye(size, dtype=np.int64)[ids]  # noqa: E731  (N, P) -> (N, P, size)
    counts = np.einsum("npe,npk->nek", one_hot(objects, entities), one_hot(assignment, groups))  # (N, E, K)
    sizes = counts.sum(axis=2)  # (N, E)
    majority = counts.argmax(axis=2)  # (N, E): entity 0 = background
    present = sizes[:, 1:] > 0  # (N, O)
    purity = counts.max(axis=2)[:, 1:] / np.maximum(sizes[:, 1:], 1)  # (N, O)

    stray = {"background": 0, "other_piece": 0, "spare": 0}
    for piece in range(1, entities):
        others = [q for q in range(1, entities) if q != piece]
        for k in range(groups):
            away = np.where(majority[:, piece] != k, counts[:, piece, k], 0)  # (N,) pixels sent to k
            to_background = majority[:, 0] == k
            to_other = np.any([(majority[:, q] == k) & (sizes[:, q] > 0) for q in others], axis=0)
            stray["background"] += int(away[to_background].sum())
            stray["other_piece"] += int(away[~to_background & to_other].sum())
            stray["spare"] += int(away[~to_background & ~to_other].sum())
    total = max(sum(stray.values()), 1)

    merged = {True: [0, 0], False: [0, 0]}  # same colour -> [pairs, merged pairs]
    for i in range(1, entities):
        for j in range(i + 1, entities):
            both = present[:, i - 1] & present[:, j - 1]
            same = colors[:, i - 1] == colors[:, j - 1]
            together = majority[:, i] == majority[:, j]
            for flag in (True, False):
                chosen = both & (same == flag)
                merged[flag][0] += int(chosen.sum())
                merged[flag][1] += int((chosen & together).sum())
    return {"scenes": int(n), "pieces": int(present.sum()),
            "purity": float(purity[present].mean()), "whole": float((purity[present] >= 0.9).mean()),
            "stray_to": {name: count / total for name, count in stray.items()},
            "merged_distinct": merged[False][1] / max(merged[False][0], 1), "distinct_pairs": merged[False][0],
            "merged_same": merged[True][1] / max(merged[True][0], 1), "same_pairs": merged[True][0]}


def reconstruction_reach(x: np.ndarray, objects: np.ndarray, z: np.ndarray, assignment: np.ndarray,
                         channels: int = 1) -> dict:
    """How well each group's reconstruction matches the input where it owns the pixel and where
    another group does (foreground pixels only).

    Args:
        x: ``(N, D)`` clean inputs, pixel-major (D = P * channels).
        objects: ``(N, P)`` integer ids per pixel, 0 = background (not scored).
        z: ``(N, K, D)`` each group's reconstruction.
        assignment: ``(N, P)`` group index per pixel (e.g. ``masks.argmax(K)``).
        channels: C.

    Returns:
        ``own`` and ``other``: mean absolute error ``|z_k - x|`` (over a pixel's channels) of group
        k at the foreground pixels it owns, and at those other groups own, over all such (pixel,
        group) pairs. A group that draws only its object has ``other`` far above ``own`` (on
        binary data near 1); ``other`` close to ``own`` means every group draws the whole scene.
        NaN where there are no such pairs (``other`` with K = 1).
    """
    n, groups, size = z.shape
    error = np.abs(z - x[:, None, :]).reshape(n, groups, size // channels, channels).mean(axis=-1)  # (N, K, P)
    owns = np.arange(groups)[None, :, None] == np.asarray(assignment)[:, None, :]  # (N, K, P)
    foreground = (np.asarray(objects) > 0)[:, None, :]  # (N, 1, P)
    mean = lambda chosen: float(error[chosen].mean()) if chosen.any() else float("nan")  # noqa: E731  (K = 1: no other)
    return {"own": mean(owns & foreground), "other": mean(~owns & foreground)}
