"""Optical-flow face tracks (``detector.tracking``) and the key frames the pipeline makes with them: pure geometry
and a moving texture, fake detector and classifier."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from detector.pipeline import Pipeline
from detector.tracking import (
    DEFAULT_MAX_MISSED,
    MAX_COAST_SCALE,
    MEMORY_IOU,
    REID_MIN_SIMILARITY,
    SURE_P,
    FaceTracker,
    Track,
    appearance,
    box_side_px,
    grid_points,
    masked_median,
    move_boxes,
    similarity,
    to_gray,
    vote,
    vote_classes,
)
from maskwatch.config import load_config
from maskwatch.errors import UserError
from maskwatch.faces import MASK, NO_MASK, UNKNOWN, Faces
from maskwatch.geometry import iou_matrix, match_by_iou
from maskwatch.labels import INCORRECT

SIZE_WH = (320, 240)
SIDE_PX = 60
STEP_PX = 2


def test_iou_matrix():
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]])
    np.testing.assert_allclose(iou_matrix(a, b), [[1.0, 50 / 150, 0.0]])
    assert iou_matrix(np.zeros((0, 4)), b).shape == (0, 3)


def test_grid_points_inside_box():
    pts = grid_points(np.array([[10, 20, 110, 220]]))
    assert pts.shape == (1, 25, 2)
    assert pts[0, :, 0].min() == pytest.approx(30) and pts[0, :, 0].max() == pytest.approx(90)
    assert pts[0, :, 1].min() == pytest.approx(60) and pts[0, :, 1].max() == pytest.approx(180)


def test_move_boxes_translation_and_scale():
    box = np.array([[10.0, 20.0, 50.0, 60.0]])
    pts = grid_points(box)
    ok = np.ones(pts.shape[:2], bool)
    np.testing.assert_allclose(move_boxes(box, pts, pts + np.array([5.0, -3.0]), ok), [[15, 17, 55, 57]], atol=1e-4)
    center = np.array([30.0, 40.0])
    np.testing.assert_allclose(move_boxes(box, pts, center + 2 * (pts - center), ok), [[-10, 0, 70, 80]], atol=1e-3)


def _median_flow_one_box(box: np.ndarray, old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """MedianFlow of one box from its reliable points only, written out plainly (the reference)."""
    shift = np.median(new - old, axis=0) if len(old) else np.zeros(2)
    pairs = [(np.linalg.norm(new[i] - new[j]), np.linalg.norm(old[i] - old[j]))
             for i in range(len(old)) for j in range(i + 1, len(old))]  # fmt: skip
    ratios = [d_new / d_old for d_new, d_old in pairs if d_old > 1e-3]
    scale = float(np.median(ratios)) if ratios else 1.0
    center, half = (box[:2] + box[2:]) / 2 + shift, (box[2:] - box[:2]) / 2 * scale
    return np.concatenate([center - half, center + half])


def test_move_boxes_uses_each_box_s_reliable_points_only():
    rng = np.random.default_rng(3)
    boxes = np.array([[10, 20, 50, 60], [100, 80, 180, 200], [5, 5, 25, 30], [0, 0, 40, 40]], np.float64)
    old = grid_points(boxes).astype(np.float64)
    new = old * rng.uniform(0.8, 1.3, (4, 1, 1)) + rng.normal(0, 4, old.shape)
    reliable = rng.random(old.shape[:2]) < 0.6
    reliable[2] = False  # no reliable point: the box stays put
    reliable[3] = False
    reliable[3, 7] = True  # one reliable point: shifted by it, size kept
    got = move_boxes(boxes, old, new, reliable)
    for box, o, n, ok, row in zip(boxes, old, new, reliable, got, strict=True):
        np.testing.assert_allclose(row, _median_flow_one_box(box, o[ok], n[ok]), atol=1e-9)
    np.testing.assert_allclose(got[2], boxes[2])
    np.testing.assert_allclose(got[3, 2:] - got[3, :2], boxes[3, 2:] - boxes[3, :2])


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
        return Faces.empty() if self.truth is None else Faces(self.truth[None], [0.9])

    def classify(self, crops):
        self.classify_calls += 1
        return np.full(len(crops), 0.8, np.float32)


def test_tracker_runs_models_every_nth_frame_and_follows_motion():
    models, texture = FakeModels(), _texture()
    tracker = Pipeline(models.detect, models.classify, detect_every=3)
    for i in range(10):
        frame, models.truth = _frame(i, texture)
        faces = tracker(frame)
        probs = faces.prob_mask
        assert len(faces) == 1 and probs.tolist() == pytest.approx([0.8])
        np.testing.assert_allclose(faces.xyxy[0], models.truth, atol=2)  # tracked boxes follow the square
    assert models.detect_calls == models.classify_calls == 4  # frames 0, 3, 6, 9
    q = tracker.quality()
    assert (q["keyframes"], q["tracked_frames"], q["classifier_calls"]) == (4, 6, 4)
    assert faces.label_names == ["mask"]
    assert q["drift_mean_iou"] > 0.9 and q["drift_unmatched"] == 0


def test_tracker_drops_faces_that_leave_the_frame():
    models = FakeModels()
    tracker = Pipeline(models.detect, models.classify, detect_every=5)
    frame, _ = _frame(0, _texture())
    models.truth = np.array([40, 50, 100, 110])
    tracker(frame)
    # as if a second face had been detected and then moved out of the frame on the right
    gone = np.array([330.0, 0, 340, 10])
    tracker.tracker.tracks.append(Track(7, gone, 0.9, gone, prob_mask=0.1))
    faces = tracker(frame.copy())
    assert faces.xyxy.tolist() == [[40, 50, 100, 110]]
    assert faces.prob_mask.tolist() == pytest.approx([0.8])
    assert models.classify_calls == 1  # the remembered P(mask) of the face that stayed
    assert tracker.quality()["early_keyframes"] == 0  # leaving the frame is not losing the track


def test_a_lost_track_makes_a_key_frame_at_once():
    models = FakeModels()
    tracker = Pipeline(models.detect, models.classify, detect_every=5)
    texture = _texture()
    frames = [_frame(i, texture)[0] for i in range(3)]
    models.truth = _frame(0, texture)[1]
    for frame in frames:  # key frame, then two tracked frames
        tracker(frame)
    assert (tracker.keyframes, tracker.tracked_frames) == (1, 2)
    cut = np.ascontiguousarray(np.rot90(frames[2], 2))  # the scene cuts: the face's texture is gone from its place
    models.truth = None  # and no face is detected any more
    assert len(tracker(cut)) == 0  # not a box following the background until the 5th frame
    assert (tracker.keyframes, tracker.quality()["early_keyframes"]) == (2, 1)


def test_every_frame_runs_both_models_without_tracking():
    models = FakeModels()
    pipeline = Pipeline(models.detect, models.classify, detect_every=1)
    frame, models.truth = _frame(0, _texture())
    for _ in range(3):
        faces = pipeline(frame)
    assert pipeline.tracker is None and faces.track_id.tolist() == [-1]
    assert models.detect_calls == models.classify_calls == 3
    with pytest.raises(ValueError, match="detect_every"):
        Pipeline(models.detect, models.classify, detect_every=0)


def test_matching_tracks_is_greedy_one_to_one():
    tracked = np.array([[0, 0, 10, 10], [100, 100, 110, 110], [2, 0, 12, 10]])
    detected = np.array([[1, 0, 11, 10]])  # overlaps tracked 0 and 2 (IoU 0.82 both): only one is claimed
    assert (match_by_iou(tracked, detected, 0.3) < 0).tolist() == [False, True, True]
    assert (match_by_iou(tracked, np.zeros((0, 4)), 0.3) < 0).tolist() == [True, True, True]
    assert (match_by_iou(np.zeros((0, 4)), detected, 0.3) < 0).tolist() == []


FACE_A = [100, 60, 160, 130]
FACE_B = [200, 100, 250, 160]


class ScriptedModels:
    """Key frame k's 'detections' from a script (boxes only); the 'classifier' returns P(mask) by box x1."""

    def __init__(self, script: list[list[list[int]]]) -> None:
        self.script = script
        self.detect_calls = 0
        self.classified: list[int] = []  # crops per classifier call

    def detect(self, frame_bgr: np.ndarray) -> Faces:
        boxes = self.script[self.detect_calls]
        self.detect_calls += 1
        return Faces(np.array(boxes, np.int32).reshape(-1, 4), np.full(len(boxes), 0.9, np.float32))

    def classify(self, crops):
        self.classified.append(len(crops))
        return np.full(len(crops), 0.7, np.float32)


