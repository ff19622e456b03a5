"""tagger.overlap (mBO, mIoU): hand-made cases with known answers and a brute-force reference.

Speed (not tested here, the CPUs are shared): 10,000 examples of 35x35 pixels, K = 6, five ids,
take about 3 s each for ``mbo`` and ``miou`` on one CPU core, like ``metrics.ari`` on the same
input (the argmax and counting dominate; the per-example Hungarian step is a fraction of it).
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from tagger.overlap import iou_table, mbo, miou


def hard(assign, k: int) -> torch.Tensor:
    """``(1, K, P)`` one-hot masks from a per-pixel group list."""
    return torch.nn.functional.one_hot(torch.tensor(assign), k).T[None].float()


def scores(objects, assign, k, **kw) -> tuple[float, float]:
    objects = torch.tensor([objects])
    masks = hard(assign, k)
    return float(mbo(objects, masks, **kw)[0]), float(miou(objects, masks, **kw)[0])


def test_perfect_and_swapped_labels_score_one():
    objects = [1, 1, 2, 2, 0, 0]
    assert scores(objects, [0, 0, 1, 1, 2, 2], 3) == (1.0, 1.0)
    assert scores(objects, [2, 2, 0, 0, 1, 1], 3) == (1.0, 1.0)  # groups renamed
    assert scores(objects, [1, 1, 0, 0, 0, 1], 2) == (1.0, 1.0)  # id-0 pixels go anywhere


def test_one_object_split_in_half():
    # IoU of the object with either group: 2 / 4
    assert scores([1, 1, 1, 1], [0, 0, 1, 1], 2) == (0.5, 0.5)
    # with a second object found exactly: (0.5 + 1) / 2 for both
    assert scores([1, 1, 1, 1, 2, 2], [0, 0, 1, 1, 2, 2], 3) == (0.75, 0.75)


def test_more_objects_than_groups():
    # g0 = object 1 (IoU 1); g1 = objects 2 and 3 (IoU 2/4 with each)
    best, matched = scores([1, 1, 2, 2, 3, 3], [0, 0, 1, 1, 1, 1], 2)
    assert best == pytest.approx((1 + 0.5 + 0.5) / 3)  # mBO: g1 is the best overlap of 2 and 3
    assert matched == pytest.approx((1 + 0.5 + 0) / 3)  # mIoU: only one of them gets g1


def test_one_group_covering_two_objects():
    # K = 2 but g1 is empty: both objects have IoU 2/4 with g0, 0 with g1
    best, matched = scores([1, 1, 2, 2], [0, 0, 0, 0], 2)
    assert best == 0.5  # both count their best overlap, g0
    assert matched == 0.25  # one-to-one: (0.5 + 0) / 2


def test_unscored_pixels_ignored_unless_counted():
    objects, assign = [1, 1, 0, 0, 0], [0, 0, 0, 0, 0]
    assert scores(objects, assign, 2) == (1.0, 1.0)
    # OCLF's ignore_background variant: the group's 3 background pixels join the union, 2 / 5
    assert scores(objects, assign, 2, count_unscored=True) == (0.4, 0.4)


def test_no_object_is_nan_and_absent_ids_are_skipped():
    objects = torch.tensor([[0, 0, 0, 0], [3, 3, 1, 1], [0, 0, 0, 0]])  # id 2 absent, ids 1 and 3 found
    masks = torch.cat([hard([0, 1, 0, 1], 2), hard([1, 1, 0, 0], 2), hard([0, 0, 0, 0], 2)])
    for score in (mbo(objects, masks), miou(objects, masks), mbo(objects, masks, count_unscored=True)):
        assert score.dtype == torch.float64 and score.shape == (3,)
        assert math.isnan(score[0]) and math.isnan(score[2]) and score[1] == 1.0
    iou, present = iou_table(objects, masks)
    assert iou.shape == (3, 3, 2) and present.tolist() == [[False] * 3, [True, False, True], [False] * 3]
    empty = torch.zeros(2, 5, dtype=torch.long)  # nothing scored anywhere: R = 0
    assert torch.isnan(mbo(empty, torch.rand(2, 3, 5))).all() and torch.isnan(miou(empty, torch.rand(2, 3, 5))).all()


def test_soft_masks_numpy_inputs_and_ties():
    objects = np.array([[1, 1, 2, 2]], dtype=np.uint8)
    soft = np.array([[[0.6, 0.5, 0.2, 0.3], [0.4, 0.5, 0.8, 0.7]]], dtype=np.float32)  # tie at pixel 1: group 0
    hard_masks = hard([0, 0, 1, 1], 2)
    for f in (mbo, miou):
        assert float(f(objects, soft)[0]) == 1.0
        assert torch.equal(f(objects, soft), f(torch.from_numpy(objects), hard_masks))


def brute_force(objects: np.ndarray, masks: np.ndarray, count_unscored: bool) -> tuple[float, float]:
    """One example by definition: boolean masks, every one-to-one matching tried."""
    pred = masks.argmax(0)  # (P,)
    keep = np.ones_like(objects, bool) if count_unscored else objects > 0
    ids = [i for i in np.unique(objects) if i > 0]
    if not ids:
        return math.nan, math.nan
    k = masks.shape[0]

    def iou(i, g):
        t, p = objects == i, (pred == g) & keep
        union = (t | p).sum()
        return (t & p).sum() / union if union else 0.0

    table = np.array([[iou(i, g) for g in range(k)] for i in ids])  # (objects, K)
    best = table.max(1).mean()
    n = len(ids)
    if n <= k:  # each object a distinct group
        total = max(sum(table[r, g] for r, g in enumerate(gs)) for gs in itertools.permutations(range(k), n))
    else:  # each group a distinct object; the rest count 0
        total = max(sum(table[r, g] for g, r in enumerate(rs)) for rs in itertools.permutations(range(n), k))
    return best, total / n


@pytest.mark.parametrize("count_unscored", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_brute_force(seed, count_unscored):
    rng = np.random.default_rng(seed)
    b, p = 120, 14
    for k in (1, 2, 3, 5):
        n_ids = rng.integers(0, 6, (b, 1))  # up to 5 objects, sometimes none
        objects = rng.integers(0, 6, (b, p))
        objects = np.where(objects > n_ids, 0, objects)  # (B, P)
        if count_unscored:  # soft masks with a grouping that follows the objects, or not
            masks = rng.random((b, k, p)).astype(np.float32)
        else:
            masks = rng.random((b, k, p)) + 2.0 * (rng.integers(0, k, (b, 1, p)) == np.arange(k)[:, None])
        got_best = mbo(objects, masks, count_unscored=count_unscored).numpy()
        got_matched = miou(objects, masks, count_unscored=count_unscored).numpy()
        want = np.array([brute_force(o, m, count_unscored) for o, m in zip(objects, masks)])  # (B, 2)
        np.testing.assert_allclose(got_best, want[:, 0], rtol=0, atol=1e-6)
        np.testing.assert_allclose(got_matched, want[:, 1], rtol=0, atol=1e-6)
        assert np.isnan(got_best).sum() == (objects.max(1) == 0).sum()


def test_inputs_not_modified():
    objects = torch.randint(0, 4, (5, 20))
    masks = torch.rand(5, 3, 20)
    before = objects.clone(), masks.clone()
    mbo(objects, masks, count_unscored=True), miou(objects, masks)
    assert torch.equal(objects, before[0]) and torch.equal(masks, before[1])


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    objects, masks = torch.randint(0, 5, (50, 100)), torch.rand(50, 4, 100)
    for f in (mbo, miou):
        for count in (False, True):
            on_gpu = f(objects.cuda(), masks.cuda(), count_unscored=count)
            assert on_gpu.device.type == "cuda"
            torch.testing.assert_close(on_gpu.cpu(), f(objects, masks, count_unscored=count), equal_nan=True)
