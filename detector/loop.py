"""The per-frame loop: read -> pipeline (detect, track, classify) -> draw -> write / log / show."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Self

import cv2
import numpy as np

from detector.draw import DrawStyle, draw
from detector.sinks import Outputs, frame_record
from detector.sources import Frame
from detector.stats import RunStats
from maskwatch.errors import UserError
from maskwatch.faces import Faces
from maskwatch.interrupts import held
from maskwatch.labels import count_labels

if TYPE_CHECKING:
    from detector.alerts import Alerts
    from detector.web import Viewer

QUIT_KEYS = (ord("q"), ord("Q"), 27)  # q or Esc


class Window:
    """An OpenCV window; calling it shows a frame and returns False once q or Esc was pressed."""

    title = "maskwatch"

    def __enter__(self) -> Self:
        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise UserError("no display available: add --no-display (and --output PATH to keep the result)")
        return self

    def __call__(self, image_bgr: np.ndarray) -> bool:
        try:
            cv2.imshow(self.title, image_bgr)
            key = cv2.waitKey(1) & 0xFF
        except cv2.error as exc:
            raise UserError(f"cannot open a window ({exc.msg.strip()}): add --no-display") from None
        return key not in QUIT_KEYS

    def __exit__(self, *exc: object) -> None:
        try:
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)
        except cv2.error:
            pass


def run_loop(
    frames: Iterable[Frame],
    pipeline: Callable[[np.ndarray], Faces],
    *,
    style: DrawStyle,
    outputs: Outputs,
    stats: RunStats,
    show: Callable[[np.ndarray], bool] | None = None,
    max_frames: int | None = None,
    alerts: Alerts | None = None,
    viewer: Viewer | None = None,
) -> RunStats:
    """Process ``frames`` until they end, ``max_frames`` were processed, or ``show`` returns False.

    ``pipeline`` gives each frame's face record (``detector.pipeline.Pipeline``; its ``last_timings_ms``, if any,
    split the stats' detect and classify stages). ``stats`` is updated frame by frame, so it is complete up to the
    last finished frame even if the loop is interrupted. ``alerts`` (optional) sees every frame's faces and annotated
    frame; its events go into that frame's log line as ``"alerts": [...]`` and its banner onto the frame. ``viewer``
    (optional, the web view) gets every annotated frame with its faces and events; it must not block.
    """
    it = iter(frames)
    while max_frames is None or stats.frames < max_frames:
        t0 = time.perf_counter()
        frame = next(it, None)
        if frame is None:
            break
        t1 = time.perf_counter()
        faces = pipeline(frame.image_bgr)
        t2 = time.perf_counter()
        stats.people.update(faces, frame.time_s)
        counts = stats.people.counts() if stats.people.persons else None  # images (no track ids): face counts
        banner = alerts.banner(frame.time_s) if alerts is not None else None
        annotated = draw(frame.image_bgr, faces, style, fps=stats.smoothed_fps(), banner=banner, people=counts)
        t3 = time.perf_counter()
        with held():  # a Ctrl-C waits for the frame's alerts, video frame and log line: they stay in step
            events = alerts.update(frame, faces, annotated) if alerts is not None else []
            outputs.sink.write(frame, annotated)
            outputs.log.write(frame_record(frame, faces) | ({"alerts": events} if events else {}))
        if viewer is not None:
            viewer.publish(frame, faces, annotated, stats, events)
        keep_going = show(annotated) if show is not None else True
        t4 = time.perf_counter()
        getattr(pipeline, "frame_done", lambda: None)()  # the live pipeline's next detection starts now
        n = count_labels(faces.label)
        stats.add_frame(n["mask"], n["no_mask"],
                        {"read": t1 - t0, **_model_stages_s(pipeline, t2 - t1), "draw": t3 - t2, "write": t4 - t3},
                        n["unknown"], n_incorrect=n["incorrect"])  # fmt: skip
        if not keep_going:
            break
    return stats


def _model_stages_s(pipeline: Callable[[np.ndarray], Faces], total_s: float) -> dict[str, float]:
    """Seconds of the pipeline's detect and classify stages (all detect if it does not time them)."""
    ms = getattr(pipeline, "last_timings_ms", None)
    if not ms:
        return {"detect": total_s, "classify": 0.0}
    return {"detect": ms["detect"] / 1000, "classify": ms["classify"] / 1000}