def _run(tracker: Pipeline, frames: int) -> list[tuple[list[list[int]], list[float]]]:
    """(boxes, P(mask)) per frame on a still textured frame (a new array per frame, as a video gives)."""
    frame = np.full((SIZE_WH[1], SIZE_WH[0], 3), 120, np.uint8)
    frame[40:200, 60:300] = np.tile(_texture(), (3, 4, 1))[:160, :240]
    out = []
    for _ in range(frames):
        faces = tracker(frame.copy())
        out.append((faces.xyxy.tolist(), np.round(faces.prob_mask.astype(float), 3).tolist()))
    return out


def test_a_missed_face_coasts_with_its_label_then_is_dropped():
    # key frames 0, 2, 4, 6: found, missed, missed, missed
    models = ScriptedModels([[FACE_A], [], [], []])
    tracker = Pipeline(models.detect, models.classify, detect_every=2, max_missed=2)
    frames = _run(tracker, 8)
    for i in range(6):  # found on key frame 0, coasted through key frames 2 and 4 (and the frames between)
        boxes, probs = frames[i]
        assert len(boxes) == 1 and probs == [0.7], i
        np.testing.assert_allclose(boxes[0], FACE_A, atol=2)
    assert frames[6] == ([], []) and frames[7] == ([], [])  # third miss in a row: dropped
    assert models.classified == [1]  # the coasted face kept its P(mask): the model ran once
    assert tracker.quality()["coasted_faces"] == 2


def test_a_matching_detection_resets_the_misses_and_new_faces_come_first():
    # key frames 0, 2, 4, 6, 8: A; nothing; A shifted + new B; B only; B only
    shifted_a = [104, 62, 164, 132]
    models = ScriptedModels([[FACE_A], [], [shifted_a, FACE_B], [FACE_B], [FACE_B]])
    tracker = Pipeline(models.detect, models.classify, detect_every=2, max_missed=1)
    frames = _run(tracker, 10)
    assert len(frames[2][0]) == 1  # A coasted (1 miss)
    assert frames[4][0] == [shifted_a, FACE_B]  # A found again (misses reset), B new
    assert frames[6][0][0] == FACE_B and len(frames[6][0]) == 2  # A missed once more: coasted, after B
    np.testing.assert_allclose(frames[6][0][1], shifted_a, atol=2)
    assert frames[8][0] == [FACE_B]  # A missed twice in a row: dropped
    assert models.classified == [1, 2, 1, 1]  # key frames 0, 4, 6, 8; coasted faces are not re-classified


def test_without_coasting_boxes_are_replaced():
    models = ScriptedModels([[FACE_A], []])
    tracker = Pipeline(models.detect, models.classify, detect_every=2, max_missed=0)
    frames = _run(tracker, 3)
    assert len(frames[1][0]) == 1 and frames[2] == ([], [])
    with pytest.raises(ValueError, match="max_missed"):
        FaceTracker(max_missed=-1)


def test_default_max_missed_is_the_config_default():
    assert load_config().tracking.max_missed == DEFAULT_MAX_MISSED


def test_a_coasted_box_whose_size_drifted_is_dropped():
    """Flow on the background can blow a box up once its face is gone; such a box is not coasted."""
    models = ScriptedModels([[FACE_A], []])
    tracker = Pipeline(models.detect, models.classify, detect_every=2, max_missed=2)
    _run(tracker, 1)
    track = tracker.tracker.tracks[0]  # as if the tracked box had grown 1.6x since its detection
    center = (track.detected_xyxy[:2] + track.detected_xyxy[2:]) / 2
    track.detected_xyxy = np.concatenate([center, center]) + (track.detected_xyxy - np.tile(center, 2)) / 1.6
    assert _run(tracker, 2) == [([FACE_A], [0.7]), ([], [])]


