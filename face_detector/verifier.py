"""``FaceVerifier``: P(face) of candidate boxes, to keep weak (often masked) faces and drop the SSD's false boxes.

A MobileNetV2 (ImageNet weights, frozen) with a logistic head, trained by ``python -m face_detector.train_verifier``
on the SSD's own candidate boxes of the development photos (faces with and without synthetic masks against the
shoulders, clothes and background it also proposes at low scores). It sees a square crop around each box
(``context`` of the box's longer side on every side, padded with grey outside the frame) and takes raw RGB 0-255
(preprocessing is inside the model). The card ``<stem>.json`` gives the input size, the context and the threshold.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from face_detector.multiscale import square_crop, zoom_regions
from maskwatch.errors import UserError
from maskwatch.litert import prepare_batch, tflite_predictor

if TYPE_CHECKING:
    from face_detector.blazeface import BlazeFaceVerifier
    from maskwatch.config import Config

PAD_BGR = (127.0, 127.0, 127.0)
BLAZEFACE_HINT = "restore it with git, or extract it as models/README.md says"  # the shipped BlazeFace is in git
TRAIN_HINT = "python -m face_detector.train_verifier DEV_DIR [DEV_DIR ...]"


def verifier_crops(frame_bgr: np.ndarray, xyxy: np.ndarray, context: float) -> list[np.ndarray]:
    """Square crops centred on each box, side = longer box side x (1 + 2 ``context``), grey outside the frame."""
    return [square_crop(frame_bgr, region, PAD_BGR) for region in zoom_regions(xyxy, context)]


def read_verifier_card(stem: str | Path) -> dict[str, Any]:
    """The card of a trained verifier (``<stem>.json``), checked; ``UserError`` when missing or unusable."""
    import json

    path = Path(stem).with_suffix(".json")
    if not path.is_file():
        raise UserError(f"no face verifier at {path}: train one with {TRAIN_HINT}, or set face_detector.verifier=''")
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
        size, context, threshold = int(card["input_size_px"]), float(card["context"]), float(card["threshold"])
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"face verifier card {path} is unreadable ({exc})") from None
    if size < 32 or not 0 <= context <= 2 or not 0 <= threshold <= 1:
        raise UserError(f"face verifier card {path}: input_size_px {size}, context {context}, threshold {threshold}")
    return card


def verifier_model_file(stem: Path, hint: str) -> Path:
    """``<stem>.tflite``, or a ``UserError`` saying how to get it back."""
    path = stem.with_suffix(".tflite")
    if not path.is_file():
        raise UserError(f"face verifier file {path} is missing: {hint}")
    return path


class FaceVerifier:
    """Callable: ``verifier(frame_bgr, xyxy) -> P(face)`` float32 (n,), all boxes in one batch call (LiteRT)."""

    def __init__(self, stem: str | Path, threads: int = 1, card: dict[str, Any] | None = None) -> None:
        self.stem = Path(stem)
        self.card = card if card is not None else read_verifier_card(self.stem)
        self.input_size_px = int(self.card["input_size_px"])
        self.context = float(self.card["context"])
        self.threshold = float(self.card["threshold"])
        self._predict = tflite_predictor(verifier_model_file(self.stem, f"re-train with {TRAIN_HINT}"), threads)

    @classmethod
    def from_config(cls, cfg: Config) -> FaceVerifier | BlazeFaceVerifier | None:
        """The verifier named by ``face_detector.verifier`` ("" = none): a trained one, or BlazeFace by its card."""
        fd = cfg.face_detector
        if not fd.verifier:
            return None
        stem = Path(cfg.resolve_path(fd.verifier))
        card = read_verifier_card(stem)
        if card.get("kind") == "blazeface":
            from face_detector.blazeface import BlazeFaceVerifier

            return BlazeFaceVerifier(verifier_model_file(stem, BLAZEFACE_HINT), card, threads=fd.verifier_threads)
        return cls(stem, threads=fd.verifier_threads, card=card)

    def __call__(self, frame_bgr: np.ndarray, xyxy: np.ndarray) -> np.ndarray:
        xyxy = np.asarray(xyxy).reshape(-1, 4)
        if len(xyxy) == 0:
            return np.zeros((0,), np.float32)
        crops = verifier_crops(frame_bgr, xyxy, self.context)
        batch = prepare_batch(crops, (self.input_size_px, self.input_size_px))
        return np.asarray(self._predict(batch), np.float32).reshape(len(xyxy))
