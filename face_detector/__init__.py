"""Face detectors: ``build_face_detector(cfg)(frame_bgr) -> Faces``.

``face_detector.model`` picks one: ``centerface`` (``face_detector.centerface``, the default; on ONNX Runtime or
OpenCV DNN, ``face_detector.backend``) or ``ssd`` (``face_detector.ssd``, OpenCV's classic res10 300x300 SSD, on
OpenCV DNN). Only the chosen module is imported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from face_detector.dnn import as_bgr, set_opencv_threads
from maskwatch.faces import Faces, grow_boxes

if TYPE_CHECKING:
    from maskwatch.config import Config


def build_face_detector(cfg: Config, *, video: bool = False) -> Callable[[np.ndarray], Faces]:
    """The face detector ``cfg.face_detector.model`` names, built once. ``video`` changes nothing (kept for the
    callers written when the SSD had a photo-only pass)."""
    del video
    if cfg.face_detector.model == "centerface":
        from face_detector.centerface import CenterFaceDetector

        return CenterFaceDetector.from_config(cfg)
    from face_detector.ssd import SSDFaceDetector

    return SSDFaceDetector.from_config(cfg)


__all__ = ["Faces", "as_bgr", "build_face_detector", "grow_boxes", "set_opencv_threads"]