def test_sure_labels_are_reused_until_due_and_new_faces_are_classified_alone():
    # key frames 0, 2, 4, 6: A; A + new B; A + B; A + B. The classifier is sure (0.95) of every face
    models = ScriptedModels([[FACE_A], [FACE_A, FACE_B], [FACE_A, FACE_B], [FACE_A, FACE_B]])
    sure = []

    def classify(crops):
        sure.append(len(crops))
        return np.full(len(crops), 0.95, np.float32)

    tracker = Pipeline(models.detect, classify, detect_every=2, relabel_every=2)
    frames = _run(tracker, 8)
    # A classified at 0, reused at 2, due at 4, reused at 6; B new at 2 (alone in the batch), reused at 4, due at 6
    assert sure == [1, 1, 1, 1]
    assert all(probs == [0.95] * len(boxes) for boxes, probs in frames)
    assert tracker.quality()["labels_reused"] == 3


def test_unsure_labels_are_classified_at_every_key_frame():
    models = ScriptedModels([[FACE_A], [FACE_A], [FACE_A]])  # P(mask) 0.7: not sure
    tracker = Pipeline(models.detect, models.classify, detect_every=2, relabel_every=5)
    _run(tracker, 6)
    assert models.classified == [1, 1, 1] and tracker.quality()["labels_reused"] == 0
    with pytest.raises(ValueError, match="relabel_every"):
        FaceTracker(relabel_every=0)


def test_matched_detections_keep_their_track_id_and_new_faces_get_new_ones():
    # key frames 0, 2, 4: A; A shifted + new B; B only (A coasts)
    shifted_a = [104, 62, 164, 132]
    models = ScriptedModels([[FACE_A], [shifted_a, FACE_B], [FACE_B]])
    pipeline = Pipeline(models.detect, models.classify, detect_every=2, max_missed=1)
    frame = np.full((SIZE_WH[1], SIZE_WH[0], 3), 120, np.uint8)
    frame[40:200, 60:300] = np.tile(_texture(), (3, 4, 1))[:160, :240]
    ids = [pipeline(frame.copy()).track_id.tolist() for _ in range(5)]
    assert ids == [[0], [0], [0, 1], [0, 1], [1, 0]]


# identities and votes (issue 21): synthetic sequences, scripted detector and classifier


class Script:
    """Frame k's detections and P(mask) from lists: ``boxes[k]`` (list of boxes), ``probs[k]`` (one per box)."""

    def __init__(self, boxes: list[list[list[int]]], probs: list[list[float]] | None = None) -> None:
        self.boxes, self.probs, self.k = boxes, probs, -1

    def detect(self, frame_bgr: np.ndarray) -> Faces:
        self.k += 1
        boxes = self.boxes[self.k]
        return Faces(np.array(boxes, np.int32).reshape(-1, 4), np.full(len(boxes), 0.9, np.float32))

    def classify(self, crops):
        if self.probs is None:
            return np.full(len(crops), 0.8, np.float32)
        return np.full(len(crops), self.probs[self.k][0], np.float32)


def _voting(script: Script, **kw) -> Pipeline:
    params = {"detect_every": 1, "track": True, "relabel_every": 1, "memory_keyframes": 8, "vote_keyframes": 5,
              "vote_min_keyframes": 2, "vote_hysteresis": 0.1} | kw
    return Pipeline(script.detect, script.classify, **params)


def _frames(pipeline: Pipeline, n: int) -> list[Faces]:
    frame = np.full((SIZE_WH[1], SIZE_WH[0], 3), 120, np.uint8)
    frame[20:220, 20:300] = np.tile(_texture(), (4, 5, 1))[:200, :280]
    return [pipeline(frame.copy()) for _ in range(n)]


def test_crossing_faces_keep_their_ids():
    # A walks right, B walks left on a slightly lower line; they pass each other (boxes overlap up to IoU ~0.3)
    a = [[40 + 12 * k, 60, 100 + 12 * k, 120] for k in range(16)]
    b = [[240 - 12 * k, 90, 300 - 12 * k, 150] for k in range(16)]
    faces = _frames(_voting(Script([[p, q] for p, q in zip(a, b, strict=True)])), 16)
    ids = [f.track_id.tolist() for f in faces]
    assert all(i == ids[0] for i in ids) and len(set(ids[0])) == 2
    assert max(iou_matrix(np.array(a), np.array(b)).diagonal()) > 0.25  # they really overlapped


def test_a_face_missed_for_a_while_comes_back_with_its_id_and_label():
    box = [100, 60, 160, 130]
    script = [[box]] * 3 + [[]] * 4 + [[box]] * 2  # found, missed for 4 key frames (> max_missed 2), found again
    faces = _frames(_voting(Script(script), max_missed=2), 9)
    assert [len(f) for f in faces] == [1, 1, 1, 1, 1, 0, 0, 1, 1]  # coasted 2 key frames, then unseen
    assert faces[-1].track_id.tolist() == faces[0].track_id.tolist()
    assert faces[7].label_names == ["mask"]  # its votes came back with it
    before = _frames(_voting(Script(script), max_missed=2, memory_keyframes=0), 9)
    assert before[-1].track_id.tolist() != before[0].track_id.tolist()  # without memory: a new person


def test_a_face_coming_back_elsewhere_or_too_late_is_a_new_person():
    box, far = [100, 60, 160, 130], [220, 150, 280, 220]
    faces = _frames(_voting(Script([[box], [], [far]])), 3)
    assert faces[2].track_id.tolist() != faces[0].track_id.tolist()
    late = _frames(_voting(Script([[box]] + [[]] * 6 + [[box]]), max_missed=0, memory_keyframes=3), 8)
    assert late[7].track_id.tolist() != late[0].track_id.tolist()


def test_one_wrong_frame_does_not_flip_the_voted_label_and_thin_evidence_is_unknown():
    box = [100, 60, 160, 130]
    probs = [[0.9], [0.85], [0.9], [0.1], [0.9], [0.88]]  # one bad classification at key frame 3
    faces = _frames(_voting(Script([[box]] * 6, probs)), 6)
    assert [f.label_names[0] for f in faces] == ["unknown", "mask", "mask", "mask", "mask", "mask"]
    assert faces[3].prob_mask[0] == pytest.approx(np.mean([0.9, 0.85, 0.9, 0.1]))
    before = _frames(_voting(Script([[box]] * 6, probs), vote_keyframes=1, vote_min_keyframes=1,
                             vote_hysteresis=0.0), 6)  # fmt: skip
    assert [f.label_names[0] for f in before] == ["mask", "mask", "mask", "no_mask", "mask", "mask"]


