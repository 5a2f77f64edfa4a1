"""Face tracks between key frames: ``FaceTracker.update(frame_bgr, detections | None) -> Faces``.

The pipeline (``detector.pipeline``) decides the key frames and runs the face detector on them. ``update`` with
detections matches them to the tracks (``match_tracks``: greedy one-to-one, best IoU first, IoU >= ``MATCH_IOU``):
a matched detection keeps its track's id, an unmatched one starts a new track with a new id. ``update(frame, None)``
carries the tracks along the optical flow: each box moves by the median Lucas-Kanade flow of a grid of points inside
it (translation plus scale, all boxes in one ``flow_boxes`` call) and keeps its P(mask).

Coasting: a track no detection matches is kept, still following the flow and keeping its P(mask), for up to
``max_missed`` key frames in a row (config ``tracking.max_missed``), unless its size drifted beyond
``MAX_COAST_SCALE`` of its last detection's (flow on the background blows boxes up).

Sure labels are reused: a matched detection overlapping its track by IoU >= ``RELABEL_MIN_IOU`` keeps the track's
P(mask) when that label is sure (<= 1 - ``SURE_P`` or >= ``SURE_P``) and the classifier saw the face fewer than
``relabel_every`` key frames ago (config ``tracking.relabel_every``); every other face comes back with P(mask) NaN,
and the pipeline classifies those in one batch and hands the results back (``set_prob_mask``). A label is reused
only if the face was ``alone`` (its box overlapping no other detection) at that classification and at every key
frame since (a coasted face was not seen: not alone), and its voted label agrees with it: a face covered by someone
crossing in front is classified as the other face, and a face whose vote disagrees with its last classification is
changing (covered, uncovered, mask taken off); both are classified on every key frame until the vote settles. A cover
the detector does not see (hair, a hand: no other box) still leaves one reused label on the key frame it ends.

Identities: a track keeps its id while it is matched. A track that stops being matched (coasted too long, lost by
the flow, left the frame) is remembered, unseen and not drawn, for ``memory_keyframes`` key frames
(``MEMORY_KEYFRAMES`` in the product, ByteTrack's lost-track buffer): a detection no live track claims that overlaps a
remembered box by IoU >= ``MEMORY_IOU`` takes that id back; the remembered box moves on at the track's last
velocity between detections (SORT's constant-velocity prediction). A face missed for a moment, or covered by
another while crossing, stays the same person.

Re-identification: a detection that is still new after that is compared by its look (``appearance``: the
hue-saturation histogram of the face box) with the second stage's candidates (live tracks no
detection claimed, remembered tracks) unseen for at most ``reid_keyframes`` key frames (config
``tracking.reid_keyframes``, 0 = off); the most similar one (Bhattacharyya coefficient >= ``REID_MIN_SIMILARITY``,
face size within ``REID_MAX_SCALE``) gives it its id back, one to one. A person who leaves and comes back, or whose
face reappears away from where its box coasted while covered, keeps their id. A track's look is the mean of its
detections' looks on key frames where its box overlaps no other detection.

Votes: a track's label comes from the classifier's P(mask) over its last ``vote_keyframes`` classifications
(``vote``: their mean, with a hysteresis of ``vote_hysteresis`` around the threshold once a label is set), and is
``UNKNOWN`` until ``vote_min_keyframes`` classifications exist; one bad frame does not flip a box. A covered face is
classified as whoever covers it, so votes taken while the face was not ``alone`` (its box overlapping another
detection) do not outvote those taken alone: with at least ``vote_min_keyframes`` votes among its last
``vote_keyframes`` alone ones, the label comes from those only (``Track.counted``); else from its last
``vote_keyframes`` votes of any kind (faces whose boxes always touch, in a crowd, still get a label). The alone votes
are forgotten once more than ``memory_keyframes`` covered votes since the last alone one went against the label (as
long as an unseen face's id is remembered: a face covered that long may really have changed, a mask taken off in a
crowd; 0 = at the first). ``faces(voted=True)`` gives the faces with the voted label and, as P(mask), the mean of
the votes it came from (``faces()``: the last classification's). With a three-class model each vote is the vector
of class probabilities: the label is the class of the highest mean, and a set label stays until another class leads
it by more than twice ``vote_hysteresis`` (the binary rule's margin at threshold 0.5). The product's values:
``PRODUCT_TRACKING``.

Lost tracks: each point is also tracked back to the previous frame; a point that does not come back within
``MAX_FB_ERROR_PX`` is unreliable (forward-backward check, Kalal et al. 2010). ``follow`` says whether a face kept
fewer than ``MIN_TRACKED_POINTS`` reliable points (it left, was covered, or the scene cut): the pipeline then makes
this frame a key frame at once. Only for frame sequences: unrelated images need no tracker.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

import cv2
import numpy as np

from maskwatch.faces import MASK, NO_MASK, UNKNOWN, Faces, grow_boxes
from maskwatch.geometry import clip_boxes, iou_matrix, match_by_iou, match_by_score
from maskwatch.labels import CLASSES

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
DEFAULT_MAX_MISSED = 2  # = config tracking.max_missed's default (a test checks they agree)
# The product's identity memory and label votes (not settings; evaluation.identity compares them with none):
MEMORY_KEYFRAMES = 8  # key frames an unseen face's id is remembered (found again near: same id)
VOTE_KEYFRAMES = 5  # a person's label is the mean P(mask) of their last N classifications
VOTE_MIN_KEYFRAMES = 2  # classifications needed before a label (fewer = unknown)
VOTE_HYSTERESIS = 0.1  # a set label changes only when the mean crosses the threshold by this much
PRODUCT_TRACKING = {"memory_keyframes": MEMORY_KEYFRAMES, "vote_keyframes": VOTE_KEYFRAMES,
                    "vote_min_keyframes": VOTE_MIN_KEYFRAMES, "vote_hysteresis": VOTE_HYSTERESIS}  # FaceTracker kwargs
RELABEL_MIN_IOU = 0.5  # a fresh detection overlapping a tracked face this much may keep its sure label
SURE_P = 0.9  # P(mask) at or above this, or at or below 1 - this, is a sure label
MEMORY_IOU = 0.2  # a new detection overlapping a remembered (unseen) track this much takes its id back
HS_BINS = (16, 8)  # hue, saturation bins of a face's look
REID_MIN_SIMILARITY = 0.8  # a new face whose look is this similar to an unseen track's (1 = the same) is that person
REID_MAX_SCALE = 2.0  # ... and whose size is within this factor of that track's last detection


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


def masked_median(values: np.ndarray, mask: np.ndarray, default: float) -> np.ndarray:
    """Median along axis 1 of each row's values where ``mask`` (the mean of the two middle ones for an even count),
    ``default`` for a row with none. values (n, k) or (n, k, d) -> (n,) or (n, d)."""
    mask = mask.reshape(mask.shape + (1,) * (values.ndim - 2))
    ordered = np.sort(np.where(mask, values, np.inf), axis=1)  # the masked-out values sort last
    count = mask.sum(axis=1, keepdims=True)
    low = np.take_along_axis(ordered, np.maximum((count - 1) // 2, 0), axis=1)
    high = np.take_along_axis(ordered, np.maximum(count // 2, 0).clip(max=values.shape[1] - 1), axis=1)
    return np.where(count > 0, (low + high) / 2, default).squeeze(1)


def move_boxes(xyxy: np.ndarray, old_pts: np.ndarray, new_pts: np.ndarray, reliable: np.ndarray) -> np.ndarray:
    """Each box shifted by the median motion of its reliable points and scaled by the median change of the
    distances between pairs of them (MedianFlow); a box with no reliable pair keeps its size, one with no reliable
    point stays put. ``old_pts`` / ``new_pts`` float (n, k, 2), ``reliable`` bool (n, k). float64 (n, 4)."""
    xyxy = np.asarray(xyxy, np.float64).reshape(-1, 4)
    old, new = np.asarray(old_pts, np.float64), np.asarray(new_pts, np.float64)
    shift = masked_median(new - old, reliable, 0.0)
    i, j = np.triu_indices(old.shape[1], k=1)
    d_old, d_new = (np.hypot(*np.moveaxis(p[:, i] - p[:, j], 2, 0)) for p in (old, new))
    pair_ok = reliable[:, i] & reliable[:, j] & (d_old > 1e-3)
    scale = masked_median(d_new / np.where(pair_ok, d_old, 1.0), pair_ok, 1.0)[:, None]
    center = (xyxy[:, :2] + xyxy[:, 2:]) / 2 + shift
    half = (xyxy[:, 2:] - xyxy[:, :2]) / 2 * scale
    return np.concatenate([center - half, center + half], axis=1)


def flow_boxes(gray_before: np.ndarray, gray_now: np.ndarray, xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boxes of ``gray_before`` moved to ``gray_now`` along the flow of a grid of points in each (``move_boxes``),
    not clipped, and which were lost (fewer than ``MIN_TRACKED_POINTS`` reliable points: those stay put).
    float64 (n, 4), bool (n,)."""
    xyxy = np.asarray(xyxy, np.float64).reshape(-1, 4)
    if len(xyxy) == 0:
        return xyxy.copy(), np.zeros(0, bool)
    old = grid_points(xyxy)
    reliable, new = reliable_flow(gray_before, gray_now, old)
    lost = reliable.sum(axis=1) < MIN_TRACKED_POINTS
    return np.where(lost[:, None], xyxy, move_boxes(xyxy, old, new, reliable)), lost


