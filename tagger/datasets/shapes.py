"""The Shapes dataset of the Tagger paper, bit for bit (docs/design.md, "Data").

Each 20x20 binary image holds three shapes drawn from a square ring and an up/down
triangle outline, placed uniformly at random; pixels covered by two or more shapes are
still on but belong to no object (id 0, not scored), like the background.

The original splits (train 50k, valid 10k, test 10k, single 10k) are drawn in that order
from numpy's legacy global RandomState seeded 265076, with three scalar ``randint`` calls
per shape (shape index, x, y). This generator makes the very same calls, so its output
equals the original file element for element (``tests/test_shapes.py`` pins checksums).
"""
from __future__ import annotations

import numpy as np

from .common import DataError, Split, load_npz_checked, save_npz_atomic
from .common import data_dir as cache_dir

SEED = 265076
SPLIT_SIZES = {"train": 50_000, "valid": 10_000, "test": 10_000, "single": 10_000}
RECIPE_VERSION = 1

_SQUARE = np.ones((7, 7), dtype=bool)
_SQUARE[2:5, 2:5] = False
_TRIANGLE = np.array(
    [[0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0],
     [0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0],
     [0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0, 0],
     [0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0],
     [0, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0],
     [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
     [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]], dtype=bool)
SHAPES = (_SQUARE, _TRIANGLE, _TRIANGLE[::-1].copy())
"""The three templates: square ring, up-triangle, down-triangle (in drawing-index order)."""


def draw_image(rng: np.random.RandomState, size: int, n_objects: int) -> tuple[np.ndarray, np.ndarray]:
    """Draw one image.

    Args:
        rng: the random stream; consumes three scalar ``randint`` calls per shape.
        size: image height and width.
        n_objects: number of shapes.

    Returns:
        ``(pixels, objects)``: bool ``(size, size)`` and uint8 ``(size, size)`` object ids.
    """
    coverage = np.zeros((size, size), dtype=np.int32)
    objects = np.zeros((size, size), dtype=np.uint8)
    for object_id in range(1, n_objects + 1):
        shape = SHAPES[rng.randint(0, len(SHAPES))]
        height, width = shape.shape
        x = rng.randint(0, size - width + 1)
        y = rng.randint(0, size - height + 1)
        coverage[y:y + height, x:x + width] += shape
        objects[y:y + height, x:x + width][shape] = object_id
    objects[coverage > 1] = 0
    return coverage > 0, objects


def generate(n_objects: int = 3, size: int = 20) -> dict[str, np.ndarray]:
    """Generate all four splits in the original order from ``RandomState(SEED)``.

    Returns:
        ``{"train_features": (50000, D) float32, "train_objects": (50000, D) uint8, ...}``
        for train, valid, test and single (one shape per image), D = size * size.
    """
    if size < 12:
        raise DataError(f"shapes: size must be >= 12 (the triangles are 12 wide), got {size}")
    if not 1 <= n_objects <= 255:
        raise DataError(f"shapes: n_objects must be in 1..255, got {n_objects}")
    rng = np.random.RandomState(SEED)
    arrays = {}
    for split, count in SPLIT_SIZES.items():
        per_image = 1 if split == "single" else n_objects
        features = np.zeros((count, size * size), dtype=np.float32)  # (N, D)
        objects = np.zeros((count, size * size), dtype=np.uint8)  # (N, D)
        for index in range(count):
            pixels, ids = draw_image(rng, size, per_image)
            features[index] = pixels.reshape(-1)
            objects[index] = ids.reshape(-1)
        arrays[f"{split}_features"] = features
        arrays[f"{split}_objects"] = objects
    return arrays


def shapes(split: str, n_objects: int = 3, size: int = 20, data_dir=None) -> Split:
    """Load (generating and caching once) one split of Shapes.

    Args:
        split: ``"train"``, ``"valid"``, ``"test"`` or ``"single"``.
        n_objects: shapes per image of train, valid and test (3 in the paper). ``single`` (one
            shape per image) is always the paper's: it is drawn after the 3-object splits from
            the same stream, so it ignores ``n_objects`` (drawing it after, say, 1-object
            splits would give different images under the same name).
        size: image side in pixels (20 in the paper).
        data_dir: cache directory (default ``$TAGGER_DATA`` or ``~/.cache/tagger``).

    Returns:
        A :class:`Split` with ``features`` ``(N, size*size)`` float32 in {0, 1} and
        ``objects`` uint8 ids (0 = background or overlap, not scored).
    """
    if split not in SPLIT_SIZES:
        raise DataError(f"shapes: unknown split {split!r}; choose from {', '.join(SPLIT_SIZES)}")
    if split == "single":
        n_objects = 3
    path = cache_dir(data_dir) / f"shapes_{n_objects}obj_{size}px_v{RECIPE_VERSION}.npz"
    arrays = load_npz_checked(path)
    if arrays is None:
        arrays = generate(n_objects, size)
        save_npz_atomic(path, arrays)
    standard = (n_objects, size) == (3, 20)
    return Split(
        name=f"shapes/{split}" if standard else f"shapes-{n_objects}obj-{size}px/{split}",
        features=arrays[f"{split}_features"],
        objects=arrays[f"{split}_objects"],
        image_shape=(size, size),
        binary=True,
    )
