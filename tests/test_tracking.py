"""Detection stride with optical-flow box tracking (``detector.tracking``): pure geometry and a moving texture."""

from __future__ import annotations

import numpy as np
import pytest

from detector.tracking import FaceTracker, box_iou, grid_points, move_box, with_tracking
from face_detector import Faces

SIZE_WH = (320, 240)
SIDE_PX = 60
STEP_PX = 2


def test_box_iou():
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]])
    np.testing.assert_allclose(box_iou(a, b), [[1.0, 50 / 150, 0.0]])
    assert box_iou(np.zeros((0, 4)), b).shape == (0, 3)


def test_grid_points_inside_box():
    pts = grid_points(np.array([[10, 20, 110, 220]]))
    assert pts.shape == (1, 25, 2)
    assert pts[0, :, 0].min() == pytest.approx(30) and pts[0, :, 0].max() == pytest.approx(90)
    assert pts[0, :, 1].min() == pytest.approx(60) and pts[0, :, 1].max() == pytest.approx(180)


def test_move_box_translation_and_scale():
    box = np.array([10.0, 20.0, 50.0, 60.0])
    pts = grid_points(box)[0]
    np.testing.assert_allclose(move_box(box, pts, pts + np.array([5.0, -3.0])), [15, 17, 55, 57], atol=1e-4)
    center = np.array([30.0, 40.0])
    np.testing.assert_allclose(move_box(box, pts, center + 2 * (pts - center)), [-10, 0, 70, 80], atol=1e-3)


def _texture() -> np.ndarray:
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (SIDE_PX // 4, SIDE_PX // 4, 3), dtype=np.uint8)
    return np.kron(small, np.ones((4, 4, 1), np.uint8))  # blocky: good optical-flow texture


def _frame(i: int, texture: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A textured square moving right and down by STEP_PX per frame, and its true box."""
    frame = np.full((SIZE_WH[1], SIZE_WH[0], 3), 120, np.uint8)
    x, y = 40 + STEP_PX * i, 50 + STEP_PX * i // 2
    frame[y : y + SIDE_PX, x : x + SIDE_PX] = texture
    return frame, np.array([x, y, x + SIDE_PX, y + SIDE_PX])


class FakeModels:
    """The true box as the 'detector', a fixed P(mask) as the 'classifier'; both count their calls."""

    def __init__(self) -> None:
        self.truth = np.zeros(4)
        self.detect_calls = 0
        self.classify_calls = 0

    def detect(self, frame_bgr: np.ndarray) -> Faces:
        self.detect_calls += 1
        return Faces(self.truth[None], [0.9])

    def classify(self, crops):
        self.classify_calls += 1
        return np.full(len(crops), 0.8, np.float32)


def test_tracker_runs_models_every_nth_frame_and_follows_motion():
    models, texture = FakeModels(), _texture()
    tracker = FaceTracker(models.detect, models.classify, detect_every=3)
    for i in range(10):
        frame, models.truth = _frame(i, texture)
        faces = tracker.detect(frame)
        probs = tracker.classify(faces.crops(frame))
        assert len(faces) == 1 and probs.tolist() == pytest.approx([0.8])
        np.testing.assert_allclose(faces.xyxy[0], models.truth, atol=2)  # tracked boxes follow the square
    assert models.detect_calls == models.classify_calls == 4  # frames 0, 3, 6, 9
    q = tracker.quality()
    assert (q["keyframes"], q["tracked_frames"], q["classifier_calls"]) == (4, 6, 4)
    assert q["drift_mean_iou"] > 0.9 and q["drift_unmatched"] == 0


def test_tracker_drops_faces_that_leave_the_frame():
    models = FakeModels()
    tracker = FaceTracker(models.detect, models.classify, detect_every=5)
    frame = np.full((SIZE_WH[1], SIZE_WH[0], 3), 120, np.uint8)
    models.truth = np.array([100, 100, 160, 160])
    tracker.classify(tracker.detect(frame).crops(frame))
    # as if a second face had been detected and then moved out of the frame on the right
    tracker._faces = Faces([[100, 100, 160, 160], [330, 0, 340, 10]], [0.9, 0.9])
    tracker._probs = np.array([0.8, 0.1], np.float32)
    faces = tracker.detect(frame)
    assert faces.xyxy.tolist() == [[100, 100, 160, 160]]
    assert tracker.classify(faces.crops(frame)).tolist() == pytest.approx([0.8])
    assert models.classify_calls == 1  # the remembered P(mask) of the face that stayed


def test_every_frame_is_the_plain_pair():
    models = FakeModels()
    assert with_tracking(models.detect, models.classify, 1) == (models.detect, models.classify)
    with pytest.raises(ValueError, match="detect_every"):
        FaceTracker(models.detect, models.classify, detect_every=0)
