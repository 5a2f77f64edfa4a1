"""Pure matching of detected boxes to labelled faces: recall per label and false positives."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IGNORE = "ignore"


def _intersections(a_xyxy: np.ndarray, b_xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Intersection areas (n, m) of every box in ``a`` (n, 4) with every box in ``b`` (m, 4), and the areas of
    ``a`` as (n, 1) and of ``b`` as (1, m)."""
    a = np.asarray(a_xyxy, dtype=np.float64).reshape(-1, 1, 4)
    b = np.asarray(b_xyxy, dtype=np.float64).reshape(1, -1, 4)
    inter_wh = np.clip(np.minimum(a[..., 2:], b[..., 2:]) - np.maximum(a[..., :2], b[..., :2]), 0, None)
    area_a = np.prod(np.clip(a[..., 2:] - a[..., :2], 0, None), axis=-1)
    area_b = np.prod(np.clip(b[..., 2:] - b[..., :2], 0, None), axis=-1)
    return inter_wh[..., 0] * inter_wh[..., 1], area_a, area_b


def iou_matrix(a_xyxy: np.ndarray, b_xyxy: np.ndarray) -> np.ndarray:
    """Intersection over union of every box in ``a`` (n, 4) with every box in ``b`` (m, 4): (n, m)."""
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


@dataclass(frozen=True)
class ImageMatch:
    """Result of one image: which labelled faces were found, how many detections matched nothing."""

    found: np.ndarray  # bool (m,): labelled face i matched a detection (always False for ignore boxes)
    false_positives: int
    ignored: int  # detections on ignore boxes: neither rewarded nor penalised


def match_image(
    pred_xyxy: np.ndarray,
    pred_confidence: np.ndarray,
    true_xyxy: np.ndarray,
    true_labels: list[str],
    *,
    iou_min: float = 0.4,
) -> ImageMatch:
    """Greedy matching, strongest detection first, each labelled face at most once (like PASCAL VOC).

    A detection that overlaps no free labelled face by ``iou_min`` but overlaps an ``ignore`` box is ignored;
    any other unmatched detection (including a second box on an already found face) is a false positive.
    """
    pred_xyxy = np.asarray(pred_xyxy).reshape(-1, 4)
    ious = iou_matrix(pred_xyxy, true_xyxy)
    is_ignore = np.array([label == IGNORE for label in true_labels], dtype=bool)
    found = np.zeros(len(true_labels), dtype=bool)
    false_positives = ignored = 0
    for p in np.argsort(-np.asarray(pred_confidence, dtype=np.float64), kind="stable"):
        free = ious[p] * (~found & ~is_ignore)
        best = int(np.argmax(free)) if free.size else -1
        if best >= 0 and free[best] >= iou_min:
            found[best] = True
        elif is_ignore.any() and (ious[p][is_ignore] >= iou_min).any():
            ignored += 1
        else:
            false_positives += 1
    return ImageMatch(found, false_positives, ignored)
