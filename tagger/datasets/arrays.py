"""Checks and conversions that turn a user's image and object-id arrays into :class:`Split` arrays.

Shared by :func:`tagger.datasets.user.from_arrays` and the file readers of
:mod:`tagger.datasets.formats` (which resize image by image while streaming, so that a big file
never sits in memory at two sizes). Every refusal is a one-line :class:`DataError` that starts
with ``where`` (the file name, or ``"images"`` for arrays passed in).
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from .common import DataError


def check_images(images, where: str) -> np.ndarray:
    """``images`` as ``(N, H, W, C)`` uint8 (0..255) or float32 (in [0, 1]), C in 1..4.

    uint8 is kept as is; bool becomes float32 0/1; other integer types are accepted only when
    every value lies in 0..255 (then they are 8-bit values, stored as uint8); float types must
    be finite and lie in [0, 1]. Anything else (complex, object, strings) is refused: there is
    no safe guess at what such values mean as pixels.
    """
    try:
        images = np.asarray(images)
    except Exception as error:  # ragged lists and the like
        raise DataError(f"{where}: cannot make an array of the images ({error})") from None
    shape, dtype = images.shape, images.dtype
    if images.ndim not in (3, 4):
        raise DataError(f"{where}: images must be (N, H, W) or (N, H, W, C), got shape {shape}")
    if images.size == 0:
        raise DataError(f"{where}: no images (shape {shape})")
    if images.ndim == 3:
        images = images[..., None]  # (N, H, W, 1)
    if not 1 <= images.shape[-1] <= 4:
        raise DataError(f"{where}: images need 1 to 4 channels (last axis), got shape {shape}")
    if dtype == np.uint8:
        return images
    if dtype == np.bool_:
        return images.astype(np.float32)  # (N, H, W, C)
    if np.issubdtype(dtype, np.integer):
        low, high = int(images.min()), int(images.max())
        if low < 0 or high > 255:
            raise DataError(f"{where}: {dtype} images must hold 8-bit values 0..255, got {low}..{high}")
        return images.astype(np.uint8)  # (N, H, W, C)
    if not np.issubdtype(dtype, np.floating):
        raise DataError(f"{where}: unsupported image dtype {dtype}; use uint8 (0..255) or float (0..1)")
    if not np.isfinite(images).all():
        raise DataError(f"{where}: images hold NaN or infinite values (shape {shape}, dtype {dtype})")
    low, high = float(images.min()), float(images.max())
    if low < 0 or high > 1:
        raise DataError(f"{where}: float images must lie in [0, 1], got {low:g}..{high:g} (dtype {dtype})")
    return images.astype(np.float32, copy=False)


def check_objects(objects, expected: tuple[int, int, int], where: str) -> np.ndarray:
    """Object ids ``(N, H, W)`` or ``(N, H, W, 1)`` as an ``(N, H, W)`` integer array, ids >= 0."""
    objects = np.asarray(objects)
    if objects.ndim == 4 and objects.shape[-1] == 1:
        objects = objects[..., 0]  # (N, H, W)
    if objects.shape != tuple(expected):
        raise DataError(f"{where}: objects of shape {objects.shape} do not match "
                        f"the images' (N, H, W) = {tuple(expected)}")
    if objects.dtype == np.bool_:
        return objects.astype(np.uint8)
    if not np.issubdtype(objects.dtype, np.integer):
        raise DataError(f"{where}: object ids must be integers, got dtype {objects.dtype}")
    if objects.size and int(objects.min()) < 0:
        raise DataError(f"{where}: negative object ids ({int(objects.min())}); 0 is background, objects 1, 2, ...")
    return objects


def compact_ids(objects: np.ndarray, where: str) -> np.ndarray:
    """uint8 ``(N, H, W)`` ids; the images holding an id over 255 get their ids renumbered 1..k
    in increasing order (0 stays background), the others keep theirs. AMI and ARI do not change
    under renumbering."""
    if objects.dtype == np.uint8:
        return objects
    if not objects.size or int(objects.max()) <= 255:
        return objects.astype(np.uint8)
    compact = np.minimum(objects, 255).astype(np.uint8)  # (N, H, W), fixed below where clipped
    for index in np.flatnonzero(objects.reshape(len(objects), -1).max(axis=1) > 255):
        image = objects[index]
        ids, inverse = np.unique(image, return_inverse=True)
        if ids[0] != 0:  # no background pixel: ids start at 1
            inverse = inverse + 1
        if inverse.max() > 255:
            raise DataError(f"{where}: image {index} holds {len(ids)} object ids; at most 255 objects per image")
        compact[index] = inverse.reshape(image.shape)
    return compact


def check_labels(labels, count: int, where: str) -> np.ndarray:
    """Integer labels ``(N,)`` or ``(N, n_labels)`` as ``(N, n_labels)`` int64."""
    labels = np.asarray(labels)
    if labels.ndim == 1:
        labels = labels[:, None]  # (N, 1)
    if labels.ndim != 2 or labels.shape[0] != count:
        raise DataError(f"{where}: labels of shape {labels.shape} do not match {count} images; "
                        "give (N,) or (N, n_labels)")
    if not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == np.bool_):
        raise DataError(f"{where}: labels must be integers, got dtype {labels.dtype}")
    return labels.astype(np.int64)


def check_size(resize, where: str) -> tuple[int, int] | None:
    """``resize`` as a ``(H, W)`` pair of positive ints, or None."""
    if resize is None:
        return None
    try:
        height, width = (int(value) for value in resize)
    except (TypeError, ValueError):
        raise DataError(f"{where}: resize must be (H, W), got {resize!r}") from None
    if height < 1 or width < 1:
        raise DataError(f"{where}: resize must be positive, got {resize!r}")
    return height, width


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """One ``(H, W, C)`` uint8 or float32 image resized to ``size`` (H, W), same dtype.

    Bilinear with Pillow's antialiasing support, which averages over the covered area when
    shrinking; uint8 channels stay 8-bit, float channels are resized as 32-bit floats ("F").
    """
    if image.shape[:2] == tuple(size):
        return image
    height, width = size
    channels = []
    for channel in np.moveaxis(image, -1, 0):  # each (H, W)
        channel = np.ascontiguousarray(channel if image.dtype == np.uint8 else channel.astype(np.float32))
        resized = Image.fromarray(channel).resize((width, height), Image.BILINEAR)
        channels.append(np.asarray(resized))
    stacked = np.stack(channels, axis=-1)  # (h, w, C)
    return stacked if image.dtype == np.uint8 else np.clip(stacked, 0, 1).astype(np.float32)


def resize_ids(ids: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """One ``(H, W)`` object-id map resized to ``size`` by nearest neighbour (ids never blend)."""
    if ids.shape == tuple(size):
        return ids
    height, width = size
    resized = Image.fromarray(ids.astype(np.int32)).resize((width, height), Image.NEAREST)
    return np.asarray(resized).astype(ids.dtype)  # (h, w)


def resize_all(images: np.ndarray, objects: np.ndarray | None, size) -> tuple[np.ndarray, np.ndarray | None]:
    """``images`` ``(N, H, W, C)`` and ``objects`` ``(N, H, W)`` resized image by image."""
    if size is None or images.shape[1:3] == tuple(size):
        return images, objects
    out = np.stack([resize_image(image, size) for image in images])  # (N, h, w, C)
    if objects is not None:
        objects = np.stack([resize_ids(ids, size) for ids in objects])  # (N, h, w)
    return out, objects
