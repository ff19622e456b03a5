"""Readers that turn a user's file or folder into raw arrays for :func:`.user.from_arrays`.

Each reader returns ``{"images": (N, H, W[, C]), "objects": (N, H, W) or None, "labels": (N, ...)
or None}`` (plus ``"binary"`` where the file says). Readers that stream (image folders, HDF5,
TFRecords) resize item by item, so a big file is never held at two sizes. Damaged input is
refused with a one-line :class:`DataError` naming the file.
"""
from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from .arrays import check_images, check_objects, compact_ids, resize_all, resize_ids, resize_image
from .common import DataError
from .tfrecord import read_examples

TFRECORD_SCHEMAS = {  # name: ((H, W), order of the mask bytes), after google-deepmind/multi_object_datasets
    "tetrominoes": ((35, 35), "khw"),  # mask (K=4, H, W, 1)
    "multi_dsprites": ((64, 64), "hwk"),  # mask (H, W, K, 1), K = 4, 5 or 6 by variant
    "objects_room": ((64, 64), "khw"),  # mask (K, H, W, 1), K = 4, 7 or 10 by variant
    "clevr_with_masks": ((240, 320), "khw"),  # mask (K=11, H, W, 1)
}
"""The DeepMind multi-object TFRecord datasets: each example has ``image`` (H, W, C) and ``mask``
bytes (uint8; mask slot 0 is the background), C = 1 (binarized multi_dsprites) or 3."""

HDF5_CHUNK = 1000
"""Images read from an HDF5 file at a time."""

