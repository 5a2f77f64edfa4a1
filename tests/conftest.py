from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _ended(pid: int) -> bool:
    """The process has ended (gone, or a zombie waiting for its reaper); reads /proc (Linux)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] == "Z"
    except (FileNotFoundError, IndexError):
        return True


@pytest.fixture
def ended() -> Callable[[int], bool]:
    """``ended(pid)``: whether that process has ended."""
    return _ended


@pytest.fixture(scope="session")
def astronaut() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """skimage's astronaut (BGR), her face box as the SSD gives it, and the same face under a drawn mask."""
    from skimage import data

    frame = np.ascontiguousarray(data.astronaut()[:, :, ::-1])
    face = np.array([[179, 58, 272, 177]])
    masked = frame.copy()
    x1, _, x2, y2 = face[0]
    mask_xy = np.array([[x1 + 5, 123], [x2 - 5, 123], [x2 - 15, y2 + 5], [(x1 + x2) // 2, y2 + 15], [x1 + 15, y2 + 5]])
    cv2.fillPoly(masked, [mask_xy.astype(np.int32)], (235, 200, 170))  # light-blue surgical mask, nose to chin
    return frame, masked, face


@pytest.fixture(scope="session")
def webcam_close_up() -> Callable[[np.ndarray, np.ndarray, float], tuple[np.ndarray, np.ndarray]]:
    """``close_up(image, face_xyxy, fill)``: a 640x480 frame cut around the face so that it fills ``fill`` of the
    frame's height (edges reflected), and the face's box in that frame."""

    def close_up(image: np.ndarray, face: np.ndarray, fill: float) -> tuple[np.ndarray, np.ndarray]:
        x1, y1, x2, y2 = face[0]
        height = int((y2 - y1) / fill)
        width, cx, cy = height * 4 // 3, (x1 + x2) // 2, (y1 + y2) // 2
        padded = cv2.copyMakeBorder(image, 300, 300, 300, 300, cv2.BORDER_REFLECT)
        left, top = cx + 300 - width // 2, cy + 300 - height // 2
        frame = cv2.resize(padded[top : top + height, left : left + width], (640, 480))
        return frame, (face - np.array([left - 300, top - 300] * 2)) * (640 / width)

    return close_up
