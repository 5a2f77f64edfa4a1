"""The classic face detector: OpenCV's res10 300x300 SSD (Caffe) on OpenCV DNN, ``face_detector.model: ssd``.

    detect = SSDFaceDetector(prototxt, caffemodel, min_confidence=0.5)
    faces = detect(frame_bgr)  # Faces, strongest first

One pass at ``input_size_wh`` (the design card's 300x300), or one pass per entry of ``long_sides_px`` (the frame
resized to that longer side, aspect kept); the boxes of all passes are merged by one NMS.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from face_detector.dnn import NetsBySize, as_bgr, select_faces, set_opencv_threads
from maskwatch.errors import UserError
from maskwatch.faces import Faces

if TYPE_CHECKING:
    from maskwatch.config import Config

MEAN_BGR = (104.0, 177.0, 123.0)  # the res10 SSD's training mean
MAX_NETS = 4  # networks kept, one per input size


def ssd_boxes(output: np.ndarray, frame_wh: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Float boxes (n, 4) in frame pixels and scores (n,) of one SSD output ``[1, 1, N, 7]`` (rows: image id,
    class, score, x1, y1, x2, y2 in 0-1 of the frame). Rows that are not finite are dropped."""
    rows = np.asarray(output, dtype=np.float64)
    if rows.size % 7 or (rows.ndim and rows.shape[-1] != 7):
        raise ValueError(f"SSD output must have 7 values per detection, got shape {rows.shape}")
    rows = rows.reshape(-1, 7)
    rows = rows[np.isfinite(rows[:, 2:7]).all(axis=1)]
    width, height = frame_wh
    return rows[:, 3:7] * np.array([width, height, width, height]), rows[:, 2]


def decode_ssd(
    output: np.ndarray, frame_wh: tuple[int, int], *, min_confidence: float, min_size_px: int, nms_iou: float
) -> Faces:
    """``Faces`` of one SSD output ``[1, 1, N, 7]``: boxes scaled to the frame, clipped, filtered, NMS."""
    boxes, scores = ssd_boxes(output, frame_wh)
    return select_faces(boxes, scores, frame_wh, min_confidence=min_confidence, min_size_px=min_size_px,
                        nms_iou=nms_iou)  # fmt: skip


def pass_sizes_wh(
    frame_wh: tuple[int, int], long_sides_px: Sequence[int], fixed_wh: tuple[int, int]
) -> list[tuple[int, int]]:
    """SSD input sizes of one frame: one per longer side in ``long_sides_px`` (aspect kept), else ``fixed_wh``."""
    if not long_sides_px:
        return [fixed_wh]
    width, height = frame_wh
    sizes = []
    for side in long_sides_px:
        scale = side / max(width, height)
        size = (max(32, round(width * scale)), max(32, round(height * scale)))
        if size not in sizes:
            sizes.append(size)
    return sizes


class SSDFaceDetector:
    """The res10 SSD face detector: ``detector(frame_bgr) -> Faces`` (see the module docstring)."""

    def __init__(
        self,
        prototxt: str | Path,
        caffemodel: str | Path,
        *,
        input_size_wh: tuple[int, int] = (300, 300),
        long_sides_px: Sequence[int] = (),
        min_confidence: float = 0.5,
        nms_iou: float = 0.4,
        min_size_px: int = 20,
    ) -> None:
        for path in (prototxt, caffemodel):
            if not Path(path).is_file():
                raise UserError(f"face detector file not found: {path} (run: python -m models fetch)")
        try:  # a bad file fails here, not on the first frame; this network serves the first input size
            first = cv2.dnn.readNetFromCaffe(str(prototxt), str(caffemodel))
        except cv2.error as exc:
            msg = " ".join(str(exc).split())[-200:]
            raise UserError(f"cannot load the SSD face detector from {prototxt}, {caffemodel}: {msg}") from None
        self._nets = NetsBySize(lambda: cv2.dnn.readNetFromCaffe(str(prototxt), str(caffemodel)), MAX_NETS,
                                spare=first)  # fmt: skip
        self.input_size_wh = (int(input_size_wh[0]), int(input_size_wh[1]))
        self.long_sides_px = tuple(int(px) for px in long_sides_px)
        self.min_confidence, self.nms_iou = float(min_confidence), float(nms_iou)
        self.min_size_px = int(min_size_px)

    def forward(self, frame_bgr: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
        """Raw SSD output ``[1, 1, N, 7]`` for ``frame_bgr`` resized to ``size_wh``."""
        net = self._nets.net_for(tuple(size_wh))
        net.setInput(cv2.dnn.blobFromImage(frame_bgr, 1.0, tuple(size_wh), MEAN_BGR))
        return net.forward()

    def __call__(self, frame_bgr: np.ndarray) -> Faces:
        frame_bgr = as_bgr(frame_bgr)  # grayscale and BGRA converted; bad input: ValueError
        height, width = frame_bgr.shape[:2]
        passes = [ssd_boxes(self.forward(frame_bgr, size), (width, height))
                  for size in pass_sizes_wh((width, height), self.long_sides_px, self.input_size_wh)]  # fmt: skip
        return select_faces(np.concatenate([b for b, _ in passes]), np.concatenate([s for _, s in passes]),
                            (width, height), min_confidence=self.min_confidence, min_size_px=self.min_size_px,
                            nms_iou=self.nms_iou)  # fmt: skip

    @classmethod
    def from_config(cls, cfg: Config) -> SSDFaceDetector:
        """Build from ``cfg.face_detector`` (model files from ``models.assets.resolve``); sets OpenCV's threads
        (``face_detector.threads``). The input size and the NMS IoU are the constructor's defaults."""
        from models.assets import resolve

        fd = cfg.face_detector
        set_opencv_threads(fd.threads)
        return cls(resolve("prototxt", cfg), resolve("caffemodel", cfg), long_sides_px=fd.ssd.long_sides_px,
                   min_confidence=fd.min_confidence, min_size_px=fd.min_size_px)  # fmt: skip
