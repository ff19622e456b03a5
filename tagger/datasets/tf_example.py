"""``tf.train.Example`` records decoded and encoded by hand (the protobuf wire format), without
TensorFlow or protobuf; :mod:`tagger.datasets.tfrecord` frames them into files.

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
"""
from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np

from .common import DataError


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
