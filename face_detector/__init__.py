"""Face detectors on OpenCV DNN: ``build_face_detector(cfg)(frame_bgr) -> Faces``.

``face_detector.model`` picks one: ``centerface`` (``CenterFaceDetector``) or ``ssd`` (``FaceDetector``, the res10 SSD
with its passes, second looks and BlazeFace proposals).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from face_detector.decoding import decode_ssd, select_faces, ssd_boxes
from face_detector.detector import FaceDetector, as_bgr, set_opencv_threads
from maskwatch.faces import Faces, grow_boxes

if TYPE_CHECKING:
    from maskwatch.config import Config


def build_face_detector(cfg: Config, *, video: bool = False) -> Callable[[np.ndarray], Faces]:
    """The face detector ``cfg.face_detector.model`` names, built once; ``video``: for a camera, stream or video file
    (the SSD's large-frame pass is for photos unless configured)."""
    if cfg.face_detector.model == "centerface":
        from face_detector.centerface import CenterFaceDetector

        return CenterFaceDetector.from_config(cfg)
    return FaceDetector.from_config(cfg, video=video)


__all__ = [
    "FaceDetector",
    "Faces",
    "as_bgr",
    "build_face_detector",
    "decode_ssd",
    "grow_boxes",
    "select_faces",
    "set_opencv_threads",
    "ssd_boxes",
]
