"""Spike rasters: grouping spikes into the firing sequences that produced them (docs/design.md, "Spike rasters").

A raster is :data:`NEURONS` neurons x :data:`FRAMES` time bins of binary spikes, laid out as an
image ``(NEURONS, FRAMES)``: row ``i`` is neuron ``i``, column ``t`` the t-th bin. The objects are
**sequences** (the repeated firing patterns of neuroscience's cell assemblies and synfire chains):
a library of :data:`N_MOTIFS` motifs, fixed for the dataset, each :data:`MOTIF_NEURONS` distinct
neurons firing a burst of :data:`BURST` bins at fixed lags, within :data:`MOTIF_SPAN` bins. The
motifs share neurons (each neuron takes part in three on average), so a neuron's identity does
not say which sequence a spike belongs to, and occurrences overlap in time, so its time does not
either.

Per raster, :data:`OCCURRENCES` occurrences: a motif drawn uniformly (repeats allowed), an onset
uniform over the bins where it fits, each of its neurons' bursts kept with probability
:data:`RELIABILITY`; a later occurrence owns a spike it shares with an earlier one. On top,
background spikes at rate :data:`BACKGROUND_RATE` per bin. The truth of a spike is its
occurrence (1..3); background spikes and silent bins are id 0, not scored, like the background
of an image. Each split is drawn from its own ``numpy.random.Generator`` (:data:`SEEDS`) in well
under a second, so nothing is cached.
"""
from __future__ import annotations

import numpy as np

from .common import DataError, Split

NEURONS = 20
FRAMES = 24
IMAGE_SHAPE = (NEURONS, FRAMES)
N_MOTIFS = 6
MOTIF_NEURONS = 10
BURST = 3  # each of a motif's neurons fires for this many consecutive bins
MOTIF_SPAN = 8  # lags 0..MOTIF_SPAN - BURST, so a motif with its bursts spans 8 bins
OCCURRENCES = 3
RELIABILITY = 0.9
BACKGROUND_RATE = 0.01
LIBRARY_SEED = 2407
SPLIT_SIZES = {"train": 50_000, "valid": 10_000, "test": 10_000}
SEEDS = {"train": 2407001, "valid": 2407002, "test": 2407003}


def motif_library() -> tuple[np.ndarray, np.ndarray]:
    """The dataset's motifs: ``neurons`` and ``lags``, each ``(N_MOTIFS, MOTIF_NEURONS)`` int64;
    motif m starts a burst of neuron ``neurons[m, j]`` ``lags[m, j]`` bins after its onset. Every
    motif spans the whole :data:`MOTIF_SPAN` (its first lag 0, its last ``MOTIF_SPAN - BURST``)."""
    rng = np.random.Generator(np.random.PCG64(LIBRARY_SEED))
    last = MOTIF_SPAN - BURST
    neurons = np.stack([rng.choice(NEURONS, MOTIF_NEURONS, replace=False) for _ in range(N_MOTIFS)])
    inner = rng.integers(0, last + 1, size=(N_MOTIFS, MOTIF_NEURONS - 2))
    lags = np.concatenate([np.zeros((N_MOTIFS, 1), np.int64), inner, np.full((N_MOTIFS, 1), last)], 1)
    return neurons.astype(np.int64), lags.astype(np.int64)


def generate(n: int, seed: int) -> dict[str, np.ndarray]:
    """Draw ``n`` rasters: ``spikes`` ``(n, D)`` uint8 (0/1), ``objects`` ``(n, D)`` uint8,
    ``motifs`` and ``onsets`` ``(n, OCCURRENCES)`` uint8 (D = NEURONS * FRAMES, row-major)."""
    if n < 0:
        raise DataError(f"spikes: n must be >= 0, got {n}")
    rng = np.random.Generator(np.random.PCG64(seed))
    library_neurons, library_lags = motif_library()
    motifs = rng.integers(0, N_MOTIFS, size=(n, OCCURRENCES))
    onsets = rng.integers(0, FRAMES - MOTIF_SPAN + 1, size=(n, OCCURRENCES))
    kept = rng.random((n, OCCURRENCES, MOTIF_NEURONS)) < RELIABILITY  # per burst
    background = rng.random((n, NEURONS * FRAMES)) < BACKGROUND_RATE
    objects = np.zeros((n, NEURONS * FRAMES), dtype=np.uint8)
    rows = np.arange(n)[:, None]  # (n, 1)
    for occurrence in range(OCCURRENCES):  # later occurrences own the spikes they share
        motif = motifs[:, occurrence]
        starts = library_neurons[motif] * FRAMES + onsets[:, occurrence, None] + library_lags[motif]  # (n, MOTIF_NEURONS)
        cells = (starts[:, :, None] + np.arange(BURST)).reshape(n, -1)  # (n, MOTIF_NEURONS * BURST)
        keep = np.repeat(kept[:, occurrence], BURST, axis=1)
        objects[np.broadcast_to(rows, cells.shape)[keep], cells[keep]] = occurrence + 1
    spikes = ((objects > 0) | background).astype(np.uint8)
    return {"spikes": spikes, "objects": objects, "motifs": motifs.astype(np.uint8), "onsets": onsets.astype(np.uint8)}


def spikes(split: str, data_dir=None) -> Split:
    """One split of the spike rasters (``data_dir`` is accepted for symmetry and unused).

    Args:
        split: ``"train"`` (50k), ``"valid"`` (10k) or ``"test"`` (10k).

    Returns:
        A :class:`Split`: ``features`` float32 ``(N, 480)`` in {0, 1}, ``objects`` uint8
        ``(N, 480)`` (0 = no spike or a background spike, 1..3 = occurrence),
        ``image_shape == (20, 24)``, ``binary`` True.
    """
    if split not in SPLIT_SIZES:
        raise DataError(f"spikes: unknown split {split!r}; choose from {', '.join(SPLIT_SIZES)}")
    drawn = generate(SPLIT_SIZES[split], SEEDS[split])
    return Split(name=f"spikes/{split}", features=drawn["spikes"].astype(np.float32), objects=drawn["objects"],
                 image_shape=IMAGE_SHAPE, binary=True)
