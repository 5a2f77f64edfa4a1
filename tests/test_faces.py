"""The face record (``maskwatch.faces``): construction, selection, concatenation, crops, labels."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from maskwatch.faces import LABELS, MASK, NO_MASK, NO_TRACK, UNKNOWN, Faces, grow_boxes, labels_from_prob


def test_faces_len_empty_indexing_and_read_only():
    faces = Faces(np.array([[0, 0, 10, 10], [5, 5, 30, 40]]), np.array([0.9, 0.6]))
    assert len(faces) == 2
    assert len(Faces.empty()) == 0
    strong = faces[faces.confidence > 0.7]
    assert isinstance(strong, Faces) and strong.xyxy.tolist() == [[0, 0, 10, 10]]
    assert faces[1].xyxy.tolist() == [[5, 5, 30, 40]]
    assert faces.size_wh.tolist() == [[10, 10], [25, 35]]
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
