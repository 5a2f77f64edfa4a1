"""``maskwatch.labels``: the label vocabulary, and mask / no_mask / incorrect / unknown from the classifier's output
and the face height."""

from __future__ import annotations

import numpy as np
import pytest

from maskwatch.config import load_config
from maskwatch.labels import (
    CLASSES,
    INCORRECT,
    LABELS,
    MASK,
    NO_MASK,
    TEXT,
    UNKNOWN,
    count_labels,
    label_color_bgr,
    label_faces,
    label_text,
    labels_from_prob,
)


def _names(codes: np.ndarray) -> list[str]:
    return [LABELS[c] for c in codes.tolist()]


def test_labels_threshold_band_and_size() -> None:
    p = [0.95, 0.05, 0.5, 0.3, 0.75, 0.95, float("nan")]
    h = [100, 100, 100, 100, 100, 20, 100]
    labels = label_faces(p, h, threshold=0.5, unsure_band=(0.2, 0.8), min_face_px=24)
    assert _names(labels) == ["mask", "no_mask", "unknown", "unknown", "unknown", "unknown", "unknown"]
    assert count_labels(labels) == {"no_mask": 1, "mask": 1, "incorrect": 0, "unknown": 5}


def test_empty_band_and_no_minimum_never_say_unknown() -> None:
    labels = label_faces([0.5, 0.49, 0.0, 1.0], [1, 1, 1, 1], threshold=0.5, unsure_band=(0.5, 0.5), min_face_px=0)
    assert _names(labels) == ["mask", "no_mask", "no_mask", "mask"]
    assert label_faces([], [], threshold=0.5, unsure_band=(0.2, 0.8), min_face_px=10).shape == (0,)


def test_band_edges_are_decided_and_shapes_checked() -> None:
    labels = label_faces([0.2, 0.8], [50, 50], threshold=0.5, unsure_band=(0.2, 0.8), min_face_px=50)
    assert _names(labels) == ["no_mask", "mask"]  # strictly inside the band is unknown; height == minimum is judged
    with pytest.raises(ValueError, match="2 probabilities but 1"):
        label_faces([0.1, 0.2], [10], threshold=0.5, unsure_band=(0.2, 0.8), min_face_px=0)


def test_config_holds_the_decision_keys() -> None:
    cfg = load_config()
    low, high = cfg.classifier.unsure_band
    assert 0 <= low <= cfg.classifier.threshold <= high <= 1 or low >= high
    assert cfg.classifier.min_face_px >= 0
    assert len(cfg.draw.unknown_color_bgr) == 3 and TEXT[UNKNOWN] == "?"
    b, g, r = cfg.draw.unknown_color_bgr
    assert max(b, g, r) - min(b, g, r) <= 10  # grey
    labels = label_faces(np.array([0.9]), np.array([200]), threshold=cfg.classifier.threshold,
                         unsure_band=cfg.classifier.unsure_band, min_face_px=cfg.classifier.min_face_px)
    assert _names(labels) == ["mask"]


def test_one_vocabulary_and_class_probabilities_pick_the_most_probable_class() -> None:
    assert (LABELS[NO_MASK], LABELS[MASK], LABELS[INCORRECT], LABELS[UNKNOWN]) == (
        "no_mask", "mask", "incorrect", "unknown")
    assert CLASSES == ("no_mask", "mask", "incorrect")  # a class's code is its column
    probs = np.array([[0.1, 0.3, 0.6], [0.5, 0.4, 0.1], [0.2, 0.7, 0.1], [np.nan] * 3])
    assert _names(labels_from_prob(probs, 0.99)) == ["incorrect", "no_mask", "mask", "unknown"]  # threshold unused
    assert labels_from_prob(np.zeros((0, 3)), 0.5).shape == (0,)


def test_binary_p_mask_labels_lists_floats_and_nan() -> None:
    assert _names(labels_from_prob([0.5, 0.49, np.nan], 0.5)) == ["mask", "no_mask", "unknown"]
    assert int(labels_from_prob(0.7, 0.5)) == MASK  # one P(mask) as a float


def test_a_row_of_class_probabilities_with_any_nan_is_unknown() -> None:
    assert _names(labels_from_prob(np.array([[0.6, np.nan, 0.1], [0.1, 0.2, np.nan]]), 0.5)) == ["unknown"] * 2


def test_label_texts_and_colours() -> None:
    assert label_text(INCORRECT, 0.91) == "Mask Worn Wrong 91.0%"
    assert (label_text(MASK, 0.972), label_text(NO_MASK, 0.881)) == ("Mask 97.2%", "No Mask 88.1%")
    assert label_text(UNKNOWN, float("nan")) == "?"
    draw = load_config().draw
    assert [label_color_bgr(code, draw) for code in (NO_MASK, MASK, INCORRECT, UNKNOWN)] == [
        tuple(draw.no_mask_color_bgr), tuple(draw.mask_color_bgr), tuple(draw.incorrect_color_bgr),
        tuple(draw.unknown_color_bgr)]
    assert len({label_color_bgr(code, draw) for code in (NO_MASK, MASK, INCORRECT, UNKNOWN)}) == 4
