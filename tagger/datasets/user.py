"""Your own data in: a user's images (arrays, ``.npz``, ``.npy``, image folders, HDF5, DeepMind
multi-object TFRecords) as a :class:`Split`, plus a validation hold-out and a way back to ``.npz``.

Ground truth: ``objects`` are per-pixel ids (0 = background / not scored). Without them every id
is 0, so nothing is scored; :func:`has_ground_truth` tells the two apart (``objects.any()``), which
keeps :class:`Split` unchanged.

Files are parsed once and cached in ``data_dir/user/<sha256 of the file>[_format][_HxW]_v1.npz``;
:func:`file_digest` is that sha256, for callers that want to notice a changed file.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path

import numpy as np

from . import formats
from .arrays import check_images, check_labels, check_objects, check_size, compact_ids, resize_all
from .common import DataError, Split, load_npz_checked, save_npz_atomic
from .common import data_dir as _data_dir

CACHE_VERSION = 1
_READ_CHUNK = 1 << 20  # 1 MiB
_SUFFIXES = ".npz, .npy, .h5/.hdf5, .tfrecords (with format=) or a folder of images"


def from_arrays(images, objects=None, labels=None, name: str = "mine", resize=None,
                binary: bool | None = None) -> Split:
    """A :class:`Split` from in-memory arrays.

    Args:
        images: ``(N, H, W)`` grey or ``(N, H, W, C)`` with C in 1..4 (C = 1 is grey). uint8 is
            divided by 255; other integer types are accepted only when all values lie in 0..255
            (read as 8-bit); bool is 0/1; floats must be finite and lie in [0, 1].
        objects: optional ``(N, H, W[, 1])`` integer ids, 0 = background (not scored), >= 0.
            Images whose ids exceed 255 are renumbered 1..k (ARI/AMI do not change). Absent:
            all zeros, i.e. no ground truth (see :func:`has_ground_truth`).
        labels: optional integer labels ``(N,)`` or ``(N, n_labels)``, stored ``(N, n_labels)`` int64.
        name: the split's name.
        resize: ``(H, W)``: resize images (bilinear, area-averaging when shrinking) and object
            ids (nearest) with Pillow before anything else.
        binary: force the binary flag; None: binary when every value is exactly 0 or 1.
    """
    where = f"{name}"
    pixels = check_images(images, where)  # (N, H, W, C) uint8 or float32
    ids = None if objects is None else check_objects(objects, pixels.shape[:3], where)  # (N, H, W)
    size = check_size(resize, where)
    pixels, ids = resize_all(pixels, ids, size)
    count, height, width, channels = pixels.shape
    if pixels.dtype == np.uint8:
        features = np.divide(pixels, 255, dtype=np.float32)  # (N, H, W, C), as the built-in loaders do
    else:
        features = pixels
    features = features.reshape(count, -1)  # (N, H*W*C) pixel-major, channels last
    if ids is None:
        ids = np.zeros((count, height, width), dtype=np.uint8)  # (N, H, W): nothing scored
    if binary is None:
        binary = bool(((features == 0) | (features == 1)).all())
    return Split(
        name=name,
        features=features,
        objects=compact_ids(ids, where).reshape(count, height * width),  # (N, H*W) uint8
        image_shape=(height, width) if channels == 1 else (height, width, channels),
        binary=bool(binary),
        labels=None if labels is None else check_labels(labels, count, where),  # (N, n_labels)
    )


def has_ground_truth(split: Split) -> bool:
    """Whether any pixel carries an object id (a split made without objects has none)."""
    return bool(split.objects.any())


def file_digest(path: str | os.PathLike) -> str:
    """sha256 (hex) of a file's bytes, read 1 MiB at a time; for a folder, over its files' sorted
    relative names, sizes and bytes (hidden files skipped), so renaming a file changes it too."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    digest = hashlib.sha256()
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file()
                       and not any(part.startswith(".") for part in p.relative_to(path).parts))
        for file in files:
            digest.update(f"{file.relative_to(path).as_posix()}\0{file.stat().st_size}\0".encode())
            _update(digest, file)
    else:
        _update(digest, path)
    return digest.hexdigest()


