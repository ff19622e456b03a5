"""Sound mixtures as spectrograms: grouping beyond images (docs/design.md, "Spectrograms").

Each example mixes :data:`N_SOURCES` synthetic harmonic sounds, 0.528 s at 4 kHz. Per source:

* pitch: a semitone from E3 to B4 (165-494 Hz), the sources of a mixture at least two
  semitones apart;
* timbre: one of :data:`TIMBRES`: harmonic amplitudes 1/n ("bright"), 1/n^2 ("mellow") or
  1/n on odd harmonics only ("hollow", clarinet-like), harmonics up to 1.45 kHz, random phases;
* onset uniform in [0, 0.3] s, length uniform in [0.1, 0.3] s (cut at the clip's end), 10 ms
  linear attack, 30 ms linear release, exponential decay at a rate uniform in [0, 3] per second;
* level uniform in [-12, 0] dB.

The short-time Fourier transform uses a periodic Hann window of 128 samples (32 ms) and a hop
of 64: 32 frames x 48 bins (31.25 Hz to 1.5 kHz; DC and the bins above are dropped). The input is the
mixture's log magnitude over a 60 dB range below its loudest bin, mapped to [0, 1], laid out as
an image of ``(48, 32)``: row 0 is the highest frequency, column 0 the first frame. The ground
truth of a bin is the source whose own spectrogram is loudest there (the ideal binary mask of
source separation), scored where the mixture is within 30 dB of its loudest bin ("active");
quieter bins are id 0, not scored, like the background of an image.

``binary=True`` gives the active-bin map itself as the input (1 where scored, 0 elsewhere):
the same grouping problem for the Bernoulli input model.

Each split is drawn from its own ``numpy.random.Generator`` seeded by :data:`SEEDS`; the
cache holds the sources' parameters, the quantised input (uint8) and the ids, and
:func:`waveforms` renders any example's sources again, so masks can be turned into audio
(:func:`separate`).
"""
from __future__ import annotations

import os

import numpy as np

from .common import DataError, Split, load_npz_checked, save_npz_atomic
from .common import data_dir as _data_dir

SAMPLE_RATE = 4000
N_FFT = 128
HOP = 64
FRAMES = 32
BINS = 48  # rfft bins 1..48 (31 Hz to 1.5 kHz); DC and the bins above are dropped
SAMPLES = HOP * (FRAMES - 1) + N_FFT  # 2,112 samples, 0.528 s
IMAGE_SHAPE = (BINS, FRAMES)
N_SOURCES = 3
DB_RANGE = 60.0
ACTIVE_DB = 30.0
TIMBRES = ("bright", "mellow", "hollow")
LOWEST_NOTE, HIGHEST_NOTE = 52, 71  # MIDI E3 .. B4
TOP_HARMONIC_HZ = 1450.0
SPLIT_SIZES = {"train": 20_000, "valid": 2_000, "test": 2_000}
SEEDS = {"train": 1604001, "valid": 1604002, "test": 1604003}
RECIPE_VERSION = 1
_MAX_HARMONICS = 9  # enough for the lowest note: 1450 Hz / 164.8 Hz = 8.8


