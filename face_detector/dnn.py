"""What the OpenCV DNN face detectors share: the frame check, OpenCV's threads, one network per input size, and the
selection of boxes (clip to the frame, score and size filters, NMS)."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from maskwatch.faces import Faces
from maskwatch.geometry import nms


def set_opencv_threads(threads: int) -> None:
    """Set OpenCV's worker threads once for the process (0 = OpenCV's default, all cores)."""
    cv2.setNumThreads(threads if threads > 0 else -1)  # OpenCV: 0 would mean "no threading", <0 the default


def as_bgr(frame: np.ndarray) -> np.ndarray:
    """A 3-channel BGR uint8 view of ``frame`` (grayscale and BGRA are converted); bad input: ``ValueError``."""
    if not isinstance(frame, np.ndarray):
        raise ValueError(f"expected an image as a numpy array, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got dtype {frame.dtype}")
    if frame.size == 0:
        raise ValueError(f"expected a non-empty image, got shape {frame.shape}")
    if frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 1):
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.ndim == 3 and frame.shape[2] == 3:
        return frame
    if frame.ndim == 3 and frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    raise ValueError(f"expected an image of shape (h, w), (h, w, 3) or (h, w, 4), got {frame.shape}")


class NetsBySize(dict):
    """Networks of one model, one per input size (``size_wh -> cv2.dnn.Net``, least recently used first; the last
    ``max_nets`` kept): OpenCV re-plans a network whose input shape changes, which is costly for large inputs and,
    for some networks (CenterFace), gives wrong outputs. ``spare``: an already loaded network, used for the first
    size instead of loading another."""

    def __init__(self, load: Callable[[], cv2.dnn.Net], max_nets: int, spare: cv2.dnn.Net | None = None) -> None:
        super().__init__()
        self._load, self.max_nets, self._spare = load, int(max_nets), spare

    def net_for(self, size_wh: tuple[int, int]) -> cv2.dnn.Net:
        net = self.pop(size_wh, None)
        if net is None:
            net, self._spare = self._spare or self._load(), None
            if len(self) >= self.max_nets:
                self.pop(next(iter(self)))
        self[size_wh] = net  # most recently used last
        return net


def select_faces(
    boxes: np.ndarray,
    scores: np.ndarray,
    frame_wh: tuple[int, int],
    *,
    min_confidence: float,
    min_size_px: int,
    nms_iou: float,
) -> Faces:
    """Round and clip ``boxes`` to the frame, drop weak, empty and small ones, suppress duplicates (NMS)."""
    width, height = frame_wh
    boxes = np.rint(np.asarray(boxes, dtype=np.float64).reshape(-1, 4))
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, width)
    boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, height)
    size = boxes[:, 2:] - boxes[:, :2]
    candidates = np.flatnonzero((scores >= min_confidence) & (size > 0).all(axis=1) & (size >= min_size_px).all(axis=1))
    kept = candidates[nms(boxes[candidates], scores[candidates], nms_iou)]
    if len(kept) == 0:
        return Faces.empty()
    return Faces(boxes[kept].astype(np.int32), scores[kept].astype(np.float32))