def test_vote_hysteresis_and_a_real_change_of_label():
    kw = {"threshold": 0.5, "min_votes": 2, "hysteresis": 0.1}
    assert vote([0.9], UNKNOWN, **kw) == UNKNOWN
    assert vote([0.45, 0.5], MASK, **kw) == MASK  # mean 0.475: within the hysteresis, stays mask
    assert vote([0.45, 0.5], UNKNOWN, **kw) == NO_MASK
    assert vote([0.3, 0.35], MASK, **kw) == NO_MASK  # clearly below: changes
    assert vote([0.55, 0.58], NO_MASK, **kw) == NO_MASK and vote([0.65, 0.7], NO_MASK, **kw) == MASK
    box = [100, 60, 160, 130]
    probs = [[0.9]] * 3 + [[0.1]] * 7  # the person really took the mask off: the label follows after a few votes
    labels = [f.label_names[0] for f in _frames(_voting(Script([[box]] * 10, probs)), 10)]
    assert labels[:3] == ["unknown", "mask", "mask"] and labels[-1] == "no_mask"
    assert labels.index("no_mask") == 6 and labels[6:] == ["no_mask"] * 4  # 3 votes of 0.1 to change


def test_video_pipeline_from_config_tracks_even_with_every_frame_detected():
    models = FakeModels()
    cfg = load_config(overrides=["tracking.detect_every=1"])
    pipeline = Pipeline.from_config(cfg, video=True, models=(models.detect, models.classify))
    frame, models.truth = _frame(0, _texture())
    ids = [pipeline(frame).track_id.tolist() for _ in range(3)]
    assert ids == [[0], [0], [0]]


def test_a_face_covered_while_walking_is_found_again_further_on():
    # walks right 8 px per frame; covered (not detected) on frames 4-9; found again where it walked to
    walk = [[40 + 8 * k, 60, 100 + 8 * k, 120] for k in range(14)]
    script = [[b] if not 4 <= k <= 9 else [] for k, b in enumerate(walk)]
    faces = _frames(_voting(Script(script), max_missed=0), 14)
    assert faces[12].track_id.tolist() == faces[0].track_id.tolist()
    assert iou_matrix(np.array(walk[3]), np.array(walk[10]))[0, 0] < MEMORY_IOU  # not where it was last seen


class ThreeClassScript(Script):
    """A three-class 'classifier' (columns in another order than ``CLASSES``, as a card may have them): frame k's
    probabilities from ``rows[k]`` (no_mask, mask, incorrect)."""

    class_names = ("incorrect", "no_mask", "mask")

    def __init__(self, boxes: list[list[list[int]]], rows: list[tuple[float, float, float]]) -> None:
        super().__init__(boxes)
        self.rows = rows

    def probabilities(self, crops):
        no_mask, mask, incorrect = self.rows[self.k]
        return np.tile([incorrect, no_mask, mask], (len(crops), 1)).astype(np.float32)

    def __call__(self, crops):  # P(mask), as ``MaskClassifier`` gives it
        return self.probabilities(crops)[:, self.class_names.index("mask")]

    @property
    def classify(self):  # the classifier ``_voting`` passes is the whole object (probabilities, class_names)
        return self


def test_three_class_votes_ride_out_one_wrong_frame_and_follow_a_real_change():
    box = [100, 60, 160, 130]
    wrong, masked, bare = (0.1, 0.1, 0.8), (0.05, 0.9, 0.05), (0.8, 0.1, 0.1)
    rows = [wrong] * 3 + [masked] + [wrong] * 2 + [bare] * 6  # one bad frame, then the mask comes off
    faces = _frames(_voting(ThreeClassScript([[box]] * 12, rows)), 12)
    labels = [f.label_names[0] for f in faces]
    assert labels[:6] == ["unknown", "incorrect", "incorrect", "incorrect", "incorrect", "incorrect"]
    # 3 bare votes of the last 5: no_mask leads by 0.14, within 2 x hysteresis; 4 of 5: it leads by 0.42, changes
    assert labels[-1] == "no_mask" and labels.index("no_mask") == 9
    np.testing.assert_allclose(faces[3].probs[0], np.mean([wrong] * 3 + [masked], axis=0), atol=1e-6)
    assert faces[3].prob_mask[0] == pytest.approx(faces[3].probs[0, MASK])  # P(mask) is the mask column
    before = _frames(_voting(ThreeClassScript([[box]] * 12, rows), vote_keyframes=1, vote_min_keyframes=1,
                             vote_hysteresis=0.0), 12)  # fmt: skip
    assert [f.label_names[0] for f in before][3] == "mask"  # without votes the bad frame flips the box


def test_vote_on_class_probabilities_keeps_a_label_within_twice_the_hysteresis():
    kw = {"threshold": 0.5, "min_votes": 2, "hysteresis": 0.1}
    assert vote([(0.1, 0.1, 0.8)], UNKNOWN, **kw) == UNKNOWN
    assert vote([(0.5, 0.1, 0.4), (0.5, 0.1, 0.4)], INCORRECT, **kw) == INCORRECT  # behind by 0.1 <= 0.2: stays
    assert vote([(0.6, 0.1, 0.3), (0.6, 0.1, 0.3)], INCORRECT, **kw) == NO_MASK  # behind by 0.3: changes
    assert vote([(0.6, 0.1, 0.3), (np.nan,) * 3, (0.6, 0.1, 0.3)], UNKNOWN, **kw) == NO_MASK  # NaN votes ignored
    # two classes at threshold 0.5: the same decisions as the P(mask) rule
    for p in (0.35, 0.42, 0.45, 0.58, 0.65):
        for previous in (MASK, NO_MASK, UNKNOWN):
            assert vote([(1 - p, p, 0.0)] * 2, previous, **kw) == vote([p] * 2, previous, **kw)


def test_an_image_pipeline_with_a_three_class_model_labels_by_the_most_probable_class():
    script = ThreeClassScript([[[0, 0, 40, 40], [50, 0, 90, 40]]], [(0.1, 0.2, 0.7)])
    faces = Pipeline(script.detect, script.classify, threshold=0.5)(np.zeros((48, 96, 3), np.uint8))
    assert faces.label_names == ["incorrect", "incorrect"] and faces.probs.shape == (2, 3)
    np.testing.assert_allclose(faces.probs, [[0.1, 0.2, 0.7]] * 2, atol=1e-6)
    assert faces.prob_mask.tolist() == pytest.approx([0.2, 0.2])


