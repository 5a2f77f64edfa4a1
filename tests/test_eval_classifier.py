"""``evaluation.classifier``: matching, bins, calibration and the report, on hand-made folders and results."""

from __future__ import annotations

import importlib.util
import io
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from evaluation import classifier as ev
from maskwatch.config import load_config


def test_height_bins_and_matching() -> None:
    assert [ev.height_bin(h) for h in (0, 31, 32, 63, 64, 127, 128, 900)] == [
        "<32", "<32", "32-63", "32-63", "64-127", "64-127", "128+", "128+"]
    true = np.array([[0, 0, 10, 10], [20, 20, 40, 40], [100, 100, 110, 110]])
    pred = np.array([[21, 21, 40, 40], [0, 0, 10, 11], [1, 1, 10, 10]])
    match = ev.match_boxes(pred, np.array([0.9, 0.8, 0.95]), true, 0.4)
    assert match.tolist() == [2, 0, -1]  # the strongest detection takes the first face; the third face is missed


def test_calibration_error() -> None:
    perfect = ev.calibration(np.array([0.05] * 20 + [0.95] * 20), np.array([0] * 19 + [1] + [1] * 19 + [0]))
    assert perfect["ece"] == 0.0
    bad = ev.calibration(np.array([0.95] * 10), np.zeros(10))
    assert bad["ece"] == 0.95 and sum(b["faces"] for b in bad["bins"]) == 10


def _folder(tmp_path: Path) -> Path:
    img = np.full((200, 300, 3), 128, np.uint8)
    (tmp_path / "images").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "images" / "a.jpg"), img)
    (tmp_path / "boxes.csv").write_text(
        "file,x1,y1,x2,y2,label,look\n"
        "images/a.jpg,10,10,30,30,mask,white surgical\n"
        "images/a.jpg,100,10,200,110,no_mask,\n"
        "images/a.jpg,220,100,260,140,mask,cloth pattern\n"
        "images/a.jpg,0,150,20,170,ignore,\n"
    )
    return tmp_path


