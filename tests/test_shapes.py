"""Shapes: bit-for-bit equality with the original generator, and the recipe's invariants."""
import hashlib

import numpy as np
import pytest

from tagger.datasets import DataError, shapes
from tagger.datasets.shapes import SHAPES, draw_image, generate

# sha256 of features (float32) and objects (uint8) of each split, as produced by the
# original CuriousAI/tagger data/shapes.py (its generation loop run under Python 3 /
# numpy 2.4 on 2026-11-28, seed 265076); our generator must reproduce them exactly.
ORIGINAL = {
    "train": ("90450edd97841ee1cdd9110ab46d47d077ae73571992369e6af944ce3fa0d542",
              "99232bc906d578b68e96c6ef020cd07fb32fe28ab1095853fd6088e5da19eaf8"),
    "valid": ("b94f26eb69d53a669e88eba8f89c9f5a4766418a3ea425ac97d93950272e5771",
              "f1d48c2fcec333b406254ffc8edb233f25aa890478ba8ba4c6a0a0c71815d949"),
    "test": ("d5af3897a8d9bc96fcc1afa4f6420df829d8903930eaa9a83b4cfa96761c75c8",
             "2a1678834170dad7ce4db14a96ed95db1c4e0a817c99c4a0e5a89be841050c2e"),
    "single": ("e6af5988dab1febd3e2d8622a75f3bdfb134b928878f738d913ec164d02fd4fb",
               "b509c7ed9d2b42f044458080bdc67c981f94dea7bab11270d4b685f2184b1a77"),
}


@pytest.mark.parametrize("split", list(ORIGINAL))
def test_splits_equal_original_bit_for_bit(data_dir, split):
    data = shapes(split)
    assert hashlib.sha256(data.features.tobytes()).hexdigest() == ORIGINAL[split][0]
    assert hashlib.sha256(data.objects.tobytes()).hexdigest() == ORIGINAL[split][1]


def test_split_sizes_and_types(data_dir):
    sizes = {"train": 50_000, "valid": 10_000, "test": 10_000, "single": 10_000}
    for split, count in sizes.items():
        data = shapes(split)
        assert data.features.shape == (count, 400) and data.features.dtype == np.float32
        assert data.objects.shape == (count, 400) and data.objects.dtype == np.uint8
        assert set(np.unique(data.features)) <= {0.0, 1.0}
        assert data.image_shape == (20, 20) and data.binary


def test_objects_are_on_pixels_and_ids_in_range(data_dir):
    data = shapes("valid")
    assert data.objects.max() == 3 and shapes("single").objects.max() == 1
    # every scored element is an on-pixel
    assert np.all(data.features[data.objects > 0] == 1.0)
    # on average ~28 % of pixels are on (the paper's "data mean" 0.26 is a round figure)
    assert 0.27 < data.features.mean() < 0.30


def test_overlaps_are_on_but_unscored():
    rng = np.random.RandomState(0)
    seen_overlap = False
    for _ in range(200):
        pixels, objects = draw_image(rng, 20, 3)
        # recount coverage by redrawing is not possible; instead: unscored on-pixels exist only with overlap
        unscored_on = pixels & (objects == 0)
        seen_overlap |= bool(unscored_on.any())
        assert not (objects[~pixels] > 0).any()
    assert seen_overlap


def test_templates():
    square, up, down = SHAPES
    assert square.shape == (7, 7) and square.sum() == 40 and not square[2:5, 2:5].any()
    assert up.shape == (7, 12) and np.array_equal(down, up[::-1])


def test_other_sizes_and_counts(tmp_path):
    data = shapes("test", n_objects=4, size=24, data_dir=tmp_path)
    assert data.features.shape == (10_000, 576) and data.objects.max() == 4
    cached = shapes("test", n_objects=4, size=24, data_dir=tmp_path)  # from the cache this time
    assert np.array_equal(cached.features, data.features) and np.array_equal(cached.objects, data.objects)
    assert ((data.objects > 0) <= (data.features > 0)).all()  # every scored pixel is on
    with pytest.raises(DataError):
        generate(n_objects=3, size=8)
    with pytest.raises(DataError):
        shapes("bogus", data_dir=tmp_path)


def test_cache_regenerates_when_corrupted(tmp_path):
    first = shapes("test", n_objects=2, size=12, data_dir=tmp_path)
    cache = next(tmp_path.glob("shapes_2obj_12px*.npz"))
    cache.write_bytes(cache.read_bytes()[:1000])  # truncate
    again = shapes("test", n_objects=2, size=12, data_dir=tmp_path)
    assert np.array_equal(first.features, again.features)


def test_single_split_is_always_the_papers(data_dir):
    """``single`` follows the 3-object splits in the paper's stream; asking for 1-object images
    must not silently redraw it after 1-object splits."""
    paper = shapes("single")
    other = shapes("single", n_objects=1)
    assert other.name == "shapes/single"
    assert np.array_equal(other.features, paper.features) and np.array_equal(other.objects, paper.objects)
    assert paper.objects.max() == 1
