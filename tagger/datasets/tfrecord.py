"""TFRecord files of ``tf.train.Example`` records, read and written without TensorFlow.

A TFRecord file is a sequence of records, each framed as::

    uint64 length (little endian)
    uint32 masked_crc32c(length bytes)
    byte   data[length]
    uint32 masked_crc32c(data)

where ``masked_crc32c(b) = ((c >> 15) | (c << 17)) + 0xA282EAD8 (mod 2**32)`` with
``c = crc32c(b)`` (Castagnoli polynomial). A file may be GZIP-compressed as a whole
(``TFRecordOptions(compression_type="GZIP")``); :func:`read_records` detects that from the
magic bytes.

Each record of a dataset file is a serialised ``tf.train.Example``, decoded and encoded by
:mod:`tagger.datasets.tf_example` (:func:`parse_example`, :func:`serialize_example`).

CRC checks use the ``google_crc32c`` or ``crc32c`` package when one is installed and a
pure-Python table otherwise (about 10 MB/s: fine for tests and samples; for a whole
release file install one of those packages or pass ``verify=False``).
"""
from __future__ import annotations

import gzip
import os
import struct
from collections.abc import Iterable, Iterator

from .common import DataError
from .tf_example import parse_example, serialize_example

_MASK_DELTA = 0xA282EAD8
_GZIP_MAGIC = b"\x1f\x8b"


def _make_table() -> list[list[int]]:
    """Slicing-by-8 tables of the reflected CRC-32C polynomial 0x82F63B78."""
    base = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
        base.append(crc)
    tables = [base]
    for _ in range(7):
        previous = tables[-1]
        tables.append([(previous[i] >> 8) ^ base[previous[i] & 0xFF] for i in range(256)])
    return tables


_TABLES: list[list[int]] | None = None


def _crc32c_python(data: bytes) -> int:
    global _TABLES
    if _TABLES is None:
        _TABLES = _make_table()
    t0, t1, t2, t3, t4, t5, t6, t7 = _TABLES
    crc = 0xFFFFFFFF
    view = memoryview(data)
    head = len(view) - len(view) % 8
    for (word,) in struct.iter_unpack("<Q", view[:head]):
        low = (word & 0xFFFFFFFF) ^ crc
        high = word >> 32
        crc = (t7[low & 0xFF] ^ t6[(low >> 8) & 0xFF] ^ t5[(low >> 16) & 0xFF] ^ t4[low >> 24]
               ^ t3[high & 0xFF] ^ t2[(high >> 8) & 0xFF] ^ t1[(high >> 16) & 0xFF] ^ t0[high >> 24])
    for byte in view[head:]:
        crc = (crc >> 8) ^ t0[(crc ^ byte) & 0xFF]
    return crc ^ 0xFFFFFFFF


def _find_crc32c():
    try:
        import google_crc32c  # type: ignore[import-not-found]
        return lambda data: int(google_crc32c.value(bytes(data)))
    except ImportError:
        pass
    try:
        import crc32c as crc32c_package  # type: ignore[import-not-found]
        return lambda data: int(crc32c_package.crc32c(bytes(data)))
    except ImportError:
        return _crc32c_python


crc32c = _find_crc32c()
"""CRC-32C (Castagnoli) of a bytes object, as an int."""


def masked_crc32c(data: bytes) -> int:
    """The CRC that TFRecord framing stores: crc32c rotated right by 15 plus a constant."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def _open(path: str | os.PathLike, mode: str, compressed: bool | None):
    if "r" in mode:
        handle = open(path, "rb")
        if compressed is None:
            compressed = handle.read(2) == _GZIP_MAGIC
            handle.seek(0)
        return gzip.GzipFile(fileobj=handle, mode="rb") if compressed else handle
    return gzip.open(path, "wb") if compressed else open(path, "wb")


def read_records(path: str | os.PathLike, verify: bool = True,
                 compressed: bool | None = None) -> Iterator[bytes]:
    """Yield the records (serialised protos) of a TFRecord file.

    Args:
        path: the file; GZIP compression is detected unless ``compressed`` says.
        verify: check both CRCs of every record (raise :class:`DataError` on a mismatch).
        compressed: force GZIP on or off; ``None`` detects it from the magic bytes.
    """
    handle = _open(path, "rb", compressed)
    with handle:
        index = 0
        while True:
            header = handle.read(12)
            if not header:
                return
            if len(header) < 12:
                raise DataError(f"{path}: record {index} is truncated (header of {len(header)} bytes)")
            length, length_crc = struct.unpack("<QI", header)
            if verify and masked_crc32c(header[:8]) != length_crc:
                raise DataError(f"{path}: CRC mismatch in the length of record {index}; "
                                "the file is corrupt or not a TFRecord file")
            data = handle.read(length)
            footer = handle.read(4)
            if len(data) < length or len(footer) < 4:
                raise DataError(f"{path}: record {index} is truncated ({len(data)} of {length} bytes)")
            if verify and masked_crc32c(data) != struct.unpack("<I", footer)[0]:
                raise DataError(f"{path}: CRC mismatch in the data of record {index}; the file is corrupt")
            yield data
            index += 1


def write_records(path: str | os.PathLike, records: Iterable[bytes], compressed: bool = True) -> None:
    """Write TFRecord framing around ``records`` (GZIP-compressed unless told otherwise)."""
    with _open(path, "wb", compressed) as handle:
        for data in records:
            length = struct.pack("<Q", len(data))
            handle.write(length + struct.pack("<I", masked_crc32c(length)))
            handle.write(data + struct.pack("<I", masked_crc32c(data)))


def read_examples(path: str | os.PathLike, n: int | None = None, verify: bool = True) -> Iterator[dict]:
    """Yield the first ``n`` (all if None) parsed examples of a TFRecord file."""
    for index, record in enumerate(read_records(path, verify=verify)):
        if n is not None and index >= n:
            return
        yield parse_example(record)


def write_examples(path: str | os.PathLike, examples: Iterable[dict], compressed: bool = True) -> None:
    """Write ``examples`` (dicts for :func:`serialize_example`) as a TFRecord file."""
    write_records(path, (serialize_example(example) for example in examples), compressed=compressed)
