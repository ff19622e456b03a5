"""Datasets: Shapes (binary), TextureMNIST and Tetrominoes (continuous), generated and cached locally; plain MNIST."""
from .common import DataError, Split, data_dir
from .mnist import mnist
from .shapes import shapes
from .tetrominoes import tetrominoes, tetrominoes_from_tfrecords
from .texture_mnist import texture_mnist

__all__ = ["DataError", "Split", "data_dir", "shapes", "texture_mnist", "tetrominoes", "tetrominoes_from_tfrecords",
           "mnist", "load"]


def load(name: str, split: str, data_dir=None, **kwargs) -> Split:
    """Load a split by dataset name: ``shapes``, ``texture-mnist`` (``n_digits`` in kwargs), ``tetrominoes`` or ``mnist``.

    ``data_dir`` is the cache directory, as for every loader (default ``$TAGGER_DATA`` or
    ``~/.cache/tagger``).
    """
    if name == "shapes":
        return shapes(split, data_dir=data_dir, **kwargs)
    if name in ("texture-mnist", "texture_mnist"):
        return texture_mnist(split, data_dir=data_dir, **kwargs)
    if name == "tetrominoes":
        return tetrominoes(split, data_dir=data_dir, **kwargs)
    if name == "mnist":
        return mnist(split, data_dir=data_dir, **kwargs)
    raise DataError(f"unknown dataset {name!r}; choose shapes, texture-mnist, tetrominoes or mnist")