def box_side_px(xyxy: np.ndarray) -> np.ndarray:
    """float (n,): sqrt of each box's area in pixels."""
    size = np.asarray(xyxy, np.float64).reshape(-1, 4)
    return np.sqrt(np.clip(size[:, 2] - size[:, 0], 0, None) * np.clip(size[:, 3] - size[:, 1], 0, None))


def appearance(frame_bgr: np.ndarray, xyxy: np.ndarray) -> np.ndarray:
    """float32 (n, 128): the hue-saturation histogram of each box (sums to 1; zeros for an empty box or a frame
    without colour): what a face looks like, for re-identification."""
    xyxy = np.asarray(xyxy).reshape(-1, 4)
    out = np.zeros((len(xyxy), HS_BINS[0] * HS_BINS[1]), np.float32)
    if frame_bgr.ndim != 3:
        return out
    height, width = frame_bgr.shape[:2]
    for i, (x1, y1, x2, y2) in enumerate(grow_boxes(xyxy, 0.0, (width, height)).tolist()):
        if x2 > x1 and y2 > y1:
            hsv = cv2.cvtColor(np.ascontiguousarray(frame_bgr[y1:y2, x1:x2, :3]), cv2.COLOR_BGR2HSV)
            hist = cv2.calcHist([hsv], [0, 1], None, list(HS_BINS), [0, 180, 0, 256]).ravel()
            out[i] = hist / hist.sum()
    return out


