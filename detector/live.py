"""``LivePipeline``: the pipeline for cameras and streams, where no frame waits for the face detector.

The face detector and the classifier run on one worker thread (OpenCV DNN, ONNX Runtime and LiteRT release the
GIL while they compute); each frame only moves the tracks along the optical flow and picks up a finished result:

1. a detection is due (a reference to the frame and its grayscale) when the worker is idle and ``detect_every``
   frames passed since the last one, or at once when a track is lost; it starts when the loop is done with that
   frame (``frame_done``: after drawing, writing and showing it), so the worker's start does not slow the frame;
2. the worker finds the faces on that frame, their looks (``appearance``), and classifies in one batch the faces
   that will need it: not those overlapping a track whose sure label the tracker keeps
   (``FaceTracker.label_kept_xyxy``, the in-order pipeline's relabel rule) and no other detection (``alone``);
3. a later frame applies the result: the detection's boxes are carried forward from the detection's frame to this
   one, then matched to the tracks (``FaceTracker.update``), which the flow moved meanwhile; a face that needs a
   P(mask) takes the worker's one for its box. A detected box that overlaps a track's box on its own frame moves as
   that track moved since (``move_like``: the tracker's optical flow, already paid for); only the others (new
   faces) are carried by a new optical flow between the two frames (``carry_boxes``).

One detection is in flight at a time and results are applied in the order they were submitted (a result older
than the last applied one is dropped), so boxes never jump back. Video files keep ``Pipeline``: deterministic,
in order, every frame (``tracking.live``: auto = live for cameras and streams only).

The worker yields the cores to the frames: on Linux its thread runs ``WORKER_NICE`` nice levels below the frame
loop, and so do the runtimes' own threads (``from_config`` builds the models on such a thread, and threads
inherit it), so a detection takes the time the frames leave and a frame is not slowed by one in flight. With
CenterFace on ONNX Runtime, OpenCV runs single-threaded: its work is the frames' (optical flow), and a parallel
OpenCV call would wait for a core the detection holds (p95 frame time; docs/PERFORMANCE.md).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from detector.pipeline import Classify, Detect, Pipeline
from detector.tracking import RELABEL_MIN_IOU, FaceTracker, alone, appearance, flow_boxes
from maskwatch.faces import MASK, Faces
from maskwatch.geometry import clip_boxes, match_by_iou

if TYPE_CHECKING:
    from maskwatch.config import Config

LIVE_KINDS = ("camera", "stream")  # source kinds that get the live pipeline under tracking.live: auto
SAME_BOX_IOU = 0.5  # a tracked face and a carried detection overlapping this much are the same box
WORKER_NICE = 5  # nice levels the worker's threads run below the frame loop (Linux: per thread; CFS weight ~1/3)


def lower_thread_priority() -> None:
    """Run the calling thread (and the threads it starts later) ``WORKER_NICE`` nice levels lower; Linux only (there
    ``setpriority`` on a thread id is per thread), elsewhere nothing."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError):
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + WORKER_NICE)


def use_live(mode: str, source_kind: str) -> bool:
    """Whether ``tracking.live`` (auto | on | off) selects the live pipeline for this source kind; images never."""
    if source_kind == "images" or mode == "off":
        return False
    return mode == "on" or source_kind in LIVE_KINDS


def carry_boxes(gray_then: np.ndarray, gray_now: np.ndarray, xyxy: np.ndarray) -> np.ndarray:
    """Boxes of frame ``gray_then`` moved to frame ``gray_now`` by the optical flow of a grid of points in each
    (the tracker's MedianFlow step); a box with too few reliable points stays put. float64 (n, 4), clipped."""
    xyxy = np.asarray(xyxy, np.float64).reshape(-1, 4)
    if len(xyxy) == 0 or gray_then is gray_now:
        return xyxy.copy()
    return clip_boxes(flow_boxes(gray_then, gray_now, xyxy)[0], gray_now.shape[1::-1])


def move_like(xyxy: np.ndarray, before_xyxy: np.ndarray, after_xyxy: np.ndarray) -> np.ndarray:
    """Boxes moved as the paired boxes ``before_xyxy`` -> ``after_xyxy`` moved: their centre shift, and their size
    change as a scale about the centre. float64 (n, 4); all three (n, 4)."""
    xyxy, before, after = (np.asarray(b, np.float64).reshape(-1, 4) for b in (xyxy, before_xyxy, after_xyxy))
    side = np.sqrt(np.prod(np.clip(before[:, 2:] - before[:, :2], 1e-6, None), axis=1))
    scale = (np.sqrt(np.prod(np.clip(after[:, 2:] - after[:, :2], 0, None), axis=1)) / side)[:, None]
    center_before, center_after = (before[:, :2] + before[:, 2:]) / 2, (after[:, :2] + after[:, 2:]) / 2
    center = center_after + ((xyxy[:, :2] + xyxy[:, 2:]) / 2 - center_before) * scale
    half = (xyxy[:, 2:] - xyxy[:, :2]) / 2 * scale
    return np.concatenate([center - half, center + half], axis=1)


