"""Spike rasters: the generator's sequences, the loader, the baselines' footing and a short training."""
import numpy as np
import pytest
import torch

from tagger import preset
from tagger.baselines.nmf import line_oracle_masks, time_slice_masks
from tagger.datasets import load
from tagger.datasets import rasters as sk
from tagger.datasets.common import array_checksum
from tagger.errors import DataError
from tagger.metrics import ari


@pytest.fixture(scope="module")
def small():
    return sk.generate(300, seed=5)


def test_generator_is_deterministic_and_seeded(small):
    assert array_checksum(sk.generate(300, seed=5)) == array_checksum(small)
    assert array_checksum(sk.generate(300, seed=6)) != array_checksum(small)


def test_motifs_are_fixed_sequences_that_share_neurons():
    neurons, lags = sk.motif_library()
    assert neurons.shape == lags.shape == (sk.N_MOTIFS, sk.MOTIF_NEURONS)
    assert all(len(set(row)) == sk.MOTIF_NEURONS for row in neurons)  # distinct neurons within a motif
    assert (lags.min(1) == 0).all() and (lags.max(1) == sk.MOTIF_SPAN - sk.BURST).all()
    members = np.bincount(neurons.ravel(), minlength=sk.NEURONS)
    assert (members >= 2).sum() > sk.NEURONS // 2  # most neurons fire in more than one motif
    np.testing.assert_array_equal(sk.motif_library()[0], neurons)  # the same library for every split


def test_each_occurrence_is_its_motif_at_its_onset(small):
    """Every spike labelled k lies on occurrence k's motif at its onset, in whole bursts; the
    labelled spikes are spikes, and background spikes are all that is left."""
    neurons, lags = sk.motif_library()
    grid = small["objects"].reshape(-1, sk.NEURONS, sk.FRAMES)
    raster = small["spikes"].reshape(grid.shape)
    for index in range(50):
        for occurrence in range(sk.OCCURRENCES):
            motif, onset = small["motifs"][index, occurrence], small["onsets"][index, occurrence]
            allowed = np.zeros((sk.NEURONS, sk.FRAMES), bool)
            for neuron, lag in zip(neurons[motif], lags[motif]):
                allowed[neuron, onset + lag:onset + lag + sk.BURST] = True
            labelled = grid[index] == occurrence + 1
            assert not (labelled & ~allowed).any()
        last = sk.OCCURRENCES  # the last occurrence owns every burst it kept: whole bursts of BURST bins
        runs = (grid[index] == last).sum(1)
        assert set(np.unique(runs)) <= {0, sk.BURST}
    assert (raster[grid > 0] == 1).all()
    background = (raster == 1) & (grid == 0)
    assert 0.5 * sk.BACKGROUND_RATE < background.mean() < 1.5 * sk.BACKGROUND_RATE


def test_loader_gives_a_binary_split():
    split = load("spikes", "valid")
    assert split.features.shape == split.objects.shape == (10_000, 480) and split.features.dtype == np.float32
    assert split.image_shape == (20, 24) and split.binary
    assert set(np.unique(split.features)) == {0.0, 1.0} and split.objects.max() == 3
    with pytest.raises(DataError, match="unknown split"):
        load("spikes", "single")


def test_time_slices_are_below_the_truth_where_sequences_overlap(small):
    """The trivial baseline's footing: k-means on a spike's bin scores well below 1, since
    occurrences overlap in time."""
    objects = torch.as_tensor(small["objects"][:100].astype(np.int64))
    masks = torch.as_tensor(time_slice_masks(small["spikes"][:100] > 0, sk.IMAGE_SHAPE, 4))
    score = float(ari(objects, masks).mean())
    assert 0.0 < score < 0.7, score


def test_line_oracle_gives_each_line_to_its_majority_owner():
    objects = np.array([[1, 0, 2,
                         1, 2, 2,
                         0, 2, 0]], dtype=np.uint8)  # a 3 x 3 grid, 0 = not scored
    by_column = line_oracle_masks(objects, (3, 3), axis=1)  # (1, 3, 9)
    by_row = line_oracle_masks(objects, (3, 3), axis=0)
    assert by_column.shape == (1, 3, 9) and (by_column.sum(1) == 1).all()
    np.testing.assert_array_equal(by_column[0].argmax(0), [1, 2, 2] * 3)
    np.testing.assert_array_equal(by_row[0].argmax(0), [1] * 3 + [2] * 3 + [2] * 3)


@pytest.mark.slow
def test_short_training_learns_to_group(monkeypatch, fg_ari_before_after):
    monkeypatch.setattr(sk, "SPLIT_SIZES", {"train": 4000, "valid": 200, "test": 8})
    config = preset("quick", "spikes")
    config.model.widths = (200, 100, 100)
    config.train.epochs, config.train.batch_size, config.train.valid_examples = 3, 50, 200
    config.train.precision, config.train.lr_decay_from = "fp32", 1.0
    before, after = fg_ari_before_after(config)
    assert abs(before) < 0.05
    assert after > before + 0.1, after
