"""Your own data in: arrays, .npz/.npy, image folders, HDF5 and multi-object TFRecords as a Split."""
import importlib

import h5py
import numpy as np
import pytest
from PIL import Image

from tagger.datasets import (Split, file_digest, from_arrays, from_path, has_ground_truth, split_validation,
                             to_npz, user)
from tagger.datasets.formats import TFRECORD_SCHEMAS
from tagger.datasets.tfrecord import write_examples

RNG = np.random.default_rng(0)
shapes_module = importlib.import_module("tagger.datasets.shapes")  # the package exports functions of these names
tetro = importlib.import_module("tagger.datasets.tetrominoes")


def test_from_arrays_grey_uint8_binary_and_labels():
    images = (RNG.random((4, 6, 5)) > 0.5).astype(np.uint8) * 255  # (N, H, W)
    split = from_arrays(images[..., None], labels=[3, 1, 4, 1])  # C = 1 squeezed
    assert split.image_shape == (6, 5) and split.features.shape == (4, 30)
    assert split.features.dtype == np.float32 and split.binary
    np.testing.assert_array_equal(split.features, images.reshape(4, -1) / 255)
    assert split.labels.dtype == np.int64 and split.labels.shape == (4, 1)
    assert split.objects.shape == (4, 30) and not has_ground_truth(split)


def test_from_arrays_colour_is_pixel_major_and_continuous():
    images = RNG.random((3, 4, 5, 3))  # float64 in [0, 1]
    split = from_arrays(images, name="colour")
    assert split.image_shape == (4, 5, 3) and not split.binary and split.name == "colour"
    np.testing.assert_array_equal(split.features, images.astype(np.float32).reshape(3, -1))
    assert from_arrays(images > 0.5).binary  # bool is 0/1
    assert from_arrays(np.full((1, 2, 2), 200, np.int64)).features.max() == np.float32(200 / 255)


def test_objects_relabelled_when_over_255():
    objects = np.zeros((2, 4, 4), np.int64)
    objects[0, :2], objects[0, 2:] = 1000, 70000  # ids 1000 and 70000 -> 1, 2
    objects[1, 1] = 7  # no id over 255: kept
    split = from_arrays(np.zeros((2, 4, 4), np.uint8), objects=objects[..., None])
    assert split.objects.dtype == np.uint8 and has_ground_truth(split)
    assert set(np.unique(split.objects[0])) == {1, 2} and set(np.unique(split.objects[1])) == {0, 7}


def test_resize_images_bilinear_ids_nearest():
    images = np.zeros((1, 8, 8), np.uint8)
    images[0, :, 4:] = 255
    objects = (images > 0).astype(np.int64) * 5
    split = from_arrays(images, objects=objects, resize=(4, 2))
    assert split.image_shape == (4, 2)
    np.testing.assert_array_equal(split.objects.reshape(4, 2), [[0, 5]] * 4)
    left, right = split.features.reshape(4, 2).T  # blended near the edge, but ordered
    assert (left < 0.5).all() and (right > 0.5).all()
    flat = from_arrays(np.full((2, 9, 7, 3), 0.25), resize=(3, 5))
    assert flat.image_shape == (3, 5, 3) and np.allclose(flat.features, 0.25)


def test_npz_and_npy(tmp_path):
    images = RNG.integers(0, 256, (5, 6, 7, 3), dtype=np.uint8)
    objects = RNG.integers(0, 4, (5, 6, 7))
    np.savez(tmp_path / "mine.npz", images=images, objects=objects, labels=np.arange(5))
    split = from_path(tmp_path / "mine.npz", data_dir=tmp_path / "cache")
    assert split.name == "mine.npz" and split.image_shape == (6, 7, 3)
    np.testing.assert_array_equal(split.objects, objects.reshape(5, -1))
    np.testing.assert_array_equal(split.labels[:, 0], np.arange(5))
    np.save(tmp_path / "grey.npy", images[..., 0])
    split = from_path(tmp_path / "grey.npy", data_dir=tmp_path / "cache", resize=(3, 3))
    assert split.image_shape == (3, 3) and split.labels is None and not has_ground_truth(split)


def _write_folder(folder, images, masks=None, suffix=".png"):
    folder.mkdir()
    for index, image in enumerate(images):
        Image.fromarray(image).save(folder / f"im{index:02d}{suffix}")
    if masks is not None:
        (folder / "masks").mkdir()
        for index, ids in enumerate(masks):
            Image.fromarray(ids.astype(np.uint8)).save(folder / "masks" / f"im{index:02d}.png")
    (folder / ".DS_Store").write_bytes(b"junk")  # hidden files are ignored


