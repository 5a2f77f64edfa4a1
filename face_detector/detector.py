"""``FaceDetector``: the res10 SSD (OpenCV DNN, Caffe), built once, called per frame."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from face_detector.decoding import decode_ssd
from face_detector.faces import Faces
from maskwatch.errors import UserError

if TYPE_CHECKING:
    from maskwatch.config import Config

MEAN_BGR = (104.0, 177.0, 123.0)  # the res10 SSD's training mean


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


class FaceDetector:
    """The res10 300x300 SSD face detector: ``detector(frame_bgr) -> Faces``."""

    def __init__(
        self,
        prototxt: str | Path,
        caffemodel: str | Path,
        *,
        min_confidence: float = 0.5,
        input_size_wh: tuple[int, int] = (300, 300),
        min_size_px: int = 20,
        nms_iou: float = 0.4,
    ) -> None:
        for path in (prototxt, caffemodel):
            if not Path(path).is_file():
                raise UserError(f"face detector file not found: {path} (run: python -m models fetch)")
        try:
            self.net = cv2.dnn.readNetFromCaffe(str(prototxt), str(caffemodel))
        except cv2.error as exc:
            msg = " ".join(str(exc).split())[-200:]
            raise UserError(f"cannot load the SSD face detector from {prototxt}, {caffemodel}: {msg}") from None
        self.min_confidence = float(min_confidence)
        self.input_size_wh = (int(input_size_wh[0]), int(input_size_wh[1]))
        self.min_size_px = int(min_size_px)
        self.nms_iou = float(nms_iou)

    @classmethod
    def from_config(cls, cfg: Config) -> FaceDetector:
        """Build from ``cfg.face_detector``; the model files come from ``models.assets.resolve``."""
        from models.assets import resolve

        fd = cfg.face_detector
        set_opencv_threads(fd.opencv_threads)
        return cls(
            resolve("prototxt", cfg),
            resolve("caffemodel", cfg),
            min_confidence=fd.min_confidence,
            input_size_wh=fd.input_size_wh,
            min_size_px=fd.min_size_px,
            nms_iou=fd.nms_iou,
        )

    def forward(self, frame_bgr: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
        """Raw SSD output ``[1, 1, N, 7]`` for ``frame_bgr`` resized to ``size_wh``."""
        blob = cv2.dnn.blobFromImage(frame_bgr, 1.0, size_wh, MEAN_BGR)
        self.net.setInput(blob)
        return self.net.forward()

    def __call__(self, frame_bgr: np.ndarray) -> Faces:
        frame_bgr = as_bgr(frame_bgr)
        height, width = frame_bgr.shape[:2]
        output = self.forward(frame_bgr, self.input_size_wh)
        return decode_ssd(
            output,
            (width, height),
            min_confidence=self.min_confidence,
            min_size_px=self.min_size_px,
            nms_iou=self.nms_iou,
        )
