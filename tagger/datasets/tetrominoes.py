"""Tetrominoes (Kabra et al. 2019, the multi-object datasets release), generated here.

Each 35x35 RGB scene holds three tetrominoes on a black background. See
``docs/tetrominoes.md`` for what the release says and where this generator may differ.

Recipe (our own, after the release's description):

* Pieces: the 19 fixed tetrominoes (the 7 free ones I, O, T, S, Z, J, L under the four
  rotations, duplicates removed: I 2, O 1, T 4, S 2, Z 2, J 4, L 4), index order
  :data:`SHAPE_NAMES`; each cell is a ``BLOCK`` x ``BLOCK`` (5x5) pixel square, so a piece
  covers 100 pixels and its bounding box is 20x5, 15x10 or 10x10 pixels.
* Colours: each piece independently uniform over the six of :data:`COLORS` (repeats
  allowed), saturated RGB (0 or 255 per channel); the background is black.
* Placement: pieces are drawn in order 1, 2, 3; each gets a uniform shape, then a uniform
  integer top-left pixel ``(y, x)`` such that the piece lies wholly inside the image; a
  position that overlaps an earlier piece is redrawn (the shape is kept, so shapes stay
  uniform) until it does not: pieces never occlude each other (they may touch). Where the
  first two pieces leave no room for the third's shape (e.g. a horizontal I), the shape is
  redrawn after every 63 failed positions, which slightly favours easy-to-fit shapes in those
  rare scenes.
* Splits: 60k train / 10k valid / 10k test, each from its own ``numpy.random.Generator``
  (PCG64) seeded by :data:`SEEDS`, so the splits are independent of each other and of the
  split sizes of the others.

The cache (``data_dir/tetrominoes_v{RECIPE_VERSION}.npz``) holds the layout (objects,
colours, shapes, positions); features are rendered from it on load (well under a second).
"""
from __future__ import annotations

import os

import numpy as np

from .common import DataError, Split, load_npz_checked, save_npz_atomic
from .common import data_dir as _data_dir
from .tfrecord import read_examples

SIZE = 35
BLOCK = 5
N_PIECES = 3
IMAGE_SHAPE = (SIZE, SIZE, 3)
SPLIT_SIZES = {"train": 60_000, "valid": 10_000, "test": 10_000}
SEEDS = {"train": 20190501, "valid": 20190502, "test": 20190503}
RECIPE_VERSION = 1

COLOR_NAMES = ("red", "green", "blue", "yellow", "magenta", "cyan")
COLORS = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255],
                   [255, 255, 0], [255, 0, 255], [0, 255, 255]], dtype=np.uint8)
"""RGB of the six piece colours, indexed like :data:`COLOR_NAMES`."""

_FREE = {  # one orientation of each free tetromino, as (row, column) cells
    "I": ((0, 0), (0, 1), (0, 2), (0, 3)),
    "O": ((0, 0), (0, 1), (1, 0), (1, 1)),
    "T": ((0, 0), (0, 1), (0, 2), (1, 1)),
    "S": ((0, 1), (0, 2), (1, 0), (1, 1)),
    "Z": ((0, 0), (0, 1), (1, 1), (1, 2)),
    "J": ((0, 0), (1, 0), (1, 1), (1, 2)),
    "L": ((0, 2), (1, 0), (1, 1), (1, 2)),
}