def test_png_folder_with_masks_and_mixed_modes(tmp_path):
    colour = RNG.integers(0, 256, (2, 5, 6, 3), dtype=np.uint8)
    grey = RNG.integers(0, 256, (5, 6), dtype=np.uint8)
    masks = RNG.integers(0, 3, (3, 5, 6))
    _write_folder(tmp_path / "pics", [colour[0], grey, colour[1]], masks)
    split = from_path(tmp_path / "pics", data_dir=tmp_path / "cache", progress=False)
    assert split.name == "pics" and split.image_shape == (5, 6, 3) and len(split) == 3
    np.testing.assert_array_equal(split.features[0], colour[0].reshape(-1) / np.float32(255))
    grey_as_rgb = np.repeat(grey[..., None], 3, -1) / np.float32(255)  # (H, W, 3)
    np.testing.assert_array_equal(split.features[1].reshape(5, 6, 3), grey_as_rgb)
    np.testing.assert_array_equal(split.objects, masks.reshape(3, -1))


def test_jpeg_folder_grey_and_mixed_sizes_with_resize(tmp_path):
    images = [np.full((10, 12), 100, np.uint8), np.full((20, 8), 200, np.uint8)]
    _write_folder(tmp_path / "jpegs", images, suffix=".jpg")
    split = from_path(tmp_path / "jpegs", resize=(4, 4), data_dir=tmp_path / "cache", progress=False)
    assert split.image_shape == (4, 4) and not split.binary
    np.testing.assert_allclose(split.features.mean(axis=1), [100 / 255, 200 / 255], atol=3 / 255)


def test_hdf5_object_centric_layout_ids(tmp_path):
    images = RNG.integers(0, 256, (7, 8, 8, 3), dtype=np.uint8)
    ids = RNG.integers(0, 4, (7, 8, 8, 1), dtype=np.uint8)
    with h5py.File(tmp_path / "tetrominoes-full.hdf5", "w") as handle:
        handle["image"], handle["mask"] = images, ids
        handle["visibility"] = np.ones((7, 4))
    from tagger.datasets import formats
    formats.HDF5_CHUNK, chunk = 3, formats.HDF5_CHUNK  # several chunks
    try:
        split = from_path(tmp_path / "tetrominoes-full.hdf5", data_dir=tmp_path / "cache", progress=False)
    finally:
        formats.HDF5_CHUNK = chunk
    np.testing.assert_array_equal(split.features, np.divide(images, 255, dtype=np.float32).reshape(7, -1))
    np.testing.assert_array_equal(split.objects, ids.reshape(7, -1))


def test_hdf5_one_hot_masks_and_labels(tmp_path):
    ids = RNG.integers(0, 5, (4, 6, 6))
    one_hot = (np.arange(5)[None, :, None, None] == ids[:, None]).astype(np.uint8)[..., None]  # (N, K, H, W, 1)
    with h5py.File(tmp_path / "mine.h5", "w") as handle:
        handle["images"] = RNG.random((4, 6, 6)).astype(np.float32)
        handle["masks"], handle["labels"] = one_hot, np.arange(4)
    split = from_path(tmp_path / "mine.h5", resize=(3, 3), data_dir=tmp_path / "cache", progress=False)
    assert split.image_shape == (3, 3) and split.labels[:, 0].tolist() == [0, 1, 2, 3]
    np.testing.assert_array_equal(split.objects.reshape(4, 3, 3), ids[:, 1::2, 1::2])  # nearest: centres
    full = from_path(tmp_path / "mine.h5", data_dir=tmp_path / "cache", progress=False)
    np.testing.assert_array_equal(full.objects, ids.reshape(4, -1))


@pytest.mark.parametrize("name", list(TFRECORD_SCHEMAS))
def test_multi_object_tfrecords(tmp_path, name):
    (height, width), order = TFRECORD_SCHEMAS[name]
    channels, slots = (1, 4) if name == "multi_dsprites" else (3, 5)
    images = RNG.integers(0, 256, (2, height, width, channels), dtype=np.uint8)
    ids = RNG.integers(0, slots, (2, height, width))
    examples = []
    for image, objects in zip(images, ids):
        one_hot = (objects[None] == np.arange(slots)[:, None, None]).astype(np.uint8)  # (K, H, W)
        mask = one_hot if order == "khw" else one_hot.transpose(1, 2, 0)  # multi_dsprites: (H, W, K)
        examples.append({"image": [bytes([value]) for value in image.reshape(-1)], "mask": [mask.tobytes()],
                         "visibility": np.ones(slots, np.float32)})
    path = tmp_path / f"{name}_train.tfrecords"
    write_examples(path, examples)
    resize = (60, 80) if name == "clevr_with_masks" else None
    split = from_path(path, format=name, resize=resize, data_dir=tmp_path / "cache", progress=False)
    size = resize or (height, width)
    assert split.image_shape == (size if channels == 1 else (*size, 3))
    if resize is None:
        np.testing.assert_array_equal(split.features, np.divide(images, 255, dtype=np.float32).reshape(2, -1))
        np.testing.assert_array_equal(split.objects, ids.reshape(2, -1))
    else:
        np.testing.assert_array_equal(split.objects.reshape(2, *size), ids[:, 2::4, 2::4])