def _update(digest, path: Path) -> None:
    try:
        with open(path, "rb") as handle:
            while block := handle.read(_READ_CHUNK):
                digest.update(block)
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror or error})") from None


def from_path(path: str | os.PathLike, format: str | None = None, resize=None, data_dir=None,
              progress: bool = True) -> Split:
    """A :class:`Split` from a file or folder, parsed once and cached (see the module docstring).

    Args:
        path: ``.npz`` (``images``, optional ``objects``, ``labels``, ``binary``), ``.npy``
            (images), ``.h5``/``.hdf5`` (``images``/``image``, optional ``objects``/``mask``/
            ``masks`` as ids or one-hot ``(N, K, H, W[, 1])``, ``labels``), a folder of images
            (sorted by name; optional ``masks/<stem>.png`` id maps), or a TFRecord file.
        format: for TFRecords, one of :data:`formats.TFRECORD_SCHEMAS` (``tetrominoes``,
            ``multi_dsprites``, ``objects_room``, ``clevr_with_masks``).
        resize: ``(H, W)`` to resize every image (needed for folders of mixed sizes).
        data_dir: cache directory (default ``$TAGGER_DATA`` or ``~/.cache/tagger``).
        progress: show a progress bar on long reads.

    The split is named after the file (e.g. ``"shapes.npz"``).
    """
    return open_data(path, format, resize, data_dir, progress)[0]


def open_data(path: str | os.PathLike, format: str | None = None, resize=None, data_dir=None,
              progress: bool = True) -> tuple[Split, str]:
    """:func:`from_path`'s split and the file's sha256 (:func:`file_digest`), read once for both."""
    path = Path(path)
    size = check_size(resize, str(path))
    kind = _kind(path, format)
    digest = file_digest(path)
    cache = _cache_path(digest, kind, size, data_dir)
    stored = load_npz_checked(cache)
    if stored is not None:
        return _from_cache(path.name, stored), digest
    arrays = read_path(path, kind, size, progress)
    split = from_arrays(arrays["images"], arrays.get("objects"), arrays.get("labels"), name=path.name,
                        resize=size, binary=None if arrays.get("binary") is None else bool(arrays["binary"]))
    save_npz_atomic(cache, _to_cache(split))
    return split, digest


def _kind(path: Path, format: str | None) -> str:
    """What to parse ``path`` as: "folder", "npz", "npy", "hdf5" or a TFRecord schema name."""
    names = ", ".join(formats.TFRECORD_SCHEMAS)
    if format is not None:
        if format not in formats.TFRECORD_SCHEMAS:
            raise DataError(f"{path}: unknown format {format!r}; choose one of {names} (TFRecords) or none")
        return format
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    suffix = path.suffix.lower()
    if path.is_dir():
        return "folder"
    if suffix in (".npz", ".npy"):
        return suffix[1:]
    if suffix in (".h5", ".hdf5"):
        return "hdf5"
    if suffix in (".tfrecords", ".tfrecord"):
        raise DataError(f"{path}: a TFRecord file needs format=, one of {names}")
    raise DataError(f"{path}: unknown kind of file {suffix or '(no suffix)'!r}; use {_SUFFIXES}")


def read_path(path: Path, kind: str, resize, progress: bool) -> dict:
    """Parse ``path`` as ``kind`` (see :func:`_kind`) into raw arrays (no cache)."""
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if kind == "folder":
        return formats.read_folder(path, resize, progress)
    if kind == "npz":
        return formats.read_npz(path)
    if kind == "npy":
        return formats.read_npy(path)
    if kind == "hdf5":
        return formats.read_hdf5(path, resize, progress)
    return formats.read_tfrecords(path, kind, resize, progress)


def _cache_path(digest: str, kind: str, size, data_dir) -> Path:
    tag = f"_{kind}" if kind in formats.TFRECORD_SCHEMAS else ""
    shape = f"_{size[0]}x{size[1]}" if size else ""
    return _data_dir(data_dir) / "user" / f"{digest}{tag}{shape}_v{CACHE_VERSION}.npz"


def _to_cache(split: Split) -> dict[str, np.ndarray]:
    arrays = {"features": split.features, "objects": split.objects,
              "image_shape": np.array(split.image_shape, dtype=np.int64), "binary": np.array(split.binary)}
    if split.labels is not None:
        arrays["labels"] = split.labels
    return arrays


