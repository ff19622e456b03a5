"""Tetrominoes: the generator's invariants, determinism, the cached API, and the TFRecord reader."""
import gzip
import hashlib
import importlib

import numpy as np
import pytest

from tagger.datasets import DataError, load, tetrominoes, tetrominoes_from_tfrecords
from tagger.datasets import tf_example, tfrecord
from tagger.datasets.tetrominoes import (BLOCK, COLORS, SEEDS, SHAPE_CELLS, SHAPE_MASKS, SHAPE_NAMES, SIZE,
                                         generate, render)

module = importlib.import_module("tagger.datasets.tetrominoes")  # the package exports the function by that name

# sha256 over objects, colors, shapes, positions of generate(64, seed=1), numpy 2.4 (PCG64).
PINNED = "e3e9f9db0d1877a057caa66f8fdc8f8e56eee934109a63822908d53469d77acc"


def _digest(arrays):
    digest = hashlib.sha256()
    for key in ("objects", "colors", "shapes", "positions"):
        digest.update(np.ascontiguousarray(arrays[key]).tobytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def scenes():
    arrays = generate(300, seed=5)
    return arrays, render(arrays["objects"], arrays["colors"])


def test_nineteen_fixed_tetrominoes():
    assert len(SHAPE_NAMES) == 19 and len(set(SHAPE_NAMES)) == 19
    counts = {letter: sum(name[0] == letter for name in SHAPE_NAMES) for letter in "IOTSZJL"}
    assert counts == {"I": 2, "O": 1, "T": 4, "S": 2, "Z": 2, "J": 4, "L": 4}
    keys = {(cells.shape, cells.tobytes()) for cells in SHAPE_CELLS}
    assert len(keys) == 19  # all distinct
    for cells, mask in zip(SHAPE_CELLS, SHAPE_MASKS):
        assert cells.sum() == 4 and mask.sum() == 4 * BLOCK * BLOCK


def test_scene_invariants(scenes):
    arrays, features = scenes
    objects, colors, shapes, positions = (arrays[k] for k in ("objects", "colors", "shapes", "positions"))
    n = len(objects)
    assert objects.shape == (n, SIZE * SIZE) and objects.dtype == np.uint8
    assert colors.shape == shapes.shape == (n, 3) and positions.shape == (n, 3, 2)
    assert colors.max() < 6 and shapes.max() < 19
    images = features.reshape(n, SIZE, SIZE, 3)
    ids = objects.reshape(n, SIZE, SIZE)
    for index in range(n):
        assert set(np.unique(ids[index])) == {0, 1, 2, 3}
        assert (images[index][ids[index] == 0] == 0).all()  # black background
        for piece in range(3):
            where = ids[index] == piece + 1
            assert where.sum() == 4 * BLOCK * BLOCK  # no occlusion: all four blocks visible
            expected = COLORS[colors[index, piece]] / 255
            assert (images[index][where] == expected).all()
            mask = SHAPE_MASKS[shapes[index, piece]]
            y, x = positions[index, piece]
            placed = np.zeros((SIZE, SIZE), dtype=bool)
            placed[y:y + mask.shape[0], x:x + mask.shape[1]] = mask
            assert (placed == where).all()


def test_features_layout(scenes):
    arrays, features = scenes
    assert features.dtype == np.float32 and features.shape == (len(arrays["objects"]), SIZE * SIZE * 3)
    assert features.min() >= 0 and features.max() <= 1
    # pixel-major (H, W, C): pixel p's channels are features[:, 3p:3p+3]
    pixel = int(np.flatnonzero(arrays["objects"][0])[0])
    assert (features[0, 3 * pixel:3 * pixel + 3] == COLORS[arrays["colors"][0, arrays["objects"][0, pixel] - 1]] / 255).all()


def test_distributions_cover_everything(scenes):
    arrays, _ = scenes
    assert set(np.unique(arrays["colors"])) == set(range(6))
    assert set(np.unique(arrays["shapes"])) == set(range(19))
    repeated = np.array([len(set(row)) < 3 for row in arrays["colors"]])
    assert 0.2 < repeated.mean() < 0.7  # 1 - (6*5*4)/6**3 = 0.44 of scenes repeat a colour


def test_deterministic_by_checksum():
    first = generate(64, seed=1)
    assert _digest(first) == _digest(generate(64, seed=1))
    assert _digest(first) == PINNED
    assert _digest(first) != _digest(generate(64, seed=2))


def test_splits_differ():
    seeds = list(SEEDS.values())
    assert len(set(seeds)) == 3
    digests = {_digest(generate(32, seed)) for seed in seeds}
    assert len(digests) == 3


def test_cached_api(tmp_path, monkeypatch):
    monkeypatch.setattr(module, "SPLIT_SIZES", {"train": 30, "valid": 10, "test": 12})
    split = tetrominoes("test", data_dir=tmp_path)
    assert split.name == "tetrominoes/test" and len(split) == 12
    assert split.image_shape == (35, 35, 3) and not split.binary
    assert split.features.shape == (12, 3675) and split.features.dtype == np.float32
    assert split.objects.shape == (12, 1225) and split.objects.dtype == np.uint8
    assert split.colors.shape == (12, 3) and split.object_shapes.shape == (12, 3)
    assert split.positions.shape == (12, 3, 2)
    assert (split.objects == generate(12, SEEDS["test"])["objects"]).all()
    assert (tmp_path / f"tetrominoes_v{module.RECIPE_VERSION}.npz").exists()
    again = load("tetrominoes", "test", data_dir=tmp_path)
    assert np.array_equal(again.features, split.features)
    assert len(load("tetrominoes", "train", data_dir=tmp_path)) == 30
    with pytest.raises(DataError):
        tetrominoes("single", data_dir=tmp_path)


# --- the release's TFRecord files --------------------------------------------------------

def _release_example(objects, colors, image):
    """One example in the release's schema: every image/mask byte is its own bytes entry."""
    mask = np.stack([(objects == entity) for entity in range(4)]).astype(np.uint8) * 255  # (4, H*W)
    rgb = np.concatenate([np.zeros((1, 3)), COLORS[colors] / 255]).astype(np.float32)
    return {
        "image": [bytes([b]) for b in image.tobytes()],
        "mask": [bytes([b]) for b in mask.tobytes()],
        "x": np.arange(4, dtype=np.float32) / 4,
        "y": np.arange(4, dtype=np.float32) / 5,
        "shape": np.array([0, 1, 2, 3], dtype=np.float32),
        "color": rgb,
        "visibility": np.array([1, 1, 1, 1], dtype=np.float32),
    }


@pytest.fixture(scope="module")
def release_file(tmp_path_factory):
    arrays = generate(5, seed=11)
    images = (render(arrays["objects"], arrays["colors"]) * 255).round().astype(np.uint8)
    path = tmp_path_factory.mktemp("release") / "tetrominoes_train.tfrecords"
    examples = [_release_example(arrays["objects"][i], arrays["colors"][i], images[i]) for i in range(5)]
    tfrecord.write_examples(path, examples, compressed=True)
    return path, arrays, images, examples


def test_crc32c_known_value():
    assert tfrecord._crc32c_python(b"123456789") == 0xE3069283
    assert tfrecord.crc32c(b"123456789") == 0xE3069283
    data = bytes(range(256)) * 3 + b"tail"
    assert tfrecord._crc32c_python(data) == tfrecord.crc32c(data)


def test_tfrecord_round_trip(release_file):
    path, arrays, images, examples = release_file
    assert open(path, "rb").read(2) == b"\x1f\x8b"  # GZIP, as the release ships
    split = tetrominoes_from_tfrecords(path)
    assert len(split) == 5 and split.image_shape == (35, 35, 3)
    assert np.array_equal(split.features, images.astype(np.float32) / 255)
    assert np.array_equal(split.features, render(arrays["objects"], arrays["colors"]))
    assert np.array_equal(split.objects, arrays["objects"])
    assert np.array_equal(split.colors, arrays["colors"])
    assert np.array_equal(split.object_shapes, arrays["shapes"])
    assert np.array_equal(split.positions, arrays["positions"])
    assert len(tetrominoes_from_tfrecords(path, n=2)) == 2
    parsed = list(tfrecord.read_examples(path))
    for got, want in zip(parsed, examples):
        assert b"".join(got["image"]) == b"".join(want["image"])
        for key in ("x", "y", "shape", "visibility"):
            assert np.array_equal(got[key], want[key])
        assert np.array_equal(got["color"].reshape(4, 3), want["color"])


def test_example_encoding_matches_protobuf():
    protobuf = pytest.importorskip("google.protobuf")
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    del protobuf
    proto = descriptor_pb2.FileDescriptorProto(name="example_test.proto", package="t", syntax="proto3")
    F = descriptor_pb2.FieldDescriptorProto

    def message(name, *fields):
        msg = proto.message_type.add(name=name)
        for number, (field, kind, label, type_name) in enumerate(fields, start=1):
            msg.field.add(name=field, number=number, type=kind, label=label, type_name=type_name)
        return msg

    message("BytesList", ("value", F.TYPE_BYTES, F.LABEL_REPEATED, None))
    message("FloatList", ("value", F.TYPE_FLOAT, F.LABEL_REPEATED, None))
    message("Int64List", ("value", F.TYPE_INT64, F.LABEL_REPEATED, None))
    message("Feature", ("bytes_list", F.TYPE_MESSAGE, F.LABEL_OPTIONAL, ".t.BytesList"),
            ("float_list", F.TYPE_MESSAGE, F.LABEL_OPTIONAL, ".t.FloatList"),
            ("int64_list", F.TYPE_MESSAGE, F.LABEL_OPTIONAL, ".t.Int64List"))
    features = message("Features", ("feature", F.TYPE_MESSAGE, F.LABEL_REPEATED, ".t.Features.FeatureEntry"))
    entry = features.nested_type.add(name="FeatureEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    entry.field.add(name="value", number=2, type=F.TYPE_MESSAGE, label=F.LABEL_OPTIONAL, type_name=".t.Feature")
    message("Example", ("features", F.TYPE_MESSAGE, F.LABEL_OPTIONAL, ".t.Features"))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    Example = message_factory.GetMessageClass(pool.FindMessageTypeByName("t.Example"))

    ours = tf_example.serialize_example({"b": [b"ab", b"", b"c"], "f": np.array([1.5, -2.0]),
                                       "i": np.array([3, -1, 2 ** 40])})
    theirs = Example.FromString(ours)
    assert list(theirs.features.feature["b"].bytes_list.value) == [b"ab", b"", b"c"]
    assert list(theirs.features.feature["f"].float_list.value) == [1.5, -2.0]
    assert list(theirs.features.feature["i"].int64_list.value) == [3, -1, 2 ** 40]
    built = Example()
    built.features.feature["i"].int64_list.value.extend([7, -5])
    built.features.feature["f"].float_list.value.extend([0.25])
    built.features.feature["b"].bytes_list.value.extend([b"xyz"])
    parsed = tf_example.parse_example(built.SerializeToString())
    assert parsed["i"].tolist() == [7, -5] and parsed["f"].tolist() == [0.25] and parsed["b"] == [b"xyz"]


def test_corrupted_crc_raises(tmp_path, release_file):
    path, *_ = release_file
    raw = bytearray(gzip.open(path).read())
    raw[100] ^= 0xFF  # inside record 0's data
    corrupt = tmp_path / "corrupt.tfrecords"
    with gzip.open(corrupt, "wb") as handle:
        handle.write(bytes(raw))
    with pytest.raises(DataError, match="CRC mismatch in the data of record 0"):
        tetrominoes_from_tfrecords(corrupt)
    raw = bytearray(gzip.open(path).read())
    raw[0] ^= 0x01  # the length of record 0
    plain = tmp_path / "corrupt_length.tfrecords"
    plain.write_bytes(bytes(raw))  # uncompressed, detected as such
    with pytest.raises(DataError, match="CRC mismatch in the length of record 0"):
        list(tfrecord.read_records(plain))
    truncated = tmp_path / "truncated.tfrecords"
    truncated.write_bytes(gzip.open(path).read()[:-10])
    with pytest.raises(DataError, match="truncated"):
        list(tfrecord.read_records(truncated))