def similarity(looks_a: np.ndarray, looks_b: np.ndarray) -> np.ndarray:
    """float (n, m): the Bhattacharyya coefficient of every look of ``a`` with every look of ``b`` (1 = the same)."""
    return np.sqrt(np.asarray(looks_a, np.float64)) @ np.sqrt(np.asarray(looks_b, np.float64)).T


def alone(xyxy: np.ndarray) -> np.ndarray:
    """bool (n,): which boxes overlap no other (IoU > 0) of ``xyxy`` (a covered face looks like whoever covers it)."""
    xyxy = np.asarray(xyxy).reshape(-1, 4)
    return (iou_matrix(xyxy, xyxy) > 0).sum(axis=1) == 1


def match_tracks(detected_xyxy: np.ndarray, tracked_xyxy: np.ndarray) -> np.ndarray:
    """int (len(detected),): the live track each detection continues, -1 = none (then the remembered tracks are
    tried, then it is a new face). The one matcher of the tracker."""
    return match_by_iou(detected_xyxy, tracked_xyxy, MATCH_IOU)


Vote = float | tuple[float, ...]  # P(mask), or the class probabilities (``CLASSES`` order) of a three-class model


def vote(votes: Iterable[Vote], previous: int, *, threshold: float, min_votes: int, hysteresis: float) -> int:
    """A track's label code from its recent P(mask) ``votes``: ``UNKNOWN`` with fewer than ``min_votes``; else
    ``MASK`` if their mean is >= ``threshold``, ``NO_MASK`` below, except that a set label holds: ``MASK`` until the
    mean falls below ``threshold - hysteresis``, ``NO_MASK`` until it reaches ``threshold + hysteresis``. Votes of
    class probabilities: ``vote_classes``."""
    votes = [v for v in votes if not np.isnan(v).any()]
    if len(votes) < max(min_votes, 1):
        return UNKNOWN
    if isinstance(votes[0], tuple):
        return vote_classes(np.mean(votes, axis=0), previous, hysteresis)
    mean = float(np.mean(votes))
    if previous == MASK and mean >= threshold - hysteresis:
        return MASK
    if previous == NO_MASK and mean < threshold + hysteresis:
        return NO_MASK
    return MASK if mean >= threshold else NO_MASK


