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

Each record of a dataset file is a serialised ``tf.train.Example``, whose protobuf schema is
small enough to decode by hand::

    Example   { Features features = 1; }
    Features  { map<string, Feature> feature = 1; }   # entries: key = 1, value = 2
    Feature   { oneof { BytesList bytes_list = 1; FloatList float_list = 2;
                        Int64List int64_list = 3; } }
    BytesList { repeated bytes value = 1; }
    FloatList { repeated float value = 1 [packed]; }   # unpacked also accepted
    Int64List { repeated int64 value = 1 [packed]; }   # unpacked also accepted

:func:`parse_example` returns ``{name: list[bytes] | float32 array | int64 array}``;
:func:`write_examples` writes the same schema (packed lists), for tests and small files.

CRC checks use the ``google_crc32c`` or ``crc32c`` package when one is installed and a
pure-Python table otherwise (about 10 MB/s: fine for tests and samples; for a whole
release file install one of those packages or pass ``verify=False``).
"""
from __future__ import annotations

import gzip
import io
import os
import struct
from collections.abc import Iterable, Iterator

import numpy as np

from .common import DataError

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


# --- protobuf wire format ------------------------------------------------------------------

def _varint(buffer: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buffer):
            raise DataError("truncated varint in a tf.train.Example")
        byte = buffer[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise DataError("varint longer than 10 bytes in a tf.train.Example")


def _fields(buffer: bytes) -> Iterator[tuple[int, int, object]]:
    """Yield ``(field number, wire type, value)``: int for varints, bytes for the others."""
    pos = 0
    end = len(buffer)
    while pos < end:
        key, pos = _varint(buffer, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buffer, pos)
        elif wire == 2:
            size, pos = _varint(buffer, pos)
            value = buffer[pos:pos + size]
            if len(value) < size:
                raise DataError("truncated length-delimited field in a tf.train.Example")
            pos += size
        elif wire == 5:
            value = buffer[pos:pos + 4]
            pos += 4
        elif wire == 1:
            value = buffer[pos:pos + 8]
            pos += 8
        else:
            raise DataError(f"unsupported protobuf wire type {wire} in a tf.train.Example")
        yield number, wire, value


def _bytes_list(payload: bytes) -> list[bytes]:
    # Fast path: N one-byte values (the multi-object release stores images that way) are
    # encoded as N repeats of (tag 0x0A, length 1, byte).
    if len(payload) % 3 == 0 and payload:
        raw = np.frombuffer(payload, dtype=np.uint8).reshape(-1, 3)
        if (raw[:, 0] == 0x0A).all() and (raw[:, 1] == 1).all():
            return [raw[:, 2].tobytes()]  # concatenated: what callers join anyway
    return [value for number, wire, value in _fields(payload) if number == 1 and wire == 2]


def _float_list(payload: bytes) -> np.ndarray:
    parts = []
    for number, wire, value in _fields(payload):
        if number != 1:
            continue
        if wire == 2:  # packed
            parts.append(np.frombuffer(value, dtype="<f4"))
        elif wire == 5:
            parts.append(np.frombuffer(value, dtype="<f4"))
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)


def _int64_list(payload: bytes) -> np.ndarray:
    values = []
    for number, wire, value in _fields(payload):
        if number != 1:
            continue
        if wire == 2:  # packed varints
            pos = 0
            while pos < len(value):
                item, pos = _varint(value, pos)
                values.append(item)
        elif wire == 0:
            values.append(value)
    array = np.array(values, dtype=np.uint64)
    return array.view(np.int64)  # two's complement, as int64 varints are encoded


def parse_example(record: bytes) -> dict[str, object]:
    """Decode a serialised ``tf.train.Example``.

    Returns:
        ``{name: value}`` with ``list[bytes]`` for a bytes_list (runs of one-byte values may
        come back joined into one bytes object: join the list before use), a float32 array
        for a float_list, an int64 array for an int64_list.
    """
    result: dict[str, object] = {}
    for number, wire, features in _fields(record):
        if number != 1 or wire != 2:
            continue
        for entry_number, entry_wire, entry in _fields(features):
            if entry_number != 1 or entry_wire != 2:
                continue
            name, feature = None, b""
            for field, field_wire, value in _fields(entry):
                if field == 1 and field_wire == 2:
                    name = bytes(value).decode("utf-8")
                elif field == 2 and field_wire == 2:
                    feature = value
            if name is None:
                raise DataError("a tf.train.Example feature without a name")
            value = None
            for kind, kind_wire, payload in _fields(feature):
                if kind_wire != 2:
                    continue
                if kind == 1:
                    value = _bytes_list(payload)
                elif kind == 2:
                    value = _float_list(payload)
                elif kind == 3:
                    value = _int64_list(payload)
            result[name] = value if value is not None else []
    return result


def _key(number: int, wire: int) -> bytes:
    return _encode_varint((number << 3) | wire)


def _encode_varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _delimited(number: int, payload: bytes) -> bytes:
    return _key(number, 2) + _encode_varint(len(payload)) + payload


def serialize_example(features: dict[str, object]) -> bytes:
    """Serialise ``{name: value}`` as a ``tf.train.Example``.

    A value that is ``bytes`` or a list of ``bytes`` becomes a bytes_list; a float array or
    list of floats a (packed) float_list; an integer array an (packed) int64_list.
    """
    entries = io.BytesIO()
    for name, value in features.items():
        if isinstance(value, (bytes, bytearray)):
            value = [bytes(value)]
        if isinstance(value, list) and (not value or isinstance(value[0], (bytes, bytearray))):
            feature = _delimited(1, b"".join(_delimited(1, bytes(item)) for item in value))
        else:
            array = np.asarray(value)
            if np.issubdtype(array.dtype, np.integer) or array.dtype == bool:
                packed = b"".join(_encode_varint(int(item)) for item in array.reshape(-1))
                feature = _delimited(3, _delimited(1, packed))
            else:
                packed = array.astype("<f4").reshape(-1).tobytes()
                feature = _delimited(2, _delimited(1, packed))
        entry = _delimited(1, name.encode("utf-8")) + _delimited(2, feature)
        entries.write(_delimited(1, entry))
    return _delimited(1, entries.getvalue())


def read_examples(path: str | os.PathLike, n: int | None = None, verify: bool = True) -> Iterator[dict]:
    """Yield the first ``n`` (all if None) parsed examples of a TFRecord file."""
    for index, record in enumerate(read_records(path, verify=verify)):
        if n is not None and index >= n:
            return
        yield parse_example(record)


def write_examples(path: str | os.PathLike, examples: Iterable[dict], compressed: bool = True) -> None:
    """Write ``examples`` (dicts for :func:`serialize_example`) as a TFRecord file."""
    write_records(path, (serialize_example(example) for example in examples), compressed=compressed)
