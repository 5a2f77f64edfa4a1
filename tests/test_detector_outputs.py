"""Output paths: never a source, never another output, existing files only with --overwrite, writable up front."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from detector import webcam
from detector.outputs import check_outputs
from maskwatch.errors import UserError


def _video(path: Path) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (64, 48))
    for i in range(3):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.release()
    return path


def _read_only_dir(tmp_path: Path) -> Path:
    """A folder this process cannot create files in (root ignores permission bits: use /sys there)."""
    if os.geteuid() == 0:
        if not sys.platform.startswith("linux") or not Path("/sys").is_dir():
            pytest.skip("needs a read-only folder")
        return Path("/sys")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    return ro


def test_output_that_is_the_source_is_refused_also_through_a_symlink_or_relative_path(tmp_path: Path,
                                                                                        monkeypatch):
    clip = _video(tmp_path / "clip.mp4")
    (tmp_path / "link.mp4").symlink_to(clip)
    monkeypatch.chdir(tmp_path)
    for out in (clip, tmp_path / "link.mp4", "clip.mp4", "./sub/../clip.mp4"):
        with pytest.raises(UserError, match="is the source"):
            check_outputs([str(clip)], {"--log": out}, overwrite=True)


def test_image_folder_output_over_its_source_folder_is_refused(tmp_path: Path):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.jpg").write_bytes(b"x")
    with pytest.raises(UserError, match="is the source folder"):
        check_outputs([photos], {"--output": photos}, overwrite=True, images=True)
    with pytest.raises(UserError, match="is the source folder"):  # one image, its own folder as the output
        check_outputs([photos / "a.jpg"], {"--output": f"{photos}/"}, overwrite=True, images=True)
    with pytest.raises(UserError, match="is the source"):  # a log named like a source image in the source folder
        check_outputs([photos], {"--log": photos / "a.jpg"}, overwrite=True, images=True)
    check_outputs([photos], {"--output": photos / "annotated", "--log": photos / "log.jsonl"}, overwrite=False,
                  images=True)  # a sub-folder and a new file are fine


def test_two_outputs_with_one_name_are_refused(tmp_path: Path):
    with pytest.raises(UserError, match="is the same file as --output"):
        check_outputs([], {"--output": tmp_path / "o.mp4", "--log": tmp_path / "x" / ".." / "o.mp4"},
                      overwrite=True)
    with pytest.raises(UserError, match="same file"):  # only the case differs: refused everywhere (macOS, Windows)
        check_outputs([], {"--log": tmp_path / "run.json", "--summary": tmp_path / "RUN.json"}, overwrite=True)


def test_existing_output_needs_overwrite(tmp_path: Path):
    (tmp_path / "log.jsonl").write_text("{}\n")
    with pytest.raises(UserError, match="exists: add --overwrite"):
        check_outputs(["0"], {"--log": tmp_path / "log.jsonl"}, overwrite=False)
    check_outputs(["0"], {"--log": tmp_path / "log.jsonl"}, overwrite=True)
    photos, out = tmp_path / "photos", tmp_path / "out"
    photos.mkdir()
    out.mkdir()
    (photos / "a.jpg").write_bytes(b"x")
    check_outputs([photos], {"--output": out}, overwrite=False, images=True)  # an existing empty folder is fine
    (out / "a.jpg").write_bytes(b"old")
    with pytest.raises(UserError, match=r"already holds a\.jpg"):
        check_outputs([photos], {"--output": out}, overwrite=False, images=True)


def test_unwritable_location_is_one_line(tmp_path: Path):
    ro = _read_only_dir(tmp_path)
    for out in (ro / "o.mp4", ro / "new" / "deeper" / "log.jsonl"):
        with pytest.raises(UserError, match="cannot write in"):
            check_outputs([], {"--log": out}, overwrite=False)
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="is a file"):
        check_outputs([], {"--summary": tmp_path / "file" / "s.json"}, overwrite=False)


@pytest.mark.parametrize("option", ["--log", "--output", "--summary"])
def test_cli_refuses_before_models_load_and_the_source_survives(option: str, tmp_path: Path, capsys):
    clip = _video(tmp_path / "clip.mp4")
    before = clip.read_bytes()
    # a model that does not exist: the output check must come first, so this error never shows
    rc = webcam.main(["--source", str(clip), option, str(clip), "--no-display",
                      "--set", f"classifier.model={tmp_path / 'none'}"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "is the source" in err, err
    assert clip.read_bytes() == before


def test_cli_read_only_output_is_one_line_before_models_load(tmp_path: Path, capsys):
    clip = _video(tmp_path / "clip.mp4")
    rc = webcam.main(["--source", str(clip), "--output", str(_read_only_dir(tmp_path) / "o.mp4"), "--no-display",
                      "--set", f"classifier.model={tmp_path / 'none'}"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "--output: cannot write in" in err, err


@pytest.mark.parametrize("option", ["--log", "--output", "--summary"])
@pytest.mark.parametrize("images", [False, True])
def test_a_file_output_that_is_a_folder_is_refused_up_front(option: str, images: bool, tmp_path: Path):
    (tmp_path / "out").mkdir()
    if option == "--output" and images:
        check_outputs([], {option: tmp_path / "out"}, overwrite=False, images=True)  # a folder of images: fine
        return
    with pytest.raises(UserError, match="is a folder; give a file name"):
        check_outputs([], {option: tmp_path / "out"}, overwrite=True, images=images)


def test_cli_summary_into_a_folder_is_one_line_before_models_load(tmp_path: Path, capsys):
    clip = _video(tmp_path / "clip.mp4")
    (tmp_path / "out").mkdir()
    rc = webcam.main(["--source", str(clip), "--summary", str(tmp_path / "out"), "--no-display",
                      "--set", f"classifier.model={tmp_path / 'none'}"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "--summary" in err and "is a folder" in err, err


@pytest.mark.parametrize(("source", "output", "message"), [
    ("one.png", "x.mp4", "an image gives an annotated image: end the name in .jpg"),
    ("one.png", "notes.txt", "an image gives an annotated image: end the name in .jpg"),
    ("folder", "x.mp4", "a folder of images gives a folder of annotated images: give a folder name"),
    ("folder", "out.png", "a folder of images gives a folder of annotated images: give a folder name"),
])
def test_an_image_runs_output_named_like_another_file_is_refused(source: str, output: str, message: str,
                                                                  tmp_path: Path):
    """It used to become a folder of that name (``x.mp4/``) that the checks had treated as a file."""
    (tmp_path / "folder").mkdir()
    for image in (tmp_path / "one.png", tmp_path / "folder" / "a.png"):
        cv2.imwrite(str(image), np.zeros((8, 8, 3), np.uint8))
    out = tmp_path / output
    with pytest.raises(UserError, match=f"^--output {out}: {message}"):
        check_outputs([tmp_path / source], {"--output": out}, overwrite=False, images=True)
    assert not out.exists()


@pytest.mark.parametrize(("source", "output"), [("one.png", "out.jpg"), ("one.png", "day.2026.12.07"),
                                                 ("folder", "annotated"), ("folder", "day.2026.12.07")])
def test_an_image_runs_output_file_or_folder_is_accepted(source: str, output: str, tmp_path: Path):
    (tmp_path / "folder").mkdir()
    for image in (tmp_path / "one.png", tmp_path / "folder" / "a.png"):
        cv2.imwrite(str(image), np.zeros((8, 8, 3), np.uint8))
    check_outputs([tmp_path / source], {"--output": tmp_path / output}, overwrite=False, images=True)
