"""The mask classifier's input: ONE preprocessing for training, evaluation, export checks and both runtimes.

crop -> RGB (grey expanded, alpha composited over white) -> resized to the model's input with the training rule
(``cv2.INTER_AREA`` when either side shrinks, ``cv2.INTER_LINEAR`` when the crop is enlarged) -> float32 0-255.
A face crop enlarged with ``INTER_AREA`` is blocky, pixels the model never saw in training: keep both sides here.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np


def to_rgb(image: np.ndarray, *, order: str = "bgr") -> np.ndarray:
    """Grey (H, W) / (H, W, 1), 3-channel or 4-channel uint8 image in ``order`` ("bgr" or "rgb") -> RGB uint8.

    Alpha is composited over white (as the training loader does for RGBA files).
    """
    if order not in ("bgr", "rgb"):
        raise ValueError(f"order must be 'bgr' or 'rgb', got {order!r}")
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim == 2:
        return np.repeat(img[..., None], 3, axis=2).astype(np.uint8, copy=False)
    if img.ndim != 3 or img.shape[2] not in (3, 4):
        raise ValueError(f"not an image with 1, 3 or 4 channels: shape {img.shape}")
    if img.shape[2] == 4:
        alpha = img[..., 3:4].astype(np.float32) / 255.0
        img = np.rint(img[..., :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    img = img.astype(np.uint8, copy=False)
    return img[..., ::-1].copy() if order == "bgr" else np.ascontiguousarray(img)


def resize_interpolation(size_hw: tuple[int, int], target_wh: tuple[int, int]) -> int:
    """The training rule: ``INTER_AREA`` if either side shrinks, else ``INTER_LINEAR``."""
    h, w = size_hw
    tw, th = target_wh
    return cv2.INTER_AREA if (h > th or w > tw) else cv2.INTER_LINEAR


def resize_face(image_rgb: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
    """An RGB uint8 crop resized to ``size_wh`` (W, H) with the training rule; uint8 out."""
    if image_rgb.ndim != 3 or image_rgb.shape[0] == 0 or image_rgb.shape[1] == 0:
        raise ValueError(f"crop is empty or not a colour image: shape {image_rgb.shape}")
    w, h = size_wh
    if image_rgb.shape[:2] == (h, w):
        return image_rgb
    return cv2.resize(image_rgb, (w, h), interpolation=resize_interpolation(image_rgb.shape[:2], size_wh))


def face_input(crop: np.ndarray, size_wh: tuple[int, int], *, order: str = "bgr") -> np.ndarray:
    """One crop -> RGB uint8 (H, W, 3) at the model's input size (the training images are exactly this)."""
    img = np.asarray(crop)
    if img.ndim < 2 or img.shape[0] == 0 or img.shape[1] == 0:
        raise ValueError(f"crop is empty or not an image: shape {img.shape}")
    return resize_face(to_rgb(img, order=order), size_wh)


def prepare_batch(crops: Sequence[np.ndarray], size_wh: tuple[int, int], *, order: str = "bgr") -> np.ndarray:
    """Crops -> float32 (n, H, W, 3), RGB, raw 0-255 (the classifier's contract); ``ValueError`` on an empty crop."""
    w, h = size_wh
    batch = np.empty((len(crops), h, w, 3), np.float32)
    for i, crop in enumerate(crops):
        try:
            batch[i] = face_input(crop, size_wh, order=order)
        except ValueError as exc:
            raise ValueError(f"crop {i}: {exc}") from None
    return batch
