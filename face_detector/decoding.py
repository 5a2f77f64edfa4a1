"""Pure decoding of the SSD output into ``Faces``: scale, clip, size and score filters, NMS."""

from __future__ import annotations

import cv2
import numpy as np

from maskwatch.faces import Faces


def ssd_boxes(output: np.ndarray, region_xywh: tuple[float, float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Float boxes (n, 4) in frame pixels and scores (n,) of one SSD output ``[1, 1, N, 7]``.

    The network saw the frame region ``region_xywh`` (the whole frame, or one tile); its normalised
    corners are mapped back into frame coordinates. Rows that are not finite are dropped.
    """
    rows = np.asarray(output, dtype=np.float64)
    if rows.size % 7 or (rows.ndim and rows.shape[-1] != 7):
        raise ValueError(f"SSD output must have 7 values per detection, got shape {rows.shape}")
    rows = rows.reshape(-1, 7)
    rows = rows[np.isfinite(rows[:, 2:7]).all(axis=1)]
    x, y, w, h = region_xywh
    boxes = rows[:, 3:7] * np.array([w, h, w, h]) + np.array([x, y, x, y])
    return boxes, rows[:, 2]


def select_indices(
    boxes: np.ndarray,
    scores: np.ndarray,
    frame_wh: tuple[int, int],
    *,
    min_confidence: float,
    min_size_px: int,
    nms_iou: float,
) -> tuple[np.ndarray, np.ndarray]:
    """``select_faces`` as indices into ``boxes`` (kept faces, strongest first) and all boxes rounded and clipped to
    the frame (float (n, 4)): for callers that carry more per box than its score."""
    width, height = frame_wh
    boxes = np.rint(np.asarray(boxes, dtype=np.float64).reshape(-1, 4))
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, width)
    boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, height)
    size = boxes[:, 2:] - boxes[:, :2]
    candidates = np.flatnonzero((scores >= min_confidence) & (size > 0).all(axis=1) & (size >= min_size_px).all(axis=1))
    if len(candidates) == 0:
        return candidates, boxes
    xywh = np.concatenate([boxes[candidates, :2], size[candidates]], axis=1)
    # scores are already filtered (inclusively); NMSBoxes' threshold is exclusive and must be >= 0, so it
    # sees the scores shifted above 0 (the order, all NMS uses, is unchanged)
    shifted = (scores[candidates] - scores[candidates].min() + 1.0).tolist()
    kept = candidates[np.asarray(cv2.dnn.NMSBoxes(xywh.tolist(), shifted, 0.0, float(nms_iou)), np.int64).reshape(-1)]
    return kept[np.argsort(-scores[kept], kind="stable")], boxes


def select_faces(
    boxes: np.ndarray,
    scores: np.ndarray,
    frame_wh: tuple[int, int],
    *,
    min_confidence: float,
    min_size_px: int,
    nms_iou: float,
) -> Faces:
    """Round and clip ``boxes`` to the frame, drop weak, empty and small ones, suppress duplicates (NMS)."""
    kept, rounded = select_indices(
        boxes, scores, frame_wh, min_confidence=min_confidence, min_size_px=min_size_px, nms_iou=nms_iou
    )
    if len(kept) == 0:
        return Faces.empty()
    return Faces(rounded[kept].astype(np.int32), np.asarray(scores, np.float64).reshape(-1)[kept].astype(np.float32))


def decode_ssd(
    output: np.ndarray,
    frame_wh: tuple[int, int],
    *,
    min_confidence: float,
    min_size_px: int,
    nms_iou: float,
) -> Faces:
    """``Faces`` of one SSD output ``[1, 1, N, 7]`` (rows: image id, class, score, x1, y1, x2, y2 in 0-1)."""
    width, height = frame_wh
    boxes, scores = ssd_boxes(output, (0, 0, width, height))
    return select_faces(
        boxes, scores, frame_wh, min_confidence=min_confidence, min_size_px=min_size_px, nms_iou=nms_iou
    )
