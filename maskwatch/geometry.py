"""Box geometry shared by the whole project: IoU, overlap shares, NMS, greedy matching (boxes ``x1, y1, x2, y2``)."""

from __future__ import annotations

import cv2
import numpy as np


def _intersections(a_xyxy: np.ndarray, b_xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Intersection areas (n, m) of every box in ``a`` (n, 4) with every box in ``b`` (m, 4), and the areas of
    ``a`` as (n, 1) and of ``b`` as (1, m)."""
    a = np.asarray(a_xyxy, dtype=np.float64).reshape(-1, 1, 4)
    b = np.asarray(b_xyxy, dtype=np.float64).reshape(1, -1, 4)
    inter_wh = np.clip(np.minimum(a[..., 2:], b[..., 2:]) - np.maximum(a[..., :2], b[..., :2]), 0, None)
    area_a = np.prod(np.clip(a[..., 2:] - a[..., :2], 0, None), axis=-1)
    area_b = np.prod(np.clip(b[..., 2:] - b[..., :2], 0, None), axis=-1)
    return inter_wh[..., 0] * inter_wh[..., 1], area_a, area_b


def clip_boxes(xyxy: np.ndarray, frame_wh: tuple[int, int]) -> np.ndarray:
    """float64 (n, 4): the boxes clipped to a ``frame_wh`` frame (x to [0, width], y to [0, height])."""
    return np.clip(np.asarray(xyxy, np.float64).reshape(-1, 4), 0, np.tile(frame_wh, 2))


def iou_matrix(a_xyxy: np.ndarray, b_xyxy: np.ndarray) -> np.ndarray:
    """Intersection over union of every box in ``a`` (n, 4) with every box in ``b`` (m, 4): float (n, m)."""
    inter, area_a, area_b = _intersections(a_xyxy, b_xyxy)
    union = area_a + area_b - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def overlap_shares(a_xyxy: np.ndarray, b_xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, m) twice: the share of each ``a`` box's area inside each ``b`` box, and of each ``b`` box's inside
    each ``a`` box (0 for empty boxes)."""
    inter, area_a, area_b = _intersections(a_xyxy, b_xyxy)
    a_in_b = np.divide(inter, area_a, out=np.zeros_like(inter), where=area_a > 0)
    b_in_a = np.divide(inter, area_b, out=np.zeros_like(inter), where=area_b > 0)
    return a_in_b, b_in_a


def nms(xyxy: np.ndarray, scores: np.ndarray, iou_max: float) -> np.ndarray:
    """Indices of the boxes non-maximum suppression keeps, strongest first: a box overlapping a stronger kept box
    by IoU above ``iou_max`` is dropped (OpenCV's ``NMSBoxes``; every score counts, however low)."""
    xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(scores) == 0:
        return np.zeros(0, np.int64)
    xywh = np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1)
    # NMSBoxes' score threshold is exclusive and must be >= 0: it sees the scores shifted above 0 (same order)
    shifted = (scores - scores.min() + 1.0).tolist()
    kept = np.asarray(cv2.dnn.NMSBoxes(xywh.tolist(), shifted, 0.0, float(iou_max)), np.int64).reshape(-1)
    return kept[np.argsort(-scores[kept], kind="stable")]


def greedy_match(ious: np.ndarray, scores: np.ndarray, iou_min: float, allowed: np.ndarray | None = None) -> np.ndarray:
    """One-to-one matching of predictions (rows of ``ious`` (n, m)) to targets (columns), strongest prediction first,
    each to its best free target at IoU >= ``iou_min`` (PASCAL VOC style); ``allowed`` (bool (m,)) limits the
    targets. Returns int (n,): the target each prediction took, -1 for none."""
    ious = np.asarray(ious, dtype=np.float64)
    free = np.ones(ious.shape[1], bool) if allowed is None else np.asarray(allowed, bool).copy()
    taken = np.full(len(ious), -1, np.int64)
    for p in np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable"):
        candidates = ious[p] * free
        best = int(np.argmax(candidates)) if candidates.size else -1
        if best >= 0 and candidates[best] >= iou_min:
            taken[p], free[best] = best, False
    return taken


def match_by_iou(a_xyxy: np.ndarray, b_xyxy: np.ndarray, min_iou: float) -> np.ndarray:
    """int (len(a),): the ``b`` box each ``a`` box is paired with, one to one, best IoU first (at least
    ``min_iou``), -1 if none (frame-to-frame association, where no side has scores)."""
    return match_by_score(iou_matrix(np.asarray(a_xyxy).reshape(-1, 4), np.asarray(b_xyxy).reshape(-1, 4)), min_iou)


def match_by_score(score: np.ndarray, min_score: float) -> np.ndarray:
    """int (n,): the column each row of ``score`` (n, m) is paired with, one to one, best score first (at least
    ``min_score``), -1 if none."""
    score = np.asarray(score, dtype=np.float64)
    pair = np.full(len(score), -1, np.int64)
    taken = np.zeros(score.shape[1], bool)
    for flat in np.argsort(-score, axis=None, kind="stable"):
        a, b = np.unravel_index(flat, score.shape)
        if score[a, b] < min_score:
            break
        if pair[a] < 0 and not taken[b]:  # a pair of a taken column is skipped: the rest may still pair
            pair[a], taken[b] = b, True
    return pair