_GREY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "F"}
_MASK_MODES = {"1", "L", "P", "I", "I;16", "I;16B", "I;16L"}


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def read_npz(path: Path) -> dict:
    """``images`` (required), ``objects``, ``labels`` and ``binary`` of an ``.npz``; never unpickles."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            if "images" not in npz.files:
                raise DataError(f"{path}: no 'images' array (it holds {', '.join(npz.files) or 'nothing'})")
            return {key: npz[key] for key in ("images", "objects", "labels", "binary") if key in npz.files}
    except DataError:
        raise
    except ValueError as error:
        if "pickle" in str(error):
            raise DataError(f"{path}: holds pickled objects, which are never loaded; save plain arrays") from None
        raise DataError(f"{path}: damaged or not an .npz file ({_one_line(error)})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(f"{path}: damaged or not an .npz file ({_one_line(error)})") from None


def read_npy(path: Path) -> dict:
    """The images of an ``.npy`` file (no objects, no labels); never unpickles."""
    try:
        return {"images": np.load(path, allow_pickle=False)}
    except ValueError as error:
        if "pickle" in str(error):
            raise DataError(f"{path}: pickled data or not an .npy file; "
                            "pickles are never loaded, save a plain array") from None
        raise DataError(f"{path}: damaged or not an .npy file ({_one_line(error)})") from None
    except (OSError, EOFError) as error:
        raise DataError(f"{path}: damaged or not an .npy file ({_one_line(error)})") from None


def _folder_files(folder: Path) -> tuple[list[Path], dict[str, Path]]:
    """The image files of ``folder`` (sorted by name) and its ``masks/`` files by stem."""
    extensions = set(Image.registered_extensions())
    entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    masks_dir = folder / "masks"
    files = [p for p in entries if p != masks_dir]
    others = [p for p in files if not (p.is_file() and p.suffix.lower() in extensions)]
    if others:
        raise DataError(f"{folder}: {len(others)} entries are not images, e.g. {others[0].name!r}; "
                        "only image files and a masks/ folder belong there")
    images = [p for p in files if p not in others]
    if not images:
        raise DataError(f"{folder}: no image files")
    masks = {}
    if masks_dir.is_dir():
        masks = {p.stem: p for p in masks_dir.iterdir() if p.is_file() and not p.name.startswith(".")}
        missing = [p for p in images if p.stem not in masks]
        if missing:
            raise DataError(f"{masks_dir}: no mask for {missing[0].name} ({len(missing)} images lack one); "
                            f"expected masks/{missing[0].stem}.png")
    return images, masks


def _headers(files: list[Path], resize) -> str:
    """The Pillow mode every image converts to ("RGB" if any is colour, else "L"); checks sizes."""
    first_size, colour = None, False
    for path in files:
        try:
            with Image.open(path) as image:
                mode, size = image.mode, image.size
        except Exception as error:
            raise DataError(f"{path}: damaged or unreadable image ({_one_line(error)})") from None
        colour = colour or mode not in _GREY_MODES
        first_size = first_size or (path, size)
        if resize is None and size != first_size[1]:
            raise DataError(f"{path}: {size[0]}x{size[1]} pixels (W x H) but {first_size[0].name} has "
                            f"{first_size[1][0]}x{first_size[1][1]}; pass resize=(H, W) to use mixed sizes")
    return "RGB" if colour else "L"


def _load_image(path: Path, mode: str) -> np.ndarray:
    try:
        with Image.open(path) as image:
            image.load()
            return np.asarray(image.convert(mode))  # (H, W) or (H, W, 3) uint8
    except Exception as error:
        raise DataError(f"{path}: damaged or unreadable image ({_one_line(error)})") from None


def _load_mask(path: Path, shape: tuple[int, int]) -> np.ndarray:
    try:
        with Image.open(path) as image:
            image.load()
            mode, ids = image.mode, np.asarray(image)
    except Exception as error:
        raise DataError(f"{path}: damaged or unreadable mask ({_one_line(error)})") from None
    if mode not in _MASK_MODES:
        raise DataError(f"{path}: mask of mode {mode}; masks hold one integer id per pixel (mode L, I or P)")
    if ids.shape != shape:
        raise DataError(f"{path}: mask of {ids.shape[1]}x{ids.shape[0]} pixels but its image has {shape[1]}x{shape[0]}")
    return ids.astype(np.int64)  # (H, W)


def read_folder(folder: Path, resize=None, progress: bool = True) -> dict:
    """A folder of images in file-name order, with optional ``masks/<stem>.png`` id maps."""
    files, masks = _folder_files(folder)
    mode = _headers(files, resize)
    images, objects = [], []
    for path in tqdm(files, desc=folder.name, unit="image", disable=not progress or len(files) < 100):
        image = _load_image(path, mode)
        pixels = image.reshape(*image.shape[:2], -1)  # (H, W, C)
        ids = _load_mask(masks[path.stem], image.shape[:2]) if masks else None
        if resize is not None:
            pixels = resize_image(pixels, resize)
            ids = None if ids is None else resize_ids(ids, resize)
        images.append(pixels)
        objects.append(ids)
    return {"images": np.stack(images),  # (N, H, W, C) uint8
            "objects": np.stack(objects) if masks else None}  # (N, H, W)


def _h5_dataset(handle, names: tuple[str, ...]):
    return next((handle[name] for name in names if name in handle), None)


def _ids_from_mask(mask: np.ndarray, image_hw: tuple[int, int], where: str) -> np.ndarray:
    """``(n, H, W[, 1])`` ids, or ``(n, K, H, W[, 1])`` one-hot / soft masks (slot 0 background) -> ids."""
    if mask.shape[1:3] == tuple(image_hw):
        return mask  # ids, checked by check_objects
    if mask.ndim in (4, 5) and mask.shape[2:4] == tuple(image_hw) and mask.shape[4:] in ((), (1,)):
        return mask.reshape(mask.shape[:4]).argmax(axis=1)  # (n, H, W)
    raise DataError(f"{where}: mask of shape {mask.shape} fits neither ids (N, H, W[, 1]) nor "
                    f"one-hot (N, K, H, W[, 1]) for images of {image_hw[0]}x{image_hw[1]}")


def read_hdf5(path: Path, resize=None, progress: bool = True) -> dict:
    """``images``/``image`` and optional ``objects``/``mask``/``masks`` and ``labels`` of an HDF5 file,
    in chunks of :data:`HDF5_CHUNK` (the object-centric-library layout: ``image`` (N, H, W, 3)
    uint8, ``mask`` (N, H, W, 1) ids)."""
    import h5py

    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise DataError(f"{path}: damaged or not an HDF5 file ({_one_line(error)})") from None
    with handle:
        source = _h5_dataset(handle, ("images", "image"))
        if source is None or not hasattr(source, "shape"):
            raise DataError(f"{path}: no 'images' or 'image' dataset (it holds {', '.join(handle) or 'nothing'})")
        mask, labels = _h5_dataset(handle, ("objects", "mask", "masks")), _h5_dataset(handle, ("labels",))
        count = source.shape[0] if source.ndim else 0
        if mask is not None and mask.shape[:1] != (count,):
            raise DataError(f"{path}: {mask.shape[0]} masks for {count} images")
        images = objects = None
        try:
            for start in tqdm(range(0, count, HDF5_CHUNK), desc=path.name, unit="chunk",
                              disable=not progress or count <= HDF5_CHUNK):
                stop = min(start + HDF5_CHUNK, count)
                chunk = check_images(source[start:stop], str(path))  # (n, H, W, C)
                ids = None
                if mask is not None:
                    ids = _ids_from_mask(np.asarray(mask[start:stop]), chunk.shape[1:3], str(path))
                    ids = check_objects(ids, chunk.shape[:3], str(path))  # (n, H, W)
                chunk, ids = resize_all(chunk, ids, resize)
                if images is None:
                    images = np.empty((count, *chunk.shape[1:]), chunk.dtype)  # (N, H, W, C)
                    objects = None if ids is None else np.empty((count, *ids.shape[1:]), np.uint8)  # (N, H, W)
                images[start:stop] = chunk
                if ids is not None:
                    objects[start:stop] = compact_ids(ids, str(path))
            label_values = None if labels is None else np.asarray(labels[()])
        except OSError as error:
            raise DataError(f"{path}: damaged HDF5 data ({_one_line(error)})") from None
    if images is None:
        raise DataError(f"{path}: no images (shape {source.shape})")
    return {"images": images, "objects": objects, "labels": label_values}


def _tf_example(example: dict, name: str, index: int, where: str) -> tuple[np.ndarray, np.ndarray]:
    """One example's ``(H, W, C)`` uint8 image and ``(H, W)`` ids (argmax over the mask slots)."""
    (height, width), order = TFRECORD_SCHEMAS[name]
    pixels = height * width
    try:
        image = np.frombuffer(b"".join(example["image"]), dtype=np.uint8)
        mask = np.frombuffer(b"".join(example["mask"]), dtype=np.uint8)
    except (KeyError, TypeError):
        raise DataError(f"{where}: example {index} lacks bytes 'image' and 'mask'; not in the {name} layout") from None
    if image.size not in (pixels, pixels * 3) or mask.size % pixels or not mask.size:
        raise DataError(f"{where}: example {index} has a {image.size}-byte image and {mask.size}-byte mask; "
                        f"not {name} ({height}x{width}); check format=")
    slots = mask.size // pixels
    if order == "khw":
        ids = mask.reshape(slots, height, width).argmax(axis=0)  # (H, W)
    else:
        ids = mask.reshape(height, width, slots).argmax(axis=-1)  # (H, W)
    return image.reshape(height, width, -1), ids


def read_tfrecords(path: Path, name: str, resize=None, progress: bool = True) -> dict:
    """A DeepMind multi-object datasets TFRecord file of schema ``name`` (:data:`TFRECORD_SCHEMAS`)."""
    images, objects = [], []
    try:
        examples = read_examples(path)
        for index, example in enumerate(tqdm(examples, desc=path.name, unit="example", disable=not progress)):
            image, ids = _tf_example(example, name, index, str(path))
            if resize is not None:
                image, ids = resize_image(image, resize), resize_ids(ids, resize)
            images.append(image)
            objects.append(ids.astype(np.uint8))
    except DataError as error:  # the example decoder's messages do not name the file
        raise (error if str(path) in str(error) else DataError(f"{path}: {error}")) from None
    except (OSError, EOFError, zlib.error) as error:  # a damaged GZIP stream
        raise DataError(f"{path}: damaged TFRecord file ({_one_line(error)})") from None
    if not images:
        raise DataError(f"{path}: no examples")
    return {"images": np.stack(images), "objects": np.stack(objects)}  # (N, H, W, C) uint8, (N, H, W)
