"""tagger.metrics against scikit-learn, example by example."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_mutual_info_score, adjusted_rand_score

from tagger import metrics
from tagger.metrics import ami, ari, contingency, mean_ami

TOL = 1e-6


def sk_scores(objects, masks) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's AMI (average_method='max') and ARI over scored elements, per example."""
    objects, masks = (x.cpu().numpy() if torch.is_tensor(x) else np.asarray(x)
                      for x in (objects, masks))
    pred = masks.argmax(1)  # (B, D), first maximum on ties
    amis, aris = [], []
    for o, p in zip(objects, pred):
        t, q = o[o > 0], p[o > 0]
        amis.append(adjusted_mutual_info_score(t, q, average_method="max"))
        aris.append(adjusted_rand_score(t, q))
    return np.array(amis), np.array(aris)


def assert_matches_sklearn(objects, masks) -> None:
    ref_ami, ref_ari = sk_scores(objects, masks)
    got_ami, got_ari = ami(objects, masks), ari(objects, masks)
    assert got_ami.dtype == got_ari.dtype == torch.float64
    assert got_ami.shape == got_ari.shape == (len(ref_ami),)
    np.testing.assert_allclose(got_ami.cpu().numpy(), ref_ami, rtol=0, atol=TOL)
    np.testing.assert_allclose(got_ari.cpu().numpy(), ref_ari, rtol=0, atol=TOL)


def noisy_masks(rng, objects: np.ndarray, k: int, acc: np.ndarray) -> np.ndarray:
    """``(B, K, D)`` masks: argmax follows a random map of ids to groups w.p. ``acc``."""
    b, d = objects.shape
    mapping = rng.integers(0, k, (b, int(objects.max()) + 1))  # (B, ids), may merge ids
    target = np.take_along_axis(mapping, objects.astype(np.int64), 1)  # (B, D)
    masks = rng.random((b, k, d)).astype(np.float32)
    hit = rng.random((b, d)) < acc[:, None]
    boost = np.where(hit, 2.0, 0.0).astype(np.float32)  # (B, D)
    np.put_along_axis(masks, target[:, None], boost[:, None], 1)
    return masks


