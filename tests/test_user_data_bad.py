"""Bad user data is refused with a one-line DataError that names the file or the problem."""
import h5py
import numpy as np
import pytest
from PIL import Image

from tagger.datasets import DataError, file_digest, from_arrays, from_path, split_validation
from tagger.datasets.tfrecord import write_examples


def refused(call, *words):
    """Run ``call``; it must raise DataError with a one-line message holding every word."""
    with pytest.raises(DataError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message and message, message
    for word in words:
        assert str(word) in message, (word, message)
    return message


@pytest.mark.parametrize("images, words", [
    (np.zeros((4, 4)), ["(N, H, W)", "(4, 4)"]),  # wrong ndim
    (np.zeros((2, 3, 3, 3, 1)), ["(2, 3, 3, 3, 1)"]),
    (np.zeros((0, 4, 4)), ["no images", "(0, 4, 4)"]),
    (np.zeros((2, 4, 0)), ["no images"]),
    (np.zeros((2, 4, 4, 5)), ["1 to 4 channels"]),
    (np.full((1, 2, 2), np.nan), ["NaN"]),
    (np.full((1, 2, 2), np.inf, np.float32), ["NaN or infinite"]),
    (np.full((1, 2, 2), 1.5), ["[0, 1]", "1.5"]),
    (np.full((1, 2, 2), -0.1, np.float32), ["[0, 1]"]),
    (np.full((1, 2, 2), 300, np.int16), ["0..255", "300"]),
    (np.full((1, 2, 2), 1 + 1j), ["unsupported", "complex"]),
    (np.full((1, 2, 2), "a"), ["unsupported"]),
    (np.full((1, 2, 2), None, dtype=object), ["unsupported", "object"]),
])
def test_bad_images(images, words):
    refused(lambda: from_arrays(images, name="mine"), "mine:", *words)


def test_bad_objects_labels_and_resize():
    images = np.zeros((2, 4, 4), np.uint8)
    refused(lambda: from_arrays(images, objects=np.zeros((2, 4, 5), int)), "(2, 4, 5)", "(2, 4, 4)")
    refused(lambda: from_arrays(images, objects=-np.ones((2, 4, 4), int)), "negative")
    refused(lambda: from_arrays(images, objects=np.zeros((2, 4, 4)) + 0.5), "integers", "float64")
    many = np.arange(2 * 400).reshape(2, 20, 20) + 1  # 400 objects in an image
    refused(lambda: from_arrays(np.zeros((2, 20, 20)), objects=many), "at most 255 objects")
    refused(lambda: from_arrays(images, labels=[1, 2, 3]), "labels", "2 images")
    refused(lambda: from_arrays(images, labels=[0.5, 1.5]), "labels must be integers")
    refused(lambda: from_arrays(images, resize=(0, 3)), "resize")
    refused(lambda: from_arrays(images, resize="big"), "resize")
    split = from_arrays(images)
    refused(lambda: split_validation(split, 1.0), "fraction")


def test_missing_and_unknown_paths(tmp_path):
    refused(lambda: from_path(tmp_path / "nope.npz", data_dir=tmp_path), "nope.npz", "no such file")
    refused(lambda: file_digest(tmp_path / "nope"), "nope", "no such file")
    (tmp_path / "data.csv").write_text("1,2\n")
    refused(lambda: from_path(tmp_path / "data.csv", data_dir=tmp_path), "data.csv", ".csv", ".npz")
    (tmp_path / "x.tfrecords").write_bytes(b"")
    refused(lambda: from_path(tmp_path / "x.tfrecords", data_dir=tmp_path), "x.tfrecords", "format=",
            "tetrominoes", "multi_dsprites", "objects_room", "clevr_with_masks")
    refused(lambda: from_path(tmp_path / "x.tfrecords", format="mnist", data_dir=tmp_path), "'mnist'", "tetrominoes")


def test_damaged_npz_npy(tmp_path):
    np.savez(tmp_path / "good.npz", images=np.zeros((50, 8, 8)))
    data = (tmp_path / "good.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    refused(lambda: from_path(tmp_path / "cut.npz", data_dir=tmp_path), "cut.npz", "damaged")
    np.save(tmp_path / "good.npy", np.zeros((50, 8, 8)))
    data = (tmp_path / "good.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(data[: len(data) // 2])
    refused(lambda: from_path(tmp_path / "cut.npy", data_dir=tmp_path), "cut.npy", "damaged")
    (tmp_path / "text.npy").write_text("hello")
    refused(lambda: from_path(tmp_path / "text.npy", data_dir=tmp_path), "text.npy")
    np.savez(tmp_path / "keys.npz", pictures=np.zeros((2, 3, 3)))
    refused(lambda: from_path(tmp_path / "keys.npz", data_dir=tmp_path), "keys.npz", "'images'", "pictures")
    np.savez(tmp_path / "pickle.npz", images=np.array([{"a": 1}], dtype=object))
    refused(lambda: from_path(tmp_path / "pickle.npz", data_dir=tmp_path), "pickle.npz", "pickled")
    np.save(tmp_path / "pickle.npy", np.array([{"a": 1}], dtype=object))
    refused(lambda: from_path(tmp_path / "pickle.npy", data_dir=tmp_path), "pickle.npy", "pickled")
    np.savez(tmp_path / "shape.npz", images=np.zeros((2, 3, 3)), objects=np.zeros((2, 4, 4), int))
    refused(lambda: from_path(tmp_path / "shape.npz", data_dir=tmp_path), "shape.npz", "(2, 4, 4)")


def _folder(tmp_path, sizes=((6, 5), (6, 5)), name="pics"):
    folder = tmp_path / name
    folder.mkdir()
    for index, (height, width) in enumerate(sizes):
        Image.fromarray(np.zeros((height, width), np.uint8)).save(folder / f"im{index}.png")
    return folder


def test_bad_folders(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    refused(lambda: from_path(empty, data_dir=tmp_path), "empty", "no image files")
    folder = _folder(tmp_path)
    (folder / "notes.txt").write_text("x")
    (folder / "sub").mkdir()
    refused(lambda: from_path(folder, data_dir=tmp_path), "pics", "2 entries are not images", "'notes.txt'")
    mixed = _folder(tmp_path, ((6, 5), (6, 5), (7, 5)), "mixed")
    refused(lambda: from_path(mixed, data_dir=tmp_path), "im2.png", "5x7", "5x6", "resize")
    assert from_path(mixed, resize=(6, 5), data_dir=tmp_path, progress=False).image_shape == (6, 5)


def test_bad_images_and_masks_in_folders(tmp_path):
    folder = _folder(tmp_path, name="damaged")
    data = (folder / "im1.png").read_bytes()
    (folder / "im1.png").write_bytes(data[:40])
    refused(lambda: from_path(folder, data_dir=tmp_path), "im1.png", "damaged")
    (folder / "im1.png").write_bytes(b"not a png at all")
    refused(lambda: from_path(folder, data_dir=tmp_path), "im1.png", "damaged")
    masked = _folder(tmp_path, ((6, 5),) * 3, name="masked")
    (masked / "masks").mkdir()
    Image.fromarray(np.zeros((6, 5), np.uint8)).save(masked / "masks" / "im0.png")
    refused(lambda: from_path(masked, data_dir=tmp_path), "im1.png", "2 images lack", "masks/im1.png")
    Image.fromarray(np.zeros((6, 5, 3), np.uint8)).save(masked / "masks" / "im1.png")
    Image.fromarray(np.zeros((6, 5), np.uint8)).save(masked / "masks" / "im2.png")
    refused(lambda: from_path(masked, data_dir=tmp_path), "im1.png", "mode RGB")
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(masked / "masks" / "im1.png")
    refused(lambda: from_path(masked, data_dir=tmp_path), "im1.png", "4x4", "5x6")


def test_bad_hdf5(tmp_path):
    (tmp_path / "fake.h5").write_bytes(b"this is not hdf5" * 10)
    refused(lambda: from_path(tmp_path / "fake.h5", data_dir=tmp_path), "fake.h5", "not an HDF5")
    with h5py.File(tmp_path / "keys.h5", "w") as handle:
        handle["pixels"] = np.zeros((2, 3, 3))
    refused(lambda: from_path(tmp_path / "keys.h5", data_dir=tmp_path), "keys.h5", "'image'", "pixels")
    with h5py.File(tmp_path / "mask.h5", "w") as handle:
        handle["image"], handle["mask"] = np.zeros((2, 4, 4, 3), np.uint8), np.zeros((2, 3, 5, 5), np.uint8)
    refused(lambda: from_path(tmp_path / "mask.h5", data_dir=tmp_path), "mask.h5", "(2, 3, 5, 5)", "one-hot")
    with h5py.File(tmp_path / "count.h5", "w") as handle:
        handle["image"], handle["mask"] = np.zeros((2, 4, 4, 3), np.uint8), np.zeros((3, 4, 4, 1), np.uint8)
    refused(lambda: from_path(tmp_path / "count.h5", data_dir=tmp_path), "count.h5", "3 masks for 2 images")
    with h5py.File(tmp_path / "range.h5", "w") as handle:
        handle["images"] = np.full((2, 4, 4), 2.0)
    refused(lambda: from_path(tmp_path / "range.h5", data_dir=tmp_path), "range.h5", "[0, 1]")


def test_bad_tfrecords(tmp_path):
    image, mask = bytes(35 * 35 * 3), bytes(4 * 35 * 35)
    write_examples(tmp_path / "t.tfrecords", [{"image": [image], "mask": [mask]}] * 3, compressed=False)
    assert len(from_path(tmp_path / "t.tfrecords", format="tetrominoes", data_dir=tmp_path, progress=False)) == 3
    data = (tmp_path / "t.tfrecords").read_bytes()
    (tmp_path / "corrupt.tfrecords").write_bytes(data[:100] + bytes([data[100] ^ 1]) + data[101:])
    refused(lambda: from_path(tmp_path / "corrupt.tfrecords", format="tetrominoes", data_dir=tmp_path),
            "corrupt.tfrecords", "CRC")
    (tmp_path / "cut.tfrecords").write_bytes(data[:-10])
    refused(lambda: from_path(tmp_path / "cut.tfrecords", format="tetrominoes", data_dir=tmp_path),
            "cut.tfrecords", "truncated")
    write_examples(tmp_path / "gz.tfrecords", [{"image": [image], "mask": [mask]}] * 3)
    gz = (tmp_path / "gz.tfrecords").read_bytes()
    (tmp_path / "gzcut.tfrecords").write_bytes(gz[: len(gz) // 2])
    refused(lambda: from_path(tmp_path / "gzcut.tfrecords", format="tetrominoes", data_dir=tmp_path), "gzcut.tfrecords")
    refused(lambda: from_path(tmp_path / "t.tfrecords", format="clevr_with_masks", data_dir=tmp_path),
            "t.tfrecords", "clevr_with_masks", "240x320")
    write_examples(tmp_path / "other.tfrecords", [{"label": np.array([1])}])
    refused(lambda: from_path(tmp_path / "other.tfrecords", format="objects_room", data_dir=tmp_path),
            "other.tfrecords", "lacks")
    (tmp_path / "empty.tfrecords").write_bytes(b"")
    refused(lambda: from_path(tmp_path / "empty.tfrecords", format="tetrominoes", data_dir=tmp_path), "no examples")
