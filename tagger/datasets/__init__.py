"""Datasets: Shapes (binary), TextureMNIST and Tetrominoes (continuous), generated and cached locally; plain MNIST;
the user's own images (:mod:`.user`: arrays, .npz/.npy, image folders, HDF5, multi-object TFRecords)."""
import dataclasses

import numpy as np
import torch

from .common import DataError, Split, data_dir
from .mnist import mnist
from .shapes import shapes
from .sound import spectrograms
from .rasters import spikes
from .tetrominoes import tetrominoes, tetrominoes_from_tfrecords
from .texture_mnist import texture_mnist
from .user import file_digest, from_arrays, from_path, has_ground_truth, open_data, split_validation, to_npz, user_splits

__all__ = ["DataError", "Split", "data_dir", "shapes", "texture_mnist", "tetrominoes", "tetrominoes_from_tfrecords",
           "spectrograms", "spikes", "mnist", "load", "pixel_order", "unpermute",
           "from_arrays", "from_path", "open_data", "file_digest", "has_ground_truth", "split_validation", "to_npz",
           "user_splits"]


def load(name: str, split: str, data_dir=None, permute_pixels: int = -1, **kwargs) -> Split:
    """Load a split by dataset name: ``shapes``, ``texture-mnist`` (``n_digits`` in kwargs), ``tetrominoes``, ``spectrograms`` (``binary`` in kwargs), ``spikes`` or ``mnist``.

    ``data_dir`` is the cache directory, as for every loader (default ``$TAGGER_DATA`` or
    ``~/.cache/tagger``). ``permute_pixels`` >= 0 shuffles the pixel positions of every image by
    one fixed permutation drawn from that seed (channels move with their pixel; objects and masks
    too): the test of the paper's claim that Tagger uses no image prior.
    """
    data = _load(name, split, data_dir, **kwargs)
    return _permuted(data, permute_pixels) if permute_pixels >= 0 else data


def pixel_order(pixels: int, seed: int) -> np.ndarray:
    """The fixed permutation of ``--permute-pixels SEED``: new position i holds old pixel order[i]."""
    return np.random.default_rng(seed).permutation(pixels)


def _permuted(data: Split, seed: int) -> Split:
    pixels = data.image_shape[0] * data.image_shape[1]
    order = pixel_order(pixels, seed)
    move = lambda a: None if a is None else a.reshape(*a.shape[:-1], pixels, -1)[..., order, :].reshape(a.shape)  # noqa: E731
    return dataclasses.replace(data, name=f"{data.name}+permuted{seed}", features=move(data.features),
                               objects=move(data.objects), masks=move(data.masks))


def unpermute(array, seed: int, image_shape) -> np.ndarray:
    """Undo :func:`load`'s ``permute_pixels`` on the last axis of ``array`` (per pixel, or per
    element of pixel-major colour data), to draw a permuted model's masks in image space."""
    pixels = image_shape[0] * image_shape[1]
    inverse = np.argsort(pixel_order(pixels, seed))
    if not isinstance(array, np.ndarray):  # a torch tensor
        inverse = torch.as_tensor(inverse, device=array.device)
    return array.reshape(*array.shape[:-1], pixels, -1)[..., inverse, :].reshape(array.shape)


def _load(name: str, split: str, data_dir=None, **kwargs) -> Split:
    if name == "shapes":
        return shapes(split, data_dir=data_dir, **kwargs)
    if name in ("texture-mnist", "texture_mnist"):
        return texture_mnist(split, data_dir=data_dir, **kwargs)
    if name == "tetrominoes":
        return tetrominoes(split, data_dir=data_dir, **kwargs)
    if name == "spectrograms":
        return spectrograms(split, data_dir=data_dir, **kwargs)
    if name == "spikes":
        return spikes(split, data_dir=data_dir, **kwargs)
    if name == "mnist":
        return mnist(split, data_dir=data_dir, **kwargs)
    raise DataError(f"unknown dataset {name!r}; choose shapes, texture-mnist, tetrominoes, spectrograms, spikes or mnist")