def test_cache_second_call_does_not_parse(tmp_path, monkeypatch):
    np.savez(tmp_path / "a.npz", images=RNG.random((3, 4, 4)))
    first = from_path(tmp_path / "a.npz", data_dir=tmp_path)
    assert len(list((tmp_path / "user").glob(f"{file_digest(tmp_path / 'a.npz')}*.npz"))) == 1

    def fail(*args):
        raise AssertionError("parsed again")

    monkeypatch.setattr(user, "read_path", fail)
    second = from_path(tmp_path / "a.npz", data_dir=tmp_path)
    np.testing.assert_array_equal(first.features, second.features)
    assert second.name == "a.npz" and second.image_shape == (4, 4)
    with pytest.raises(AssertionError):  # another size is another cache entry
        from_path(tmp_path / "a.npz", resize=(2, 2), data_dir=tmp_path)


def test_file_digest_of_a_folder_sees_names_and_bytes(tmp_path):
    _write_folder(tmp_path / "f", [np.zeros((3, 3), np.uint8)])
    before = file_digest(tmp_path / "f")
    (tmp_path / "f" / "im00.png").rename(tmp_path / "f" / "renamed.png")
    assert file_digest(tmp_path / "f") != before and len(before) == 64


def test_split_validation_seeded_and_disjoint():
    split = from_arrays(np.arange(20 * 4, dtype=np.uint8).reshape(20, 2, 2), labels=np.arange(20))
    train, valid = split_validation(split, 0.25, seed=3)
    again_train, again_valid = split_validation(split, 0.25, seed=3)
    assert len(valid) == 5 and len(train) == 15
    assert set(valid.labels[:, 0]).isdisjoint(train.labels[:, 0])
    np.testing.assert_array_equal(valid.features, again_valid.features)
    np.testing.assert_array_equal(valid.objects, split.objects[valid.labels[:, 0]])
    assert split_validation(split, 0.25, seed=4)[1].labels.tolist() != valid.labels.tolist()
    assert len(split_validation(split, 0.001)[1]) == 1 and len(split_validation(split, 0)[1]) == 0


def _tetrominoes(n):
    arrays = tetro.generate(n, seed=5)
    return tetro._split("tetrominoes/mini", arrays)


def _shapes(n):
    rng = np.random.RandomState(1)
    drawn = [shapes_module.draw_image(rng, 20, 3) for _ in range(n)]
    return Split("shapes/mini", np.stack([p.reshape(-1) for p, _ in drawn]).astype(np.float32),
                 np.stack([o.reshape(-1) for _, o in drawn]), (20, 20), True, labels=np.arange(n)[:, None])


def _continuous(n):  # TextureMNIST-like: float32 values that are no multiple of 1/255
    features = RNG.random((n, 28 * 28)).astype(np.float32)
    return Split("texture/mini", features, RNG.integers(0, 3, (n, 784)).astype(np.uint8), (28, 28), False)


@pytest.mark.parametrize("make", [_shapes, _tetrominoes, _continuous])
def test_to_npz_round_trip_bit_identical(tmp_path, make):
    split = make(6)
    path = to_npz(split, tmp_path / "out.data")  # any suffix is kept as given
    assert path.exists()
    with np.load(path) as npz:
        assert npz["images"].dtype == (np.float32 if make is _continuous else np.uint8)
        assert npz["images"].shape == (6, *split.image_shape)
    back = from_path(path.rename(tmp_path / "out.npz"), data_dir=tmp_path)
    assert back.features.tobytes() == split.features.tobytes() and back.features.dtype == np.float32
    np.testing.assert_array_equal(back.objects, split.objects)
    assert back.binary == split.binary and back.image_shape == tuple(split.image_shape)
    if split.labels is not None:
        np.testing.assert_array_equal(back.labels, split.labels)
