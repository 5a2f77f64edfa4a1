"""``Faces``: the boxes and scores of one frame."""

from __future__ import annotations

import numpy as np
import pytest

from face_detector.faces import Faces, grow_boxes


def test_faces_len_empty_indexing_and_read_only():
    faces = Faces(np.array([[0, 0, 10, 10], [5, 5, 30, 40]]), np.array([0.9, 0.6]))
    assert len(faces) == 2 and not faces.empty()
    assert Faces.empty().empty() and len(Faces.empty()) == 0
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
