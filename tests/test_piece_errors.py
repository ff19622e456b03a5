"""Fragmenting and merging of pieces (tagger.baselines.pieces), on hand-built scenes."""
import numpy as np
import pytest

from tagger.baselines.pieces import piece_errors

# ten pixels: background, a piece of four pixels, then two pieces of one colour
OBJECTS = np.array([[0, 0, 0, 1, 1, 1, 1, 2, 2, 3]])
COLORS = np.array([[0, 1, 1]])


def test_a_perfect_grouping_is_whole_and_unmerged():
    result = piece_errors(OBJECTS, np.array([[5, 5, 5, 0, 0, 0, 0, 1, 1, 2]]), COLORS, groups=6)
    assert result["purity"] == 1.0 and result["whole"] == 1.0
    assert result["merged_distinct"] == 0.0 and result["merged_same"] == 0.0
    assert (result["distinct_pairs"], result["same_pairs"], result["pieces"]) == (2, 1, 3)


def test_a_colour_clustering_merges_the_pieces_of_one_colour():
    result = piece_errors(OBJECTS, np.array([[5, 5, 5, 0, 0, 0, 0, 1, 1, 1]]), COLORS, groups=6)
    assert result["merged_same"] == 1.0 and result["merged_distinct"] == 0.0 and result["purity"] == 1.0


@pytest.mark.parametrize("stray_group, where", [(5, "background"), (1, "other_piece"), (4, "spare")])
def test_a_fragmented_piece_and_where_its_stray_pixel_goes(stray_group, where):
    assignment = np.array([[5, 5, 5, 0, 0, 0, stray_group, 1, 1, 2]])
    result = piece_errors(OBJECTS, assignment, COLORS, groups=6)
    assert result["purity"] == pytest.approx((3 / 4 + 1 + 1) / 3)
    assert result["whole"] == pytest.approx(2 / 3)
    assert result["stray_to"][where] == 1.0 and sum(result["stray_to"].values()) == pytest.approx(1.0)


def test_absent_pieces_are_not_counted():
    objects = np.array([[0, 0, 1, 1, 0, 0, 0, 0, 0, 0]])  # pieces 2 and 3 not in the scene
    result = piece_errors(objects, np.array([[1, 1, 0, 0, 1, 1, 1, 1, 1, 1]]), COLORS, groups=2)
    assert result["pieces"] == 1 and result["distinct_pairs"] == 0 and result["same_pairs"] == 0
    assert result["purity"] == 1.0


def test_reconstruction_reach_tells_whole_scene_groups_from_object_groups():
    from tagger.baselines.pieces import reconstruction_reach

    x = OBJECTS.clip(max=1).astype(float)  # (1, 10): binary, pieces on
    assignment = np.array([[0, 0, 0, 1, 1, 1, 1, 2, 2, 3]])
    whole = np.repeat(x[:, None, :], 4, axis=1)  # (1, K, D): every group draws every piece
    assert reconstruction_reach(x, OBJECTS, whole, assignment) == {"own": 0.0, "other": 0.0}
    own = np.stack([x[0] * (assignment[0] == k) for k in range(4)])[None]  # each group draws what it owns
    assert reconstruction_reach(x, OBJECTS, own, assignment) == {"own": 0.0, "other": 1.0}
    # colour: two pixels of two channels, only the first is foreground and group 0 owns it
    colour = np.array([[[0.2, 0.4, 0.2, 0.4], [1.0, 0.0, 1.0, 0.0]]])  # (1, K, P * C)
    result = reconstruction_reach(np.array([[0.2, 0.4, 0.0, 0.0]]), np.array([[1, 0]]), colour,
                                  np.array([[0, 1]]), channels=2)
    assert result == {"own": 0.0, "other": pytest.approx((0.8 + 0.4) / 2)}