def vote_classes(mean_probs: np.ndarray, previous: int, hysteresis: float) -> int:
    """The label code of mean class probabilities (``CLASSES`` order): the most probable class, except that
    ``previous`` stays while no class leads it by more than ``2 * hysteresis``."""
    best = int(np.argmax(mean_probs))
    if previous < len(mean_probs) and mean_probs[best] - mean_probs[previous] <= 2 * hysteresis:
        return previous
    return best


@dataclass
class Track:
    """One tracked face: where it is, where it was last detected, its P(mask) and how old all that is."""

    track_id: int
    box_xyxy: np.ndarray  # float64 (4,): the box now
    confidence: float  # detector score when last detected
    detected_xyxy: np.ndarray  # float64 (4,): the box when last detected
    prob_mask: float = float("nan")  # NaN = to be classified
    missed: int = 0  # key frames in a row without a matching detection
    label_age: int = 0  # key frames since the classifier saw it
    lost: bool = False  # the optical flow lost it on the last frame
    votes: tuple[Vote, ...] = ()  # the classifier's last P(mask) values (or class probabilities), newest last
    alone_votes: tuple[Vote, ...] = ()  # the last (as many) of its votes taken while ``alone``, newest last
    covered_against: int = 0  # its votes since its last alone one taken while not alone, against its label
    label: int = UNKNOWN  # voted label code
    hidden: int = 0  # key frames it has been remembered unseen
    seen_frame: int = 0  # frame number of its last detection
    velocity_xy: tuple[float, float] = (0.0, 0.0)  # pixels per frame of its box centre between detections
    look: np.ndarray | None = None  # float32 (128,): its ``appearance`` (None: never seen clear of other faces)
    alone: bool = False  # its detections overlapped no other since (and at) its last classification

    def predicted_xyxy(self, frame: int) -> np.ndarray:
        """Its last detected box moved on at its velocity to ``frame``."""
        return self.detected_xyxy + np.tile(self.velocity_xy, 2) * (frame - self.seen_frame)

    def velocity_to(self, box_xyxy: np.ndarray, frame: int) -> tuple[float, float]:
        """Its velocity after a detection at ``box_xyxy`` on ``frame`` (half the new estimate, half the old)."""
        if frame <= self.seen_frame:
            return self.velocity_xy
        new = ((box_xyxy[:2] + box_xyxy[2:]) - (self.detected_xyxy[:2] + self.detected_xyxy[2:])) / 2 / (
            frame - self.seen_frame)
        vx, vy = (new + self.velocity_xy) / 2
        return float(vx), float(vy)

    @property
    def class_votes(self) -> bool:
        """Its votes are class probabilities (a three-class model), not P(mask)."""
        return bool(self.votes) and isinstance(self.votes[-1], tuple)

    def counted(self, min_votes: int) -> tuple[Vote, ...]:
        """The votes its label comes from: its alone votes if at least ``min_votes`` of them are real (not NaN),
        else all its recent votes."""
        alone = sum(not np.isnan(v).any() for v in self.alone_votes)
        return self.alone_votes if alone >= max(min_votes, 1) else self.votes

    def vote_mean(self, min_votes: int) -> float:
        """Mean P(mask) of the votes its label comes from (``counted``; NaN without any)."""
        if self.class_votes:
            return float(self.vote_probs(min_votes)[MASK])
        votes = self.counted(min_votes)
        return float(np.mean(votes)) if votes else float("nan")

    def vote_probs(self, min_votes: int) -> np.ndarray:
        """Mean class probabilities of the votes its label comes from (``counted``; ``CLASSES`` order; NaN without
        class votes)."""
        return np.mean(self.counted(min_votes), axis=0) if self.class_votes else np.full(len(CLASSES), np.nan)

    def sure(self) -> bool:
        """Its P(mask) is so close to 0 or 1 (three classes: its last vote has a class probability at least
        ``SURE_P``) that the label may be reused without the classifier."""
        if self.class_votes:
            return max(self.votes[-1]) >= SURE_P  # type: ignore[arg-type]
        return self.prob_mask >= SURE_P or self.prob_mask <= 1 - SURE_P

    def agrees(self, threshold: float) -> bool:
        """Its voted label is the label of its last vote (class of the highest probability, or P(mask) vs
        ``threshold``)."""
        if self.class_votes:
            return self.label == int(np.argmax(self.votes[-1]))
        return self.label == (MASK if self.prob_mask >= threshold else NO_MASK)

    def steady(self) -> bool:
        """Its size is within ``MAX_COAST_SCALE`` of its last detection's."""
        scale = float(box_side_px(self.box_xyxy)[0] / max(float(box_side_px(self.detected_xyxy)[0]), 1.0))
        return 1 / MAX_COAST_SCALE <= scale <= MAX_COAST_SCALE