def test_a_classifier_with_other_classes_is_refused():
    script = ThreeClassScript([[]], [(0.1, 0.2, 0.7)])
    script.class_names = ("incorrect", "no_mask", "mask", "hat")
    with pytest.raises(UserError, match="hat"):
        Pipeline(script.detect, script.classify)


# re-identification by look: faces of different colours on a scripted detector


def _colour_face(bgr: tuple[int, int, int], side_px: int = SIDE_PX) -> np.ndarray:
    """A textured face patch of one colour (the texture's brightness times ``bgr``)."""
    blocks = -(-side_px // 4)
    texture = np.kron(np.random.default_rng(1).uniform(0.6, 1.0, (blocks, blocks, 1)), np.ones((4, 4, 1)))
    return (texture * np.array(bgr, np.float64)).astype(np.uint8)


RED, BLUE, GREEN = (40, 60, 220), (220, 90, 40), (60, 200, 60)


def _scene_frames(script: list[list[tuple[list[int], tuple[int, int, int]]]]) -> tuple[list[np.ndarray], Script]:
    """Frames with the scripted faces painted in (box, colour), and the scripted detector that finds them."""
    frames = []
    for faces in script:
        frame = np.full((SIZE_WH[1], SIZE_WH[0], 3), 120, np.uint8)
        for (x1, y1, x2, y2), bgr in faces:
            frame[y1:y2, x1:x2] = _colour_face(bgr, max(x2 - x1, y2 - y1))[: y2 - y1, : x2 - x1]
        frames.append(frame)
    return frames, Script([[box for box, _ in faces] for faces in script])


def _ids(script: list, **kw) -> list[list[int]]:
    frames, detections = _scene_frames(script)
    pipeline = _voting(detections, max_missed=0, memory_keyframes=2, **kw)
    return [pipeline(frame).track_id.tolist() for frame in frames]


def test_appearance_tells_colours_apart_and_survives_size_and_position():
    frame = np.full((SIZE_WH[1], SIZE_WH[0], 3), 120, np.uint8)
    frame[10:70, 10:70], frame[10:70, 100:160] = _colour_face(RED), _colour_face(BLUE)
    frame[100:180, 200:280] = _colour_face(RED, 80)
    looks = appearance(frame, np.array([[10, 10, 70, 70], [100, 10, 160, 70], [200, 100, 280, 180], [5, 5, 5, 9]]))
    assert looks.shape == (4, 128) and looks[:3].sum(axis=1) == pytest.approx([1, 1, 1]) and not looks[3].any()
    sim = similarity(looks[:3], looks[:3])
    assert sim[0, 2] >= REID_MIN_SIMILARITY > sim[0, 1]  # the same red face, bigger and elsewhere; not the blue one
    assert not appearance(frame[..., 0], np.array([[10, 10, 70, 70]])).any()  # grayscale: no look


def test_a_person_who_leaves_and_comes_back_elsewhere_keeps_their_id():
    red_left, red_right, blue = [20, 40, 80, 100], [220, 120, 280, 180], [120, 40, 180, 100]
    # red seen 3 frames, away 6 key frames (> memory_keyframes 2), back on the other side; blue stays all along
    script = ([[(red_left, RED), (blue, BLUE)]] * 3 + [[(blue, BLUE)]] * 6
              + [[(red_right, RED), (blue, BLUE)]] * 2)  # fmt: skip
    ids = _ids(script, reid_keyframes=8)
    assert ids[0] == [0, 1] and ids[-1] == [0, 1]
    assert _ids(script, reid_keyframes=0)[-1] == [2, 1]  # by position only: a new person
    assert _ids(script, reid_keyframes=5)[-1] == [2, 1]  # away longer than reid_keyframes: a new person


def test_someone_else_arriving_where_a_person_left_is_a_new_person():
    spot, blue = [20, 40, 80, 100], [120, 40, 180, 100]
    script = [[(spot, RED), (blue, BLUE)]] * 3 + [[(blue, BLUE)]] * 4 + [[(spot, GREEN), (blue, BLUE)]] * 2
    assert _ids(script, reid_keyframes=8)[-1] == [2, 1]


def test_a_face_covered_while_crossing_keeps_its_id_when_it_comes_out_far_from_where_it_went_in():
    # red walks right behind blue (not detected while covered), comes out far on and faster than before
    script = [[([20 + 10 * k, 60, 80 + 10 * k, 120], RED), ([150, 50, 220, 130], BLUE)] for k in range(4)]
    script += [[([150, 50, 220, 130], BLUE)]] * 4
    script += [[([260, 60, 320, 120], RED), ([150, 50, 220, 130], BLUE)]] * 2
    ids = _ids(script, reid_keyframes=8)
    assert ids[-1] == ids[0] == [0, 1]


def test_a_covered_face_whose_box_coasted_on_the_cover_is_recognised_when_it_comes_out():
    # red walks into blue's area and is covered (the detector still finds it once), its box coasts on blue's texture
    # for max_missed key frames, then red comes out far to the right: the live, unclaimed track takes it back
    blue = [120, 40, 240, 140]
    script = [[([10 + 10 * k, 60, 70 + 10 * k, 120], RED), (blue, BLUE)] for k in range(13)]
    script += [[(blue, BLUE)]] * 2 + [[([250, 60, 310, 120], RED), (blue, BLUE)]] * 3
    frames, detections = _scene_frames(script)
    pipeline = _voting(detections, max_missed=2, reid_keyframes=8)
    ids = [pipeline(frame).track_id.tolist() for frame in frames]
    assert ids[14] == [1, 0] and ids[-1] == [0, 1]  # coasted while covered, then recognised
    assert pipeline.tracker.quality()["coasted_faces"] == 2 and pipeline.tracker.quality()["ids_recognised"] == 1


def test_every_frame_detection_reuses_a_track_s_sure_p_mask_like_key_frames_do():
    """detect_every 1 (every frame a key frame): a moving face is classified for its first vote_min_keyframes
    frames, then again only every relabel_every frames; its label stays the classifier's."""
    models, texture = FakeModels(), _texture()
    sure: list[int] = []

    def classify(crops):
        sure.append(len(crops))
        return np.full(len(crops), 0.95, np.float32)

    cfg = load_config(overrides=["tracking.detect_every=1", "tracking.relabel_every=3"])
    pipeline = Pipeline.from_config(cfg, video=True, models=(models.detect, classify), vote_min_keyframes=2)
    labels = []
    for i in range(12):
        frame, models.truth = _frame(i, texture)
        labels.append(pipeline(frame).label.tolist())
    assert models.detect_calls == 12
    # classified at frames 0, 1 (votes), then every 3rd frame: 4, 7, 10; reused at 2, 3, 5, 6, 8, 9, 11
    assert len(sure) == 5 and pipeline.quality()["labels_reused"] == 7
    assert labels[0] == [UNKNOWN] and labels[1:] == [[MASK]] * 11


def test_update_uses_the_looks_it_is_given():
    # the live worker hands the detections' looks from their own frame: those, not the frame's, re-identify
    spot, blue = [20, 40, 80, 100], [120, 40, 180, 100]
    script = [[(spot, RED), (blue, BLUE)]] * 3 + [[(blue, BLUE)]] * 4 + [[(spot, GREEN), (blue, BLUE)]] * 2
    frames, _ = _scene_frames(script)
    red_look = appearance(frames[0], np.array([spot]))
    for given, green_id in ((False, 2), (True, 0)):  # green is a new person, unless it is handed red's look
        tracker = FaceTracker(max_missed=0, memory_keyframes=2, reid_keyframes=8)
        for frame, faces in zip(frames, script, strict=True):
            detections = Faces(np.array([box for box, _ in faces]), np.full(len(faces), 0.9, np.float32))
            looks = appearance(frame, detections.xyxy)
            if given and len(faces) == 2 and faces[0][1] == GREEN:
                looks[0] = red_look[0]
            ids = tracker.update(frame, detections, looks).track_id.tolist()
        assert ids == [green_id, 1]


def test_to_gray_of_grey_bgr_and_bgra_frames():
    rng = np.random.default_rng(4)
    bgr = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    assert to_gray(grey) is grey
    np.testing.assert_array_equal(to_gray(bgr), grey)
    bgra = np.dstack([bgr, np.full((20, 30), 7, np.uint8)])
    np.testing.assert_array_equal(to_gray(bgra), grey)  # the alpha channel is not a colour


def test_masked_median_of_few_values_even_and_odd_counts_and_empty_rows():
    values = np.array([[1.0, 3.0], [5.0, 7.0], [2.0, 4.0]])
    mask = np.array([[True, True], [True, False], [False, False]])
    assert masked_median(values, mask, -1.0).tolist() == [2.0, 5.0, -1.0]  # mean of the middle two; default
    xy = np.array([[[0.0, 10.0], [2.0, 30.0], [9.0, 20.0]]])
    assert masked_median(xy, np.array([[True, True, True]]), 0.0).tolist() == [[2.0, 20.0]]  # per coordinate


def test_move_boxes_of_a_point_sized_or_tiny_box_and_one_reliable_point():
    every = np.ones((1, 3), bool)
    old = np.full((1, 3, 2), 10.0)  # a point-sized box: every grid point at the same place, no pair measures a scale
    moved = move_boxes([[10.0, 10.0, 10.0, 10.0]], old, old + np.array([2.0, 1.0]), every)
    np.testing.assert_allclose(moved, [[12, 11, 12, 11]])
    tiny = np.array([[[0.0, 0.0], [0.5, 0.0], [1.0, 0.0]]])  # points half a pixel apart, spreading to double
    moved = move_boxes([[0.0, -1.0, 1.0, 1.0]], tiny, 2 * tiny, every)
    np.testing.assert_allclose(moved, [[0.0, -2.0, 2.0, 2.0]])  # twice the size, shifted by the median 0.5
    one = np.array([[True, False, False]])  # one reliable point: shifted by it, size kept
    moved = move_boxes([[0.0, 0.0, 4.0, 2.0]], tiny, tiny + np.array([[[3.0, 1.0], [9, 9], [9, 9]]]), one)
    np.testing.assert_allclose(moved, [[3.0, 1.0, 7.0, 3.0]])


def test_box_side_px_of_several_boxes_empty_and_inverted_ones():
    boxes = [[0, 0, 10, 40], [2, 7, 12, 47], [5, 5, 5, 9], [10, 10, 4, 4], [10, 10, 4, 20], [10, 10, 20, 4]]
    assert box_side_px(boxes).tolist() == [20.0, 20.0, 0.0, 0.0, 0.0, 0.0]


def test_vote_ignores_nan_votes_and_decides_at_the_edges():
    kw = {"threshold": 0.5, "min_votes": 2, "hysteresis": 0.25}
    assert vote([np.nan, 0.9], UNKNOWN, **kw) == UNKNOWN  # one real vote of the two needed
    assert vote([(0.1, np.nan, 0.1), (0.1, 0.8, 0.1)], UNKNOWN, **kw) == UNKNOWN  # a vote with any NaN is none
    assert vote([], UNKNOWN, threshold=0.5, min_votes=0, hysteresis=0.0) == UNKNOWN
    assert vote([0.5, 0.5], UNKNOWN, **kw) == MASK  # at the threshold: mask, as labels_from_prob
    assert vote([0.25, 0.25], MASK, **kw) == MASK  # at threshold - hysteresis: mask stays
    assert vote([0.75, 0.75], NO_MASK, **kw) == MASK  # at threshold + hysteresis: no_mask changes
    assert vote_classes(np.array([0.25, 0.5, 0.25]), NO_MASK, 0.125) == NO_MASK  # led by exactly 2 x hysteresis
    assert vote_classes(np.array([0.25, 0.5, 0.25]), UNKNOWN, 0.125) == MASK


def test_track_velocity_is_half_the_new_estimate_half_the_old():
    track = Track(1, np.array([0.0, 0, 10, 10]), 0.9, np.array([0.0, 0, 10, 10]), seen_frame=2, velocity_xy=(1.0, 0.0))
    assert track.velocity_to(np.array([6.0, 4, 16, 14]), 4) == (2.0, 1.0)  # centre moved (6, 4) in 2 frames
    assert track.velocity_to(np.array([6.0, 4, 16, 14]), 2) == (1.0, 0.0)  # same frame: kept
    np.testing.assert_allclose(track.predicted_xyxy(5), [3, 0, 13, 10])


def _track(prob_mask: float = float("nan"), votes: tuple = (), side_px: float = 10.0) -> Track:
    return Track(1, np.array([0.0, 0, side_px, side_px]), 0.9, np.array([0.0, 0, 10, 10]), prob_mask=prob_mask,
                 votes=votes)  # fmt: skip


def test_a_sure_label_binary_and_of_three_classes():
    assert _track(SURE_P).sure() and _track(1 - SURE_P).sure() and _track(0.99).sure() and _track(0.01).sure()
    assert not _track(0.89).sure() and not _track(0.5).sure() and not _track(0.11).sure()
    unsure, sure = (0.5, 0.4, 0.1), (0.03, SURE_P, 0.07)
    assert _track(votes=(unsure, unsure, sure)).sure()  # the last vote decides
    assert not _track(votes=(sure, sure, unsure)).sure()
    assert not _track(votes=((0.85, 0.1, 0.05),)).sure()


def test_a_steady_box_is_within_max_coast_scale_of_its_detection_inclusive():
    assert _track(side_px=10 * MAX_COAST_SCALE).steady() and _track(side_px=10 / MAX_COAST_SCALE).steady()
    assert not _track(side_px=15.1).steady() and not _track(side_px=6.6).steady() and _track(side_px=10).steady()
    one_px = Track(1, np.array([0.0, 0, 1, 1]), 0.9, np.array([0.0, 0, 1, 1]))
    assert one_px.steady()
    shrunk = Track(1, np.array([0.0, 0, 10, 10]), 0.9, np.array([0.0, 0, 15, 15]))  # exactly 1 / MAX_COAST_SCALE
    assert shrunk.steady()


def test_a_face_beside_another_is_matched_to_its_own_track_and_classified_again():
    # the right face moved left: it overlaps the left face's track (IoU 0.82) more than its own (0.74)
    frame = np.full((240, 320, 3), 120, np.uint8)
    tracker = FaceTracker(relabel_every=5)
    first = tracker.update(frame, Faces([[100, 100, 140, 140], [110, 100, 150, 140]], [0.9, 0.8]))
    tracker.set_prob_mask(first.track_id, [0.95, 0.05])
    second = tracker.update(frame, Faces([[100, 100, 140, 140], [104, 100, 144, 140]], [0.9, 0.8]))
    assert second.track_id.tolist() == [0, 1] and tracker.revived == 0
    assert np.isnan(second.prob_mask).all() and tracker.labels_reused == 0  # overlapping faces: no label reused


# sure labels of covered faces: a masked face covered by an unmasked one crossing in front


class ColourScript(Script):
    """Scripted boxes; P(mask) by colour: 0.99 for a mostly blue crop (the masked face), 0.01 for a mostly red one."""

    def classify(self, crops):
        return np.array([0.99 if c[..., 0].mean() > c[..., 2].mean() else 0.01 for c in crops], np.float32)


MASKED = [130, 100, 190, 160]


def _crossing(face_y: int, frames: int = 45, step_px: int = 5) -> tuple[list[np.ndarray], ColourScript]:
    """A masked (blue) face stands at ``MASKED``; an unmasked (red) person walks left ``step_px`` per frame in front
    of it, their face box at height ``face_y`` and their hair above it covering the masked face. Like the detector in
    the walk, the scripted one finds both faces on every frame, the covered one too (its crop is mostly the hair)."""
    images, boxes = [], []
    for k in range(frames):
        x = 260 - step_px * k
        frame = np.full((SIZE_WH[1], SIZE_WH[0], 3), 120, np.uint8)
        frame[100:160, 130:190] = _colour_face(BLUE)
        x1, x2 = max(x, 0), min(x + 60, SIZE_WH[0])
        frame[110:face_y + 60, x1:x2] = _colour_face(RED, face_y - 50)[: face_y - 50, x1 - x:x2 - x]
        images.append(frame)
        boxes.append([MASKED, [x1, face_y, x2, face_y + 60]])
    return images, ColourScript(boxes)


@pytest.mark.parametrize(("face_y", "key_frames"), [(150, 4), (160, 5)])
def test_a_masked_face_covered_by_a_crossing_face_is_mask_again_within_a_few_key_frames(face_y, key_frames):
    """Every frame a key frame, the product's relabel_every (2) and votes: while covered, the masked face's box is
    classified as the crossing face (no_mask); once its mask shows again it is labelled mask by the 4th key frame (4
    fresh votes of the last 5 undo a vote filled with no_mask; before: the 7th, half the key frames reusing a sure
    label). Face boxes overlapping (face_y 150), the cover lasts 9 key frames, more than memory_keyframes (8): the
    votes taken alone are forgotten at its last (a shorter cover: the next test). Face boxes apart (face_y 160: the
    hair covers, no box overlaps), nothing tells the tracker that the face was covered: the key frame it comes out
    reuses the covered face's label once (the 5th)."""
    images, script = _crossing(face_y)
    pipeline = _voting(script, relabel_every=2)
    labels, shows_mask = [], []
    for frame in images:
        faces = pipeline(frame)
        labels.append(faces.label_names[faces.track_id.tolist().index(0)])
        shows_mask.append(script.classify(Faces(np.array([MASKED]), np.ones(1, np.float32)).crops(frame))[0] > 0.5)
    covered = shows_mask.index(False)
    back = covered + shows_mask[covered:].index(True)
    assert "no_mask" in labels[covered:back]  # covered: its vote filled with the crossing face's no_mask
    assert labels[back + key_frames - 1:] == ["mask"] * (len(labels) - back - key_frames + 1), (back, labels[back:])
    assert labels[back + key_frames - 2] == "no_mask"


def test_a_masked_face_covered_by_a_crossing_face_for_a_few_key_frames_stays_mask():
    """The same crossing, the walker faster (6 px per frame): covered for 8 key frames while the face boxes overlap,
    the masked face's votes taken covered (no_mask) do not outvote those taken alone: it stays mask, drawn with their
    P(mask) (before: no_mask for 8 frames)."""
    images, script = _crossing(150, frames=40, step_px=6)
    pipeline = _voting(script, relabel_every=2)
    labels, probs, shows_mask = [], [], []
    for frame, boxes in zip(images, script.boxes, strict=True):
        faces = pipeline(frame)
        i = faces.track_id.tolist().index(0)
        labels.append(faces.label_names[i])
        probs.append(float(faces.prob_mask[i]))
        shown = script.classify(Faces(np.array([MASKED]), np.ones(1, np.float32)).crops(frame))[0] > 0.5
        shows_mask.append(shown or iou_matrix(np.array(boxes[:1]), np.array(boxes[1:]))[0, 0] == 0)
    assert shows_mask.count(False) == 8  # covered on 8 frames, its box overlapping the crossing face's on all
    assert labels[1:] == ["mask"] * 39 and min(probs[1:]) > 0.9


def test_a_sure_label_is_reused_only_for_a_face_alone_since_it_was_classified():
    # key frames 0-6: A; A; A + C overlapping it (IoU 0.04); A + C; A; A; A. The classifier is sure (0.95)
    touching = [150, 100, 200, 160]
    models = ScriptedModels([[FACE_A]] * 2 + [[FACE_A, touching]] * 2 + [[FACE_A]] * 3)
    classified = []

    def classify(crops):
        classified.append(len(crops))
        return np.full(len(crops), 0.95, np.float32)

    _run(Pipeline(models.detect, classify, detect_every=2, relabel_every=2), 14)
    # A: classified at 0, reused at 1, classified while C overlaps it (2, 3) and at 4 (overlapped at 3), reused at 5
    assert classified == [1, 2, 2, 1, 1] and 0 < iou_matrix(np.array(FACE_A), np.array(touching))[0, 0] < 0.3


def test_a_sure_label_its_vote_disagrees_with_is_not_reused():
    box = [100, 60, 160, 130]
    probs = [[0.95]] * 5 + [[0.05]] + [[0.95]] * 4  # one sure wrong classification at key frame 5 (vote: still mask)
    script = Script([[box]] * 10, probs)
    calls = []
    pipeline = _voting(script, relabel_every=2)
    pipeline.scores = lambda crops: (calls.append(script.k), script.classify(crops))[1]
    labels = [f.label_names[0] for f in _frames(pipeline, 10)]
    assert calls == [0, 1, 3, 5, 6, 8] and labels[1:] == ["mask"] * 9  # 6: classified again, not reused


# votes of covered faces: a classification taken while the face's box overlaps another detection


ALONE_BOX, COVER_BOX = [100, 100, 160, 160], [150, 110, 210, 170]  # overlapping: IoU 0.075


def _votes_of(tracker: FaceTracker, script: list[tuple[bool, object]]) -> list[Faces]:
    """Key frames of one face at ``ALONE_BOX`` classified as scripted: (covered, its P(mask) or class probabilities);
    a covered face has a second detection (classified no_mask) overlapping it. The voted faces of each key frame."""
    frame, out = np.full((240, 320, 3), 120, np.uint8), []
    for covered, prob in script:
        faces = tracker.update(frame, Faces([ALONE_BOX, COVER_BOX] if covered else [ALONE_BOX], [0.9] * (1 + covered)))
        other = (0.9, 0.05, 0.05) if np.ndim(prob) else 0.05
        tracker.set_prob_mask(faces.track_id, [prob, other][: len(faces)])
        out.append(tracker.faces(voted=True))
    return out


def _product_votes(**kw) -> FaceTracker:
    return FaceTracker(**({"memory_keyframes": 8, "vote_keyframes": 5, "vote_min_keyframes": 2,
                           "vote_hysteresis": 0.1} | kw))  # fmt: skip


def test_covered_votes_do_not_outvote_the_votes_taken_alone():
    # 3 key frames alone (mask), 5 covered (classified as the cover: no_mask), 2 alone again (mask)
    faces = _votes_of(_product_votes(), [(False, 0.95)] * 3 + [(True, 0.05)] * 5 + [(False, 0.95)] * 2)
    assert [f.label_names[0] for f in faces] == ["unknown"] + ["mask"] * 9  # before: no_mask from the 3rd covered
    assert [float(f.prob_mask[0]) for f in faces[3:8]] == pytest.approx([0.95] * 5)  # drawn: the alone votes' mean
    assert not np.isclose(faces[7].prob_mask[1], 0.95)  # the cover's own P(mask) is its own


def test_three_class_covered_votes_do_not_outvote_the_votes_taken_alone():
    masked, bare = (0.05, 0.9, 0.05), (0.9, 0.05, 0.05)
    faces = _votes_of(_product_votes(), [(False, masked)] * 3 + [(True, bare)] * 5)
    assert [f.label_names[0] for f in faces] == ["unknown"] + ["mask"] * 7
    np.testing.assert_allclose(faces[-1].probs[0], masked, atol=1e-6)
    assert faces[-1].prob_mask[0] == pytest.approx(0.9)


def test_a_face_never_alone_is_labelled_by_its_covered_votes():
    faces = _votes_of(_product_votes(), [(True, 0.05)] * 4)
    assert [f.label_names[0] for f in faces] == ["unknown"] + ["no_mask"] * 3
    assert faces[-1].prob_mask[0] == pytest.approx(0.05)
    few = _votes_of(_product_votes(), [(False, 0.95)] + [(True, 0.05)] * 3)  # one alone vote is too few to decide
    assert [f.label_names[0] for f in few] == ["unknown", "mask", "no_mask", "no_mask"]  # means 0.5, 0.35, 0.28


def test_alone_votes_are_forgotten_after_memory_keyframes_covered_votes_against_them():
    # a mask taken off in a crowd: the 9th covered vote against the label (memory_keyframes 8) changes it
    faces = _votes_of(_product_votes(), [(False, 0.95)] * 2 + [(True, 0.95)] * 20 + [(True, 0.05)] * 9)
    labels = [f.label_names[0] for f in faces]
    assert labels[1:-1] == ["mask"] * 29 and labels[-1] == "no_mask"  # covered votes for the label do not count
    back = _votes_of(_product_votes(), [(False, 0.95)] * 2 + [(True, 0.05)] * 9 + [(False, 0.05)])
    assert back[-1].label_names[0] == "no_mask"  # seen again without the mask: the old alone votes are gone
    assert back[-1].prob_mask[0] == pytest.approx(0.05)
    # memory 0 and one vote (evaluation.identity's "before"): the label of the last classification
    last = _votes_of(_product_votes(memory_keyframes=0, vote_keyframes=1, vote_min_keyframes=1,
                                    vote_hysteresis=0.0), [(False, 0.95), (True, 0.05), (False, 0.95)])  # fmt: skip
    assert [f.label_names[0] for f in last] == ["mask", "no_mask", "mask"]