def shapes_like(rng, b: int = 150, d: int = 400, k: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Up to 3 objects, many elements unscored (0)."""
    n_obj = rng.integers(1, 4, (b, 1))  # (B, 1)
    objects = rng.integers(1, 4, (b, d)) * (rng.random((b, d)) < rng.uniform(0.05, 0.6, (b, 1)))
    objects = np.where(objects > n_obj, 0, objects).astype(np.uint8)  # (B, D)
    return objects, noisy_masks(rng, objects, k, rng.uniform(0, 1, b))


def texture_mnist_like(rng, b: int = 40, d: int = 784, k: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """A ~600-element background object (id 1), two digits, a few unscored overlaps."""
    u = rng.random((b, d))
    objects = np.select([u < 0.02, u < 0.14, u < 0.24], [0, 2, 3], 1).astype(np.uint8)
    return objects, noisy_masks(rng, objects, k, rng.uniform(0, 1, b))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_shapes_like_matches_sklearn(seed):
    assert_matches_sklearn(*shapes_like(np.random.default_rng(seed)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_texture_mnist_like_matches_sklearn(seed):
    assert_matches_sklearn(*texture_mnist_like(np.random.default_rng(seed)))


def test_many_ids_and_groups_int64_objects():
    rng = np.random.default_rng(7)
    objects = rng.integers(0, 9, (60, 300)).astype(np.int64)
    objects[::3] = np.minimum(objects[::3], rng.integers(0, 3))  # some with few ids
    assert_matches_sklearn(objects, rng.random((60, 7, 300)))


def _edge_cases() -> tuple[np.ndarray, np.ndarray, list[float | None]]:
    """Batch of hand-made examples (D=6, K=3) and their AMI where it is known."""
    rows = [  # (objects, predicted group per element, expected AMI or None)
        ([0, 0, 0, 0, 0, 0], [0, 1, 2, 0, 1, 2], 1.0),  # nothing scored
        ([1, 1, 1, 1, 0, 0], [2, 2, 2, 2, 0, 1], 1.0),  # one object, one group
        ([2, 2, 2, 2, 2, 2], [0, 1, 2, 0, 1, 2], 0.0),  # one object, several groups
        ([1, 2, 3, 1, 2, 3], [1, 1, 1, 1, 1, 1], 0.0),  # several objects, one group
        ([1, 1, 2, 2, 3, 3], [0, 0, 1, 1, 2, 2], 1.0),  # perfect
        ([1, 1, 2, 2, 3, 3], [2, 2, 0, 0, 1, 1], 1.0),  # perfect up to permutation
        ([0, 1, 1, 0, 2, 2], [1, 2, 2, 0, 0, 0], 1.0),  # perfect on the scored elements
        ([0, 0, 3, 0, 0, 0], [0, 0, 1, 0, 0, 0], 1.0),  # a single scored element
        ([1, 2, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0], 0.0),  # two elements, one group
        ([1, 2, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0], 1.0),  # two elements, two groups
        ([1, 1, 2, 2, 0, 0], [0, 1, 0, 1, 0, 0], None),  # independent: AMI < 0
        ([1, 1, 1, 2, 2, 2], [0, 0, 1, 1, 2, 2], None),
        ([5, 5, 1, 1, 1, 0], [0, 1, 0, 1, 2, 2], None),  # sparse ids
    ]
    objects = np.array([r[0] for r in rows], np.uint8)
    masks = np.eye(3, dtype=np.float32)[np.array([r[1] for r in rows])].transpose(0, 2, 1)
    return objects, masks, [r[2] for r in rows]


def test_edge_cases_match_sklearn_and_known_values():
    objects, masks, expected = _edge_cases()
    assert_matches_sklearn(objects, masks)
    got = ami(objects, masks).numpy()
    for i, value in enumerate(expected):
        if value is not None:
            assert got[i] == pytest.approx(value, abs=TOL), i
    assert got[10] < 0


def test_edge_cases_mixed_into_random_batch():
    """Examples do not leak into each other, whatever the batch holds."""
    edge_obj, edge_masks, _ = _edge_cases()
    rng = np.random.default_rng(11)
    obj, masks = shapes_like(rng, b=30, d=6, k=3)
    order = rng.permutation(30 + len(edge_obj))
    objects = np.concatenate([obj, edge_obj])[order]
    masks = np.concatenate([masks, edge_masks])[order]
    assert_matches_sklearn(objects, masks)
    full = ami(objects, masks)
    torch.testing.assert_close(ami(objects[:5], masks[:5]), full[:5], rtol=0, atol=1e-12)


def test_perfect_grouping_up_to_permutation_is_one():
    rng = np.random.default_rng(5)
    objects = rng.integers(0, 5, (50, 200)).astype(np.uint8)
    objects[:, :4] = [1, 2, 3, 4]  # every id present
    perm = np.stack([rng.permutation(6) for _ in range(50)])  # (B, 6) id -> group
    groups = np.take_along_axis(perm, objects.astype(np.int64), 1)  # (B, D)
    masks = np.eye(6, dtype=np.float32)[groups].transpose(0, 2, 1)  # (B, 6, D) one-hot
    masks *= rng.uniform(0.5, 1, (50, 1, 200)).astype(np.float32)
    torch.testing.assert_close(ami(objects, masks), torch.ones(50, dtype=torch.float64))
    torch.testing.assert_close(ari(objects, masks), torch.ones(50, dtype=torch.float64))


def test_numpy_and_tensor_inputs_agree():
    objects, masks = shapes_like(np.random.default_rng(3), b=20)
    want = ami(objects, masks)
    for obj in (torch.from_numpy(objects), torch.from_numpy(objects.astype(np.int64)),
                objects.astype(np.int32)):
        torch.testing.assert_close(ami(obj, torch.from_numpy(masks)), want, rtol=0, atol=0)
    torch.testing.assert_close(ami(objects, masks.astype(np.float64)), want, rtol=0, atol=0)


def test_ties_in_masks_take_first_maximum():
    rng = np.random.default_rng(9)
    objects = rng.integers(0, 4, (40, 100)).astype(np.uint8)
    masks = rng.integers(0, 2, (40, 4, 100)).astype(np.float32)  # many ties
    masks[:5] = 0.25  # all tied: everything in group 0
    assert_matches_sklearn(objects, masks)
    tied = ami(objects[:5], masks[:5]).numpy()
    np.testing.assert_array_equal(tied, [1.0 if len(np.unique(o[o > 0])) <= 1 else 0.0
                                         for o in objects[:5]])


def test_small_chunks_give_the_same_result(monkeypatch):
    objects, masks = texture_mnist_like(np.random.default_rng(4), b=25)
    want_ami, want_ari = ami(objects, masks), ari(objects, masks)
    monkeypatch.setattr(metrics, "_CHUNK_ELEMENTS", 300)
    monkeypatch.setattr(metrics, "_BLOCK_ELEMENTS", 1)
    got_ami, got_ari = ami(objects, masks), ari(objects, masks)
    torch.testing.assert_close(got_ami, want_ami, rtol=0, atol=1e-12)
    torch.testing.assert_close(got_ari, want_ari, rtol=0, atol=1e-12)
    ref_ami, ref_ari = sk_scores(objects, masks)  # and both still agree with scikit-learn
    np.testing.assert_allclose(got_ami.numpy(), ref_ami, atol=TOL)
    np.testing.assert_allclose(got_ari.numpy(), ref_ari, atol=TOL)


def test_large_example_matches_sklearn():
    """Thousands of scored elements: the log-factorial sums stay accurate."""
    rng = np.random.default_rng(12)
    objects = rng.choice(4, (2, 5000), p=[0.05, 0.7, 0.15, 0.1]).astype(np.int64)
    assert_matches_sklearn(objects, noisy_masks(rng, objects, 5, np.array([0.3, 0.9])))


def test_empty_inputs_and_shapes():
    assert ami(np.zeros((0, 8), np.uint8), np.zeros((0, 3, 8), np.float32)).shape == (0,)
    assert ari(np.zeros((0, 8), np.uint8), np.zeros((0, 3, 8), np.float32)).shape == (0,)
    np.testing.assert_array_equal(ami(np.zeros((2, 0), np.uint8), np.zeros((2, 3, 0))), [1, 1])
    counts = contingency(np.array([[0, 1, 2, 2]]), np.eye(2)[[[0, 1, 1, 0]]].transpose(0, 2, 1))
    np.testing.assert_array_equal(counts.numpy(), [[[0, 1], [1, 1]]])


def test_inputs_not_modified_and_bad_inputs_rejected():
    objects = torch.randint(0, 3, (4, 10))
    before = objects.clone()
    ami(objects, torch.rand(4, 3, 10))
    assert torch.equal(objects, before)
    with pytest.raises(ValueError):
        ami(objects, torch.rand(4, 10))
    with pytest.raises(ValueError):
        ami(objects[:, :9], torch.rand(4, 3, 10))
    with pytest.raises(ValueError):
        ami(objects.float(), torch.rand(4, 3, 10))
    with pytest.raises(ValueError):
        ami(objects - 1, torch.rand(4, 3, 10))


def test_mean_ami():
    objects, masks = shapes_like(np.random.default_rng(8), b=25)
    want = float(ami(objects, masks).mean())
    assert mean_ami(objects, masks, batch_size=7) == pytest.approx(want)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    objects, masks = texture_mnist_like(np.random.default_rng(6), b=30)
    obj_t, masks_t = torch.from_numpy(objects), torch.from_numpy(masks)
    got = ami(obj_t.cuda(), masks_t.cuda())
    assert got.device.type == "cuda"
    torch.testing.assert_close(got.cpu(), ami(obj_t, masks_t), rtol=0, atol=1e-12)
    torch.testing.assert_close(ari(objects, masks_t.cuda()).cpu(), ari(obj_t, masks_t))
    assert_matches_sklearn(obj_t.cuda(), masks_t.cuda())
    tied = torch.from_numpy(np.random.default_rng(6).integers(0, 2, masks.shape)).float()
    assert_matches_sklearn(obj_t.cuda(), tied.cuda())  # first maximum on ties there too
