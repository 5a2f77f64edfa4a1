"""``Pipeline``: face detector -> tracker -> classifier, built once; ``pipeline(frame_bgr) -> Faces``.

The one wiring of the models, used by ``python -m detector.webcam``, the benchmark and the video evaluation. In
video (``detect_every`` > 1) the face detector runs on key frames only: every ``detect_every``-th frame, or at once
when a track is lost; between, the tracker carries the faces along the optical flow. The classifier sees, in one
batch per frame, only the faces without a P(mask): new ones, unsure ones and those due for a relabel. Tracked
faces carry a track id and their track's voted label (``detector.tracking``: mean P(mask) of the last key frames,
``unknown`` while there are too few). A three-class classifier (``class_names`` with ``incorrect``) gives class
probabilities instead (``scorer``): the faces carry them (``Faces.probs``) and the tracks vote on them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from detector.tracking import PRODUCT_TRACKING, FaceTracker
from maskwatch.errors import UserError
from maskwatch.faces import Faces
from maskwatch.labels import CLASSES, INCORRECT, LABELS, unsure

if TYPE_CHECKING:
    from maskwatch.config import Config

Detect = Callable[[np.ndarray], Faces]
Classify = Callable[[Sequence[np.ndarray]], np.ndarray]


def scorer(classify: Classify) -> Classify:
    """What the pipeline asks of a classifier: P(mask) (n,) of a binary one (``classify`` itself), or the class
    probabilities (n, 3) in ``CLASSES`` order of one whose ``class_names`` include ``incorrect``."""
    names = tuple(getattr(classify, "class_names", ()))
    if LABELS[INCORRECT] not in names:
        return classify
    if set(names) != set(CLASSES):
        raise UserError(f"the classifier's classes {', '.join(names)} are not the detector's {', '.join(CLASSES)}")
    columns = [names.index(name) for name in CLASSES]
    return lambda crops: np.asarray(classify.probabilities(crops))[:, columns]  # type: ignore[attr-defined]


def build_models(cfg: Config, *, video: bool) -> tuple[Detect, Classify]:
    """The configured face detector and mask classifier, built once."""
    from detector.classifier import MaskClassifier
    from face_detector import build_face_detector

    return build_face_detector(cfg, video=video), MaskClassifier.from_config(cfg)


class Pipeline:
    """``pipeline(frame_bgr) -> Faces`` with boxes, confidence, P(mask), label and track id (-1 without tracking).

    ``last_timings_ms``: ``detect`` (face detector and optical flow) and ``classify`` of the last frame.
    """

    def __init__(
        self, detect: Detect, classify: Classify, *, threshold: float = 0.5, detect_every: int = 1,
        track: bool | None = None, unsure_band: tuple[float, float] = (0.5, 0.5), min_face_px: int = 0, **tracking: Any,
    ) -> None:  # fmt: skip
        """``track`` (default: ``detect_every`` > 1) makes a ``FaceTracker(**tracking)``."""
        if detect_every < 1:
            raise ValueError(f"detect_every must be >= 1, got {detect_every}")
        self.detect, self.classify, self.scores = detect, classify, scorer(classify)
        self.threshold, self.detect_every = threshold, detect_every
        self.unsure_band, self.min_face_px = unsure_band, min_face_px
        tracked = detect_every > 1 if track is None else track
        self.tracker = FaceTracker(threshold=threshold, **tracking) if tracked else None
        self._since_key: int | None = None  # frames since the last key frame (None: none yet)
        self.keyframes = self.early_keyframes = self.tracked_frames = self.model_calls = 0
        self.last_timings_ms: dict[str, float] = {"detect": 0.0, "classify": 0.0}

    @classmethod
    def from_config(cls, cfg: Config, *, video: bool, models: tuple[Detect, Classify] | None = None,
                    **tracking: Any) -> Pipeline:
        """The configured face detector and classifier (or ``models`` already built from this config, for a fresh
        tracker around them); tracking only for ``video`` (images are unrelated). ``tracking``: ``FaceTracker``
        keyword arguments replacing the product's (evaluations compare variants)."""
        detect, classify = models if models is not None else build_models(cfg, video=video)
        t = cfg.tracking
        return cls(detect, classify, threshold=cfg.classifier.threshold,
                   detect_every=t.detect_every if video else 1, max_missed=t.max_missed,
                   relabel_every=t.relabel_every, track=video, unsure_band=cfg.classifier.unsure_band,
                   min_face_px=cfg.classifier.min_face_px,
                   **{**PRODUCT_TRACKING, "reid_keyframes": t.reid_keyframes, **tracking})  # fmt: skip

    def __call__(self, frame_bgr: np.ndarray) -> Faces:
        t0 = time.perf_counter()
        faces = self._locate(frame_bgr)
        t1 = time.perf_counter()
        faces = self._unsure(self._label(frame_bgr, faces))
        t2 = time.perf_counter()
        self.last_timings_ms = {"detect": 1000 * (t1 - t0), "classify": 1000 * (t2 - t1)}
        return faces

    def frame_done(self) -> None:
        """Called by the loop once a frame is drawn, written and shown (the live pipeline starts work here)."""

    def _locate(self, frame_bgr: np.ndarray) -> Faces:
        """This frame's boxes: the detector's on a key frame (matched to the tracks), else the tracked ones."""
        if self.tracker is None:
            self.keyframes += 1
            return self.detect(frame_bgr)
        lost = self.tracker.follow(frame_bgr)
        due = self._since_key is None or self._since_key + 1 >= self.detect_every
        if not (due or lost):
            self._since_key = (self._since_key or 0) + 1
            self.tracked_frames += 1
            return self.tracker.update(frame_bgr, None)
        self.keyframes += 1
        self.early_keyframes += int(not due)
        self._since_key = 0
        return self.tracker.update(frame_bgr, self.detect(frame_bgr))

    def _unsure(self, faces: Faces) -> Faces:
        """Faces too small to judge, or with a P(mask) in ``unsure_band``, labelled unknown (``unsure``)."""
        if not len(faces) or (self.min_face_px <= 0 and self.unsure_band[0] >= self.unsure_band[1]):
            return faces
        heights = faces.xyxy[:, 3] - faces.xyxy[:, 1]
        return faces.with_unknown(unsure(np.nan_to_num(faces.prob_mask, nan=0.5), heights,
                                         unsure_band=self.unsure_band, min_face_px=self.min_face_px))

    def _label(self, frame_bgr: np.ndarray, faces: Faces) -> Faces:
        """P(mask) (or class probabilities) of the faces that have none, in one classifier batch, and every face's
        label: its track's vote (the new scores are written back as votes), or ``labels_from_prob`` without
        tracking."""
        todo = np.flatnonzero(np.isnan(faces.prob_mask))
        scores = np.zeros(0, np.float32)
        if len(todo):
            self.model_calls += 1
            scores = np.asarray(self.scores(faces[todo].crops(frame_bgr)), np.float32)
        if self.tracker is not None:
            self.tracker.set_prob_mask(faces.track_id[todo], scores)
            return self.tracker.faces(voted=True)
        # without tracking every face comes from the detector unclassified (class probabilities: no earlier ones)
        full = faces.prob_mask.copy() if scores.ndim == 1 else np.full((len(faces), scores.shape[1]), np.nan)
        full[todo] = scores
        return faces.with_labels(full, self.threshold)

    def quality(self) -> dict[str, Any]:
        """Key and tracked frames, classifier calls, and the tracker's figures (drift, coasting, reused labels)."""
        counts = {"detect_every": self.detect_every, "keyframes": self.keyframes,
                  "early_keyframes": self.early_keyframes, "tracked_frames": self.tracked_frames,
                  "classifier_calls": self.model_calls}  # fmt: skip
        return counts | (self.tracker.quality() if self.tracker is not None else {})
