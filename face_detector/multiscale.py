"""Pure helpers of multi-scale detection and of the zoomed second look at uncertain boxes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from face_detector.matching import iou_matrix, overlap_shares
from maskwatch.faces import Faces


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


def inside_share(xyxy: np.ndarray, frame_wh: tuple[int, int]) -> np.ndarray:
    """The share of each box's area inside the frame (float (n,); 0 for empty boxes)."""
    return overlap_shares(xyxy, np.array([[0, 0, *frame_wh]]))[0][:, 0]


def split_batch(output: np.ndarray, n_images: int) -> list[np.ndarray]:
    """Rows (k, 7) of each image of a batched SSD output ``[1, 1, N, 7]`` (column 0 is the image index)."""
    rows = np.asarray(output).reshape(-1, 7)
    return [rows[rows[:, 0] == i] for i in range(n_images)]


def zoom_regions(xyxy: np.ndarray, context: float) -> np.ndarray:
    """Square regions ``x, y, side`` (float (n, 3)) centred on each box, side = longer box side x (1 + 2 context).

    Regions may extend past the frame; the caller pads (``square_crop``).
    """
    xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    centre = (xyxy[:, :2] + xyxy[:, 2:]) / 2
    side = (xyxy[:, 2:] - xyxy[:, :2]).max(axis=1) * (1 + 2 * context)
    return np.column_stack([centre - side[:, None] / 2, side])


def square_crop(frame_bgr: np.ndarray, region_xys: np.ndarray, fill_bgr: Sequence[float]) -> np.ndarray:
    """The square ``region_xys`` of ``frame_bgr``; parts outside the frame are filled with ``fill_bgr``."""
    height, width = frame_bgr.shape[:2]
    x, y, side = (round(float(v)) for v in region_xys)
    side = max(side, 1)
    crop = np.empty((side, side, 3), np.uint8)
    crop[:] = np.asarray(fill_bgr, dtype=np.float64).round().astype(np.uint8)
    x1, y1, x2, y2 = max(x, 0), max(y, 0), min(x + side, width), min(y + side, height)
    if x2 > x1 and y2 > y1:
        crop[y1 - y:y2 - y, x1 - x:x2 - x] = frame_bgr[y1:y2, x1:x2]
    return crop


def best_overlap(
    boxes_xyxy: np.ndarray, scores: np.ndarray, target_xyxy: np.ndarray, iou_min: float
) -> tuple[np.ndarray | None, float]:
    """The highest-scoring box overlapping ``target_xyxy`` by at least ``iou_min`` and its score (or None, 0)."""
    if len(scores) == 0:
        return None, 0.0
    overlaps = iou_matrix(boxes_xyxy, np.asarray(target_xyxy).reshape(1, 4))[:, 0] >= iou_min
    if not overlaps.any():
        return None, 0.0
    candidates = np.flatnonzero(overlaps)
    best = candidates[np.argmax(np.asarray(scores)[candidates])]
    return np.asarray(boxes_xyxy)[best], float(np.asarray(scores)[best])


def shape_ok(xyxy: np.ndarray, min_aspect_hw: float, max_aspect_hw: float) -> np.ndarray:
    """bool (n,): box height / width within ``[min_aspect_hw, max_aspect_hw]``."""
    size = (np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)[:, 2:] - np.asarray(xyxy).reshape(-1, 4)[:, :2])
    aspect = np.divide(size[:, 1], size[:, 0], out=np.full(len(size), np.inf), where=size[:, 0] > 0)
    return (aspect >= min_aspect_hw) & (aspect <= max_aspect_hw)


def at_border(xyxy: np.ndarray, frame_wh: tuple[int, int], margin_px: int) -> np.ndarray:
    """bool (n,): boxes reaching within ``margin_px`` of an edge of the frame (typically clipped by it)."""
    xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    width, height = frame_wh
    return (xyxy[:, :2].min(axis=1) <= margin_px) | (xyxy[:, 2] >= width - margin_px) | (
        xyxy[:, 3] >= height - margin_px
    )


def nested_in(xyxy: np.ndarray, others_xyxy: np.ndarray, min_share: float) -> np.ndarray:
    """bool (n,): boxes with ``min_share`` of their area inside one of ``others_xyxy``, or holding that share of one
    (``nested_in_stronger``'s rule against a fixed set of boxes, e.g. the sure faces)."""
    if len(xyxy) == 0 or len(others_xyxy) == 0:
        return np.zeros(len(xyxy), bool)
    inside, around = overlap_shares(xyxy, others_xyxy)
    return ((inside >= min_share) | (around >= min_share)).any(axis=1)


def nested_in_stronger(xyxy: np.ndarray, min_share: float) -> np.ndarray:
    """bool (n,) for boxes sorted strongest first: True where ``min_share`` of the box lies inside a stronger box
    that is itself kept, or ``min_share`` of that stronger box lies inside it (a part of a face, or a box around
    a face already found; NMS misses both, their IoU being small)."""
    inside, around = overlap_shares(xyxy, xyxy)  # [i, j]: share of box i inside box j / of box j inside box i
    nested = np.zeros(len(inside), bool)
    for i in range(1, len(nested)):
        kept = np.flatnonzero(~nested[:i])
        nested[i] = bool(((inside[i, kept] >= min_share) | (around[i, kept] >= min_share)).any())
    return nested


def fits_fine_pass(xyxy: np.ndarray, input_per_frame_px: float, max_box_px: float) -> np.ndarray:
    """bool (n,): boxes (frame pixels) no taller than ``max_box_px`` at a pass that scaled the frame by
    ``input_per_frame_px``."""
    heights = np.asarray(xyxy, np.float64).reshape(-1, 4)[:, 3] - np.asarray(xyxy, np.float64).reshape(-1, 4)[:, 1]
    return heights * input_per_frame_px <= max_box_px


def add_new_faces(faces: Faces, extra: Faces, max_iou: float) -> Faces:
    """``faces`` and the ``extra`` faces overlapping none of them at IoU ``max_iou`` or more, strongest first."""
    if len(extra) == 0:
        return faces
    if len(faces):
        extra = extra[iou_matrix(extra.xyxy, faces.xyxy).max(axis=1) < max_iou]
    confidence = np.concatenate([faces.confidence, extra.confidence])
    order = np.argsort(-confidence, kind="stable")
    return Faces(np.concatenate([faces.xyxy, extra.xyxy])[order], confidence[order])
