"""The classifier's classes: card class names (binary and softmax), per-class probabilities, colours and label text."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from detector.classifier import MaskClassifier, card_classes
from maskwatch.config import load_config
from maskwatch.errors import UserError
from maskwatch.labels import INCORRECT, MASK, NO_MASK, UNKNOWN, label_color_bgr, label_text

ROOT = Path(__file__).resolve().parent.parent
HELD_OUT_PHOTO = Path(__file__).resolve().parent / "fixtures" / "insightface_t1.jpg"


def test_card_classes_binary_and_softmax() -> None:
    where = Path("m.json")
    assert card_classes({"output": "sigmoid P(mask)", "class_names": ["mask", "no_mask"]}, where) == ("mask", "no_mask")
    assert card_classes({}, where) == ("mask", "no_mask")  # older cards: the binary contract
    three = {"output": "softmax", "class_names": ["no_mask", "mask", "incorrect"]}
    assert card_classes(three, where) == ("no_mask", "mask", "incorrect")
    for bad in ({"output": "softmax", "class_names": ["mask", "incorrect"]},
                {"output": "softmax", "class_names": ["mask", "mask", "no_mask"]},
                {"output": "softmax"}):  # fmt: skip
        with pytest.raises(UserError, match="class_names"):
            card_classes(bad, where)
    with pytest.raises(UserError, match="output is 'logits'"):
        card_classes({"output": "logits"}, where)


def test_binary_model_probabilities_are_p_mask_and_its_complement() -> None:
    classifier = MaskClassifier(ROOT / "models" / "mask_classifier")
    assert classifier.class_names == ("mask", "no_mask") and not classifier.softmax
    photo = cv2.imread(str(HELD_OUT_PHOTO))
    h, w = photo.shape[:2]
    crops = [photo[: h // 2, : w // 3], photo[h // 2 :, w // 3 :], photo]
    probs = classifier.probabilities(crops)
    assert probs.shape == (3, 2)
    np.testing.assert_allclose(probs[:, 0], classifier(crops))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(classifier.predict(probs), np.where(probs[:, 0] >= classifier.threshold, 0, 1))


def test_three_class_shipped_model_reads_its_card() -> None:
    stem = ROOT / "models" / "mask_classifier_3class"
    card = json.loads(stem.with_suffix(".json").read_text())
    assert card["output"] == "softmax" and card["class_names"] == ["no_mask", "mask", "incorrect"]
    cfg = load_config(overrides=["classifier.model=mask_classifier_3class"])
    classifier = MaskClassifier.from_config(cfg)
    probs = classifier.probabilities([cv2.imread(str(HELD_OUT_PHOTO))])
    assert probs.shape == (1, 3) and abs(float(probs.sum()) - 1.0) < 1e-4


def test_colours_and_label_text_of_each_class() -> None:
    draw = load_config().draw
    assert label_color_bgr(INCORRECT, draw) == (0, 140, 255)  # orange, BGR
    assert label_color_bgr(MASK, draw) == draw.mask_color_bgr
    assert label_color_bgr(NO_MASK, draw) == draw.no_mask_color_bgr
    assert label_color_bgr(UNKNOWN, draw) == draw.unknown_color_bgr
    custom = load_config(overrides=["draw.incorrect_color_bgr=[1, 2, 3]"]).draw
    assert label_color_bgr(INCORRECT, custom) == (1, 2, 3)
    assert label_text(INCORRECT, 0.912) == "Mask Worn Wrong 91.2%"
    assert label_text(MASK, 0.5) == "Mask 50.0%" and label_text(NO_MASK, 1.0) == "No Mask 100.0%"


def test_the_shipped_three_class_model_through_the_pipeline_on_a_real_photo() -> None:
    """CenterFace -> crops -> the shipped three-class model on a held-out group photo of six unmasked people."""
    from detector.pipeline import Pipeline
    from detector.sinks import frame_record
    from detector.sources import Frame

    cfg = load_config(overrides=["classifier.model=mask_classifier_3class"])
    photo = cv2.imread(str(HELD_OUT_PHOTO))
    faces = Pipeline.from_config(cfg, video=False)(photo)
    assert len(faces) == 6 and faces.probs.shape == (6, 3)
    np.testing.assert_allclose(faces.probs.sum(axis=1), 1.0, atol=1e-4)
    # golden figure of the shipped model (heads on block_12_add, issue 22): 2 of these 6 real unmasked faces come out
    # "incorrect" (P(incorrect) 0.79, 0.88); the model it replaced had all six "no_mask" (docs/TRAINING.md)
    assert faces.label_names == ["no_mask"] * 4 + ["incorrect"] * 2
    np.testing.assert_allclose(faces.prob_mask, faces.probs[:, MASK])
    record = frame_record(Frame(0, 0.0, photo, "t1.jpg"), faces)
    assert [f["label"] for f in record["faces"]] == faces.label_names
    assert all(set(f["probs"]) == {"no_mask", "mask", "incorrect"} for f in record["faces"])


def test_the_evaluation_and_the_detector_name_the_same_classes() -> None:
    """``MaskClassifier.predict`` (the evaluations) and ``labels_from_prob`` on the pipeline's scores (the detector)
    agree on the same crops, for both shipped models."""
    from detector.pipeline import scorer
    from maskwatch.labels import LABELS, labels_from_prob

    photo = cv2.imread(str(HELD_OUT_PHOTO))
    h, w = photo.shape[:2]
    crops = [photo[y : y + h // 3, x : x + w // 4]
             for y in range(0, h - h // 3, h // 6) for x in range(0, w - w // 4, w // 8)]  # fmt: skip
    for name in ("mask_classifier", "mask_classifier_3class"):
        classifier = MaskClassifier(ROOT / "models" / name)
        evaluated = [classifier.class_names[k] for k in classifier.predict(classifier.probabilities(crops))]
        detected = [LABELS[c] for c in labels_from_prob(scorer(classifier)(crops), classifier.threshold)]
        assert evaluated == detected and len(set(detected)) >= 2, name
