"""TextureMNIST's pixels: the texture bank and the compositing of textured digits
(the recipe of ``data/FreqMNIST28.ipynb`` of CuriousAI/tagger, re-implemented, not copied;
the layouts that say which digit, texture and crop go where are :mod:`.texture_mnist`'s).

* Texture bank: 20 sinusoids of 38x38. Frequency pairs ``(r, c)`` are the product
  ``{4, 10, 21, 32, 37} x {0, 4, 8, 12}`` with ``c`` shifted by the row index 0..4 of ``r``;
  texture ``i`` is the real part of the inverse 2-D FFT of a 38x38 array holding one unit
  complex coefficient ``exp(2 pi j u)`` at ``[r, c]`` (``u = rng.rand()``, one draw per
  texture in bank order, ``RandomState(546298)``), min-max normalised to [0, 1].
* Compositing, bottom to top: ``pixel = a t + (1 - a) below`` with the digit's alpha
  ``a = grey / 255`` and ``t`` the layer's 28x28 crop of its texture; the soft masks are
  ``[bg, lower, upper] = [(1-a1)(1-a2), a1 (1-a2), a2]`` (sum 1).

Bit-exactness: the notebook ran numpy 1.x, whose FFT (fftpack) always computed in complex128;
this code upcasts to complex128 too, but another FFT implementation may round differently in
the last bits, so on other numpy versions a texel could differ by one float32 ulp (on numpy
2.4 the image checked in :mod:`.texture_mnist` matches exactly).
"""
from __future__ import annotations

import numpy as np

TEXTURE_SEED = 546298
FREQ_ROWS = (4, 10, 21, 32, 37)
FREQ_COLS = (0, 4, 8, 12)
IMAGE_SIZE = 28
_CHUNK = 5000  # examples rendered at a time (bounds float64 temporaries)


def texture_frequencies() -> np.ndarray:
    """The 20 ``(row, column)`` frequency pairs in bank order, ``(20, 2)`` int64."""
    pairs = np.array([(r, c) for r in FREQ_ROWS for c in FREQ_COLS], dtype=np.int64)
    pairs = pairs.reshape(len(FREQ_ROWS), len(FREQ_COLS), 2)
    pairs[:, :, 1] += np.arange(len(FREQ_ROWS))[:, None]  # column frequency += row index
    return pairs.reshape(-1, 2)


def texture_bank(seed: int = TEXTURE_SEED) -> np.ndarray:
    """The bank of 20 sinusoidal textures, ``(20, 38, 38)`` float32, each min 0 and max 1.

    One ``rng.rand()`` per texture (in bank order) gives the phase of its single Fourier
    coefficient; the coefficient is stored as complex64 (as in the original) and the inverse
    FFT is computed in complex128 (see the module docstring on bit-exactness).
    """
    rng = np.random.RandomState(seed)
    freqs = texture_frequencies()
    size = int(freqs.max()) + 1  # 38
    coefficients = np.zeros((len(freqs), size, size), dtype=np.complex64)
    for index, (row, col) in enumerate(freqs):
        coefficients[index, row, col] += np.exp(2j * np.pi * rng.rand())
    bank = np.real(np.fft.ifft2(coefficients.astype(np.complex128))).astype(np.float32)
    bank -= bank.min(axis=(1, 2), keepdims=True)
    bank /= bank.max(axis=(1, 2), keepdims=True)
    return bank


def render(digits: np.ndarray, textures: np.ndarray, crops: np.ndarray,
           bank: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Composite textured digits over a textured background.

    Args:
        digits: ``(N, n, 784)`` uint8 digits in depth order (lowest first).
        textures: ``(N, 1 + n)`` bank ids, background first.
        crops: ``(N, 1 + n, 2)`` (row, column) offsets of each layer's 28x28 crop.
        bank: the texture bank; default :func:`texture_bank`.

    Returns:
        ``features`` ``(N, 784)`` float32 and ``masks`` ``(N, 1 + n, 784)`` float32 soft masks
        (background first), computed like the original: masks in float32, pixels in float64.
    """
    bank = texture_bank() if bank is None else np.asarray(bank, dtype=np.float32)
    count, n_digits = digits.shape[:2]
    size = bank.shape[-1]
    pixel = (np.arange(IMAGE_SIZE)[:, None] * size + np.arange(IMAGE_SIZE)[None, :]).reshape(-1)
    flat_bank = bank.reshape(-1)
    features = np.empty((count, IMAGE_SIZE * IMAGE_SIZE), dtype=np.float32)
    masks = np.empty((count, n_digits + 1, IMAGE_SIZE * IMAGE_SIZE), dtype=np.float32)
    for start in range(0, count, _CHUNK):
        part = slice(start, min(start + _CHUNK, count))
        base = textures[part] * (size * size) + crops[part, :, 0] * size + crops[part, :, 1]
        layers = flat_bank[base[:, :, None] + pixel]  # (n, 1 + n_digits, 784) float32 crops
        alpha = (digits[part].astype(np.float64) / 255.0).astype(np.float32)
        chunk_masks = np.ones((alpha.shape[0], n_digits + 1, alpha.shape[2]), dtype=np.float32)
        image = layers[:, 0].astype(np.float64)
        for layer in range(1, n_digits + 1):
            a = alpha[:, layer - 1]
            chunk_masks[:, layer] = a
            chunk_masks[:, :layer] *= (1 - a)[:, None]
            image = a * layers[:, layer].astype(np.float64) + (1 - a) * image
        features[part] = image
        masks[part] = chunk_masks
    return features, masks


def objects_from_masks(masks: np.ndarray, threshold: float = 0.9) -> np.ndarray:
    """Object id per element: ``argmax + 1`` where the largest mask exceeds ``threshold``, else 0.

    The background is object 1, so it is scored too (docs/design.md, "Evaluation").
    """
    ids = masks.argmax(axis=1).astype(np.uint8) + 1
    ids[masks.max(axis=1) <= threshold] = 0
    return ids
