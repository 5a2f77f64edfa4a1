"""The live pipeline on a synthetic sequence: two textured faces moving in opposite directions, a fake detector
that blocks until the test releases it (a controllable delay), a fake classifier that tells the faces apart.

Nothing is timed: "no frame waits for the detector" is shown by frames that finish while the detector is still
held, and matching by boxes and P(mask) that land on the right tracks after the tracker moved them."""

from __future__ import annotations

import random
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import detector.live
from detector.live import WORKER_NICE, LivePipeline, carry_boxes, move_like, use_live
from detector.tracking import to_gray
from maskwatch.config import load_config
from maskwatch.faces import MASK, NO_MASK, Faces
from maskwatch.geometry import iou_matrix

SIZE_WH = (320, 200)
SIDE_PX = 60
SPEED_PX = 4  # per frame; A moves right, B left
HOLD_TIMEOUT_S = 20.0  # a held detector gives up after this (then the test fails: something waited for it)


def truth_xyxy(index: int) -> np.ndarray:
    """The two faces' boxes on frame ``index``: A (bright) moving right, B (dark) moving left."""
    ax, bx = 20 + SPEED_PX * index, 250 - SPEED_PX * index  # they touch on frame 21
    return np.array([[ax, 70, ax + SIDE_PX, 70 + SIDE_PX], [bx, 70, bx + SIDE_PX, 70 + SIDE_PX]], np.float64)


_RNG = np.random.default_rng(0)
_TEXTURE_A = _RNG.integers(150, 256, (SIDE_PX, SIDE_PX, 3), dtype=np.uint8)
_TEXTURE_B = _RNG.integers(0, 100, (SIDE_PX, SIDE_PX, 3), dtype=np.uint8)


def frame_at(index: int) -> np.ndarray:
    """A smooth grey frame with the two textured faces; pixel (0, 0) holds the frame index."""
    frame = np.full((SIZE_WH[1], SIZE_WH[0], 3), 128, np.uint8)
    for (x1, y1, x2, y2), texture in zip(truth_xyxy(index).astype(int), (_TEXTURE_A, _TEXTURE_B), strict=True):
        frame[y1:y2, x1:x2] = texture
    frame[0, 0] = index
    return frame


class HeldDetector:
    """Finds the true boxes of the frame it is given, once the test calls ``release`` (or after a timeout)."""

    def __init__(self, *, held: bool = True, delay_s: tuple[float, float] = (0.0, 0.0)) -> None:
        self._go = threading.Event()
        if not held:
            self._go.set()
        self.delay_s = delay_s
        self.calls: list[int] = []
        self.timed_out = False
        self.thread_names: set[str] = set()

    def release(self) -> None:
        self._go.set()

    def hold(self) -> None:
        self._go.clear()

    def __call__(self, frame_bgr: np.ndarray) -> Faces:
        self.thread_names.add(threading.current_thread().name)
        index = int(frame_bgr[0, 0, 0])
        self.calls.append(index)
        if not self._go.wait(HOLD_TIMEOUT_S):
            self.timed_out = True
        time.sleep(random.uniform(*self.delay_s))
        return Faces(truth_xyxy(index), [0.9, 0.8])


def classify_by_brightness(crops: list[np.ndarray]) -> np.ndarray:
    """P(mask) 0.95 for a bright crop (face A), 0.05 for a dark one (face B)."""
    return np.array([0.95 if crop.mean() > 128 else 0.05 for crop in crops], np.float32)


def _pipeline(detector: HeldDetector, detect_every: int = 4) -> LivePipeline:
    return LivePipeline(detector, classify_by_brightness, detect_every=detect_every, relabel_every=1)


def _by_x(faces: Faces) -> Faces:
    return faces[np.argsort(faces.xyxy[:, 0])]


def test_use_live_by_source_kind():
    assert use_live("auto", "camera") and use_live("auto", "stream")
    assert not use_live("auto", "video") and use_live("on", "video")
    assert not use_live("off", "camera") and not use_live("on", "images") and not use_live("auto", "images")


def test_carry_boxes_follows_the_motion():
    then, now = to_gray(frame_at(0)), to_gray(frame_at(5))
    carried = carry_boxes(then, now, truth_xyxy(0))
    assert np.diag(iou_matrix(carried, truth_xyxy(5))).min() > 0.85
    assert np.diag(iou_matrix(truth_xyxy(0), truth_xyxy(5))).max() < 0.6  # the stale boxes would not do
    assert carry_boxes(then, now, np.empty((0, 4))).shape == (0, 4)


def test_move_like_shifts_and_scales_with_the_paired_box():
    moved = move_like([[10, 10, 20, 30]], [[0, 0, 40, 40]], [[100, 50, 180, 130]])  # pair: +120, +70, 2x
    assert moved.tolist() == [[120, 70, 140, 110]]
    assert move_like(np.empty((0, 4)), np.empty((0, 4)), np.empty((0, 4))).shape == (0, 4)


