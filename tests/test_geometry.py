"""maskwatch.geometry: IoU, overlap shares, NMS and greedy matching on hand-made boxes."""

from __future__ import annotations

import numpy as np
import pytest

from maskwatch.geometry import clip_boxes, greedy_match, iou_matrix, match_by_iou, match_by_score, nms, overlap_shares


def test_iou_matrix_values_and_empty_boxes():
    a = np.array([[0, 0, 10, 10], [5, 5, 15, 15]])
    b = np.array([[0, 0, 10, 10], [10, 10, 20, 20], [0, 0, 0, 0]])
    m = iou_matrix(a, b)
    assert m.shape == (2, 3)
    assert m[0].tolist() == pytest.approx([1.0, 0.0, 0.0])
    assert m[1].tolist() == pytest.approx([25 / 175, 25 / 175, 0.0])
    assert iou_matrix(np.zeros((0, 4)), b).shape == (0, 3)


def test_overlap_shares_both_ways():
    inside, around = overlap_shares([[0, 0, 10, 10]], [[0, 0, 20, 20], [5, 0, 15, 10]])
    assert inside[0].tolist() == pytest.approx([1.0, 0.5])
    assert around[0].tolist() == pytest.approx([0.25, 0.5])


def test_nms_keeps_the_strongest_of_overlapping_boxes_strongest_first():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [0, 0, 10, 10]])
    scores = np.array([0.7, 0.9, -0.5, 0.2])  # negative scores count too
    assert nms(boxes, scores, 0.4).tolist() == [1, 2]
    assert nms(boxes, scores, 0.99).tolist() == [1, 0, 2]  # box 3 is box 0 again (IoU 1)
    assert nms(boxes, scores, 1.0).tolist() == [1, 0, 3, 2]
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.4).tolist() == []


def test_greedy_match_strongest_first_each_target_once():
    ious = np.array([[0.9, 0.0], [0.8, 0.5], [0.45, 0.0]])
    assert greedy_match(ious, np.array([0.5, 0.9, 0.1]), 0.4).tolist() == [-1, 0, -1]  # 1 took target 0 first
    assert greedy_match(ious, np.array([0.9, 0.5, 0.1]), 0.4).tolist() == [0, 1, -1]
    assert greedy_match(ious, np.array([0.9, 0.5, 0.1]), 0.6).tolist() == [0, -1, -1]
    allowed = np.array([False, True])
    assert greedy_match(ious, np.array([0.9, 0.5, 0.1]), 0.4, allowed).tolist() == [-1, 1, -1]
    assert greedy_match(np.zeros((2, 0)), np.array([0.9, 0.5]), 0.4).tolist() == [-1, -1]


def test_clip_boxes_keeps_boxes_in_the_frame():
    clipped = clip_boxes(np.array([[-5, 2, 30, 50], [3, -1, 8, 9]]), (20, 40))
    assert clipped.dtype == np.float64 and clipped.tolist() == [[0, 2, 20, 40], [3, 0, 8, 9]]


def test_match_by_score_pairs_best_first_one_to_one_and_every_row_that_can_be_paired_is():
    # row 1 scores column 0 (taken by row 0) above its own column 1: it still gets column 1
    score = np.array([[0.9, 0.8], [0.85, 0.7]])
    assert match_by_score(score, 0.3).tolist() == [0, 1]
    assert match_by_score(score, 0.7).tolist() == [0, 1]  # at least min_score
    assert match_by_score(score, 0.75).tolist() == [0, -1]
    assert match_by_score(score.tolist(), 0.3).tolist() == [0, 1]
    assert score.tolist() == [[0.9, 0.8], [0.85, 0.7]]  # the caller's scores are not changed
    assert match_by_score(np.array([[0.2, 0.9], [0.5, 0.1], [0.4, 0.3]]), 0.3).tolist() == [1, 0, -1]
    assert match_by_score(np.array([[0.2, 0.9, 0.4]]), 0.3).tolist() == [1]  # more columns than rows
    assert match_by_score(np.zeros((2, 0)), 0.3).tolist() == [-1, -1]
    assert match_by_score(np.zeros((0, 2)), 0.3).tolist() == []


