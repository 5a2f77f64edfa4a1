"""The per-frame loop: read -> detect -> classify (one batch) -> draw -> write / log / show."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Self

import cv2
import numpy as np

from detector.draw import DrawStyle, draw, is_mask
from detector.sinks import JsonlLog, Sink, frame_record
from detector.sources import Frame
from detector.stats import RunStats
from maskwatch.errors import UserError
from maskwatch.faces import Faces

QUIT_KEYS = (ord("q"), ord("Q"), 27)  # q or Esc

Detect = Callable[[np.ndarray], Faces]
Classify = Callable[[Sequence[np.ndarray]], np.ndarray]


class Window:
    """An OpenCV window; calling it shows a frame and returns False once q or Esc was pressed."""

    def __init__(self, title: str = "maskwatch") -> None:
        self.title = title

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
    detect: Detect,
    classify: Classify,
    *,
    threshold: float,
    style: DrawStyle,
    sink: Sink,
    log: JsonlLog,
    stats: RunStats,
    crop_margin: float = 0.0,
    show: Callable[[np.ndarray], bool] | None = None,
    max_frames: int | None = None,
) -> RunStats:
    """Process ``frames`` until they end, ``max_frames`` were processed, or ``show`` returns False.

    All faces of a frame are classified in one ``classify`` call. ``stats`` is updated frame by frame, so it is
    complete up to the last finished frame even if the loop is interrupted.
    """
    it = iter(frames)
    while max_frames is None or stats.frames < max_frames:
        t0 = time.perf_counter()
        frame = next(it, None)
        if frame is None:
            break
        t1 = time.perf_counter()
        faces = detect(frame.image_bgr)
        t2 = time.perf_counter()
        prob_mask = classify(faces.crops(frame.image_bgr, margin=crop_margin)) if len(faces) else np.zeros(0)
        t3 = time.perf_counter()
        annotated = draw(frame.image_bgr, faces, prob_mask, threshold=threshold, style=style,
                         fps=stats.smoothed_fps())
        t4 = time.perf_counter()
        sink.write(frame, annotated)
        log.write(frame_record(frame, faces, prob_mask, threshold))
        keep_going = show(annotated) if show is not None else True
        t5 = time.perf_counter()
        n_mask = int(is_mask(prob_mask, threshold).sum())
        stats.add_frame(n_mask, len(faces) - n_mask, {
            "read": t1 - t0, "detect": t2 - t1, "classify": t3 - t2, "draw": t4 - t3, "write": t5 - t4,
        })
        if not keep_going:
            break
    return stats