def _fixed_tetrominoes() -> tuple[tuple[str, ...], list[np.ndarray]]:
    """The 19 fixed tetrominoes: names like ``"T1"`` and bool cell grids, rotations deduplicated."""
    names, grids = [], []
    for name, cells in _FREE.items():
        grid = np.zeros((4, 4), dtype=bool)
        for row, col in cells:
            grid[row, col] = True
        seen = []
        for _ in range(4):
            rows, cols = np.nonzero(grid)
            tight = grid[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
            if not any(tight.shape == other.shape and (tight == other).all() for other in seen):
                seen.append(tight.copy())
            grid = np.rot90(grid)
        for index, tight in enumerate(seen):
            names.append(f"{name}{index}")
            grids.append(tight)
    return tuple(names), grids


SHAPE_NAMES, SHAPE_CELLS = _fixed_tetrominoes()
"""Names (``"I0"``, ``"I1"``, ``"O0"``, ``"T0"``..``"T3"``, ...) and cell grids of the 19 pieces."""

SHAPE_MASKS = [np.kron(cells, np.ones((BLOCK, BLOCK), dtype=bool)) for cells in SHAPE_CELLS]
"""Pixel masks (bool, tight bounding box) of the 19 pieces at ``BLOCK`` pixels per cell."""

_HEIGHTS = np.array([mask.shape[0] for mask in SHAPE_MASKS])
_WIDTHS = np.array([mask.shape[1] for mask in SHAPE_MASKS])
_ATTEMPTS_PER_SHAPE = 64
_OFFSETS = np.stack([np.stack(np.nonzero(mask), axis=1) for mask in SHAPE_MASKS])  # (19, 100, 2)


def generate(n: int, seed: int) -> dict[str, np.ndarray]:
    """Draw ``n`` scenes from ``numpy.random.Generator(PCG64(seed))``.

    Returns:
        ``objects`` uint8 ``(n, 35*35)`` (0 = background, 1..3 = piece in drawing order),
        ``colors`` uint8 ``(n, 3)`` (index into :data:`COLORS`), ``shapes`` uint8 ``(n, 3)``
        (index into :data:`SHAPE_NAMES`), ``positions`` uint8 ``(n, 3, 2)`` (top-left
        ``(y, x)`` pixel of each piece's bounding box).
    """
    if n < 0:
        raise DataError(f"tetrominoes: n must be >= 0, got {n}")
    rng = np.random.Generator(np.random.PCG64(seed))
    objects = np.zeros((n, SIZE * SIZE), dtype=np.uint8)
    shapes = np.zeros((n, N_PIECES), dtype=np.uint8)
    positions = np.zeros((n, N_PIECES, 2), dtype=np.uint8)
    for piece in range(N_PIECES):
        shapes[:, piece] = rng.integers(0, len(SHAPE_NAMES), size=n)
        todo = np.arange(n)
        attempt = 0
        while todo.size:
            attempt += 1
            if attempt % _ATTEMPTS_PER_SHAPE == 0:  # rare dead ends: the earlier pieces leave no room
                shapes[todo, piece] = rng.integers(0, len(SHAPE_NAMES), size=todo.size)
            shape = shapes[todo, piece]
            y = rng.integers(0, SIZE - _HEIGHTS[shape] + 1)
            x = rng.integers(0, SIZE - _WIDTHS[shape] + 1)
            cells = _OFFSETS[shape] + np.stack([y, x], axis=1)[:, None, :]  # (m, 100, 2)
            flat = cells[..., 0] * SIZE + cells[..., 1]  # (m, 100)
            free = (objects[todo[:, None], flat] == 0).all(axis=1)
            done = todo[free]
            objects[done[:, None], flat[free]] = piece + 1
            positions[done, piece, 0] = y[free]
            positions[done, piece, 1] = x[free]
            todo = todo[~free]
    colors = rng.integers(0, len(COLORS), size=(n, N_PIECES)).astype(np.uint8)
    return {"objects": objects, "colors": colors, "shapes": shapes, "positions": positions}


def render(objects: np.ndarray, colors: np.ndarray) -> np.ndarray:
    """Features ``(N, 35*35*3)`` float32 in [0, 1], pixel-major (H, W, C), from the layout."""
    palette = np.concatenate([np.zeros((1, 3), np.uint8), COLORS])  # black, then the six colours
    per_scene = np.concatenate([np.zeros((len(colors), 1), np.uint8), colors.astype(np.uint8) + 1], axis=1)
    pixel_colors = per_scene[np.arange(len(objects))[:, None], objects]  # (N, H*W) index into palette
    return np.divide(palette[pixel_colors], 255, dtype=np.float32).reshape(len(objects), -1)


def _split(name: str, arrays: dict[str, np.ndarray], features: np.ndarray | None = None) -> Split:
    return Split(
        name=name,
        features=render(arrays["objects"], arrays["colors"]) if features is None else features,
        objects=arrays["objects"],
        image_shape=IMAGE_SHAPE,
        binary=False,
        colors=arrays["colors"],
        object_shapes=arrays["shapes"],
        positions=arrays["positions"],
    )


def tetrominoes(split: str, data_dir: str | os.PathLike | None = None) -> Split:
    """Load (generating and caching once) one split of Tetrominoes.

    Args:
        split: ``"train"`` (60k), ``"valid"`` (10k) or ``"test"`` (10k).
        data_dir: cache directory (default ``$TAGGER_DATA`` or ``~/.cache/tagger``).

    Returns:
        A :class:`Split`: ``features`` float32 ``(N, 3675)`` in [0, 1] (H, W, C order),
        ``objects`` uint8 ``(N, 1225)`` per pixel (0 = background, 1..3 = piece),
        ``image_shape == (35, 35, 3)``, ``colors`` / ``object_shapes`` ``(N, 3)`` and
        ``positions`` ``(N, 3, 2)`` per piece.
    """
    if split not in SPLIT_SIZES:
        raise DataError(f"tetrominoes: unknown split {split!r}; choose from {', '.join(SPLIT_SIZES)}")
    path = _data_dir(data_dir) / f"tetrominoes_v{RECIPE_VERSION}.npz"
    stored = load_npz_checked(path)
    if stored is None:
        stored = {}
        for name, count in SPLIT_SIZES.items():
            for key, value in generate(count, SEEDS[name]).items():
                stored[f"{name}_{key}"] = value
        save_npz_atomic(path, stored)
    arrays = {key: stored[f"{split}_{key}"] for key in ("objects", "colors", "shapes", "positions")}
    return _split(f"tetrominoes/{split}", arrays)


def _match_shape(piece: np.ndarray) -> int:
    """Index in :data:`SHAPE_NAMES` of a bool pixel mask (tight box), 255 if none matches."""
    for index, mask in enumerate(SHAPE_MASKS):
        if mask.shape == piece.shape and (mask == piece).all():
            return index
    return 255


def tetrominoes_from_tfrecords(path: str | os.PathLike, n: int | None = None, verify: bool = True) -> Split:
    """Read the release's ``tetrominoes_train.tfrecords`` (GZIP TFRecords) without TensorFlow.

    Each example holds ``image`` (35, 35, 3) uint8 and ``mask`` (4, 35, 35, 1) uint8 as byte
    strings (entity 0 = background), plus float features ``x``, ``y``, ``shape``,
    ``visibility`` (4,) and ``color`` (4, 3) per entity.

    Args:
        path: the file.
        n: read only the first ``n`` examples (all if None).
        verify: check the TFRecord CRCs (slow in pure Python; see :mod:`.tfrecord`).

    Returns:
        A :class:`Split` laid out like :func:`tetrominoes`: ``features`` are the release's
        images / 255, ``objects`` the argmax over the four mask channels (0 = background).
        ``colors`` is the index of the :data:`COLORS` entry nearest each piece's mean pixel
        colour, ``object_shapes`` the index of the matching piece of :data:`SHAPE_MASKS`
        (255 where none matches, e.g. occluded or differently scaled pieces), ``positions``
        the top-left ``(y, x)`` of each mask's bounding box; 255 for empty masks.
    """
    images, objects = [], []
    for example in read_examples(path, n=n, verify=verify):
        try:
            image = np.frombuffer(b"".join(example["image"]), dtype=np.uint8)
            mask = np.frombuffer(b"".join(example["mask"]), dtype=np.uint8)
        except KeyError as error:
            raise DataError(f"{path}: an example lacks the {error.args[0]!r} feature; "
                            "not a Tetrominoes file of the multi-object datasets release") from None
        if image.size != SIZE * SIZE * 3 or mask.size % (SIZE * SIZE):
            raise DataError(f"{path}: image of {image.size} bytes or mask of {mask.size} bytes; "
                            f"expected {SIZE * SIZE * 3} and a multiple of {SIZE * SIZE}")
        images.append(image)
        objects.append(mask.reshape(-1, SIZE * SIZE).argmax(axis=0).astype(np.uint8))
    if not images:
        raise DataError(f"{path}: no examples")
    images_array = np.stack(images)  # (N, H*W*3) uint8
    objects_array = np.stack(objects)  # (N, H*W)
    count = len(images_array)
    colors = np.full((count, N_PIECES), 255, dtype=np.uint8)
    shapes = np.full((count, N_PIECES), 255, dtype=np.uint8)
    positions = np.full((count, N_PIECES, 2), 255, dtype=np.uint8)
    pixels = images_array.reshape(count, SIZE * SIZE, 3).astype(np.float32)
    for piece in range(N_PIECES):
        for index in range(count):
            where = objects_array[index] == piece + 1
            if not where.any():
                continue
            mean = pixels[index, where].mean(axis=0)
            colors[index, piece] = np.argmin(((COLORS.astype(np.float32) - mean) ** 2).sum(axis=1))
            rows, cols = np.nonzero(where.reshape(SIZE, SIZE))
            positions[index, piece] = rows.min(), cols.min()
            box = where.reshape(SIZE, SIZE)[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
            shapes[index, piece] = _match_shape(box)
    arrays = {"objects": objects_array, "colors": colors, "shapes": shapes, "positions": positions}
    return _split(f"tetrominoes-release/{os.path.basename(os.fspath(path))}", arrays,
                  features=images_array.astype(np.float32) / 255)
