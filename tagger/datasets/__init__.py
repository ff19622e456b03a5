"""Datasets: Shapes (binary) and TextureMNIST (continuous), generated and cached locally."""
from .common import DataError, Split, data_dir
from .shapes import shapes
from .texture_mnist import texture_mnist

__all__ = ["DataError", "Split", "data_dir", "shapes", "texture_mnist", "load"]


def load(name: str, split: str, data_dir_override=None, **kwargs) -> Split:
    """Load a split by dataset name: ``shapes`` or ``texture-mnist`` (``n_digits`` in kwargs)."""
    if name == "shapes":
        return shapes(split, data_dir_override=data_dir_override, **kwargs)
    if name in ("texture-mnist", "texture_mnist"):
        return texture_mnist(split, data_dir=data_dir_override, **kwargs)
    raise DataError(f"unknown dataset {name!r}; choose shapes or texture-mnist")
