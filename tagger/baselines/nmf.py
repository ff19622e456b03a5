"""The classic unsupervised separation any spectrogram grouping must beat: NMF, mixture by mixture.

``nmf_masks`` factorises each example's magnitude spectrogram ``V (bins, frames) ~ W H`` with K
non-negative components (scikit-learn's NMF) and gives each bin to the component that explains
most of it, ``argmax_k W[:, k] H[k, :]``: one-hot masks shaped like Tagger's, so the same metrics
score both. A harmonic source with a steady pitch is one spectral template switched on and off,
which is what one NMF component can represent; two sources that share harmonics or onsets are
where it mixes them up.

``time_slice_masks`` is the trivial grouping below it: k-means on the frame (time) index of each
active bin, so each group is a stretch of time. A model that has learned only *when* things
happen, not *which* sound they belong to, scores about what it scores.

``line_oracle_masks`` is what time alone gives with the truth's help: it reads the truth and
gives every element of a column (one time step) or of a row (one frequency bin, one neuron) to
the object that owns most of that line, the best labelling by accuracy that is constant along
lines. A model well above it has used both coordinates, not just when (or where) things are.
"""
from __future__ import annotations

import warnings

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import NMF
from sklearn.exceptions import ConvergenceWarning


def magnitudes(features: np.ndarray, db_range: float) -> np.ndarray:
    """Linear magnitude from the log-magnitude input (``1`` = the loudest bin, ``0`` = ``-db_range`` dB)."""
    return 10.0 ** ((np.asarray(features, dtype=np.float64) - 1.0) * db_range / 20.0)


def nmf_masks(spectra: np.ndarray, image_shape: tuple[int, int], groups: int, seed: int = 0) -> np.ndarray:
    """One-hot masks ``(N, K, D)`` from NMF of each non-negative spectrogram.

    Args:
        spectra: ``(N, D)`` non-negative, ``D = bins * frames`` in ``image_shape`` order.
        image_shape: ``(bins, frames)``.
        groups: K components per example.
        seed: NMF initialisation seed (NNDSVDA is deterministic; the seed matters for ties).
    """
    masks = np.zeros((len(spectra), groups, spectra.shape[1]), dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for index, flat in enumerate(np.asarray(spectra, dtype=np.float64)):
            grid = flat.reshape(image_shape)  # (bins, frames)
            model = NMF(groups, init="nndsvda", max_iter=400, random_state=seed)
            w = model.fit_transform(grid)  # (bins, K)
            parts = w.T[:, :, None] * model.components_[:, None, :]  # (K, bins, frames)
            labels = parts.reshape(groups, -1).argmax(axis=0)  # (D,)
            masks[index, labels, np.arange(flat.size)] = 1.0
    return masks


def time_slice_masks(active: np.ndarray, image_shape: tuple[int, int], groups: int, seed: int = 0) -> np.ndarray:
    """One-hot masks ``(N, K, D)``: each example's active bins clustered by their frame index.

    Args:
        active: ``(N, D)`` bool, the bins that are scored (``objects > 0``); the rest go to group 0.
        image_shape: ``(bins, frames)``.
        groups: K clusters per example (fewer where an example has fewer distinct frames).
        seed: k-means seed.
    """
    active = np.asarray(active, dtype=bool)
    frame = np.tile(np.arange(image_shape[1]), image_shape[0]).astype(np.float64)  # (D,) column of each bin
    masks = np.zeros((len(active), groups, active.shape[1]), dtype=np.float32)
    masks[:, 0] = ~active
    for index, on in enumerate(active):
        where = np.flatnonzero(on)
        clusters = min(groups, len(np.unique(frame[where])))
        if clusters == 0:
            continue
        labels = KMeans(clusters, n_init=4, random_state=seed).fit_predict(frame[where, None])
        masks[index, labels, where] = 1.0
    return masks


def line_oracle_masks(objects: np.ndarray, image_shape: tuple[int, int], axis: int) -> np.ndarray:
    """One-hot masks ``(N, n_objects + 1, D)``: each line's elements to the object owning most of it.

    Args:
        objects: ``(N, D)`` true ids (0 = not scored), ``D = rows * columns`` in ``image_shape`` order.
        image_shape: ``(rows, columns)``.
        axis: 1 = columns (every element of one time step alike), 0 = rows.
    """
    objects = np.asarray(objects, dtype=np.int64)
    n, groups = len(objects), int(objects.max(initial=0)) + 1
    onehot = np.eye(groups, dtype=np.int64)[objects.reshape(n, *image_shape)]  # (N, rows, columns, K)
    counts = onehot.sum(axis=1 if axis == 1 else 2)  # (N, lines, K)
    counts[..., 0] = -1  # the unscored elements vote for nobody
    owner = counts.argmax(-1)  # (N, lines)
    grid = owner[:, None, :] if axis == 1 else owner[:, :, None]  # broadcast along the line
    labels = np.broadcast_to(grid, (n, *image_shape)).reshape(n, -1)  # (N, D)
    return np.eye(groups, dtype=np.float32)[labels].transpose(0, 2, 1)