def _from_cache(name: str, arrays: dict[str, np.ndarray]) -> Split:
    return Split(name=name, features=arrays["features"], objects=arrays["objects"],
                 image_shape=tuple(int(v) for v in arrays["image_shape"]), binary=bool(arrays["binary"]),
                 labels=arrays.get("labels"))


def split_validation(split: Split, fraction: float = 0.1, seed: int = 0) -> tuple[Split, Split]:
    """``(train, valid)``: a seeded random hold-out of ``round(fraction * N)`` examples (at least 1
    when ``fraction > 0`` and N >= 2, at most N - 1), each part in its original order. Every
    per-example array field is sliced; the same seed always gives the same parts."""
    count = len(split)
    if not 0 <= fraction < 1:
        raise DataError(f"{split.name}: validation fraction must lie in [0, 1), got {fraction}")
    held = int(round(fraction * count))
    if fraction > 0 and count >= 2:
        held = min(max(held, 1), count - 1)
    order = np.random.Generator(np.random.PCG64(seed)).permutation(count)
    valid_index, train_index = np.sort(order[:held]), np.sort(order[held:])
    return _subset(split, train_index, "train"), _subset(split, valid_index, "valid")


def _subset(split: Split, index: np.ndarray, part: str) -> Split:
    fields = {}
    for field in dataclasses.fields(split):
        value = getattr(split, field.name)
        if isinstance(value, np.ndarray) and value.ndim and value.shape[0] == len(split):
            fields[field.name] = value[index]
    return dataclasses.replace(split, name=f"{split.name}/{part}", **fields)


def to_npz(split: Split, path: str | os.PathLike) -> Path:
    """Write ``split`` as an ``.npz`` that :func:`from_path` reads back with bit-identical features.

    Keys: ``images`` ``(N, H, W)`` or ``(N, H, W, C)``, uint8 when every value is exactly
    ``k / 255`` in float32 (binary and 8-bit data), else float32; ``objects`` ``(N, H, W)``
    uint8; ``labels`` ``(N,)`` (first label column) when present; ``binary`` (the flag, so that
    e.g. saturated-colour images stay continuous).
    """
    path = Path(path)
    count = len(split)
    height, width = split.image_shape[:2]
    images = split.features.reshape(count, *split.image_shape)  # (N, H, W[, C])
    as_bytes = np.round(images * 255).clip(0, 255).astype(np.uint8)  # (N, H, W[, C])
    if np.array_equal(np.divide(as_bytes, 255, dtype=np.float32), images):
        images = as_bytes
    arrays = {"images": images, "objects": split.objects.reshape(count, height, width).astype(np.uint8),
              "binary": np.array(bool(split.binary))}
    if split.labels is not None:
        arrays["labels"] = np.asarray(split.labels).reshape(count, -1)[:, 0]  # (N,)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:  # a handle: numpy would append ".npz" to other names
        np.savez_compressed(handle, **arrays)
    return path


def user_splits(train, data_dir=None, progress: bool = True) -> tuple[Split, Split]:
    """The ``(train, valid)`` splits of a run on your own images, from its
    :class:`~tagger.config.TrainConfig`: ``train.data`` (and ``train.valid_data``, else a hold-out
    of ``train.valid_fraction`` seeded by ``train.seed``). A file whose sha256 differs from the
    one the run recorded is refused in one line."""
    options = dict(format=train.data_format or None, resize=train.resize or None, data_dir=data_dir,
                   progress=progress)
    split = _recorded(train.data, train.data_sha256, "--data", options)
    if train.valid_data:
        return split, _recorded(train.valid_data, train.valid_sha256, "--valid", options)
    return split_validation(split, train.valid_fraction, train.seed)


def _recorded(path: str, recorded: str, flag: str, options: dict) -> Split:
    split, digest = open_data(path, **options)
    if recorded and digest != recorded:
        raise DataError(f"{path} changed since the run started (sha256 {digest[:12]}..., the run recorded "
                        f"{recorded[:12]}...); restore that file or start a new run ({flag})")
    return split
