"""A pickle loader that builds numpy arrays and plain containers, nothing else: how the classic
``mnist.pkl.gz`` (a Python 2 pickle of float32 arrays) is read without trusting it."""
from __future__ import annotations

import gzip
import os
import pickle
from pathlib import Path

from .common import DataError

# (module, name) pairs a pickle of plain numpy arrays needs; mapped to what numpy 2 calls them.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"): ("numpy._core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"): ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"): ("numpy._core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"): ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"): ("numpy", "ndarray"),
    ("numpy", "dtype"): ("numpy", "dtype"),
}


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """Stand-in for ``_codecs.encode``, which Python 3 protocol-2 pickles use for bytes."""
    if encoding.lower().replace("-", "").replace("_", "") not in ("latin1", "iso88591"):
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r} is not allowed")
    return text.encode("latin1")


class _ArrayUnpickler(pickle.Unpickler):
    """An unpickler that builds numpy arrays, tuples, lists, numbers and strings, nothing else.

    Every global a pickle names (the only route to a callable) goes through
    :meth:`find_class`; anything outside :data:`_ALLOWED_GLOBALS` (numpy's array
    reconstructors and ``dtype``) and a latin-1-only ``_codecs.encode`` (bytes in Python 3
    protocol-2 pickles) raises :class:`DataError` before it is imported or called.
    Persistent ids are refused by ``pickle`` itself.
    """

    def __init__(self, file, source: str):
        super().__init__(file, encoding="latin1")  # Python 2 pickles: str -> latin1
        self._source = source

    def find_class(self, module: str, name: str):
        if (module, name) == ("_codecs", "encode"):
            return _latin1_encode
        target = _ALLOWED_GLOBALS.get((module, name))
        if target is None:
            raise DataError(f"{self._source}: refusing to unpickle {module}.{name} "
                            "(only numpy arrays are allowed in an MNIST pickle)")
        return super().find_class(*target)


def load_array_pickle(path: str | os.PathLike) -> object:
    """Unpickle a (possibly gzipped) pickle that may hold only numpy arrays and containers.

    Raises:
        DataError: the pickle names any global other than those numpy arrays need, or the
            file is unreadable / not a pickle.
    """
    path = Path(path)
    try:
        with path.open("rb") as raw:
            magic = raw.read(2)
            raw.seek(0)
            handle = gzip.GzipFile(fileobj=raw) if magic == b"\x1f\x8b" else raw
            return _ArrayUnpickler(handle, str(path)).load()
    except DataError:
        raise
    except Exception as error:  # truncated gzip, not a pickle, bad array state, ...
        raise DataError(f"{path}: cannot read it as a pickle of numpy arrays "
                        f"({type(error).__name__}: {error})") from None