def test_a_detection_of_tracked_faces_moves_with_their_tracks_without_a_new_flow(monkeypatch):
    calls: list[int] = []
    real = detector.live.carry_boxes
    monkeypatch.setattr(detector.live, "carry_boxes", lambda then, now, xyxy: calls.append(len(xyxy)) or real(
        then, now, xyxy))
    held = HeldDetector(held=False)
    pipe = _pipeline(held)
    try:
        pipe(frame_at(0))
        pipe.wait_idle(HOLD_TIMEOUT_S)
        pipe(frame_at(1))  # applied: no tracks yet, both faces carried by optical flow
        assert calls == [2]
        held.hold()
        for i in range(2, 6):  # submitted on frame 4 (held): frame 4's boxes, applied 2 frames later
            pipe(frame_at(i))
        held.release()
        pipe.wait_idle(HOLD_TIMEOUT_S)
        faces = _by_x(pipe(frame_at(6)))
        assert pipe.applied == [(0, 1), (4, 6)] and calls == [2]  # moved like their tracks: no new flow
        assert np.diag(iou_matrix(faces.xyxy, truth_xyxy(6))).min() > 0.85
    finally:
        held.release()
        pipe.close()


def test_frames_never_wait_for_the_detector():
    detector = HeldDetector(held=True)
    pipe = _pipeline(detector)
    try:
        outs = [pipe(frame_at(i)) for i in range(6)]
        assert not detector.timed_out  # all 6 frames finished while the detector was held
        assert detector.calls == [0]  # one detection in flight, on frame 0, on the worker thread
        assert all(name.startswith("live-detector") for name in detector.thread_names)
        assert all(len(f) == 0 for f in outs) and pipe.applied == []  # nothing to show until it arrives
    finally:
        detector.release()
        pipe.close()


def test_a_late_detection_lands_on_the_tracks_it_started_from():
    detector = HeldDetector(held=True)
    pipe = _pipeline(detector)
    try:
        for i in range(3):  # detection submitted on frame 0, held for frames 0-2
            pipe(frame_at(i))
        detector.release()
        pipe.wait_idle(HOLD_TIMEOUT_S)
        first = _by_x(pipe(frame_at(3)))  # applied on frame 3, carried 3 frames forward
        assert pipe.applied == [(0, 3)]
        assert np.diag(iou_matrix(first.xyxy, truth_xyxy(3))).min() > 0.85
        assert first.label.tolist() == [MASK, NO_MASK]  # A bright = mask, B dark = no mask
        ids = first.track_id.tolist()
        assert len(set(ids)) == 2

        detector.hold()
        for i in range(4, 9):  # the next detection goes out on frame 4 (detect_every after frame 0), held
            faces = _by_x(pipe(frame_at(i)))
            assert faces.track_id.tolist() == ids  # the tracker carries both faces meanwhile
            assert np.diag(iou_matrix(faces.xyxy, truth_xyxy(i))).min() > 0.7
        assert detector.calls == [0, 4]  # due detect_every frames after the last submission (frame 0)
        assert not detector.timed_out
        detector.release()
        pipe.wait_idle(HOLD_TIMEOUT_S)
        late = _by_x(pipe(frame_at(9)))  # frame 4's boxes, 5 frames (20 px) old, matched to tracks that moved
        assert pipe.applied == [(0, 3), (4, 9)]
        assert late.track_id.tolist() == ids and len(late) == 2  # same faces: no duplicate, no swap
        assert late.label.tolist() == [MASK, NO_MASK]
        assert np.diag(iou_matrix(late.xyxy, truth_xyxy(9))).min() > 0.85
        quality = pipe.quality()
        assert quality["results_applied"] == 2 and quality["results_dropped"] == 0
        assert quality["drift_mean_iou"] > 0.8  # carried detections vs tracked boxes at the applying frame
    finally:
        detector.release()
        pipe.close()


def test_results_are_applied_in_order_with_random_delays():
    random.seed(1)
    detector = HeldDetector(held=False, delay_s=(0.0, 0.03))
    pipe = _pipeline(detector, detect_every=2)
    try:
        for i in range(20):
            faces = pipe(frame_at(i))
            time.sleep(0.005)  # a paced source
            assert len(faces) <= 2
        pipe.wait_idle(HOLD_TIMEOUT_S)
        pipe(frame_at(20))
    finally:
        pipe.close()
    submitted = [s for s, _ in pipe.applied]
    applied = [a for _, a in pipe.applied]
    assert len(pipe.applied) >= 3
    assert submitted == sorted(set(submitted)) and applied == sorted(set(applied))  # strictly in order
    assert all(a > s for s, a in pipe.applied)  # a result is applied on a later frame than its own
    assert submitted == detector.calls[: len(submitted)]


@pytest.mark.parametrize("detect_every", [1, 3])
def test_detect_every_one_still_tracks(detect_every):
    detector = HeldDetector(held=False)
    pipe = _pipeline(detector, detect_every=detect_every)
    try:
        for i in range(12):
            pipe(frame_at(i))
            pipe.wait_idle(HOLD_TIMEOUT_S)
        faces = _by_x(pipe(frame_at(12)))
    finally:
        pipe.close()
    assert len(faces) == 2 and np.diag(iou_matrix(faces.xyxy, truth_xyxy(12))).min() > 0.85
    gaps = np.diff(detector.calls)
    assert gaps.min() >= detect_every


