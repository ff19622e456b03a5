"""The sound-mixture spectrograms: generator, ground truth, STFT round trip, audio, NMF baseline."""
import numpy as np
import pytest
import scipy.signal
import torch
from scipy.io import wavfile

from tagger import preset
from tagger.audio import write_separated
from tagger.baselines.nmf import magnitudes, nmf_masks, time_slice_masks
from tagger.datasets import load
from tagger.datasets import sound as sp
from tagger.datasets.common import array_checksum
from tagger.errors import ConfigError
from tagger.metrics import ari


@pytest.fixture(scope="module")
def small():
    return sp.generate(24, seed=5)


@pytest.fixture
def tiny_splits(tmp_path, monkeypatch):
    monkeypatch.setattr(sp, "SPLIT_SIZES", {"train": 16, "valid": 8, "test": 8})
    return tmp_path


def test_generator_is_deterministic_and_seeded(small):
    assert array_checksum(sp.generate(24, seed=5)) == array_checksum(small)
    assert array_checksum(sp.generate(24, seed=6)) != array_checksum(small)


def test_mixtures_hold_three_sources_at_distinct_pitches(small):
    assert small["levels_u8"].shape == small["objects"].shape == (24, sp.BINS * sp.FRAMES)
    assert small["objects"].max() <= sp.N_SOURCES
    notes = np.sort(small["notes"].astype(int), axis=1)
    assert (np.diff(notes, axis=1) >= 2).all()
    assert ((notes >= sp.LOWEST_NOTE) & (notes <= sp.HIGHEST_NOTE)).all()
    heard = [len(np.unique(row[row > 0])) for row in small["objects"]]
    assert np.mean(np.array(heard) == 3) > 0.8  # a quiet, short source can be masked entirely, rarely
    # the loudest bin is 0 dB (level 255); the scored bins are those within 30 dB of it
    assert (small["levels_u8"].max(axis=1) == 255).all()
    active = small["levels_u8"] >= np.round((sp.DB_RANGE - sp.ACTIVE_DB) / sp.DB_RANGE * 255)
    assert ((small["objects"] > 0) == active).mean() > 0.999  # rounding at the threshold aside


def test_ground_truth_is_the_dominant_source_by_scipy_stft(small):
    sources = {key: value[:2] for key, value in small.items() if key not in ("levels_u8", "objects")}
    waves = sp.waveforms(sources)  # (2, S, L)
    _, _, spectra = scipy.signal.stft(waves, window="hann", nperseg=sp.N_FFT, noverlap=sp.N_FFT - sp.HOP,
                                      boundary=None, padded=False)  # (2, S, 65, F)
    image = np.abs(spectra[:, :, 1:sp.BINS + 1, :][:, :, ::-1, :]).reshape(2, sp.N_SOURCES, -1)  # highest first
    objects = small["objects"][:2]
    scored = objects > 0
    assert (image.argmax(axis=1)[scored] + 1 == objects[scored]).all()


