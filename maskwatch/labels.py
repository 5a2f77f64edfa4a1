"""The detector's labels, in one place: codes, names, texts, colours, and the rules that make a label.

A face's label is a code: ``NO_MASK``, ``MASK``, ``INCORRECT`` (a mask worn wrong, three-class models only) or
``UNKNOWN`` (not classified, too small, or unsure). The code of a class is its column in a face record's class
probabilities (``Faces.probs``, columns ``CLASSES``). ``labels_from_prob`` turns P(mask) (binary model) or class
probabilities (three-class model) into labels; ``unsure`` says which faces the classifier cannot judge: smaller
than ``min_face_px`` (box height) or with P(mask) inside ``unsure_band``, drawn grey with "?", never guessed.

    label_text(INCORRECT, 0.91)            # "Mask Worn Wrong 91.0%"
    label_color_bgr(INCORRECT, cfg.draw)   # (0, 140, 255), orange
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

NO_MASK, MASK, INCORRECT, UNKNOWN = 0, 1, 2, 3
LABELS = ("no_mask", "mask", "incorrect", "unknown")  # the name of each code
CLASSES = LABELS[:UNKNOWN]  # the classes a classifier may answer, in the columns of ``Faces.probs``
TEXT = ("No Mask", "Mask", "Mask Worn Wrong", "?")  # a face's label on the frame
COUNT_TEXT = ("no mask", "mask", "worn wrong", "unknown")  # the label in the overlay's counts


class LabelColors(Protocol):
    """The box colours of the labels (``DrawConfig`` and ``DrawStyle`` have them), BGR."""

    mask_color_bgr: tuple[int, int, int]
    no_mask_color_bgr: tuple[int, int, int]
    incorrect_color_bgr: tuple[int, int, int]
    unknown_color_bgr: tuple[int, int, int]


def label_color_bgr(code: int, colors: LabelColors) -> tuple[int, int, int]:
    """The box colour of a label code, BGR."""
    name = LABELS[code]
    return tuple(getattr(colors, f"{name}_color_bgr"))  # type: ignore[return-value]


def label_text(code: int, probability: float) -> str:
    """``Mask Worn Wrong 91.0%``: the label's text and the probability of that label; ``?`` for unknown."""
    return "?" if code == UNKNOWN else f"{TEXT[code]} {100 * probability:.1f}%"


def labels_from_prob(prob: np.ndarray | float, threshold: float) -> np.ndarray:
    """int8 label codes: of P(mask) (shape (n,)), ``MASK`` at or above ``threshold`` and ``NO_MASK`` below; of class
    probabilities (shape (n, len(CLASSES))), the most probable class (``threshold`` unused); ``UNKNOWN`` for NaN
    (not classified). The one place a classifier's output becomes a label."""
    prob = np.asarray(prob, np.float64)
    if prob.ndim == 2:
        codes = np.argmax(np.nan_to_num(prob, nan=-1.0), axis=1).astype(np.int8)
        codes[np.isnan(prob).any(axis=1)] = UNKNOWN
        return codes
    codes = np.where(prob >= threshold, MASK, NO_MASK).astype(np.int8)
    codes[np.isnan(prob)] = UNKNOWN
    return codes


def unsure(
    prob_mask: Sequence[float] | np.ndarray, height_px: Sequence[float] | np.ndarray, *,
    unsure_band: tuple[float, float], min_face_px: float,
) -> np.ndarray:  # fmt: skip
    """bool (n,): faces lower than ``min_face_px``, with ``unsure_band[0] < P(mask) < unsure_band[1]``, or without
    a P(mask). An empty band (low >= high) and ``min_face_px`` 0 leave every classified face judged."""
    p = np.asarray(prob_mask, np.float64).reshape(-1)
    h = np.asarray(height_px, np.float64).reshape(-1)
    if p.shape != h.shape:
        raise ValueError(f"{len(p)} probabilities but {len(h)} face heights")
    low, high = unsure_band
    return ((p > low) & (p < high)) | (h < min_face_px) | ~np.isfinite(p)


def label_faces(
    prob_mask: Sequence[float] | np.ndarray, height_px: Sequence[float] | np.ndarray, *, threshold: float,
    unsure_band: tuple[float, float], min_face_px: float,
) -> np.ndarray:  # fmt: skip
    """int8 label codes of binary P(mask) values: ``labels_from_prob``, and ``UNKNOWN`` where ``unsure``."""
    codes = labels_from_prob(np.asarray(prob_mask, np.float64).reshape(-1), threshold)
    codes[unsure(prob_mask, height_px, unsure_band=unsure_band, min_face_px=min_face_px)] = UNKNOWN
    return codes


def count_labels(codes: Sequence[int] | np.ndarray) -> dict[str, int]:
    """Faces per label name, every label present (zeros included): for the overlay, the log and the summary."""
    values = np.asarray(codes).reshape(-1)
    return {name: int((values == code).sum()) for code, name in enumerate(LABELS)}
