"""OpenCV DNN SSD face detector (res10_300x300): ``FaceDetector(...)(frame_bgr) -> Faces``."""

from __future__ import annotations

from face_detector.decoding import decode_ssd, select_faces, ssd_boxes
from face_detector.detector import FaceDetector, as_bgr, set_opencv_threads
from face_detector.faces import Faces, grow_boxes

__all__ = [
    "FaceDetector",
    "Faces",
    "as_bgr",
    "decode_ssd",
    "grow_boxes",
    "select_faces",
    "set_opencv_threads",
    "ssd_boxes",
]