def draw_sources(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The parameters of ``n`` mixtures' sources, each ``(n, N_SOURCES)``: ``notes`` (MIDI,
    uint8), ``timbres`` (uint8 index into :data:`TIMBRES`), ``onsets`` and ``lengths`` (s),
    ``decays`` (1/s), ``levels`` (dB), and ``phases`` ``(n, N_SOURCES, 9)`` (radians, one per harmonic)."""
    notes = np.zeros((n, N_SOURCES), dtype=np.int64)
    todo = np.arange(n)
    while todo.size:  # redraw mixtures with two pitches closer than two semitones
        notes[todo] = rng.integers(LOWEST_NOTE, HIGHEST_NOTE + 1, size=(todo.size, N_SOURCES))
        ordered = np.sort(notes[todo], axis=1)
        todo = todo[(np.diff(ordered, axis=1) < 2).any(axis=1)]
    shape = (n, N_SOURCES)
    return {"notes": notes.astype(np.uint8),
            "timbres": rng.integers(0, len(TIMBRES), size=shape).astype(np.uint8),
            "onsets": rng.uniform(0.0, 0.3, size=shape).astype(np.float32),
            "lengths": rng.uniform(0.1, 0.3, size=shape).astype(np.float32),
            "decays": rng.uniform(0.0, 3.0, size=shape).astype(np.float32),
            "levels": rng.uniform(-12.0, 0.0, size=shape).astype(np.float32),
            "phases": rng.uniform(0.0, 2 * np.pi, size=shape + (_MAX_HARMONICS,)).astype(np.float32)}


def waveforms(sources: dict[str, np.ndarray]) -> np.ndarray:
    """Render sources: ``(n, N_SOURCES, SAMPLES)`` float32, one waveform per source."""
    t = np.arange(SAMPLES) / SAMPLE_RATE  # (L,)
    f0 = 440.0 * 2.0 ** ((sources["notes"].astype(np.float64) - 69) / 12)  # (n, S)
    n_harm = np.arange(1, _MAX_HARMONICS + 1)  # (H,)
    freqs = f0[..., None] * n_harm  # (n, S, H)
    timbre = sources["timbres"][..., None]
    amps = np.where(timbre == 1, 1.0 / n_harm**2, 1.0 / n_harm)  # (n, S, H)
    amps = np.where((timbre == 2) & (n_harm % 2 == 0), 0.0, amps)
    amps = np.where(freqs <= TOP_HARMONIC_HZ, amps, 0.0)
    out = np.zeros(f0.shape + (SAMPLES,), dtype=np.float32)
    for h in range(_MAX_HARMONICS):  # one harmonic at a time keeps memory at (n, S, L)
        phase = 2 * np.pi * freqs[..., h, None] * t + sources["phases"][..., h, None]
        out += (amps[..., h, None] * np.sin(phase)).astype(np.float32)
    return out * _envelopes(sources, t)


def _envelopes(sources: dict[str, np.ndarray], t: np.ndarray) -> np.ndarray:
    """``(n, S, L)``: attack, exponential decay, release, times the level."""
    start = sources["onsets"][..., None].astype(np.float64)
    end = np.minimum(start + sources["lengths"][..., None], t[-1])
    since, until = t - start, end - t  # (n, S, L)
    shape = np.clip(since / 0.010, 0.0, 1.0) * np.clip(until / 0.030, 0.0, 1.0)
    decay = np.exp(-sources["decays"][..., None] * np.maximum(since, 0.0))
    level = 10.0 ** (sources["levels"][..., None] / 20.0)
    return (shape * decay * level).astype(np.float32)


def _window() -> np.ndarray:
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)  # periodic Hann


def stft(signal: np.ndarray) -> np.ndarray:
    """``(..., SAMPLES)`` -> complex ``(..., N_FFT // 2 + 1, FRAMES)`` (all rfft bins, DC included)."""
    starts = np.arange(FRAMES) * HOP
    frames = signal[..., starts[:, None] + np.arange(N_FFT)] * _window()  # (..., F, N_FFT)
    return np.swapaxes(np.fft.rfft(frames, axis=-1), -1, -2)


def istft(spectrum: np.ndarray) -> np.ndarray:
    """Inverse of :func:`stft` by weighted overlap-add: ``(..., 65, FRAMES)`` -> ``(..., SAMPLES)``.
    Exact where two frames overlap (the first and last ``HOP`` samples are windowed once)."""
    window = _window()
    frames = np.fft.irfft(np.swapaxes(spectrum, -1, -2), n=N_FFT, axis=-1) * window  # (..., F, N_FFT)
    out = np.zeros(spectrum.shape[:-2] + (SAMPLES,), dtype=np.float64)
    norm = np.zeros(SAMPLES)
    for index in range(FRAMES):
        out[..., index * HOP:index * HOP + N_FFT] += frames[..., index, :]
        norm[index * HOP:index * HOP + N_FFT] += window**2
    return (out / np.maximum(norm, 1e-3)).astype(np.float32)


def to_image(spectrum: np.ndarray) -> np.ndarray:
    """``(..., N_FFT // 2 + 1, FRAMES)`` rfft bins -> ``(..., BINS * FRAMES)``: bins 1..BINS, highest first."""
    return spectrum[..., 1:BINS + 1, :][..., ::-1, :].reshape(*spectrum.shape[:-2], BINS * FRAMES)


def _render(sources: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """uint8 ``(n, D)`` quantised log magnitude and uint8 ``(n, D)`` dominant-source ids."""
    spectra = stft(waveforms(sources))  # (n, S, 65, F); the STFT is linear: the mixture's is their sum
    per_source = np.abs(to_image(spectra))  # (n, S, D)
    mixture = np.abs(to_image(spectra.sum(axis=1)))  # (n, D)
    decibels = 20 * np.log10(mixture + 1e-9)
    decibels -= decibels.max(axis=1, keepdims=True)  # 0 dB = the loudest bin
    level = np.clip(np.round((decibels + DB_RANGE) / DB_RANGE * 255), 0, 255).astype(np.uint8)
    objects = (per_source.argmax(axis=1) + 1).astype(np.uint8)
    objects[decibels < -ACTIVE_DB] = 0
    return level, objects


def generate(n: int, seed: int, chunk: int = 500) -> dict[str, np.ndarray]:
    """Draw ``n`` mixtures from ``Generator(PCG64(seed))``: the sources' parameters (see
    :func:`draw_sources`), ``levels_u8`` ``(n, D)`` and ``objects`` ``(n, D)``."""
    if n < 0:
        raise DataError(f"spectrograms: n must be >= 0, got {n}")
    sources = draw_sources(n, np.random.Generator(np.random.PCG64(seed)))
    level = np.zeros((n, BINS * FRAMES), dtype=np.uint8)
    objects = np.zeros((n, BINS * FRAMES), dtype=np.uint8)
    for lo in range(0, n, chunk):
        part = {key: value[lo:lo + chunk] for key, value in sources.items()}
        level[lo:lo + chunk], objects[lo:lo + chunk] = _render(part)
    return sources | {"levels_u8": level, "objects": objects}


def spectrograms(split: str, binary: bool = False, data_dir: str | os.PathLike | None = None) -> Split:
    """Load (generating and caching once, ~1 minute) one split of the spectrogram mixtures.

    Args:
        split: ``"train"`` (20k), ``"valid"`` (2k) or ``"test"`` (2k).
        binary: the active-bin map as input instead of the log magnitude.
        data_dir: cache directory (default ``$TAGGER_DATA`` or ``~/.cache/tagger``).

    Returns:
        A :class:`Split`: ``features`` float32 ``(N, 1536)`` in [0, 1], ``objects`` uint8
        ``(N, 1536)`` (0 = quiet bin, 1..3 = dominant source), ``image_shape == (48, 32)``.
    """
    stored = _stored(split, data_dir)
    objects = stored["objects"]
    features = (objects > 0).astype(np.float32) if binary else np.divide(stored["levels_u8"], 255, dtype=np.float32)
    return Split(name=f"spectrograms{'-binary' if binary else ''}/{split}", features=features, objects=objects,
                 image_shape=IMAGE_SHAPE, binary=binary)


def _stored(split: str, data_dir) -> dict[str, np.ndarray]:
    """A split's cached arrays (checked), generated and cached first if absent or damaged."""
    if split not in SPLIT_SIZES:
        raise DataError(f"spectrograms: unknown split {split!r}; choose from {', '.join(SPLIT_SIZES)}")
    path = _data_dir(data_dir) / f"spectrograms_v{RECIPE_VERSION}_{split}.npz"
    stored = load_npz_checked(path)
    if stored is None:
        stored = generate(SPLIT_SIZES[split], SEEDS[split])
        save_npz_atomic(path, stored)
    return stored


def sources_of(split: str, indices, data_dir: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
    """The stored source parameters of some examples of a split (for :func:`waveforms`)."""
    stored = _stored(split, data_dir)
    return {key: stored[key][np.asarray(indices)] for key in ("notes", "timbres", "onsets", "lengths",
                                                              "decays", "levels", "phases")}


def separate(mixture: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Audio of each group: the mixture's STFT times the group's mask, inverted.

    Args:
        mixture: ``(n, SAMPLES)`` mixture waveforms (``waveforms(sources).sum(axis=1)``).
        masks: ``(n, K, D)`` masks in the image layout (rows of bins, highest first).

    Returns:
        ``(n, K, SAMPLES)`` float32 waveforms (the DC bin takes the mask of the lowest bin, the
        bins above 1.5 kHz that of the highest).
    """
    mixture = stft(mixture)  # (n, 65, F)
    grid = np.asarray(masks).reshape(masks.shape[0], masks.shape[1], BINS, FRAMES)[:, :, ::-1, :]  # lowest bin first
    above = np.repeat(grid[:, :, -1:], N_FFT // 2 - BINS, axis=2)  # bins above 1.5 kHz: as the top bin
    full = np.concatenate([grid[:, :, :1], grid, above], axis=2)  # (n, K, N_FFT // 2 + 1, F): DC as bin 1
    return istft(mixture[:, None] * full)
