"""Detection stride: the SSD and the classifier run on every Nth frame; in between, boxes follow the image.

``FaceTracker(detect, classify, detect_every=4)`` gives ``tracker.detect`` and ``tracker.classify`` with the same
signatures as ``FaceDetector`` and ``MaskClassifier``, so ``run_loop`` uses them unchanged. On a key frame both
run for real. On the frames between, each box moves by the median Lucas-Kanade optical flow of a grid of points
inside it (translation plus scale, ~1 ms for a few faces) and keeps the P(mask) of its key frame: ``classify``
returns those remembered values for the crops of the tracked boxes (same order) instead of running the model.

Coasting: at a key frame, a tracked face that no fresh detection overlaps (IoU >= ``MATCH_IOU``) is kept, still
following the flow and keeping its P(mask), for up to ``max_missed`` key frames in a row (config
``face_detector.track_max_missed``), so a face found once stays found while a mask lowers the SSD's score.

Sure labels are reused: at a key frame, a fresh detection that its track matches (IoU >= ``RELABEL_MIN_IOU``) keeps
the track's P(mask) when that label is sure (<= 1 - ``SURE_P`` or >= ``SURE_P``) and the classifier saw the face
fewer than ``relabel_every`` key frames ago (config ``face_detector.relabel_every``; 1 = every face at every key
frame): the classifier's batch holds only new, unsure and due faces.

Lost tracks: each point is also tracked back to the previous frame; a point that does not come back within
``MAX_FB_ERROR_PX`` is unreliable (forward-backward check, Kalal et al. 2010). A face with fewer than
``MIN_TRACKED_POINTS`` reliable points (it left, was covered, or the scene cut) makes this frame a key frame at once,
so a box never follows the background while the next key frame is awaited.

Only for frame sequences (videos, cameras, streams): unrelated images need ``detect_every=1``. At every key frame
the tracked boxes are compared with the fresh detections (``quality()``: mean IoU), so drift is measured.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import cv2
import numpy as np

from maskwatch.faces import Faces

Detect = Callable[[np.ndarray], Faces]
Classify = Callable[[Sequence[np.ndarray]], np.ndarray]

GRID_POINTS = 5  # per side: 25 flow points per face
GRID_INSET = 0.2  # points span the middle 60 % of the box (the face, not the background)
LK_PARAMS = {
    "winSize": (15, 15),
    "maxLevel": 2,
    "criteria": (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 10, 0.03),
}
MIN_TRACKED_POINTS = 4
MAX_FB_ERROR_PX = 1.0  # a point tracked forward then back must land this close to where it started
MATCH_IOU = 0.3  # a fresh detection overlapping a tracked box this much is the same face
MAX_COAST_SCALE = 1.5  # a coasted box whose size drifted beyond this factor of its last detection's is dropped
DEFAULT_MAX_MISSED = 2  # = config face_detector.track_max_missed's default (a test checks they agree)
RELABEL_MIN_IOU = 0.5  # a fresh detection overlapping a tracked face this much may keep its sure label
SURE_P = 0.9  # P(mask) at or above this, or at or below 1 - this, is a sure label


def to_gray(frame_bgr: np.ndarray) -> np.ndarray:
    """Grayscale uint8 of a BGR, BGRA or already grayscale frame."""
    if frame_bgr.ndim == 2:
        return frame_bgr
    code = cv2.COLOR_BGRA2GRAY if frame_bgr.shape[2] == 4 else cv2.COLOR_BGR2GRAY
    return cv2.cvtColor(frame_bgr, code)


def grid_points(xyxy: np.ndarray) -> np.ndarray:
    """float32 (n, GRID_POINTS**2, 2): a regular grid of (x, y) points inside each box."""
    xyxy = np.asarray(xyxy, np.float32).reshape(-1, 4)
    steps = np.linspace(GRID_INSET, 1 - GRID_INSET, GRID_POINTS, dtype=np.float32)
    fx, fy = np.meshgrid(steps, steps)
    size = xyxy[:, 2:] - xyxy[:, :2]
    return xyxy[:, None, :2] + np.stack([fx.ravel(), fy.ravel()], axis=1)[None] * size[:, None, :]


def reliable_flow(gray_before: np.ndarray, gray_now: np.ndarray, points_xy: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Lucas-Kanade flow of ``points_xy`` (float32 (n, k, 2)): which points are reliable (bool (n, k): found, and
    back within ``MAX_FB_ERROR_PX`` when tracked backwards) and where they moved (float32 (n, k, 2))."""
    flat = points_xy.reshape(-1, 1, 2)
    new, status, _ = cv2.calcOpticalFlowPyrLK(gray_before, gray_now, flat, None, **LK_PARAMS)
    back, status_back, _ = cv2.calcOpticalFlowPyrLK(gray_now, gray_before, new, None, **LK_PARAMS)
    error_px = np.linalg.norm((back - flat).reshape(-1, 2), axis=1)
    ok = status.reshape(-1).astype(bool) & status_back.reshape(-1).astype(bool) & (error_px <= MAX_FB_ERROR_PX)
    return ok.reshape(points_xy.shape[:2]), new.reshape(points_xy.shape)


