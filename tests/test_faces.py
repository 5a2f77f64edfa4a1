"""The face record (``maskwatch.faces``): construction, selection, concatenation, crops, labels."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from maskwatch.faces import LABELS, MASK, NO_MASK, NO_TRACK, UNKNOWN, Faces, grow_boxes, labels_from_prob
from maskwatch.labels import INCORRECT


def test_faces_len_empty_indexing_and_read_only():
    faces = Faces(np.array([[0, 0, 10, 10], [5, 5, 30, 40]]), np.array([0.9, 0.6]))
    assert len(faces) == 2
    assert len(Faces.empty()) == 0
    strong = faces[faces.confidence > 0.7]
    assert isinstance(strong, Faces) and strong.xyxy.tolist() == [[0, 0, 10, 10]]
    assert faces[1].xyxy.tolist() == [[5, 5, 30, 40]]
    assert faces.size_wh.tolist() == [[10, 10], [25, 35]]
    assert Faces([[2, 7, 12, 27]], [0.9]).size_wh.tolist() == [[10, 20]]  # width from x, height from y
    with pytest.raises(ValueError):
        faces.xyxy[0, 0] = 3
    with pytest.raises(ValueError, match="2 boxes but 1"):
        Faces(np.zeros((2, 4)), np.zeros(1))


def test_crops_with_and_without_margin_are_clipped_copies():
    frame = np.arange(100 * 200 * 3, dtype=np.uint32).reshape(100, 200, 3).astype(np.uint8)
    faces = Faces(np.array([[10, 20, 50, 60], [180, 90, 200, 100]]), np.array([0.9, 0.8]))
    plain = faces.crops(frame)
    assert [c.shape for c in plain] == [(40, 40, 3), (10, 20, 3)]
    assert np.array_equal(plain[0], frame[20:60, 10:50])
    plain[0][:] = 0
    assert frame[20:60, 10:50].any()  # a copy, not a view
    grown = faces.crops(frame, margin=0.25)
    assert [c.shape for c in grown] == [(60, 60, 3), (12, 25, 3)]  # second box clipped at the right/bottom
    assert grow_boxes(faces.xyxy, 0.25, (200, 100)).tolist() == [[0, 10, 60, 70], [175, 88, 200, 100]]


def test_two_fields_leave_the_rest_unset():
    faces = Faces([[0, 0, 10, 10]], [0.9])
    assert np.isnan(faces.prob_mask).all() and faces.label.tolist() == [UNKNOWN]
    assert faces.track_id.tolist() == [NO_TRACK]
    assert faces.label_names == ["unknown"] and faces.xyxy.dtype == np.int32 and faces.prob_mask.dtype == np.float32
    with pytest.raises(dataclasses.FrozenInstanceError):
        faces.xyxy = np.zeros((0, 4))  # type: ignore[misc]
    with pytest.raises(ValueError, match="1 boxes but 2 values of track_id"):
        Faces([[0, 0, 10, 10]], [0.9], track_id=[1, 2])


def test_labels_from_prob_is_the_one_threshold():
    assert labels_from_prob(np.array([0.0, 0.49, 0.5, 1.0, np.nan]), 0.5).tolist() == [
        NO_MASK, NO_MASK, MASK, MASK, UNKNOWN]
    assert labels_from_prob(np.array([0.6]), 0.7).tolist() == [NO_MASK]
    assert [LABELS[c] for c in (NO_MASK, MASK, UNKNOWN)] == ["no_mask", "mask", "unknown"]


def test_with_labels_selection_and_concat_keep_every_column():
    faces = Faces([[0, 0, 10, 10], [5, 5, 30, 40]], [0.9, 0.6], track_id=[3, 4])
    faces = faces.with_labels(np.array([0.8, 0.1]), 0.5)
    assert faces.label_names == ["mask", "no_mask"] and faces.prob_mask.tolist() == pytest.approx([0.8, 0.1])
    second = faces[np.array([False, True])]
    assert (second.track_id.tolist(), second.label_names) == ([4], ["no_mask"])
    both = Faces.concat([second, faces[0]])
    assert both.xyxy.tolist() == [[5, 5, 30, 40], [0, 0, 10, 10]] and both.track_id.tolist() == [4, 3]
    assert both.label_names == ["no_mask", "mask"] and len(Faces.concat([])) == 0
    assert faces.with_track_ids([7, 8]).track_id.tolist() == [7, 8] and faces.track_id.tolist() == [3, 4]


def test_label_prob_is_the_probability_of_each_face_s_own_label():
    faces = Faces([[0, 0, 10, 10]] * 3, [0.9] * 3).with_labels(np.array([0.8, 0.3, 0.6]), 0.5)
    faces = faces.with_unknown(np.array([False, False, True]))
    assert faces.label_names == ["mask", "no_mask", "unknown"]
    assert faces.label_prob[:2].tolist() == pytest.approx([0.8, 0.7]) and np.isnan(faces.label_prob[2])
    assert faces.prob_mask.tolist() == pytest.approx([0.8, 0.3, 0.6])  # with_unknown keeps P(mask)
    assert Faces.empty().label_prob.shape == (0,)


def test_with_unknown_returns_a_copy():
    faces = Faces([[0, 0, 10, 10]] * 2, [0.9] * 2).with_labels(np.array([0.8, 0.2]), 0.5)
    unsure = faces.with_unknown([True, False])
    assert unsure.label_names == ["unknown", "no_mask"] and faces.label_names == ["mask", "no_mask"]


def test_three_class_scores_label_the_faces_and_keep_their_probabilities():
    scores = [[0.1, 0.7, 0.2], [0.2, 0.1, 0.7], [0.6, 0.3, 0.1], [np.nan] * 3]  # no_mask, mask, incorrect columns
    faces = Faces([[0, 0, 10, 10]] * 4, [0.9] * 4, track_id=[1, 2, 3, 4]).with_labels(scores, 0.5)
    assert faces.label.tolist() == [MASK, INCORRECT, NO_MASK, UNKNOWN]
    assert faces.probs.shape == (4, 3) and faces.probs[1].tolist() == pytest.approx([0.2, 0.1, 0.7])
    assert faces.prob_mask[:3].tolist() == pytest.approx([0.7, 0.1, 0.3])  # the mask column
    assert faces.label_prob[:3].tolist() == pytest.approx([0.7, 0.7, 0.6]) and np.isnan(faces.label_prob[3])
    picked = Faces.concat([faces[2], faces[np.array([True, False, False, False])]])
    assert picked.probs.tolist() == pytest.approx(np.array([[0.6, 0.3, 0.1], [0.1, 0.7, 0.2]]), abs=1e-6)
    assert picked.track_id.tolist() == [3, 1]


def test_a_negative_crop_margin_is_refused():
    faces = Faces([[0, 0, 10, 10]], [0.9])
    with pytest.raises(ValueError, match="margin must be >= 0"):
        faces.crops(np.zeros((20, 20, 3), np.uint8), margin=-0.1)


def test_grow_boxes_takes_one_box_as_a_flat_row():
    assert grow_boxes(np.array([10, 20, 50, 60]), 0.25, (200, 100)).tolist() == [[0, 10, 60, 70]]  # alert snapshots


def test_repr_names_the_faces():
    faces = Faces([[0, 0, 10, 10]], [0.92345], track_id=[3]).with_labels(np.array([0.8]), 0.5)
    text = repr(faces)
    assert text.startswith("Faces(n=1, xyxy=[[0, 0, 10, 10]], confidence=[0.923], ")  # float32 shown rounded
    assert text.endswith("labels=['mask'], track_id=[3])")
