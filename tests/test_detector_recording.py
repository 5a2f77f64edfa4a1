"""Recordings survive hard kills and full disks: the detector in a subprocess, killed with SIGKILL or limited with
RLIMIT_FSIZE, keeps its video (all but the last second or so) and its JSONL log line by line."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import random
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from detector.sinks import (
    CSV_COLUMNS,
    CsvLog,
    ImageDirSink,
    JsonlLog,
    VideoSink,
    count_frames,
    frame_record,
    recover_leftovers,
)
from detector.sources import Frame
from maskwatch.errors import UserError
from maskwatch.faces import MASK, NO_MASK, Faces

ROOT = Path(__file__).resolve().parents[1]
FPS = 10.0
FAST = ["--no-display", "--set", "face_detector.long_sides_px=[160]"]  # any speed works; this one saves CPU


@pytest.fixture(scope="module")
def long_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 min of moving noise at 10 fps, 320x240 (the detector needs well over 10 s for it: 40 s of it took 5 s on a
    quiet machine, and the kill test then found the run over)."""
    path = tmp_path_factory.mktemp("long") / "long.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (320, 240))
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (240, 640, 3), dtype=np.uint8)
    for i in range(1200):
        writer.write(np.ascontiguousarray(base[:, i % 320 : i % 320 + 320]))
    writer.release()
    return path


def _detector(args: list[str], *, fast: bool = True, **kwargs: object) -> subprocess.Popen[str]:
    args = [*args, *FAST] if fast else [*args, "--no-display"]
    return subprocess.Popen([sys.executable, "-m", "detector.webcam", *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_sigkill_at_a_random_moment_keeps_all_but_the_last_second(long_video: Path, tmp_path: Path):
    out, log = tmp_path / "out.mp4", tmp_path / "log.jsonl"
    proc = _detector(["--source", str(long_video), "--output", str(out), "--log", str(log)], fast=False)
    deadline = time.monotonic() + 60
    while not (log.exists() and log.stat().st_size) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    time.sleep(random.uniform(2.0, 4.0))
    assert proc.poll() is None, "the run ended before the kill: make the video longer"
    proc.kill()
    proc.communicate()
    logged = _lines(log)  # every line complete: the log is flushed line by line
    assert [r["frame"] for r in logged] == list(range(len(logged)))
    assert not out.exists()
    (leftover,) = [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]

    # the next run writing there recovers it, with one line
    messages = recover_leftovers(tmp_path)
    kept = count_frames(tmp_path / "out.recovered.mp4")
    assert messages == [f"recovered {kept} frames of a killed run's recording: {tmp_path / 'out.recovered.mp4'}"]
    print(f"kept {kept} of {len(logged)} logged frames")
    assert len(logged) - FPS <= kept <= len(logged), (kept, len(logged))  # seen: all but the frame in the encoder
    assert not leftover.exists()


def test_unreadable_leftover_is_removed_and_a_live_runs_file_is_left_alone(tmp_path: Path):
    dead = tmp_path / ".out.123456789.abcd.tmp.mp4"  # no such pid
    dead.write_bytes(b"\x00" * 100)
    live = tmp_path / f".out.{os.getpid()}.abcd.tmp.mp4"
    live.write_bytes(b"\x00" * 100)
    (tmp_path / ".summary.x1.tmp.json").write_text("{}")  # not a recording
    assert recover_leftovers(tmp_path) == [f"removed an unreadable leftover recording of a killed run: {dead}"]
    assert not dead.exists() and live.exists() and (tmp_path / ".summary.x1.tmp.json").exists()


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".avi"])
def test_video_cut_anywhere_stays_readable(suffix: str, tmp_path: Path):
    out = tmp_path / f"o{suffix}"
    rng = np.random.default_rng(0)
    with VideoSink(out) as sink:
        for i in range(60):
            image = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)  # noise: every frame has real bytes
            sink.write(Frame(i, i / FPS, image, "x", FPS), image)
    assert count_frames(out) == 60
    data = out.read_bytes()
    for share in (0.3, 0.6, 0.9):  # anywhere: also inside an MP4 fragment's header (trimmed on recovery)
        cut = tmp_path / f".cut.123456789.x.tmp{suffix}"
        cut.write_bytes(data[: int(len(data) * share)])
        (message,) = recover_leftovers(tmp_path)
        assert message.startswith("recovered ")
        assert count_frames(tmp_path / f"cut.recovered{suffix}") >= 60 * share - 2 * FPS
        (tmp_path / f"cut.recovered{suffix}").unlink()


def _noise_frames(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(n)]  # noise: every frame has real bytes


def _write(out: Path, images: list[np.ndarray]) -> None:
    with VideoSink(out) as sink:
        for i, image in enumerate(images):
            sink.write(Frame(i, i / FPS, image, "x", FPS), image)


def _top_level_boxes(path: Path) -> list[tuple[bytes, int, int]]:
    data, pos, boxes = path.read_bytes(), 0, []
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        boxes.append((data[pos + 4 : pos + 8], pos, pos + size))
        pos += size
    return boxes


