"""What every dataset split looks like, and where generated data is cached."""
from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError


@dataclass
class Split:
    """One split of a grouping dataset, all arrays in memory.

    Attributes:
        name: e.g. ``"shapes/train"``.
        features: ``(N, D)`` float32 inputs in [0, 1].
        objects: ``(N, D)`` uint8 object id per element (0 = not scored, 1..n = object); for
            colour images ``(N, H * W)``, one id per pixel shared by its channels.
        image_shape: ``(H, W)`` so that ``D == H * W``, or ``(H, W, C)`` for colour images,
            whose features are pixel-major (``D == H * W * C``, channels last).
        binary: whether the features are binary (bit-flip noise) or continuous.
        masks: optional ``(N, n_objects, D)`` float32 ground-truth soft masks.
        labels: optional ``(N, n_labels)`` int64 class labels (depth order).
        original_labels: optional, the same labels in the order the original dataset stored
            them, where that differs (TextureMNIST2, see ``texture_mnist.original_label_order``).
        colors: optional ``(N, n_objects)`` uint8 colour index of each object (Tetrominoes).
        object_shapes: optional ``(N, n_objects)`` uint8 shape index of each object (Tetrominoes).
        positions: optional ``(N, n_objects, 2)`` uint8 top-left ``(y, x)`` of each object.
    """

    name: str
    features: np.ndarray
    objects: np.ndarray
    image_shape: tuple[int, ...]
    binary: bool
    masks: np.ndarray | None = None
    labels: np.ndarray | None = None
    original_labels: np.ndarray | None = None
    colors: np.ndarray | None = None
    object_shapes: np.ndarray | None = None
    positions: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.features.shape[0])

    @property
    def input_size(self) -> int:
        return int(self.features.shape[1])


def data_dir(override: str | os.PathLike | None = None) -> Path:
    """The cache directory: ``override``, else ``$TAGGER_DATA``, else ``~/.cache/tagger``."""
    if override is not None:
        path = Path(override)
    elif os.environ.get("TAGGER_DATA"):
        path = Path(os.environ["TAGGER_DATA"])
    else:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        path = Path(base) / "tagger"
    path.mkdir(parents=True, exist_ok=True)
    return path


def array_checksum(arrays: dict[str, np.ndarray]) -> str:
    """sha256 over the arrays' names, dtypes, shapes and bytes (sorted by name)."""
    digest = hashlib.sha256()
    for key in sorted(arrays):
        value = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}:{value.dtype.str}:{value.shape}".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def save_npz_atomic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` (plus a ``checksum`` entry) to ``path`` via temp file + rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = dict(arrays)
    payload["checksum"] = np.array(array_checksum(arrays))
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez_compressed(handle, **payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; caches are shared data
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_npz_checked(path: Path) -> dict[str, np.ndarray] | None:
    """Load an ``.npz`` cache written by :func:`save_npz_atomic`; None if absent or corrupt."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except Exception:  # truncated or foreign file: regenerate
        return None
    checksum = arrays.pop("checksum", None)
    if checksum is None or str(checksum) != array_checksum(arrays):
        return None
    return arrays