def move_box(box_xyxy: np.ndarray, old_pts: np.ndarray, new_pts: np.ndarray) -> np.ndarray:
    """The box shifted by the median point motion and scaled by the median change of pairwise point distances
    (MedianFlow). float64 (4,)."""
    shift = np.median(new_pts - old_pts, axis=0)
    scale = 1.0
    if len(old_pts) >= 2:
        i, j = np.triu_indices(len(old_pts), k=1)
        d_old = np.linalg.norm(old_pts[i] - old_pts[j], axis=1)
        d_new = np.linalg.norm(new_pts[i] - new_pts[j], axis=1)
        ok = d_old > 1e-3
        if ok.any():
            scale = float(np.median(d_new[ok] / d_old[ok]))
    box = np.asarray(box_xyxy, np.float64)
    center = (box[:2] + box[2:]) / 2 + shift
    half = (box[2:] - box[:2]) / 2 * scale
    return np.concatenate([center - half, center + half])


def box_iou(a_xyxy: np.ndarray, b_xyxy: np.ndarray) -> np.ndarray:
    """IoU matrix (len(a), len(b)) of two sets of boxes."""
    a = np.asarray(a_xyxy, np.float64).reshape(-1, 1, 4)
    b = np.asarray(b_xyxy, np.float64).reshape(1, -1, 4)
    wh = np.clip(np.minimum(a[..., 2:], b[..., 2:]) - np.maximum(a[..., :2], b[..., :2]), 0, None)
    inter = wh[..., 0] * wh[..., 1]
    area = lambda x: (x[..., 2] - x[..., 0]) * (x[..., 3] - x[..., 1])  # noqa: E731
    union = area(a) + area(b) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


def box_side_px(xyxy: np.ndarray) -> np.ndarray:
    """float (n,): sqrt of each box's area in pixels."""
    size = np.asarray(xyxy, np.float64).reshape(-1, 4)
    return np.sqrt(np.clip(size[:, 2] - size[:, 0], 0, None) * np.clip(size[:, 3] - size[:, 1], 0, None))


def match_boxes(a_xyxy: np.ndarray, b_xyxy: np.ndarray, min_iou: float) -> np.ndarray:
    """int (len(a),): the ``b`` box each ``a`` box is paired with (greedy one-to-one, best IoU first), -1 if none."""
    iou = box_iou(a_xyxy, b_xyxy)
    pair = np.full(len(iou), -1, np.int64)
    if iou.size == 0:
        return pair
    for flat in np.argsort(-iou, axis=None, kind="stable"):
        a, b = np.unravel_index(flat, iou.shape)
        if iou[a, b] < min_iou:
            break
        if pair[a] < 0 and np.isfinite(iou[:, b]).any():
            pair[a] = b
            iou[:, b] = -np.inf  # this b box is taken
    return pair


def unmatched(tracked_xyxy: np.ndarray, detected_xyxy: np.ndarray, min_iou: float) -> np.ndarray:
    """bool (len(tracked),): tracked boxes that no detection claims (greedy one-to-one, best IoU first)."""
    return match_boxes(tracked_xyxy, detected_xyxy, min_iou) < 0


