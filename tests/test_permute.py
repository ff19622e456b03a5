"""--permute-pixels: one fixed pixel permutation for every image, undone exactly for figures."""
import numpy as np
import pytest
import torch

from tagger import datasets, preset


@pytest.mark.parametrize("name", ["shapes", "tetrominoes"])
def test_every_image_is_shuffled_by_the_same_permutation(name, data_dir):
    plain = datasets.load(name, "valid", data_dir)
    shuffled = datasets.load(name, "valid", data_dir, permute_pixels=7)
    h, w = plain.image_shape[:2]
    order = datasets.pixel_order(h * w, 7)
    assert sorted(order) == list(range(h * w)) and not np.array_equal(order, np.arange(h * w))
    per_pixel = plain.features.reshape(len(plain), h * w, -1)  # channels stay with their pixel
    assert np.array_equal(shuffled.features, per_pixel[:, order].reshape(len(plain), -1))
    assert np.array_equal(shuffled.objects, plain.objects[:, order])
    assert np.array_equal(datasets.unpermute(shuffled.features, 7, plain.image_shape), plain.features)
    assert np.array_equal(datasets.unpermute(shuffled.objects, 7, plain.image_shape), plain.objects)
    assert not np.array_equal(datasets.load(name, "valid", data_dir, permute_pixels=8).features, shuffled.features)


def test_unpermute_undoes_masks_of_any_leading_shape_on_torch_tensors():
    order = torch.as_tensor(datasets.pixel_order(400, 3))
    masks = torch.rand(3, 2, 4, 400)  # (T, B, K, P)
    assert torch.equal(datasets.unpermute(masks[..., order], 3, (20, 20)), masks)


def test_the_training_data_of_a_permuted_run_is_permuted(data_dir, tmp_path):
    from tagger.training.trainer import load_splits

    config = preset("quick")
    config.train.permute_pixels = 4
    train, valid = load_splits(config)
    for permuted, name in ((train, "train"), (valid, "valid")):
        plain = datasets.load("shapes", name, data_dir)
        assert np.array_equal(permuted.features, plain.features[:, datasets.pixel_order(400, 4)])