def test_a_due_detection_starts_once_the_loop_is_done_with_the_frame():
    detector = HeldDetector(held=False)
    pipe = _pipeline(detector)
    try:
        pipe(frame_at(0))
        assert detector.calls == []  # due on frame 0, but the frame is still being drawn
        pipe.frame_done()
        pipe.wait_idle(HOLD_TIMEOUT_S)
        assert detector.calls == [0]
        assert len(pipe(frame_at(1))) == 2 and pipe.applied == [(0, 1)]
    finally:
        pipe.close()


def test_the_worker_leaves_the_faces_whose_sure_label_their_tracks_keep():
    crops_per_call: list[int] = []

    def counting(crops: list[np.ndarray]) -> np.ndarray:
        crops_per_call.append(len(crops))
        return classify_by_brightness(crops)

    detector = HeldDetector(held=False)
    pipe = LivePipeline(detector, counting, detect_every=4, relabel_every=2)
    labels = []
    try:
        for i in range(14):  # detections on frames 0, 4, 8 and 12, each applied on the next frame
            labels.append(_by_x(pipe(frame_at(i))).label.tolist())
            pipe.frame_done()
            pipe.wait_idle(HOLD_TIMEOUT_S)
    finally:
        pipe.close()
    # frames 0 and 8: both faces classified; 4 and 12: both labels sure and fresh, kept without the classifier
    assert detector.calls == [0, 4, 8, 12] and crops_per_call == [2, 2] and pipe.quality()["labels_reused"] == 4
    assert labels[1:] == [[MASK, NO_MASK]] * 13


class ThreeClassByBrightness:
    """A three-class 'classifier' (``class_names``, ``probabilities``): face A (bright) wears the mask wrong, face B
    (dark) wears none."""

    class_names = ("no_mask", "mask", "incorrect")

    def probabilities(self, crops: list[np.ndarray]) -> np.ndarray:
        return np.array([[0.1, 0.1, 0.8] if crop.mean() > 128 else [0.9, 0.05, 0.05] for crop in crops], np.float32)

    def __call__(self, crops: list[np.ndarray]) -> np.ndarray:
        return self.probabilities(crops)[:, 1]


def test_the_live_worker_hands_class_probabilities_to_the_tracks():
    detector = HeldDetector(held=False)
    pipe = LivePipeline(detector, ThreeClassByBrightness(), detect_every=4, relabel_every=1)
    try:
        pipe(frame_at(0))
        pipe.wait_idle(HOLD_TIMEOUT_S)
        faces = _by_x(pipe(frame_at(1)))
        assert faces.label_names == ["incorrect", "no_mask"] and faces.probs.shape == (2, 3)
        np.testing.assert_allclose(faces.probs, [[0.1, 0.1, 0.8], [0.9, 0.05, 0.05]], atol=1e-6)
    finally:
        pipe.close()


def _nice(native_id: int) -> int:
    stat = Path(f"/proc/self/task/{native_id}/stat").read_text()
    return int(stat[stat.rindex(")") + 2:].split()[16])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread priorities are Linux's")
def test_the_worker_and_the_threads_the_models_start_run_at_a_lower_priority(monkeypatch):
    import detector.pipeline

    seen: dict[str, int] = {}

    def build_models(cfg, *, video):  # the runtimes start their threads here: they inherit this priority
        seen["build"] = _nice(threading.get_native_id())
        return (lambda frame: (seen.setdefault("detect", _nice(threading.get_native_id())), Faces.empty())[1],
                classify_by_brightness)  # fmt: skip

    monkeypatch.setattr(detector.pipeline, "build_models", build_models)
    pipeline = LivePipeline.from_config(load_config(), video=True)
    try:
        pipeline(frame_at(0))
        pipeline.wait_idle(HOLD_TIMEOUT_S)
    finally:
        pipeline.close()
    main = _nice(threading.get_native_id())
    assert seen == {"build": min(main + WORKER_NICE, 19), "detect": min(main + WORKER_NICE, 19)}


@pytest.mark.parametrize(("backend", "live_threads"), [("onnxruntime", 1), ("opencv", None)])
def test_opencv_runs_on_the_frame_loop_thread_when_no_detector_needs_its_threads(monkeypatch, backend, live_threads):
    """With CenterFace on ONNX Runtime, OpenCV only does the frames' work (optical flow, resizing): one thread, so a
    call never waits for a pool thread the worker's detection holds; CenterFace on OpenCV DNN keeps its threads."""
    import cv2

    import detector.pipeline

    monkeypatch.setattr(detector.pipeline, "build_models",
                        lambda cfg, *, video: (lambda frame: Faces.empty(), classify_by_brightness))  # fmt: skip
    before = cv2.getNumThreads()
    cv2.setNumThreads(2)
    try:
        cfg = load_config(overrides=[f"face_detector.backend={backend}"])
        LivePipeline.from_config(cfg, video=True).close()
        assert cv2.getNumThreads() == (live_threads or 2)
    finally:
        cv2.setNumThreads(before)