def test_image_rows_are_frequency_bins_highest_first():
    t = np.arange(sp.SAMPLES) / sp.SAMPLE_RATE
    for hz in (125.0, 1000.0):  # rfft bins 4 and 32 (31.25 Hz apart)
        image = np.abs(sp.to_image(sp.stft(np.sin(2 * np.pi * hz * t)))).reshape(sp.BINS, sp.FRAMES)
        assert sp.BINS - image[:, sp.FRAMES // 2].argmax() == round(hz * sp.N_FFT / sp.SAMPLE_RATE)


def test_stft_matches_scipy_and_inverts():
    signal = np.random.default_rng(0).standard_normal((3, sp.SAMPLES)).astype(np.float32)
    _, _, reference = scipy.signal.stft(signal, window="hann", nperseg=sp.N_FFT, noverlap=sp.N_FFT - sp.HOP,
                                        boundary=None, padded=False)
    ours = sp.stft(signal)
    assert ours.shape == (3, sp.N_FFT // 2 + 1, sp.FRAMES)
    np.testing.assert_allclose(ours, reference * sp.N_FFT / 2, atol=1e-4)  # scipy scales by 1 / sum(window)
    inner = slice(sp.HOP, -sp.HOP)
    np.testing.assert_allclose(sp.istft(ours)[:, inner], signal[:, inner], atol=1e-5)


def test_ideal_masks_separate_the_sources(small):
    sources = {key: value[:4] for key, value in small.items() if key not in ("levels_u8", "objects")}
    truth = sp.waveforms(sources)  # (4, S, L)
    full = sp.to_image(np.abs(sp.stft(truth)))  # (4, S, D)
    ideal = np.eye(sp.N_SOURCES)[full.argmax(axis=1)].transpose(0, 2, 1)  # (4, S, D): one-hot masks
    separated = sp.separate(truth.sum(axis=1), ideal)  # (4, S, L)
    inner = slice(sp.HOP, -sp.HOP)
    np.testing.assert_allclose(separated.sum(axis=1)[:, inner], truth.sum(axis=1)[:, inner], atol=1e-4)
    error = ((separated - truth)[..., inner] ** 2).sum()
    mixture_error = ((truth.sum(axis=1, keepdims=True) - truth)[..., inner] ** 2).sum()
    assert error < 0.1 * mixture_error  # ideal binary masks recover the sources far better than the mix


def test_loader_caches_and_binarises(tiny_splits):
    logmag = load("spectrograms", "test", tiny_splits)
    active = load("spectrograms", "test", tiny_splits, binary=True)
    assert logmag.image_shape == sp.IMAGE_SHAPE and logmag.features.shape == (8, sp.BINS * sp.FRAMES)
    assert not logmag.binary and active.binary
    assert 0.0 <= logmag.features.min() and logmag.features.max() == 1.0
    np.testing.assert_array_equal(active.features, (logmag.objects > 0).astype(np.float32))
    assert (tiny_splits / f"spectrograms_v{sp.RECIPE_VERSION}_test.npz").exists()


def test_presets_pair_input_and_likelihood():
    assert preset("quick-logmag", "spectrograms").validate().model.likelihood == "continuous"
    assert preset("large", "spectrograms").validate().model.likelihood == "binary"
    binary = preset("quick", "spectrograms").validate()
    assert binary.model.likelihood == "binary" and binary.train.data_kwargs() == {"binary": True}
    binary.model.likelihood = "continuous"
    with pytest.raises(ConfigError, match="active-bin"):
        binary.validate()


def test_nmf_separates_two_templates_switched_on_apart():
    bins, frames = 8, 10
    w = np.zeros((bins, 2))
    w[[1, 3, 5], 0], w[[2, 6], 1] = 1.0, 2.0  # two spectral templates (harmonic combs)
    h = np.zeros((2, frames))
    h[0, :6], h[1, 4:] = 1.0, 1.0  # overlapping in time
    spectrum = (w @ h).reshape(1, -1)
    masks = torch.as_tensor(nmf_masks(spectrum, (bins, frames), groups=2))
    objects = torch.as_tensor(np.where(w[:, :1] * h[:1] > 0, 1, 0) + np.where(w[:, 1:] * h[1:] > 0, 2, 0))
    assert float(ari(objects.reshape(1, -1), masks)) == pytest.approx(1.0)
    assert magnitudes(np.array([1.0, 0.0]), 60.0) == pytest.approx([1.0, 1e-3])


def test_time_slices_split_sounds_apart_in_time_and_not_sounds_at_once():
    bins, frames = 6, 12
    apart = np.zeros((bins, frames), dtype=np.int64)
    apart[[1, 4], :4], apart[[2, 5], 7:] = 1, 2  # one sound, then another
    at_once = np.zeros((bins, frames), dtype=np.int64)
    at_once[[1, 4], 2:9], at_once[[2, 5], 2:9] = 1, 2  # two sounds over the same frames
    objects = torch.as_tensor(np.stack([apart, at_once]).reshape(2, -1))
    masks = time_slice_masks(objects.numpy() > 0, (bins, frames), groups=2)
    assert masks.shape == (2, 2, bins * frames)
    np.testing.assert_array_equal(masks.sum(axis=1), 1.0)  # every bin in exactly one group
    scores = ari(objects, torch.as_tensor(masks))
    assert float(scores[0]) == pytest.approx(1.0) and float(scores[1]) < 0.1


def test_separated_audio_files(tiny_splits, tmp_path):
    split = load("spectrograms", "test", tiny_splits)
    masks = np.stack([split.objects[:2] == k for k in range(4)], axis=1).astype(np.float32)  # (2, 4, D)
    files = write_separated(tmp_path / "audio", "test", [0, 1], masks, tiny_splits)
    assert len(files) == 2 * (1 + sp.N_SOURCES + 4)
    rate, wave = wavfile.read(files[0])
    assert rate == sp.SAMPLE_RATE and wave.dtype == np.int16 and wave.shape == (sp.SAMPLES,)
    assert np.abs(wave).max() > 1000


@pytest.mark.slow
def test_short_training_on_active_bins_learns_to_group(monkeypatch, fg_ari_before_after):
    monkeypatch.setattr(sp, "SPLIT_SIZES", {"train": 2000, "valid": 200, "test": 8})
    config = preset("quick", "spectrograms")
    config.model.widths = (200, 100, 100)
    config.train.epochs, config.train.batch_size, config.train.valid_examples = 3, 50, 200
    before, after = fg_ari_before_after(config)
    assert abs(before) < 0.05
    assert after > before + 0.1, after


def test_probe_refuses_a_run_that_is_not_shapes(tiny_splits, capsys):
    """The probe's grid varies the shapes per image: on a spectrogram run it says so in one line."""
    from tagger.cli import main
    import tagger

    config = preset("quick", "spectrograms")
    config.model.widths = (8, 8, 8)
    config.train.epochs, config.train.batch_size, config.train.valid_examples = 1, 8, 8
    tagger.train(config, run_dir=tiny_splits / "run", data_dir=tiny_splits, progress=False, quiet=True)
    assert main(["probe", str(tiny_splits / "run"), "--data-dir", str(tiny_splits)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs a Shapes run" in err[0] and "spectrograms" in err[0], err