@contextlib.contextmanager
def _disk_full_at(n_bytes: int):
    """In this process: files cannot grow past ``n_bytes`` (writes fail with EFBIG), until the block ends."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (n_bytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)


def test_a_disk_full_at_any_byte_keeps_every_whole_fragment(tmp_path: Path):
    """Also when the disk fills one byte before a fragment's data, where FFmpeg reports no error at close."""
    images = _noise_frames(12)
    _write(tmp_path / "whole.mp4", images)
    boxes = _top_level_boxes(tmp_path / "whole.mp4")
    ends = [end for kind, _, end in boxes if kind == b"mdat"]
    assert len(ends) == len(images)  # one fragment per frame
    limits = sorted({start + d for kind, start, _ in boxes[4:12] if kind in (b"moof", b"mdat") for d in (-1, 0, 1, 9)})
    for limit in [boxes[3][1] + 20, *limits]:  # first: inside the first frame's data
        out = tmp_path / f"cut{limit}.mp4"
        with _disk_full_at(limit), pytest.raises(UserError, match="disk full while writing video"):
            _write(out, images)
        whole = sum(end <= limit for end in ends)
        assert (count_frames(out) if out.exists() else 0) == whole, limit
        assert out.exists() == (whole > 0), limit
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_full_disk_writing_annotated_images_is_one_line_and_keeps_those_before(tmp_path: Path, capfd):
    image = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)  # noise: ~58 kB as PNG
    with ImageDirSink(tmp_path / "out") as sink:
        sink.write(Frame(0, 0.0, image, "a.png"), image)
        size = (tmp_path / "out" / "a.png").stat().st_size
        with _disk_full_at(size // 2), pytest.raises(UserError) as error:
            sink.write(Frame(0, 0.0, image, "b.png"), image)
    assert str(error.value) == (f"disk full while writing image {tmp_path / 'out' / 'b.png'}: stopped; the image "
                                "written before it is kept")
    assert capfd.readouterr().err == ""  # no library's own line (libpng's "Write Error")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png"]  # no half image, no temporary file
    assert cv2.imread(str(tmp_path / "out" / "a.png")).shape == image.shape


@pytest.mark.parametrize(("kind", "kept"), [(JsonlLog, "its first {} lines"),
                                             (CsvLog, "the rows of its first {} frames")])
def test_a_full_disk_cuts_either_log_back_to_its_last_whole_frame(kind: type, kept: str, tmp_path: Path):
    image = np.zeros((60, 80, 3), np.uint8)
    faces = Faces(np.array([[1, 2, 30, 40], [40, 5, 70, 50]]), np.array([0.9, 0.7]), prob_mask=np.array([0.97, 0.1]),
                  label=np.array([MASK, NO_MASK]), track_id=np.array([3, 4]))
    path = tmp_path / f"log.{'csv' if kind is CsvLog else 'jsonl'}"
    with _disk_full_at(1000), kind(path) as log, pytest.raises(UserError) as error:  # 1000: inside a line
        for i in range(100):
            log.write(frame_record(Frame(i, i / 10, image, "clip.mp4", 10.0), faces))
    text = path.read_text()
    assert text.endswith("\n") and 0 < len(text) <= 1000
    if kind is CsvLog:
        rows = list(csv.reader(text.splitlines()))
        assert rows[0] == list(CSV_COLUMNS) and {len(row) for row in rows} == {len(CSV_COLUMNS)}
        frames = [int(row[1]) for row in rows[1:]]
        assert frames == [i for i in range(frames[-1] + 1) for _ in faces.xyxy]  # every frame's two rows
    else:
        frames = [json.loads(line)["frame"] for line in text.splitlines()]
        assert frames == list(range(len(frames)))
    n = frames[-1] + 1
    assert str(error.value) == f"disk full while writing the log {path}: stopped; {kept.format(n)} are kept"


def test_jsonl_log_is_flushed_line_by_line(tmp_path: Path):
    with JsonlLog(tmp_path / "l.jsonl") as log:
        for i in range(3):
            log.write({"frame": i})
            assert (tmp_path / "l.jsonl").read_text().splitlines()[-1] == json.dumps({"frame": i}).replace(" ", "")


def _file_size_limit(n_bytes: int):
    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead of a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (n_bytes, n_bytes))
    return limit


@pytest.mark.slow
@pytest.mark.parametrize(("outputs", "limit", "message"), [
    (["--output", "OUT"], 300_000, "disk full while writing video"),
    (["--log", "LOG"], 2_000, "disk full while writing the log"),
])
def test_full_disk_is_one_line_and_keeps_what_was_written(outputs: list[str], limit: int, message: str,
                                                          long_video: Path, tmp_path: Path):
    out, log = tmp_path / "out.mp4", tmp_path / "log.jsonl"
    args = [{"OUT": str(out), "LOG": str(log)}.get(a, a) for a in outputs]
    if "--log" not in args:
        args += ["--log", str(log)]
    proc = _detector(["--source", str(long_video), *args], preexec_fn=_file_size_limit(limit))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err, err
    lines = log.read_text().splitlines()
    assert 0 < len(lines) < 400
    if "--output" in args:
        kept = count_frames(out)
        assert 0 < kept <= len(lines) and len(lines) - kept <= 3 * FPS, (kept, len(lines))
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    else:
        assert sum(1 for line in lines if line.endswith("}")) >= len(lines) - 1


def test_a_full_disk_anywhere_else_is_one_line(capsys):
    import errno

    from maskwatch.cli import run

    def fails(argv: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device", "runs/demo/summary.json")

    assert run(fails) == 2
    assert capsys.readouterr().err == ("error: disk full writing runs/demo/summary.json: free some space (files "
                                       "written so far are kept)\n")