class FaceTracker:
    """Tracks of the faces of a frame sequence; ``update`` once per frame (see the module docstring)."""

    def __init__(
        self, *, max_missed: int = DEFAULT_MAX_MISSED, relabel_every: int = 1, memory_keyframes: int = 0,
        vote_keyframes: int = 1, vote_min_keyframes: int = 1, vote_hysteresis: float = 0.0, threshold: float = 0.5,
        reid_keyframes: int = 0,
    ) -> None:  # fmt: skip
        if min(max_missed, memory_keyframes, reid_keyframes) < 0 or relabel_every < 1 or not (
                1 <= vote_min_keyframes <= vote_keyframes):
            raise ValueError(f"need max_missed, memory_keyframes, reid_keyframes >= 0, relabel_every >= 1 and 1 <= "
                             f"vote_min_keyframes <= vote_keyframes, got {max_missed}, {memory_keyframes}, "
                             f"{reid_keyframes}, {relabel_every}, {vote_min_keyframes}, {vote_keyframes}")
        self.max_missed, self.relabel_every = max_missed, relabel_every
        self.memory_keyframes, self.reid_keyframes = memory_keyframes, reid_keyframes
        self.vote_keyframes, self.vote_min, self.vote_hysteresis = vote_keyframes, vote_min_keyframes, vote_hysteresis
        self.threshold = threshold
        self.tracks: list[Track] = []
        self.memory: list[Track] = []  # unseen tracks whose ids may come back
        self.revived = self.recognised = self.coasted = self.labels_reused = self._unmatched = 0
        self.gray: np.ndarray | None = None  # grayscale of the frame the tracks were last moved to
        self._followed: np.ndarray | None = None  # the frame the tracks were last moved to
        self._next_id = 0
        self._frame = 0  # frames seen
        self._detected_before = False
        self._ious: list[float] = []

    def follow(self, frame_bgr: np.ndarray) -> bool:
        """Move the tracks along the optical flow to ``frame_bgr`` (once per frame); True if one lost its track.
        Faces that left the frame are dropped."""
        if self._followed is not frame_bgr:
            gray = to_gray(frame_bgr)
            self._frame += 1
            if self.gray is not None and self.tracks:
                self._move(self.gray, gray)
            self.gray, self._followed = gray, frame_bgr
        return any(t.lost for t in self.tracks)

    def update(self, frame_bgr: np.ndarray, detections: Faces | None, looks: np.ndarray | None = None) -> Faces:
        """The faces of ``frame_bgr``: the tracks moved along the flow (``detections`` None), or the detections
        matched to the tracks, then the coasted tracks. P(mask) NaN = the face needs the classifier. ``looks``: the
        detections' ``appearance`` if already known (the live worker's, on the detection's own frame)."""
        self.follow(frame_bgr)
        if detections is not None:
            if self._detected_before:
                self._record_drift(detections)
            self._detected_before = True
            keep = max(self.memory_keyframes, self.reid_keyframes)
            self.memory = [replace(t, hidden=t.hidden + 1) for t in self.memory if t.hidden < keep]
            matched, unmatched = self._matched(frame_bgr, detections, looks)
            self.tracks = matched + self._coasting(unmatched)
        return self.faces()

    def faces(self, *, voted: bool = False) -> Faces:
        """The tracks as a face record (boxes, confidence, P(mask), track id; labels are the pipeline's), or
        ``voted``: with the voted labels and the mean of the votes they came from as P(mask) (and class
        probabilities)."""
        if not self.tracks:
            return Faces.empty()
        votes = {"label": [t.label for t in self.tracks], "probs": [t.vote_probs(self.vote_min) for t in self.tracks]
                 if any(t.class_votes for t in self.tracks) else None} if voted else {}  # fmt: skip
        return Faces(np.rint([t.box_xyxy for t in self.tracks]), [t.confidence for t in self.tracks],
                     prob_mask=[t.vote_mean(self.vote_min) if voted else t.prob_mask for t in self.tracks],
                     track_id=[t.track_id for t in self.tracks], **votes)

    def set_prob_mask(self, track_ids: Iterable[int], prob_mask: Iterable[float] | np.ndarray) -> None:
        """The classifier's P(mask) of these tracks, or their class probabilities (rows of ``CLASSES`` columns):
        their label age restarts; each is one more vote, an alone one if the track is ``alone`` now."""
        by_id = {t.track_id: t for t in self.tracks}
        for track_id, prob in zip(track_ids, prob_mask, strict=True):
            track = by_id[int(track_id)]
            ballot: Vote = tuple(float(p) for p in prob) if np.ndim(prob) else float(prob)
            track.prob_mask = ballot[MASK] if isinstance(ballot, tuple) else ballot
            track.label_age = 0
            track.votes = (*track.votes, ballot)[-self.vote_keyframes:]
            if track.alone:
                track.alone_votes, track.covered_against = (*track.alone_votes, ballot)[-self.vote_keyframes:], 0
            else:
                track.covered_against += not track.agrees(self.threshold)  # a vote for its label is no change
                if track.covered_against > self.memory_keyframes:  # covered this long against it: it may have changed
                    track.alone_votes = ()
            track.label = vote(track.counted(self.vote_min), track.label, threshold=self.threshold,
                               min_votes=self.vote_min, hysteresis=self.vote_hysteresis)  # fmt: skip

    def _forget(self, gone: Iterable[Track]) -> None:
        """Remember tracks that are no longer seen (for up to ``memory_keyframes`` or ``reid_keyframes``)."""
        if max(self.memory_keyframes, self.reid_keyframes) > 0:
            self.memory.extend(replace(t, hidden=0, lost=False) for t in gone)

    def _matched(self, frame_bgr: np.ndarray, detections: Faces, looks: np.ndarray | None
                 ) -> tuple[list[Track], list[Track]]:  # fmt: skip
        """One track per detection, in the detections' order: its matched track's, or a new one; and the live tracks
        no detection continued (in their order)."""
        pair = match_tracks(detections.xyxy, np.array([t.box_xyxy for t in self.tracks]).reshape(-1, 4))
        fresh = np.flatnonzero(pair < 0)
        # second stage: the rest against the unclaimed live tracks and the remembered ones, at their predicted boxes
        # (a box the flow dragged away with someone passing in front is found again where its face went on)
        paired = set(pair.tolist())
        unclaimed = [t for j, t in enumerate(self.tracks) if j not in paired]
        candidates = unclaimed + [t for t in self.memory if t.hidden <= self.memory_keyframes]
        predicted = np.array([t.predicted_xyxy(self._frame) for t in candidates]).reshape(-1, 4)
        back = match_by_iou(detections.xyxy[fresh], predicted, MEMORY_IOU)
        revived = {int(d): candidates[int(m)] for d, m in zip(fresh, back, strict=True) if m >= 0}
        self.revived += len(revived)
        if not self.reid_keyframes:
            looks = None
        elif looks is None:
            looks = appearance(frame_bgr, detections.xyxy)
        recognised: dict[int, Track] = {}
        if looks is not None:  # third stage: the rest by their look
            left = [t for t in unclaimed + self.memory if all(t is not r for r in revived.values())]
            recognised = self._recognised(detections.xyxy, looks, [d for d in fresh if d not in revived], left)
            self.recognised += len(recognised)
            revived |= recognised
        taken = {id(t) for t in revived.values()}
        self.memory = [t for t in self.memory if id(t) not in taken]
        unmatched = [t for t in unclaimed if id(t) not in taken]
        out = []
        for i, (box, conf, j, single) in enumerate(zip(detections.xyxy.astype(np.float64),
                                                       detections.confidence.tolist(), pair.tolist(),
                                                       alone(detections.xyxy).tolist(), strict=True)):  # fmt: skip
            seen = {"box_xyxy": box, "confidence": conf, "detected_xyxy": box, "missed": 0, "lost": False,
                    "seen_frame": self._frame, "alone": single}
            if i in revived:
                old = revived[i]
                velocity = (0.0, 0.0) if i in recognised else old.velocity_to(box, self._frame)
                out.append(replace(old, **seen, hidden=0, prob_mask=float("nan"), label_age=0, velocity_xy=velocity))
            elif j < 0:
                out.append(Track(self._next_id, box, conf, box, seen_frame=self._frame, alone=single))
                self._next_id += 1
            else:
                old = self.tracks[j]
                reuse = single and self._keeps_label(old) and iou_matrix(box, old.box_xyxy)[0, 0] >= RELABEL_MIN_IOU
                self.labels_reused += int(reuse)
                out.append(replace(old, **seen, velocity_xy=old.velocity_to(box, self._frame),
                                   prob_mask=old.prob_mask if reuse else float("nan"),
                                   label_age=old.label_age + 1 if reuse else 0))  # fmt: skip
        return (out if looks is None else self._looked(out, looks)), unmatched

    def _keeps_label(self, track: Track) -> bool:
        """Whether a detection matching ``track`` at the next key frame, overlapping no other, keeps its sure label (no
        classifier)."""
        return (self.relabel_every > 1 and not track.lost and track.alone and track.sure()
                and len(track.votes) >= self.vote_min and track.agrees(self.threshold)
                and track.label_age + 1 < self.relabel_every)  # fmt: skip

    def label_kept_xyxy(self) -> np.ndarray:
        """float64 (k, 4): the boxes of the tracks whose sure label a detection overlapping them by
        ``RELABEL_MIN_IOU`` (and no other detection: ``alone``) keeps at the next key frame: those faces need no
        classifier there."""
        return np.array([t.box_xyxy for t in self.tracks if self._keeps_label(t)], np.float64).reshape(-1, 4)

    def _recognised(self, boxes_xyxy: np.ndarray, looks: np.ndarray, fresh: list[int], candidates: list[Track]
                    ) -> dict[int, Track]:  # fmt: skip
        """Fresh detections (indices) -> the unseen track each looks like (see the module docstring)."""
        candidates = [t for t in candidates if t.look is not None and t.hidden <= self.reid_keyframes]
        if not fresh or not candidates:
            return {}
        score = similarity(looks[fresh], np.stack([t.look for t in candidates]))
        scale = box_side_px(boxes_xyxy[fresh])[:, None] / np.maximum(
            box_side_px(np.array([t.detected_xyxy for t in candidates])), 1.0)[None]
        score[(scale > REID_MAX_SCALE) | (scale < 1 / REID_MAX_SCALE)] = 0.0
        pair = match_by_score(score, REID_MIN_SIMILARITY)
        return {fresh[k]: candidates[int(m)] for k, m in enumerate(pair) if m >= 0}

    @staticmethod
    def _looked(tracks: list[Track], looks: np.ndarray) -> list[Track]:
        """The tracks (one per detection) with the look of their detection averaged in, where it overlaps no
        other detection (``Track.alone``: a covered face looks like whoever covers it)."""
        return [replace(t, look=look if t.look is None else (t.look + look) / 2) if t.alone else t
                for t, look in zip(tracks, looks, strict=True)]  # fmt: skip

    def _coasting(self, unmatched: list[Track]) -> list[Track]:
        """Of the tracks no detection matched (``_matched``), those that may coast one more key frame (missed count
        raised); the others are remembered."""
        keep, gone = [], []
        for t in unmatched:
            if t.missed + 1 <= self.max_missed and t.steady() and not t.lost and not np.isnan(t.prob_mask):
                keep.append(replace(t, missed=t.missed + 1, label_age=t.label_age + 1, alone=False))  # not seen
            else:
                gone.append(t)
        self._forget(gone)
        self.coasted += len(keep)
        return keep

    def _move(self, gray_before: np.ndarray, gray_now: np.ndarray) -> None:
        """Every track moved along the flow; tracks with an empty box (they left the frame) dropped."""
        moved, lost = flow_boxes(gray_before, gray_now, np.array([t.box_xyxy for t in self.tracks]))
        moved = clip_boxes(np.rint(moved), gray_now.shape[1::-1])
        inside = (moved[:, 2:] > moved[:, :2]).all(axis=1)
        self._forget(t for t, ok in zip(self.tracks, inside, strict=True) if not ok)  # left the frame: not drawn
        self.tracks = [replace(t, box_xyxy=box, lost=bool(gone))
                       for t, box, gone, ok in zip(self.tracks, moved, lost, inside, strict=True) if ok]

    def _record_drift(self, detections: Faces) -> None:
        """IoU of each fresh detection with its best tracked box; unmatched on either side counted."""
        tracked = np.array([t.box_xyxy for t in self.tracks]).reshape(-1, 4)
        if len(tracked) == 0 or len(detections) == 0:
            self._unmatched += abs(len(tracked) - len(detections))
            return
        best = iou_matrix(detections.xyxy, tracked).max(axis=1)
        self._ious.extend(best[best > 0].tolist())
        self._unmatched += int((best == 0).sum()) + max(0, len(tracked) - len(detections))

    def quality(self) -> dict[str, Any]:
        """How well tracked boxes matched fresh detections, coasted faces, reused labels."""
        return {
            "drift_mean_iou": round(float(np.mean(self._ious)), 3) if self._ious else None,
            "drift_min_iou": round(float(np.min(self._ious)), 3) if self._ious else None,
            "drift_unmatched": self._unmatched,
            "max_missed": self.max_missed,
            "coasted_faces": self.coasted,
            "relabel_every": self.relabel_every,
            "labels_reused": self.labels_reused,
            "memory_keyframes": self.memory_keyframes,
            "ids_revived": self.revived,
            "reid_keyframes": self.reid_keyframes,
            "ids_recognised": self.recognised,
        }