class FaceTracker:
    """``detect`` / ``classify`` for ``run_loop``: real models every ``detect_every`` frames, tracking between."""

    def __init__(
        self, detect: Detect, classify: Classify, *, detect_every: int, max_missed: int = DEFAULT_MAX_MISSED,
        relabel_every: int = 1,
    ) -> None:
        if detect_every < 1:
            raise ValueError(f"detect_every must be >= 1, got {detect_every}")
        if max_missed < 0:
            raise ValueError(f"max_missed must be >= 0, got {max_missed}")
        if relabel_every < 1:
            raise ValueError(f"relabel_every must be >= 1, got {relabel_every}")
        self._detect, self._classify, self.detect_every = detect, classify, detect_every
        self.max_missed, self.relabel_every = max_missed, relabel_every
        self._label_age = np.zeros(0, np.int64)  # per face: key frames since the classifier saw it
        self._fresh_probs = np.zeros(0, np.float32)  # per fresh detection: a reused P(mask), NaN = classify it
        self.labels_reused = 0
        self._faces: Faces | None = None
        self._probs = np.zeros(0, np.float32)
        self._missed = np.zeros(0, np.int64)  # per face: key frames in a row without a matching detection
        self._anchor_px = np.zeros(0)  # per face: sqrt(area) of its box when last detected
        self._coasted_probs = np.zeros(0, np.float32)  # P(mask) of the coasted faces that end this key frame's list
        self._gray: np.ndarray | None = None
        self._since_key = 0
        self._key = True
        self.keyframes = 0
        self.early_keyframes = 0  # key frames made early because a track was lost
        self.tracked_frames = 0
        self.model_calls = 0
        self._ious: list[float] = []
        self._unmatched = 0
        self.coasted = 0

    def detect(self, frame_bgr: np.ndarray) -> Faces:
        """Faces of this frame: the SSD's on a key frame, else the last ones moved along the optical flow."""
        gray = to_gray(frame_bgr) if self.detect_every > 1 else None
        tracked, lost = self._track(gray) if self._faces is not None and gray is not None else (None, None)
        track_lost = lost is not None and bool(lost.any())
        due = self._since_key + 1 >= self.detect_every
        self._key = tracked is None or track_lost or due
        if self._key:
            self.early_keyframes += int(track_lost and not due)
            faces = self._detect(frame_bgr)
            if tracked is not None:
                self._record_drift(tracked, faces)
            fresh_age = self._plan_labels(tracked, lost, faces)
            faces = self._coast(tracked, lost, faces, fresh_age)
            self._since_key, self.keyframes = 0, self.keyframes + 1
        else:
            faces = tracked
            self._since_key, self.tracked_frames = self._since_key + 1, self.tracked_frames + 1
        self._faces, self._gray = faces, gray
        return faces

    def classify(self, crops_bgr: Sequence[np.ndarray]) -> np.ndarray:
        """P(mask) of the crops of the faces ``detect`` just returned: on a key frame the model, in one batch, for
        the fresh detections without a reusable sure label (coasted faces keep theirs), else remembered."""
        n_fresh = len(crops_bgr) - len(self._coasted_probs) if self._key else 0
        if self._key and n_fresh == len(self._fresh_probs):
            fresh = self._fresh_probs.copy()
            due = np.flatnonzero(np.isnan(fresh))
            if len(due):
                fresh[due] = self._run_model([crops_bgr[i] for i in due])
            self.labels_reused += n_fresh - len(due)
            self._probs = np.concatenate([fresh, self._coasted_probs]).astype(np.float32)
        elif self._key or len(crops_bgr) != len(self._probs):
            self._probs = self._run_model(crops_bgr)
            self._label_age = np.zeros(len(crops_bgr), np.int64)
        return self._probs

    def _plan_labels(self, tracked: Faces | None, lost: np.ndarray | None, detected: Faces) -> np.ndarray:
        """Which fresh detections keep their track's sure label (``_fresh_probs``, NaN = classify); returns their
        label ages."""
        probs, age = np.full(len(detected), np.nan, np.float32), np.zeros(len(detected), np.int64)
        known = tracked is not None and len(self._probs) == len(tracked) == len(self._label_age)
        if known and self.relabel_every > 1 and len(detected):
            pair = match_boxes(detected.xyxy, tracked.xyxy, RELABEL_MIN_IOU)
            for i, j in enumerate(pair):
                sure = j >= 0 and (self._probs[j] >= SURE_P or self._probs[j] <= 1 - SURE_P)
                if sure and not lost[j] and self._label_age[j] + 1 < self.relabel_every:
                    probs[i], age[i] = self._probs[j], self._label_age[j] + 1
        self._fresh_probs = probs
        return age

    def _run_model(self, crops_bgr: Sequence[np.ndarray]) -> np.ndarray:
        self.model_calls += 1
        return np.asarray(self._classify(crops_bgr), np.float32)

    def _coast(self, tracked: Faces | None, lost: np.ndarray | None, detected: Faces, fresh_age: np.ndarray
               ) -> Faces:  # fmt: skip
        """The fresh detections, then the tracked faces no detection matched that missed <= ``max_missed`` key
        frames in a row and did not lose their track (their P(mask) is kept for ``classify``)."""
        self._coasted_probs = np.zeros(0, np.float32)
        old_age, self._label_age = self._label_age, fresh_age
        if tracked is None or len(tracked) == 0 or self.max_missed == 0:
            self._missed, self._anchor_px = np.zeros(len(detected), np.int64), box_side_px(detected.xyxy)
            return detected
        missed = self._missed + 1
        scale = box_side_px(tracked.xyxy) / np.maximum(self._anchor_px, 1.0)
        steady = (scale <= MAX_COAST_SCALE) & (scale >= 1 / MAX_COAST_SCALE)  # flow on the background blows boxes up
        keep = unmatched(tracked.xyxy, detected.xyxy, MATCH_IOU) & (missed <= self.max_missed) & steady & ~lost
        if len(self._probs) == len(tracked):
            self._coasted_probs = self._probs[keep]
        else:  # no remembered labels (the loop did not classify): the coasted faces are classified afresh
            keep[:] = False
        self._missed = np.concatenate([np.zeros(len(detected), np.int64), missed[keep]])
        self._anchor_px = np.concatenate([box_side_px(detected.xyxy), self._anchor_px[keep]])
        old_age = old_age if len(old_age) == len(tracked) else np.zeros(len(tracked), np.int64)
        self._label_age = np.concatenate([fresh_age, old_age[keep] + 1])
        self.coasted += int(keep.sum())
        return Faces(np.concatenate([detected.xyxy, tracked.xyxy[keep]]),
                     np.concatenate([detected.confidence, tracked.confidence[keep]]))  # fmt: skip

    def _track(self, gray: np.ndarray) -> tuple[Faces, np.ndarray]:
        """The last faces moved along the flow, and which of them lost their track (bool (n,))."""
        faces = self._faces
        assert faces is not None and self._gray is not None
        if len(faces) == 0:
            return faces, np.zeros(0, bool)
        old = grid_points(faces.xyxy)
        reliable, new = reliable_flow(self._gray, gray, old)
        boxes = []
        for box, o, n, ok in zip(faces.xyxy, old, new, reliable, strict=True):
            boxes.append(move_box(box, o[ok], n[ok]) if ok.sum() >= MIN_TRACKED_POINTS else box.astype(np.float64))
        height, width = gray.shape[:2]
        xyxy = np.rint(np.array(boxes))
        xyxy[:, 0::2] = np.clip(xyxy[:, 0::2], 0, width)
        xyxy[:, 1::2] = np.clip(xyxy[:, 1::2], 0, height)
        keep = (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
        lost = reliable.sum(axis=1) < MIN_TRACKED_POINTS
        if not keep.all():  # a face that left the frame: forget it (and its P(mask)) until the next key frame
            self._probs, self._missed, self._anchor_px, self._label_age = (
                rows[keep] if len(rows) == len(keep) else rows
                for rows in (self._probs, self._missed, self._anchor_px, self._label_age))  # fmt: skip
        return Faces(xyxy[keep].astype(np.int32), faces.confidence[keep]), lost[keep]  # faces that left: dropped

    def _record_drift(self, tracked: Faces, detected: Faces) -> None:
        """IoU of each fresh detection with its best tracked box (greedy); unmatched on either side counted."""
        if len(tracked) == 0 or len(detected) == 0:
            self._unmatched += abs(len(tracked) - len(detected))
            return
        iou = box_iou(detected.xyxy, tracked.xyxy)
        best = iou.max(axis=1)
        self._ious.extend(best[best > 0].tolist())
        self._unmatched += int((best == 0).sum()) + max(0, len(tracked) - len(detected))

    def quality(self) -> dict[str, Any]:
        """Counts of key and tracked frames, model calls, and how well tracked boxes matched fresh detections."""
        return {
            "detect_every": self.detect_every,
            "keyframes": self.keyframes,
            "early_keyframes": self.early_keyframes,
            "tracked_frames": self.tracked_frames,
            "classifier_calls": self.model_calls,
            "drift_mean_iou": round(float(np.mean(self._ious)), 3) if self._ious else None,
            "drift_min_iou": round(float(np.min(self._ious)), 3) if self._ious else None,
            "drift_unmatched": self._unmatched,
            "max_missed": self.max_missed,
            "coasted_faces": self.coasted,
            "relabel_every": self.relabel_every,
            "labels_reused": self.labels_reused,
        }


def with_tracking(
    detect: Detect, classify: Classify, detect_every: int, max_missed: int = DEFAULT_MAX_MISSED, relabel_every: int = 1
) -> tuple[Detect, Classify]:
    """``(detect, classify)`` unchanged for ``detect_every == 1``, else the pair of a new ``FaceTracker``."""
    if detect_every == 1:
        return detect, classify
    tracker = FaceTracker(detect, classify, detect_every=detect_every, max_missed=max_missed,
                          relabel_every=relabel_every)  # fmt: skip
    return tracker.detect, tracker.classify