def test_evaluate_and_report_with_a_fake_pipeline(tmp_path: Path) -> None:
    _folder(tmp_path / "set")
    cfg = load_config(overrides=["classifier.unsure_band=[0.3, 0.7]", "classifier.min_face_px=0"])
    boxes = np.array([[10, 10, 30, 30], [100, 10, 200, 110], [220, 100, 260, 140], [0, 150, 20, 170]])

    def fake(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        assert frame.shape == (200, 300, 3)
        return boxes, np.array([0.9, 0.9, 0.9, 0.9]), np.array([0.2, 0.1, 0.5, 0.9])

    images = [im for f in ev.find_folders([tmp_path]) for im in ev.read_folder(f)]
    results = list(ev.evaluate_images(images, fake, cfg))
    assert [(r.truth, r.label, r.height_px) for r in results] == [
        ("mask", "no_mask", 20), ("no_mask", "no_mask", 100), ("mask", "unknown", 40)]
    report = ev.summarize(results)
    assert report["per_label_height_bin"]["mask"]["<32"] == {
        "faces": 1, "correct": 0, "unknown": 0, "accuracy": 0.0, "unknown_share": 0.0}
    assert report["per_label_height_bin"]["mask"]["32-63"]["unknown"] == 1
    assert report["per_label_height_bin"]["no_mask"]["64-127"]["accuracy"] == 1.0
    assert report["confusion_truth_x_label"]["mask"] == {"mask": 0, "no_mask": 1, "unknown": 1}
    assert set(report["per_look"]) == {"white surgical", "cloth pattern"}
    assert report["unknown_share_from_32px"] == 0.5
    text = ev.format_report(report, {"model": "x"})
    assert "32-63" in text and "expected calibration error" in text


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_on_a_terminal_only(tmp_path: Path, monkeypatch) -> None:
    _folder(tmp_path / "set")
    images = [im for f in ev.find_folders([tmp_path]) for im in ev.read_folder(f)]

    def fake(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return np.zeros((0, 4)), np.zeros(0), np.zeros(0)

    for stream, shown in ((_Terminal(), True), (io.StringIO(), False)):
        monkeypatch.setattr(sys, "stderr", stream)
        assert len(list(ev.evaluate_images(images, fake, load_config()))) == 3
        assert ("faces:" in stream.getvalue()) is shown, stream.getvalue()


def test_command_end_to_end(tmp_path: Path, monkeypatch) -> None:
    """The command writes text, JSON, CSV and PNG; the pipeline part is the only piece replaced."""
    folder = _folder(tmp_path / "set")
    monkeypatch.setattr(ev, "pipeline_classify", lambda cfg: lambda frame: (
        np.array([[100, 10, 200, 110]]), np.array([0.9]), np.array([0.02])))
    out = tmp_path / "out"
    assert ev.main([str(folder), "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["missed_by_face_detector"] == {"mask": 2, "no_mask": 0}
    assert report["per_label"]["no_mask"]["accuracy"] == 1.0
    assert (out / "reliability.png").stat().st_size > 1000 and (out / "faces.csv").read_text().count("\n") == 4


def test_without_matplotlib_the_report_is_written_without_its_plot(tmp_path: Path, monkeypatch, capsys) -> None:
    folder = _folder(tmp_path / "set")
    monkeypatch.setattr(ev, "pipeline_classify", lambda cfg: lambda frame: (
        np.array([[100, 10, 200, 110]]), np.array([0.9]), np.array([0.02])))
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "matplotlib" else find_spec(name, *a))
    out = tmp_path / "out"
    assert ev.main([str(folder), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["faces.csv", "report.json", "report.txt"]
    assert "(no reliability.png: it needs matplotlib, pip install 'maskwatch[train]')" in capsys.readouterr().out


def test_missing_boxes_is_a_user_error(tmp_path: Path) -> None:
    assert ev.run(ev.main, [str(tmp_path)]) == 2


@pytest.mark.parametrize(("rows", "message"), [
    ("images/a.jpg,abc,10,30,30,mask,\nimages/a.jpg,1,2\n", "6: box coordinates must be numbers"),
    ("images/a.jpg,1,2\n", "6: a short row; expected file,x1,y1,x2,y2,label"),  # was an AttributeError traceback
    # an unknown label is an error, not a face left out (incorrect is a label, not scored)
    ("images/a.jpg,40,40,60,60,incorrect,\nimages/a.jpg,40,40,60,60,Mask,\n",
     "7: label 'Mask' is not one of mask, no_mask, incorrect, ignore"),
])
def test_a_bad_boxes_csv_row_is_one_line_error(tmp_path: Path, capsys, rows: str, message: str) -> None:
    folder = _folder(tmp_path / "set")
    with (folder / "boxes.csv").open("a") as fh:
        fh.write(rows)
    assert ev.run(ev.main, [str(folder), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {folder / 'boxes.csv'}:{message}"


def test_an_out_that_is_a_file_is_one_line_error_before_the_pipeline(tmp_path: Path, capsys, monkeypatch) -> None:
    folder = _folder(tmp_path / "set")
    monkeypatch.setattr(ev, "pipeline_classify", lambda cfg: pytest.fail("the pipeline ran"))
    out = tmp_path / "out.txt"
    out.write_text("a file")
    assert ev.run(ev.main, [str(folder), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: --out: cannot create the folder {out}: {out} is a file"


def test_choose_decision_widens_the_band_only_as_needed(tmp_path: Path) -> None:
    cfg = load_config()
    sure = [ev.FaceResult("a", t, "", 80, True, 80, p, "") for t, p in (("mask", 0.99), ("no_mask", 0.01)) * 30]
    shaky = [ev.FaceResult("b", "mask", "", 80, True, 80, 0.45, ""), ev.FaceResult("b", "no_mask", "", 80, True, 80,
                                                                                   0.58, "")]
    tiny = [ev.FaceResult("c", "no_mask", "", 12, True, 12, 0.9, "")] * 3 + [
        ev.FaceResult("c", "no_mask", "", 20, True, 20, 0.1, "")] * 3
    choice = ev.choose_decision(sure + shaky + tiny, cfg)
    low, high = choice["unsure_band"]
    assert low < 0.45 and high > 0.58 and high - low <= 0.2  # both shaky faces unknown, no wider
    assert choice["min_face_px"] == 14  # the 12 px faces are wrong, the 20 px ones right
    path = tmp_path / "faces.csv"
    ev.write_faces_csv(sure[:2], path)
    assert ev.read_faces_csv(path) == sure[:2]


def test_an_unreadable_photo_is_skipped_and_counted_not_the_end_of_the_run(tmp_path: Path, monkeypatch,
                                                                          capsys) -> None:  # fmt: skip
    """A damaged photo among good ones: the others are scored, the damaged one is named in the output and the
    report (the standard: corrupt images are skipped and counted)."""
    folder = _folder(tmp_path / "set")
    (folder / "images" / "b.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with (folder / "boxes.csv").open("a") as fh:
        fh.write("images/b.jpg,10,10,60,60,mask,\n")
    monkeypatch.setattr(ev, "pipeline_classify", lambda cfg: lambda frame: (
        np.array([[100, 10, 200, 110]]), np.array([0.9]), np.array([0.02])))
    out = tmp_path / "out"
    assert ev.main([str(folder), "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["unreadable"] == [str(folder / "images" / "b.jpg")]
    assert report["per_label"]["no_mask"]["correct"] == 1 and report["faces"] == 3  # b.jpg's face is not counted
    printed = capsys.readouterr().out
    assert f"skipped 1 unreadable image(s): {folder / 'images' / 'b.jpg'}" in printed
    assert "skipped 1 unreadable" in (out / "report.txt").read_text()
