"""evaluation.faces: matching detections to labelled faces, the tally by face height, the command end to end."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from evaluation.faces import evaluate, format_height_table, format_table, height_bin, main, match_image
from evaluation.sets import read_labelled_folder
from maskwatch.errors import UserError
from maskwatch.faces import Faces

# --- matching ------------------------------------------------------------------------------------------------


def test_match_counts_hits_duplicates_and_ignored():
    truth = np.array([[0, 0, 100, 100], [200, 0, 300, 100], [400, 0, 500, 100]])
    labels = ["mask", "no_mask", "ignore"]
    pred = np.array([
        [5, 5, 100, 100],  # hits face 0
        [0, 0, 95, 95],  # duplicate of face 0: false positive
        [400, 0, 500, 100],  # on the ignore box: neither
        [700, 0, 800, 100],  # nothing there: false positive
    ])  # fmt: skip
    result = match_image(pred, np.array([0.9, 0.8, 0.7, 0.6]), truth, labels, iou_min=0.4)
    assert result.found.tolist() == [True, False, False]
    assert (result.false_positives, result.ignored) == (2, 1)


def test_match_strongest_detection_claims_the_face_and_iou_threshold_applies():
    truth = np.array([[0, 0, 100, 100]])
    weak_good, strong_loose = [0, 0, 100, 100], [0, 0, 100, 45]  # IoU 0.45
    r = match_image(np.array([weak_good, strong_loose]), np.array([0.3, 0.9]), truth, ["mask"], iou_min=0.4)
    assert r.found.tolist() == [True] and r.false_positives == 1
    r = match_image(np.array([strong_loose]), np.array([0.9]), truth, ["mask"], iou_min=0.5)
    assert r.found.tolist() == [False] and r.false_positives == 1


def test_match_without_truth_or_detections():
    assert match_image(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 4)), []).false_positives == 0
    r = match_image(np.array([[0, 0, 9, 9]]), np.array([0.5]), np.zeros((0, 4)), [])
    assert r.false_positives == 1
    r = match_image(np.zeros((0, 4)), np.zeros(0), np.array([[0, 0, 9, 9]]), ["no_mask"])
    assert r.found.tolist() == [False] and r.false_positives == 0


# --- the labelled folder and the command ---------------------------------------------------------------------


def make_folder(root: Path, rows: str, images: dict[str, np.ndarray]) -> Path:
    for name, image in images.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / name), image)
    (root / "boxes.csv").write_text("file,x1,y1,x2,y2,label\n" + rows)
    return root


def test_read_labelled_folder_includes_images_without_rows(tmp_path: Path):
    blank = np.zeros((20, 20, 3), np.uint8)
    folder = make_folder(
        tmp_path, "images/a.jpg,1,2,11,12,mask\nimages/a.jpg,3,3,9,9,ignore\n", {"images/a.jpg": blank, "b.png": blank}
    )
    items = read_labelled_folder(folder, (".jpg", ".png"))
    assert sorted(p.path.name for p in items) == ["a.jpg", "b.png"]
    by_name = {p.path.name: p for p in items}
    assert by_name["a.jpg"].xyxy.tolist() == [[1, 2, 11, 12], [3, 3, 9, 9]]
    assert by_name["a.jpg"].labels == ["mask", "ignore"]
    assert by_name["b.png"].labels == []


@pytest.mark.parametrize(
    ("rows", "message"),
    [("a.jpg,1,2,3,4,masked\n", "not one of"), ("a.jpg,1,x,3,4,mask\n", "numbers")],
)
def test_bad_boxes_csv_is_a_user_error(tmp_path: Path, rows: str, message: str):
    folder = make_folder(tmp_path, rows, {})
    with pytest.raises(UserError, match=message):
        read_labelled_folder(folder, (".jpg",))


def test_missing_csv_is_a_user_error(tmp_path: Path):
    with pytest.raises(UserError, match=r"no boxes\.csv"):
        read_labelled_folder(tmp_path, (".jpg",))


def test_cli_bad_folder_exits_2_with_one_line(tmp_path: Path, capsys):
    assert main([str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: not a folder") and "\n" not in err


def test_format_table_row():
    summary = {
        "recall": {"mask": 0.5, "no_mask": 1.0},
        "found": {"mask": 1, "no_mask": 2},
        "faces": {"mask": 2, "no_mask": 2},
        "false_positives": 3,
        "false_positives_per_image": 0.75,
        "ms_per_image": {"wall_mean": 12.34, "cpu_mean": 10.0},
    }
    row = format_table([{"name": "x", "summary": summary}]).splitlines()[-1]
    assert row == "| x | 0.500 (1/2) | 1.000 (2/2) | 3 (0.75) | 12.3 | 10.0 |"


def test_recall_is_reported_by_face_height(tmp_path: Path):
    assert [height_bin(h) for h in (20, 63, 64, 200, 256, 900)] == ["<64", "<64", "64-127", "128-255", ">=256", ">=256"]
    frame = np.zeros((600, 800, 3), np.uint8)
    rows = ("a.jpg,10,10,50,60,mask\n"  # 50 px tall, found
            "a.jpg,100,10,150,70,mask\n"  # 60 px tall, missed
            "a.jpg,200,10,300,160,mask\n"  # 150 px tall, found
            "a.jpg,400,10,600,310,no_mask\n"  # 300 px tall, found
            "a.jpg,700,10,720,30,ignore\n")  # fmt: skip
    folder = make_folder(tmp_path, rows, {"a.jpg": frame})

    def detector(frame_bgr):  # a stand-in that finds three of the four faces
        return Faces(np.array([[10, 10, 50, 60], [200, 10, 300, 160], [400, 10, 600, 310]]), np.ones(3))

    tally, _, _ = evaluate(detector, read_labelled_folder(folder, (".jpg",)))
    by_height = tally.summary()["by_face_height_px"]
    assert {b: (v["mask"]["found"], v["mask"]["faces"]) for b, v in by_height.items()} == {
        "<64": (1, 2), "64-127": (0, 0), "128-255": (1, 1), ">=256": (0, 0)}  # fmt: skip
    assert by_height[">=256"]["no_mask"] == {"found": 1, "faces": 1, "recall": 1.0}
    table = format_height_table([{"name": "x", "summary": tally.summary()}])
    assert table.splitlines()[0] == "| setting | mask <64 px | mask 64-127 px | mask 128-255 px | mask >=256 px |"
    assert table.splitlines()[-1] == "| x | 0.500 (1/2) | - | 1.000 (1/1) | - |"


def test_the_command_evaluates_the_configured_detector(tmp_path: Path, astronaut, capsys):
    frame, masked, face = astronaut
    x1, y1, x2, y2 = face[0].tolist()
    rows = f"images/a.jpg,{x1},{y1},{x2},{y2},no_mask\nimages/b.jpg,{x1},{y1},{x2},{y2},mask\n"
    folder = make_folder(tmp_path / "set", rows, {"images/a.jpg": frame, "images/b.jpg": masked,
                                                   "images/none.png": np.full((240, 320, 3), 127, np.uint8)})
    out = tmp_path / "report.json"
    assert main([str(folder), "--json", str(out), "--set", "face_detector.long_sides_px=[640]"]) == 0
    report = json.loads(out.read_text())
    (result,) = report["results"]
    assert result["set"] == ["face_detector.long_sides_px=[640]"]
    assert result["face_detector"]["long_sides_px"] == [640]
    summary = result["summary"]
    assert summary["images"] == 3 and summary["faces"] == {"mask": 1, "no_mask": 1}
    assert summary["recall"] == {"mask": 1.0, "no_mask": 1.0} and summary["false_positives"] == 0
    assert "| face_detector.long_sides_px=[640] | 1.000 (1/1) | 1.000 (1/1) | 0 (0.00) |" in capsys.readouterr().out
