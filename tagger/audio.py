"""Listen to a grouping: the spectrogram mixtures' groups turned back into sound (WAV files)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.io import wavfile

from .datasets import sound as sp


def write_separated(folder: Path, split: str, indices: list[int], masks: np.ndarray, data_dir=None) -> list[Path]:
    """For each example: the mixture, its true sources and each group's masked mixture as WAV.

    Args:
        folder: where the files go (created).
        split: the spectrogram split the examples come from.
        indices: the examples' positions in the split.
        masks: ``(len(indices), K, D)`` masks of the last iteration, image layout.

    Returns:
        The files written: ``example{i}_mixture.wav``, ``example{i}_source{s}.wav`` (s = 1..3)
        and ``example{i}_group{k}.wav`` (k = 0..K-1), 16-bit at 4 kHz; one gain per example so
        the files of an example compare in loudness.
    """
    folder.mkdir(parents=True, exist_ok=True)
    sources = sp.sources_of(split, indices, data_dir)
    truth = sp.waveforms(sources)  # (n, S, L)
    groups = sp.separate(truth.sum(axis=1), masks)  # (n, K, L)
    written = []
    for row, index in enumerate(indices):
        named = {"mixture": truth[row].sum(axis=0)}
        named |= {f"source{s + 1}": wave for s, wave in enumerate(truth[row])}
        named |= {f"group{k}": wave for k, wave in enumerate(groups[row])}
        gain = 0.9 / max(max(float(np.abs(wave).max()) for wave in named.values()), 1e-6)
        for name, wave in named.items():
            path = folder / f"example{index}_{name}.wav"
            wavfile.write(path, sp.SAMPLE_RATE, np.round(wave * gain * 32767).astype(np.int16))
            written.append(path)
    return written
