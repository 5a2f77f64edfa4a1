"""The label of each face from P(mask) and its size: "mask", "no_mask", or "unknown" when the classifier cannot judge.

A face smaller than ``min_face_px`` (box height) or whose P(mask) falls inside ``unsure_band`` is "unknown": drawn
grey with "?" and counted apart, never guessed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MASK, NO_MASK, UNKNOWN = "mask", "no_mask", "unknown"
LABELS = (MASK, NO_MASK, UNKNOWN)
DISPLAY = {MASK: "Mask", NO_MASK: "No Mask", UNKNOWN: "?"}


def label_faces(
    prob_mask: Sequence[float] | np.ndarray,
    height_px: Sequence[float] | np.ndarray,
    *,
    threshold: float,
    unsure_band: tuple[float, float],
    min_face_px: float,
) -> np.ndarray:
    """One label per face (``<U7`` array): unknown if too small or ``unsure_band[0] < P(mask) < unsure_band[1]``.

    Otherwise "mask" when P(mask) >= ``threshold``, else "no_mask". An empty band (low >= high) never says unknown.
    """
    p = np.asarray(prob_mask, np.float64).reshape(-1)
    h = np.asarray(height_px, np.float64).reshape(-1)
    if p.shape != h.shape:
        raise ValueError(f"{len(p)} probabilities but {len(h)} face heights")
    low, high = unsure_band
    labels = np.where(p >= threshold, MASK, NO_MASK).astype("<U7")
    unsure = ((p > low) & (p < high)) | (h < min_face_px) | ~np.isfinite(p)
    labels[unsure] = UNKNOWN
    return labels


def count_labels(labels: Sequence[str] | np.ndarray) -> dict[str, int]:
    """Faces per label, every label present (zeros included): for the overlay, the log and the summary."""
    values = list(np.asarray(labels).reshape(-1))
    return {name: values.count(name) for name in LABELS}