def test_match_by_iou_pairs_side_by_side_faces_with_their_own_boxes():
    # detection 1 overlaps box 0 (taken by detection 0) more than its own box 1, which it overlaps by IoU 0.67
    detected = [[0, 0, 10, 10], [1, 0, 11, 10]]
    boxes = [[0, 0, 10, 10], [3, 0, 13, 10]]
    assert match_by_iou(detected, boxes, 0.3).tolist() == [0, 1]
    assert match_by_iou(detected, boxes, 0.7).tolist() == [0, -1]
    assert match_by_iou(detected[::-1], boxes, 0.3).tolist() == [1, 0]  # the same pairs, whatever the order


def test_intersections_of_boxes_of_other_widths_and_heights_off_the_diagonal():
    a, b = [[10, 20, 30, 60]], [[20, 30, 50, 40]]  # 20 x 40 and 30 x 10: they share 10 x 10
    assert iou_matrix(a, b)[0, 0] == pytest.approx(100 / (800 + 300 - 100))
    inside, around = overlap_shares(a, b)
    assert (inside[0, 0], around[0, 0]) == pytest.approx((100 / 800, 100 / 300))
    a, b = [[0, 55, 100, 100]], [[10, 50, 80, 60]]  # 100 x 45 and 70 x 10: they share 70 x 5
    assert iou_matrix(a, b)[0, 0] == pytest.approx(350 / (4500 + 700 - 350))
    assert overlap_shares(a, b)[1][0, 0] == pytest.approx(0.5)


def test_sub_pixel_and_empty_boxes_have_their_true_areas():
    assert iou_matrix([[0, 0, 0.5, 0.5]], [[0, 0, 1, 1]])[0, 0] == pytest.approx(0.25)  # float boxes (the tracker's)
    assert iou_matrix([[0, 0, 1, 1]], [[0, 0, 0.5, 0.5]])[0, 0] == pytest.approx(0.25)
    assert iou_matrix([[5, 5, 5, 5]], [[5, 5, 5, 5], [0, 0, 10, 10]]).tolist() == [[0.0, 0.0]]  # no NaN
    inside, around = overlap_shares([[0, 0, 0.5, 0.5], [3, 3, 3, 3]], [[0, 0, 1, 1], [3, 3, 3, 3]])
    assert inside.ravel().tolist() == pytest.approx([1.0, 0.0, 0.0, 0.0])
    assert around.ravel().tolist() == pytest.approx([0.25, 0.0, 0.0, 0.0])


def test_nms_measures_overlap_of_boxes_away_from_the_origin():
    # tall boxes side by side, far from (0, 0): no overlap, both kept; a shifted copy overlaps the first by IoU 0.67
    boxes = np.array([[100, 200, 110, 240], [112, 200, 122, 240], [102, 200, 112, 240]])
    assert nms(boxes, np.array([0.9, 0.8, 0.7]), 0.5).tolist() == [0, 1]
    assert nms(boxes, np.array([0.9, 0.8, 0.7]), 0.7).tolist() == [0, 1, 2]
    assert nms(boxes.tolist(), [0.9, 0.8, 0.7], 0.5).tolist() == [0, 1]  # plain lists too
    lower = np.array([[100, 200, 110, 240], [102, 230, 112, 270]])  # IoU 80 / 720: both kept
    assert nms(lower, np.array([0.9, 0.8]), 0.3).tolist() == [0, 1]


def test_greedy_match_takes_a_target_at_exactly_iou_min():
    assert greedy_match([[0.5, 0.2]], [1.0], 0.5).tolist() == [0]
    assert greedy_match([[0.5, 0.2]], [1.0], 0.51).tolist() == [-1]
