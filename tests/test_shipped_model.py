"""The shipped default model: loads through the detector's runtime (no TensorFlow) and labels held-out faces.

``tests/fixtures/insightface_t1.jpg`` (insightface 2.1 sdist, MIT; docs/accuracy.md) is a group photo that the
starter training set never saw. maskify masks its faces; the shipped model must tell the masked crops from the
unmasked ones.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from detector.classifier import MaskClassifier

ROOT = Path(__file__).resolve().parent.parent
STEM = ROOT / "models" / "mask_classifier"
HELD_OUT_PHOTO = Path(__file__).resolve().parent / "fixtures" / "insightface_t1.jpg"


@pytest.fixture(scope="module")
def classifier() -> MaskClassifier:
    return MaskClassifier(STEM, backend="tflite")


def test_card_and_files(classifier: MaskClassifier) -> None:
    card = json.loads(STEM.with_suffix(".json").read_text())
    assert card["format_version"] == 1 and card["positive_class"] == "mask"
    assert card["input_size_wh"] == [224, 224] and card["input_color"] == "RGB"
    assert 0.0 < card["threshold"] < 1.0
    assert card["files"]["tflite"] == "mask_classifier.tflite"
    assert STEM.with_suffix(".tflite").stat().st_size + STEM.with_suffix(".json").stat().st_size < 10e6
    assert card["dataset"]["groups"] >= 20  # trained on the starter set with its group-aware split
    assert "tensorflow" not in sys.modules or "keras" not in type(classifier._predict).__module__


@pytest.fixture(scope="module")
def held_out_pairs() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Face crops of the held-out group photo, unmasked and masked by maskify (same boxes)."""
    pytest.importorskip("dlib")
    pytest.importorskip("face_recognition_models")
    from train.landmarks import Landmarker
    from train.mask_overlay import box_from_landmarks, render_mask
    from train.maskify import style_for

    image = cv2.imread(str(HELD_OUT_PHOTO))
    faces = Landmarker(upsample=1).find(image)
    assert len(faces) == 6
    masked = image
    for i, landmarks in enumerate(faces):
        masked = render_mask(masked, landmarks, style_for(f"test#{i}", seed=11), seed=i)
    boxes = [box_from_landmarks(f, (image.shape[1], image.shape[0])) for f in faces]
    plain = [image[y1:y2, x1:x2] for x1, y1, x2, y2 in boxes]
    with_mask = [masked[y1:y2, x1:x2] for x1, y1, x2, y2 in boxes]
    return plain, with_mask


@pytest.mark.slow
def test_labels_held_out_masked_and_unmasked_faces(
    classifier: MaskClassifier, held_out_pairs: tuple[list[np.ndarray], list[np.ndarray]]
) -> None:
    plain, with_mask = held_out_pairs
    p_plain = classifier(plain)
    p_mask = classifier(with_mask)
    assert p_plain.shape == p_mask.shape == (6,)
    threshold = classifier.threshold
    assert (p_mask >= threshold).all(), p_mask
    # Known miss (models/README.md): the strongly tilted face (index 1, ~30 degrees of roll, cheek on hand) scores
    # P(mask) ~0.9 unmasked. Every other unmasked face must be well below the threshold.
    assert (p_plain < threshold).sum() >= 5, p_plain
    assert float(np.median(p_plain)) < 0.1 and float(np.median(p_mask)) > 0.9
