"""The developer scripts in ``tools/`` on input a developer gets wrong: one ``error:`` line and exit code 2 (a
Ctrl-C: ``interrupted``, 130), never a traceback, never an input or an earlier output replaced; an unreadable photo
is skipped and counted. Each runs the script as a developer does (``python tools/x.py``), on tiny generated data,
and stops before TensorFlow loads."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tool(name: str, *args: object, cwd: Path, path_prefix: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_CACHE_HOME": str(cwd / "cache")}
    if path_prefix is not None:
        env["PATH"] = f"{path_prefix}{os.pathsep}{env['PATH']}"
    return subprocess.run([sys.executable, str(ROOT / "tools" / f"{name}.py"), *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def _one_error(done: subprocess.CompletedProcess, message: str) -> None:
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
    assert message in done.stderr, done.stderr


def _skipped_one(done: subprocess.CompletedProcess, bad: str) -> None:
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert f"skipped 1 unreadable image(s): {bad}" in done.stderr, done.stderr


def _labelled(folder: Path, corrupt: bool = False) -> Path:
    """A ``maskify --full-images`` folder: two photos of two groups (boxes.csv, faces.csv), and with ``corrupt`` a
    third photo that is not an image."""
    (folder / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = ["alice__mask", "bob__no_mask"]
    for name in names:
        cv2.imwrite(str(folder / "images" / f"{name}.png"), rng.integers(0, 255, (120, 120, 3), dtype=np.uint8))
    if corrupt:
        (folder / "images" / "carl__mask.png").write_bytes(b"not an image")
        names.append("carl__mask")
    labels = {"alice__mask": "mask", "bob__no_mask": "no_mask", "carl__mask": "mask"}
    (folder / "boxes.csv").write_text("file,x1,y1,x2,y2,label\n" + "".join(
        f"images/{n}.png,10,10,60,60,{labels[n]}\n" for n in names))  # fmt: skip
    (folder / "faces.csv").write_text("image,group,source,face,x1,y1,x2,y2\n" + "".join(
        f"images/{n}.png,{n.split('__')[0]},s,0,10,10,60,60\n" for n in names))  # fmt: skip
    return folder


# shrink_set


def test_shrink_set_skips_and_counts_an_unreadable_photo(tmp_path: Path) -> None:
    """It was ``error: cannot read ...``, exit 2, after writing the other photos (and no boxes.csv)."""
    _labelled(tmp_path / "src" / "s1", corrupt=True)
    done = _tool("shrink_set", "src", "out", "--scales", "0.5", cwd=tmp_path)
    _skipped_one(done, "src/s1/images/carl__mask.png")
    rows = (tmp_path / "out" / "s1_x0.5" / "boxes.csv").read_text().splitlines()
    assert rows[1:] == ["images/alice__mask.png,5,5,30,30,mask", "images/bob__no_mask.png,5,5,30,30,no_mask"]
    assert "WARN" not in done.stderr  # PNG photos were encoded with a JPEG option: one OpenCV warning each


@pytest.mark.parametrize(("args", "message"), [
    (["out", "--scales", "0.5", "2"], "scale must be in (0, 1], got 2.0"),  # the 0.5 copy was written first
    (["src", "--scales", "0.5"], "DST src is inside SRC src"),  # a second run read its own copies as sets
    (["src/s1", "--scales", "0.5"], "DST src/s1 is inside SRC src"),
])  # fmt: skip
def test_shrink_set_bad_scales_and_a_dst_inside_src_write_nothing(tmp_path: Path, args: list[str],
                                                                  message: str) -> None:  # fmt: skip
    _labelled(tmp_path / "src" / "s1")
    _one_error(_tool("shrink_set", "src", *args, cwd=tmp_path), message)
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in (tmp_path / "src").iterdir()) == ["s1"]
    assert sorted(p.name for p in (tmp_path / "src" / "s1").iterdir()) == ["boxes.csv", "faces.csv", "images"]


def test_shrink_set_keeps_an_earlier_output_unless_overwrite(tmp_path: Path) -> None:
    _labelled(tmp_path / "src" / "s1")
    out = tmp_path / "out" / "s1_x0.5"
    out.mkdir(parents=True)
    (out / "boxes.csv").write_text("earlier\n")
    _one_error(_tool("shrink_set", "src", "out", "--scales", "0.5", cwd=tmp_path),
               "out/s1_x0.5 already exists (use --overwrite")  # fmt: skip
    assert (out / "boxes.csv").read_text() == "earlier\n"
    assert _tool("shrink_set", "src", "out", "--scales", "0.5", "--overwrite", cwd=tmp_path).returncode == 0
    assert (out / "boxes.csv").read_text().startswith("file,")


# detector_crops


def test_detector_crops_skips_and_counts_an_unreadable_photo(tmp_path: Path) -> None:
    """It was ``error: cannot read ...``, exit 2, after writing dev_groups.txt (and some crops)."""
    _labelled(tmp_path / "src" / "s1", corrupt=True)
    done = _tool("detector_crops", "src", "dst", "--scales", "1", cwd=tmp_path)
    _skipped_one(done, "src/s1/images/carl__mask.png")
    assert (tmp_path / "dst" / "groups.csv").read_text().startswith("file,group\n")


def test_detector_crops_dev_out_never_replaces_a_labelled_set(tmp_path: Path) -> None:
    """``--dev-out SRC`` replaced SRC's boxes.csv with the development rows only (then a SameFileError traceback);
    an existing --dev-out was silently replaced."""
    src = _labelled(tmp_path / "src")
    (tmp_path / "dev.txt").write_text("bob\n")
    boxes = (src / "boxes.csv").read_text()
    done = _tool("detector_crops", "src", "dst", "--scales", "1", "--dev-groups", "dev.txt", "--dev-out", "src",
                 cwd=tmp_path)  # fmt: skip
    _one_error(done, "--dev-out src is inside SRC src")
    assert (src / "boxes.csv").read_text() == boxes
    other = _labelled(tmp_path / "other")
    done = _tool("detector_crops", "src", "dst", "--scales", "1", "--dev-groups", "dev.txt", "--dev-out", "other",
                 cwd=tmp_path)  # fmt: skip
    _one_error(done, "--dev-out other already holds a labelled set")
    assert (other / "boxes.csv").read_text() == boxes
    assert not (tmp_path / "dst").exists()


@pytest.mark.parametrize(("groups", "message"), [
    (None, "--base base: no groups.csv"),
    ("file,group\nwith_mask/gone.png,zed\n", "--base base: with_mask/gone.png is listed in groups.csv but not there"),
])  # fmt: skip
def test_detector_crops_a_bad_base_is_one_line_before_anything_is_written(tmp_path: Path, groups: str | None,
                                                                          message: str) -> None:  # fmt: skip
    """Both were a FileNotFoundError traceback, after DST/dev_groups.txt was written."""
    _labelled(tmp_path / "src" / "s1")
    (tmp_path / "base" / "with_mask").mkdir(parents=True)
    if groups is not None:
        (tmp_path / "base" / "groups.csv").write_text(groups)
    _one_error(_tool("detector_crops", "src", "dst", "--scales", "1", "--base", "base", cwd=tmp_path), message)
    assert not (tmp_path / "dst").exists()


# eval_classifier_boxes


@pytest.mark.parametrize(("row", "message"), [
    ("images/alice__mask.png,a,10,60,60,mask", "boxes.csv:4: box coordinates must be numbers"),  # ValueError
    ("images/alice__mask.png,200,200,300,300,mask", "the box 200,200,300,300 of images/alice__mask.png is empty or "
     "outside the 120x120 photo"),  # a ValueError of the classifier: crop is empty
])  # fmt: skip
def test_eval_classifier_boxes_a_bad_box_is_one_line(tmp_path: Path, row: str, message: str) -> None:
    src = _labelled(tmp_path / "set")
    (src / "boxes.csv").write_text((src / "boxes.csv").read_text() + row + "\n")
    _one_error(_tool("eval_classifier_boxes", "set", cwd=tmp_path), message)


def test_eval_classifier_boxes_never_writes_the_report_over_its_input(tmp_path: Path) -> None:
    """``--json DIR/boxes.csv`` replaced the labels with the report; ``--json FOLDER`` failed after the run, naming
    a temporary file."""
    src = _labelled(tmp_path / "set")
    boxes = (src / "boxes.csv").read_text()
    _one_error(_tool("eval_classifier_boxes", "set", "--json", "set/boxes.csv", cwd=tmp_path),
               "--json set/boxes.csv is the source")  # fmt: skip
    assert (src / "boxes.csv").read_text() == boxes
    _one_error(_tool("eval_classifier_boxes", "set", "--json", "set", cwd=tmp_path), "--json set is a folder")


def test_eval_classifier_boxes_skips_and_counts_an_unreadable_photo(tmp_path: Path) -> None:
    _labelled(tmp_path / "set", corrupt=True)
    done = _tool("eval_classifier_boxes", "set", "--json", "report.json", cwd=tmp_path)
    _skipped_one(done, "set/images/carl__mask.png")
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["n"] == 2 and report["unreadable"] == ["set/images/carl__mask.png"]


# ship_model


def _shipped(tmp_path: Path, card: str) -> None:
    (tmp_path / "m.json").write_text(card)
    (tmp_path / "m.tflite").write_bytes(b"model")
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "provenance.csv").write_text("package,version,fetched_as,licence\np,1,sdist,MIT\n")
    (tmp_path / "eval.json").write_text("{}")


@pytest.mark.parametrize(("card", "extra", "message"), [
    ("{broken", [], "the model card m.json is not JSON"),  # JSONDecodeError
    ('{"files": {"tflite": "gone.tflite"}}', [], "m.json names gone.tflite, which is not there"),  # FileNotFoundError
    ('{"files": {"tflite": "m.tflite"}}', ["--eval-json", "eval.json"], "eval.json has no n, accuracy"),  # KeyError
    ('{"files": {"tflite": "m.tflite"}}', ["--eval-json", "nope.json"], "--eval-json nope.json not found"),
    ('{"files": {"tflite": "m.tflite"}}', ["--three-class-eval", "eval.json"], "eval.json has no dirs, boxes"),
    ('{"files": {"tflite": "m.tflite"}}', ["--three-class-eval", "ds"], "--three-class-dev ds is a folder"),
])  # fmt: skip
def test_ship_model_bad_input_is_one_line_and_keeps_the_card(tmp_path: Path, card: str, extra: list[str],
                                                             message: str) -> None:  # fmt: skip
    _shipped(tmp_path, card)
    _one_error(_tool("ship_model", "--stem", "m", "--dataset", "ds", *extra, cwd=tmp_path), message)
    assert (tmp_path / "m.json").read_text() == card


# three_label_frame


def _variants(folder: Path) -> Path:
    (folder / "images").mkdir(parents=True)
    for name in ("mask", "below_nose", "no_mask", "on_chin"):
        cv2.imwrite(str(folder / "images" / f"p__{name}.jpg"), np.full((60, 120, 3), 50, np.uint8))
    (folder / "boxes.csv").write_text("file,x1,y1,x2,y2,label\nimages/p__no_mask.jpg,10,10,40,40,no_mask\n"
                                      "images/p__no_mask.jpg,70,10,100,40,no_mask\n")  # fmt: skip
    return folder


def test_three_label_frame_bad_input_is_one_line(tmp_path: Path) -> None:
    """A missing folder was a FileNotFoundError traceback, a set without a no_mask photo an IndexError."""
    _one_error(_tool("three_label_frame", "nope", "out.jpg", cwd=tmp_path), "nope/boxes.csv not found")
    _labelled(tmp_path / "two_labels")
    _one_error(_tool("three_label_frame", "two_labels", "out.jpg", cwd=tmp_path),
               "has no no_mask face of a __no_mask.jpg photo")  # fmt: skip


def test_three_label_frame_never_replaces_its_input_or_an_earlier_frame(tmp_path: Path) -> None:
    src = _variants(tmp_path / "m")
    photo = (src / "images" / "p__no_mask.jpg").read_bytes()
    _one_error(_tool("three_label_frame", "m", "m/images/p__no_mask.jpg", cwd=tmp_path), "is the source")
    assert (src / "images" / "p__no_mask.jpg").read_bytes() == photo
    (tmp_path / "out.jpg").write_bytes(b"earlier")
    _one_error(_tool("three_label_frame", "m", "out.jpg", cwd=tmp_path), "OUT out.jpg exists: add --overwrite")
    assert (tmp_path / "out.jpg").read_bytes() == b"earlier"
    assert _tool("three_label_frame", "m", "out.jpg", "--overwrite", cwd=tmp_path).returncode == 0
    assert cv2.imread(str(tmp_path / "out.jpg")).shape == (60, 120, 3)


# time_centerface, quantize_centerface


@pytest.mark.parametrize(("args", "message"), [
    (["--runs", "0"], "--runs must be at least 1, got 0"),  # KeyError traceback after loading the detectors
    (["--runs", "1", "--sizes", "640"], "--sizes must be WxH sizes"),  # an OpenCV traceback
    (["--runs", "1", "--video", "nope.mp4"], "cannot read a frame from nope.mp4"),  # exit 1, without "error: "
])  # fmt: skip
def test_time_centerface_bad_input_is_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    _one_error(_tool("time_centerface", *args, cwd=tmp_path), message)


def test_quantize_centerface_bad_input_is_one_line_and_never_replaces_the_source(tmp_path: Path) -> None:
    """``--frames 0`` was a ValueError traceback of ONNX Runtime; a DST that is the source model was overwritten
    by its fp16 version; a damaged source a protobuf DecodeError traceback."""
    _one_error(_tool("quantize_centerface", "int8", "q.onnx", "--photos", ".", "--frames", "0", cwd=tmp_path),
               "--frames must be at least 1, got 0")  # fmt: skip
    model = tmp_path / "cf.onnx"
    model.write_bytes((ROOT / "models" / "centerface.onnx").read_bytes())
    size = model.stat().st_size
    _one_error(_tool("quantize_centerface", "fp16", "cf.onnx", "--set", f"face_detector.onnx={model}",
                     cwd=tmp_path), "DST cf.onnx is the source")  # fmt: skip
    assert model.stat().st_size == size
    (tmp_path / "bad.onnx").write_bytes(b"not onnx")
    _one_error(_tool("quantize_centerface", "fp16", "q.onnx", "--set", f"face_detector.onnx={tmp_path / 'bad.onnx'}",
                     cwd=tmp_path), "as an ONNX model")  # fmt: skip
    assert not (tmp_path / "q.onnx").exists()


# keras_from_tflite, wrong_mask_head: the checks before TensorFlow loads


def test_keras_from_tflite_checks_the_output_before_the_rebuild(tmp_path: Path) -> None:
    """An existing OUT_STEM.keras was replaced; an OUT_STEM under a file was a FileExistsError traceback after the
    rebuild."""
    (tmp_path / "old.keras").write_bytes(b"earlier")
    (tmp_path / "afile").write_text("x")
    tflite = ROOT / "models" / "mask_classifier.tflite"
    _one_error(_tool("keras_from_tflite", tflite, "old", cwd=tmp_path), "old.keras exists: add --overwrite")
    assert (tmp_path / "old.keras").read_bytes() == b"earlier"
    _one_error(_tool("keras_from_tflite", tflite, "afile/m", cwd=tmp_path), "OUT_STEM: cannot create the folder")


@pytest.mark.parametrize(("args", "message"), [
    (["--copies", "-1"], "--copies must be at least 0, got -1"),
    (["--epochs", "0"], "--epochs must be at least 1, got 0"),
    (["--heads", "0"], "--heads must be at least 1, got 0"),
    (["--channels", "0"], "--channels must be at least 1, got 0"),
    (["--learning-rate", "0"], "--learning-rate must be more than 0, got 0"),
    (["--l2", "-1"], "--l2 must be 0 or more, got -1"),
    (["--cache", "afile"], "--cache: cannot create the folder afile"),
])  # fmt: skip
def test_wrong_mask_head_bad_numbers_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "b.keras").write_bytes(b"")
    (tmp_path / "ds" / "incorrect_mask").mkdir(parents=True)
    (tmp_path / "afile").write_text("x")
    _one_error(_tool("wrong_mask_head", "b", "ds", "o", *args, cwd=tmp_path), message)


def test_wrong_mask_head_never_replaces_the_binary_model_or_an_earlier_one(tmp_path: Path) -> None:
    (tmp_path / "b.keras").write_bytes(b"binary")
    (tmp_path / "ds" / "incorrect_mask").mkdir(parents=True)
    _one_error(_tool("wrong_mask_head", "b", "ds", "b", cwd=tmp_path), "OUT_STEM b is the binary model b")
    (tmp_path / "o.json").write_text("{}")
    _one_error(_tool("wrong_mask_head", "b", "ds", "o", cwd=tmp_path), "o.json exists: add --overwrite")
    assert (tmp_path / "b.keras").read_bytes() == b"binary" and (tmp_path / "o.json").read_text() == "{}"


# group_photos, holdout_photos: apt-get download replaced by a script on PATH


def _fake_apt_get(tmp_path: Path, body: str) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "apt-get"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return bin_dir


@pytest.mark.parametrize(("tool", "args"), [("group_photos", []), ("holdout_photos", ["--set", "5"])])
def test_a_dst_that_cannot_be_written_is_one_line_before_the_fetch(tmp_path: Path, tool: str,
                                                                   args: list[str]) -> None:  # fmt: skip
    """It was found only after the download (exit 1), and a bad option was exit 1 too."""
    (tmp_path / "afile").write_text("x")
    bin_dir = _fake_apt_get(tmp_path, "echo fetched >> fetches; exit 100")
    _one_error(_tool(tool, *args, "afile", cwd=tmp_path, path_prefix=bin_dir), "DST: cannot create the folder afile")
    assert not (tmp_path / "fetches").exists()


@pytest.mark.skipif(sys.platform == "win32", reason="a shell script as apt-get")
@pytest.mark.parametrize(("tool", "args"), [("group_photos", []), ("holdout_photos", ["--set", "5"])])
def test_ctrl_c_during_the_fetch_is_interrupted_and_130(tmp_path: Path, tool: str, args: list[str]) -> None:
    """It was a KeyboardInterrupt traceback."""
    bin_dir = _fake_apt_get(tmp_path, "exec sleep 30")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}  # fmt: skip
    proc = subprocess.Popen([sys.executable, str(ROOT / "tools" / f"{tool}.py"), *args, "out"], cwd=tmp_path,
                            env=env, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert proc.stderr is not None and proc.stderr.readline().startswith("fetching ")
        proc.send_signal(signal.SIGINT)
        err = proc.stderr.read()
        assert proc.wait(timeout=20) == 130
    finally:
        proc.kill()
    assert err == "interrupted\n"
