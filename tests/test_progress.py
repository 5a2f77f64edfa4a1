"""The progress bar of headless runs: frames, total, faces so far; silent when stderr is not a terminal."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest

from detector.draw import DrawStyle
from detector.loop import Outputs, run_loop
from detector.progress import expected_frames, progress_name, with_progress
from detector.sources import Frame, FrameSource
from detector.stats import RunStats
from maskwatch.config import load_config
from maskwatch.faces import MASK, Faces

CFG = load_config()


def _frames(n: int) -> list[Frame]:
    return [Frame(i, i / 10, np.zeros((48, 64, 3), np.uint8), "clip.mp4", 10.0) for i in range(n)]


def _two_faces(frame_bgr: np.ndarray) -> Faces:
    return Faces(np.array([[1, 1, 20, 20], [30, 1, 50, 20]]), np.array([0.9, 0.8]), prob_mask=np.array([0.9, 0.9]),
                 label=np.array([MASK, MASK]))


def _run(n: int, *, total: int | None, enabled: bool | None, max_frames: int | None = None) -> tuple[str, RunStats]:
    out, stats = io.StringIO(), RunStats()
    frames = with_progress(_frames(n), stats, total=total, name="clip.mp4", enabled=enabled, file=out)
    run_loop(frames, _two_faces, style=DrawStyle.from_config(CFG.draw), outputs=Outputs(), stats=stats,
             max_frames=max_frames)
    frames.close()
    return out.getvalue(), stats


def test_bar_counts_frames_against_the_total_and_faces_so_far():
    text, stats = _run(5, total=5, enabled=True)
    last = text.split("\r")[-1]
    assert stats.frames == 5
    assert "clip.mp4" in last and "5/5" in last and "100%" in last and "faces 10" in last


def test_stopped_run_shows_its_last_frame_and_unknown_total_is_a_status_line():
    text, _ = _run(8, total=None, enabled=True, max_frames=3)
    last = text.split("\r")[-1]
    assert "3frame" in last.replace(" ", "") and "faces 6" in last and "%" not in last


def test_no_bar_when_not_a_terminal_or_disabled():
    assert _run(3, total=3, enabled=None)[0] == ""  # StringIO is not a terminal: CI logs stay clean
    assert _run(3, total=3, enabled=False)[0] == ""


def test_expected_frames_of_videos_and_image_folders(tmp_path: Path):
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (64, 48))
    for _ in range(7):
        writer.write(np.zeros((48, 64, 3), np.uint8))
    writer.release()
    for name in ("a.png", "b.jpg"):
        cv2.imwrite(str(tmp_path / name), np.zeros((8, 8, 3), np.uint8))
    assert expected_frames(FrameSource(str(video), CFG)) == 7
    assert expected_frames(FrameSource(str(video), CFG), max_frames=3) == 3
    assert expected_frames(FrameSource(str(tmp_path), CFG)) == 2
    assert progress_name(FrameSource(str(video), CFG)) == "clip.mp4"


@pytest.mark.parametrize(("spec", "name"), [("0", "camera 0"), ("rtsp://u:secret@cam/x", "stream")])
def test_live_sources_are_named_without_their_url(spec: str, name: str):
    assert progress_name(FrameSource(spec, CFG)) == name
