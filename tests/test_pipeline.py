"""``detector.pipeline.Pipeline``: one classifier batch per frame, labels from the threshold, timings, and the
end-to-end golden test of the default pipeline on demo/demo.mp4.

Regenerate the golden file (after a deliberate change of the default pipeline; review the diff):

    MASKWATCH_REGENERATE_GOLDEN=1 python -m pytest tests/test_pipeline.py -k golden
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from detector.pipeline import Pipeline
from maskwatch.faces import Faces
from maskwatch.geometry import iou_matrix

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).with_name("golden") / "pipeline_demo.json"
GOLDEN_FRAMES = (0, 40, 75, 120)
MIN_IOU = 0.9  # each recorded box must be matched by a box of the same label with at least this IoU


def _two_faces(frame_bgr: np.ndarray) -> Faces:
    return Faces([[0, 0, 10, 10], [20, 5, 40, 30]], [0.9, 0.8])


def test_images_classify_every_face_in_one_batch_and_label_by_threshold():
    batches: list[int] = []

    def classify(crops):
        batches.append(len(crops))
        return np.array([0.7, 0.2], np.float32)[: len(crops)]

    pipeline = Pipeline(_two_faces, classify, threshold=0.6)
    frame = np.zeros((48, 64, 3), np.uint8)
    faces = [pipeline(frame) for _ in range(2)][-1]
    assert batches == [2, 2] and faces.label_names == ["mask", "no_mask"]
    assert faces.track_id.tolist() == [-1, -1] and faces.prob_mask.tolist() == pytest.approx([0.7, 0.2])
    assert set(pipeline.last_timings_ms) == {"detect", "classify"} and min(pipeline.last_timings_ms.values()) >= 0


def test_a_frame_without_faces_does_not_call_the_classifier():
    def classify(crops):
        raise AssertionError("called")

    faces = Pipeline(lambda frame: Faces.empty(), classify)(np.zeros((8, 8, 3), np.uint8))
    assert len(faces) == 0


def golden_differences(got: list[dict], want: list[dict], min_iou: float = MIN_IOU) -> list[str]:
    """What differs between two recordings (frame, boxes, labels): a face count, a label or a box below
    ``min_iou``; empty when they agree."""
    problems = []
    for g, w in zip(got, want, strict=True):
        if len(g["boxes"]) != len(w["boxes"]):
            problems.append(f"frame {w['frame']}: {len(g['boxes'])} faces, recorded {len(w['boxes'])}")
            continue
        for box, label in zip(w["boxes"], w["labels"], strict=True):
            iou = iou_matrix(np.array([box]), np.array(g["boxes"]).reshape(-1, 4))[0]
            same = [i for i, lab in enumerate(g["labels"]) if lab == label and iou[i] >= min_iou]
            if not same:
                problems.append(f"frame {w['frame']}: no {label} box with IoU >= {min_iou} for {box}")
    return problems


def _record_demo() -> list[dict]:
    from detector.sources import video_frames
    from maskwatch.config import load_config

    pipeline = Pipeline.from_config(load_config(), video=True)
    out = []
    for frame in video_frames(ROOT / "demo" / "demo.mp4"):
        faces = pipeline(frame.image_bgr)
        if frame.index in GOLDEN_FRAMES:
            out.append({"frame": frame.index, "boxes": faces.xyxy.tolist(), "labels": faces.label_names})
        if frame.index >= max(GOLDEN_FRAMES):
            break
    return out


@pytest.mark.slow
def test_golden_default_pipeline_on_the_demo_video():
    got = _record_demo()
    if os.environ.get("MASKWATCH_REGENERATE_GOLDEN"):
        GOLDEN.write_text("[\n" + ",\n".join(json.dumps(frame) for frame in got) + "\n]\n")
    want = json.loads(GOLDEN.read_text())
    assert [w["frame"] for w in want] == list(GOLDEN_FRAMES)
    assert sum(len(w["boxes"]) for w in want) >= 8
    assert {"mask", "no_mask"} <= {label for w in want for label in w["labels"]}
    assert golden_differences(got, want) == []


def test_golden_comparison_catches_a_moved_box_and_a_flipped_label():
    want = [{"frame": 0, "boxes": [[0, 0, 100, 100], [200, 0, 300, 100]], "labels": ["mask", "no_mask"]}]
    assert golden_differences(want, want) == []
    moved = [{**want[0], "boxes": [[10, 10, 110, 110], [200, 0, 300, 100]]}]  # IoU 0.68
    flipped = [{**want[0], "labels": ["no_mask", "no_mask"]}]
    fewer = [{"frame": 0, "boxes": [[0, 0, 100, 100]], "labels": ["mask"]}]
    assert len(golden_differences(moved, want)) == 1
    assert len(golden_differences(flipped, want)) == 1
    assert golden_differences(fewer, want) == ["frame 0: 1 faces, recorded 2"]


def test_small_or_unsure_faces_are_unknown():
    """classifier.min_face_px and classifier.unsure_band (maskwatch.labels.label_faces) label faces unknown."""
    from maskwatch.faces import MASK, NO_MASK, UNKNOWN

    boxes = np.array([[0, 0, 20, 20], [30, 0, 130, 100], [140, 0, 240, 100], [250, 0, 350, 100]])
    probs = np.array([0.99, 0.55, 0.95, 0.05], np.float32)
    detect = lambda frame: Faces(boxes, np.ones(4))  # noqa: E731
    classify = lambda crops: probs[: len(crops)]  # noqa: E731
    frame = np.zeros((120, 360, 3), np.uint8)
    plain = Pipeline(detect, classify)(frame)
    assert plain.label.tolist() == [MASK, MASK, MASK, NO_MASK]
    unsure = Pipeline(detect, classify, unsure_band=(0.3, 0.7), min_face_px=32)(frame)
    assert unsure.label.tolist() == [UNKNOWN, UNKNOWN, MASK, NO_MASK]
    assert unsure.prob_mask.tolist() == pytest.approx(probs.tolist())