@dataclass(frozen=True)
class Detection:
    """A worker's result: the faces of frame ``seq`` with their P(mask) (or class probabilities, ``Pipeline.scores``),
    their looks (``appearance`` on that frame), and how long the worker took."""

    seq: int
    faces: Faces
    prob_mask: np.ndarray
    looks: np.ndarray
    worker_s: float


class LivePipeline(Pipeline):
    """``pipeline(frame_bgr) -> Faces`` without waiting for the detector (see the module docstring).

    ``last_timings_ms``: ``detect`` = optical flow and applying a result on this frame, ``classify`` = the
    classifier on this frame (only for a face the worker did not classify, normally 0). ``close()`` stops the
    worker. ``applied`` lists ``(submitted frame, applied frame)`` of each result, in order.
    """

    tracker: FaceTracker  # always tracking (``track=True``), never None as in ``Pipeline``

    def __init__(self, detect: Detect, classify: Classify, **kwargs: Any) -> None:
        super().__init__(detect, classify, **kwargs | {"track": True})  # detect_every 1: as often as it can
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="live-detector",
                                                               initializer=lower_thread_priority)  # fmt: skip
        # the detection in flight, its frame's grayscale and the tracks' boxes on that frame (by track id)
        self._pending: tuple[concurrent.futures.Future[Detection], np.ndarray, dict[int, np.ndarray]] | None = None
        self._due: tuple[Callable[[], Detection], np.ndarray, dict[int, np.ndarray]] | None = None  # until frame_done
        self._seq = -1  # index of the current frame
        self._last_submit: int | None = None
        self._last_applied = -1
        self.applied: list[tuple[int, int]] = []
        self.worker_ms: list[float] = []
        self.dropped = 0
        self._classify_lock = threading.Lock()
        self.classify, self.scores = self._locked(classify), self._locked(self.scores)

    @classmethod
    def from_config(cls, cfg: Config, *, video: bool, models: tuple[Detect, Classify] | None = None,
                    **tracking: Any) -> Pipeline:
        """``Pipeline.from_config`` with the models built on a low-priority thread (``lower_thread_priority``):
        the runtimes' worker threads, started there, inherit its priority."""
        if models is None:
            from detector.pipeline import build_models

            with concurrent.futures.ThreadPoolExecutor(1, initializer=lower_thread_priority) as builder:
                models = builder.submit(build_models, cfg, video=video).result()
        if cfg.face_detector.model == "centerface" and cfg.face_detector.backend == "onnxruntime":
            cv2.setNumThreads(1)  # no OpenCV DNN in use: the frame loop's OpenCV calls stay on its own thread
        return super().from_config(cfg, video=video, models=models, **tracking)

    def _locate(self, frame_bgr: np.ndarray) -> Faces:
        """The tracks moved along the flow, with a finished detection applied; the next one submitted when due
        (the classifier then runs only for faces the worker left)."""
        self.frame_done()  # a due detection the caller did not start (it never calls ``frame_done``) starts now
        self._seq += 1
        lost = self.tracker.follow(frame_bgr)
        faces = self._apply_ready(frame_bgr)
        if faces is None:
            self.tracked_frames += 1
            faces = self.tracker.update(frame_bgr, None)
        self._maybe_submit(frame_bgr, lost)
        return faces

    def _maybe_submit(self, frame_bgr: np.ndarray, lost: bool) -> None:
        if self._pending is not None or self._due is not None:
            return
        due = self._last_submit is None or self._seq - self._last_submit >= self.detect_every
        if not (due or lost):
            return
        self.early_keyframes += int(not due)
        self._last_submit = self._seq
        boxes = {t.track_id: t.box_xyxy.copy() for t in self.tracker.tracks}
        work = functools.partial(self._work, self._seq, frame_bgr, self.tracker.label_kept_xyxy())
        self._due = (work, self.tracker.gray, boxes)

    def frame_done(self) -> None:
        """The loop is done with this frame (drawn, written, shown): a detection due on it starts now, so that the
        worker's start does not compete with the frame's own work."""
        if self._due is not None:
            work, gray, boxes = self._due
            self._due = None
            self._pending = (self._executor.submit(work), gray, boxes)

    def _locked(self, classify: Classify) -> Classify:
        def locked(crops: Sequence[np.ndarray]) -> np.ndarray:
            with self._classify_lock:  # one interpreter: never called from two threads at once
                return classify(crops)

        locked.threshold = getattr(classify, "threshold", self.threshold)  # type: ignore[attr-defined]
        return locked

    def _work(self, seq: int, frame_bgr: np.ndarray, label_kept_xyxy: np.ndarray) -> Detection:
        """On the worker thread: the detector on one frame, and the classifier (one batch) on the faces that will
        need it: not those overlapping a track whose sure label they keep (``FaceTracker.label_kept_xyxy``) and no
        other detection (``alone``): NaN."""
        t0 = time.perf_counter()
        faces = self.detect(frame_bgr)
        todo = np.flatnonzero((match_by_iou(faces.xyxy, label_kept_xyxy, RELABEL_MIN_IOU) < 0) | ~alone(faces.xyxy))
        scores = np.asarray(self.scores(faces[todo].crops(frame_bgr)) if len(todo) else [], np.float32)
        prob = np.full((len(faces), *scores.shape[1:]), np.nan, np.float32)
        prob[todo] = scores
        return Detection(seq, faces, prob, appearance(frame_bgr, faces.xyxy), time.perf_counter() - t0)

    def _apply_ready(self, frame_bgr: np.ndarray) -> Faces | None:
        """The finished detection (if any) carried to this frame and matched to the tracks; None if none is ready."""
        if self._pending is None or not self._pending[0].done():
            return None
        future, gray_then, tracked_then = self._pending
        self._pending = None
        result = future.result()  # a worker exception surfaces here, on the frame that would apply it
        self.worker_ms.append(1000 * result.worker_s)
        if result.seq <= self._last_applied:
            self.dropped += 1
            return None
        self._last_applied = result.seq
        self.applied.append((result.seq, self._seq))
        self.keyframes += 1
        self.model_calls += int(not np.isnan(result.prob_mask).all())  # the worker ran the classifier
        carried = self._carried(result.faces.xyxy, tracked_then, gray_then, frame_bgr.shape[1::-1])
        detections = Faces(np.rint(carried), result.faces.confidence)
        keep = (detections.size_wh > 0).all(axis=1)
        faces = self.tracker.update(frame_bgr, detections[np.flatnonzero(keep)], result.looks[keep])
        return self._with_worker_prob(faces, detections.xyxy[keep], result.prob_mask[keep])

    def _carried(self, xyxy: np.ndarray, tracked_then: dict[int, np.ndarray], gray_then: np.ndarray,
                 frame_wh: tuple[int, int]) -> np.ndarray:  # fmt: skip
        """The detection's boxes on this frame: moved like the track each overlaps on the detection's frame
        (``move_like``), the rest by optical flow (``carry_boxes``). float64 (n, 4), clipped to the frame."""
        now = {t.track_id: t.box_xyxy for t in self.tracker.tracks if t.track_id in tracked_then}
        ids = list(now)
        pair = match_by_iou(xyxy, np.array([tracked_then[i] for i in ids]).reshape(-1, 4), SAME_BOX_IOU)
        out = np.asarray(xyxy, np.float64).reshape(-1, 4).copy()
        hit, rest = pair >= 0, pair < 0
        out[hit] = move_like(out[hit], np.array([tracked_then[ids[j]] for j in pair[hit]]),
                             np.array([now[ids[j]] for j in pair[hit]]))  # fmt: skip
        if rest.any():  # the others (new faces): a new optical flow between the two frames
            out[rest] = carry_boxes(gray_then, self.tracker.gray, out[rest])
        return clip_boxes(out, frame_wh)

    def _with_worker_prob(self, faces: Faces, carried_xyxy: np.ndarray, prob: np.ndarray) -> Faces:
        """Faces without a P(mask) take the worker's P(mask) of the carried detection with their box."""
        todo = np.flatnonzero(np.isnan(faces.prob_mask))
        pair = match_by_iou(faces.xyxy[todo], carried_xyxy, SAME_BOX_IOU)
        hit = pair >= 0
        classified = ~np.isnan(prob).any(axis=tuple(range(1, prob.ndim)))
        hit[hit] = classified[pair[hit]]  # a face the worker left (NaN) gets its P(mask) from ``_label``
        self.tracker.set_prob_mask(faces.track_id[todo[hit]], prob[pair[hit]])
        new_prob = faces.prob_mask.copy()
        new_prob[todo[hit]] = prob[pair[hit]] if prob.ndim == 1 else prob[pair[hit], MASK]
        return faces.with_labels(new_prob, self.threshold)

    def wait_idle(self, timeout_s: float | None = None) -> None:
        """Block until the detection in flight (if any, a due one started) is finished (tests, a clean shutdown)."""
        self.frame_done()
        if self._pending is not None:
            concurrent.futures.wait([self._pending[0]], timeout=timeout_s)

    def close(self) -> None:
        """Stop the worker (a detection in flight finishes in the background and is dropped)."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    def quality(self) -> dict[str, Any]:
        """``Pipeline.quality`` plus the live figures: results applied / dropped, frames from submission to
        application, and the worker's ms per detection."""
        lag = [applied - submitted for submitted, applied in self.applied]
        return super().quality() | {
            "live": True,
            "results_applied": len(self.applied),
            "results_dropped": self.dropped,
            "lag_frames_mean": round(float(np.mean(lag)), 2) if lag else None,
            "lag_frames_max": max(lag, default=None),
            "worker_ms_mean": round(float(np.mean(self.worker_ms)), 2) if self.worker_ms else None,
        }


def pipeline_for(cfg: Config, source_kind: str) -> Pipeline:
    """The pipeline ``detector.webcam`` uses for a source kind: live for cameras and streams (``tracking.live``),
    the in-order ``Pipeline`` for video files, no tracking for images."""
    video = source_kind != "images"
    cls = LivePipeline if use_live(cfg.tracking.live, source_kind) else Pipeline
    return cls.from_config(cfg, video=video)

