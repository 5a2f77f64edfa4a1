"""Frame sources: classification of --source, video files (also truncated), images, streams, the newest-frame reader."""

from __future__ import annotations

import functools
import http.server
import itertools
import os
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from detector import sources
from detector.sinks import count_frames
from detector.sources import (
    FrameSource,
    LatestFrameReader,
    image_frames,
    source_kind,
    stream_frames,
    video_frames,
)
from maskwatch.config import load_config
from maskwatch.errors import UserError


def _write_video(path: Path, n: int, *, fourcc: str = "mp4v", fps: float = 10.0) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (64, 48))
    rng = np.random.default_rng(0)
    for i in range(n):
        frame = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)  # noise: every frame has real bytes
        frame[:, :, 0] = (i * 10) % 250
        writer.write(frame)
    writer.release()


def test_source_kind(tmp_path: Path):
    (tmp_path / "a.PNG").write_bytes(b"x")
    (tmp_path / "v.mp4").write_bytes(b"x")
    assert source_kind("0") == "camera"
    assert source_kind(" 2 ") == "camera"
    assert source_kind("rtsp://cam.local/live") == "stream"
    assert source_kind("HTTPS://cam.local/video.mjpg") == "stream"
    assert source_kind(str(tmp_path)) == "images"
    assert source_kind(str(tmp_path / "a.PNG")) == "images"
    assert source_kind(str(tmp_path / "v.mp4")) == "video"


@pytest.mark.parametrize(
    ("spec", "message"),
    [("ftp://host/video.mp4", "unknown URL scheme 'ftp'"), ("no/such/x.mp4", "source not found: no/such/x.mp4")],
)
def test_bad_source_spec(spec: str, message: str):
    with pytest.raises(UserError, match=message):
        source_kind(spec)


def test_a_named_pipe_is_refused_at_once(tmp_path: Path):
    """A FIFO as --source waited in OpenCV's open for a writer, deaf to Ctrl-C and SIGTERM (only SIGKILL ended
    it); with a writer it could not be read ('no frame could be decoded': OpenCV seeks). A device (/dev/video0)
    stays OpenCV's to open."""
    fifo = tmp_path / "cam.mp4"
    os.mkfifo(fifo)
    with pytest.raises(UserError, match=r"is a named pipe: give a video file, a camera index or a stream URL"):
        source_kind(str(fifo))
    assert source_kind("/dev/null") == "video"


def test_video_file_every_frame_in_order(tmp_path: Path):
    path = tmp_path / "v.mp4"
    _write_video(path, 7)
    frames = list(video_frames(path))
    assert [f.index for f in frames] == list(range(7))
    assert [f.time_s for f in frames] == pytest.approx([i / 10 for i in range(7)])
    assert {f.source for f in frames} == {"v.mp4"}
    assert frames[0].fps == pytest.approx(10.0)
    assert frames[0].image_bgr.shape == (48, 64, 3)
    assert np.mean([f.image_bgr[:, :, 0].mean() for f in frames[5:]]) > np.mean(frames[0].image_bgr[:, :, 0])


def test_truncated_video_stops_at_last_good_frame(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    full = tmp_path / "full.avi"
    _write_video(full, 20, fourcc="MJPG")
    data = full.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    frames = list(video_frames(cut))
    assert 0 < len(frames) < 20
    assert [f.index for f in frames] == list(range(len(frames)))
    assert "ended after" in capsys.readouterr().err


@pytest.mark.parametrize("content", [b"", b"not a video at all" * 100])
def test_unreadable_video_is_a_user_error(tmp_path: Path, content: bytes):
    path = tmp_path / "bad.mp4"
    path.write_bytes(content)
    with pytest.raises(UserError, match="cannot read video"):
        list(video_frames(path))


def test_a_video_whose_name_is_not_utf8_is_read(tmp_path: Path):
    """OpenCV's VideoCapture crashed the process (segmentation fault) on a name such as b"caf\\xe9.avi"."""
    _write_video(tmp_path / "v.avi", 3)
    path = (tmp_path / "v.avi").rename(tmp_path / os.fsdecode(b"caf\xe9.avi"))
    frames = list(video_frames(path))
    assert [f.index for f in frames] == [0, 1, 2] and frames[0].source == path.name
    assert count_frames(path) == 3


def test_a_video_we_may_not_read_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "locked.mp4"
    path.write_bytes(b"")
    path.chmod(0)
    if os.access(path, os.R_OK):  # root reads any file: answer as for a user
        monkeypatch.setattr(sources.os, "access", lambda p, mode: Path(p) != path)
    with pytest.raises(UserError, match=r"^cannot read video .*locked\.mp4 \(Permission denied\)$"):
        list(video_frames(path))


def test_image_folder_skips_and_counts_unreadable(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    cv2.imwrite(str(tmp_path / "b.png"), np.full((10, 20, 3), 7, np.uint8))
    cv2.imwrite(str(tmp_path / "a.jpg"), np.full((12, 8, 3), 200, np.uint8))
    (tmp_path / "c.jpg").write_bytes(b"broken")
    (tmp_path / "notes.txt").write_text("ignored")
    skipped: list[str] = []
    frames = list(image_frames(tmp_path, skipped=skipped))
    assert [(f.source, f.index, f.time_s, f.image_bgr.shape) for f in frames] == [
        ("a.jpg", 0, 0.0, (12, 8, 3)),
        ("b.png", 0, 0.0, (10, 20, 3)),
    ]
    assert skipped == ["c.jpg"]
    assert "skipped unreadable image c.jpg" in capsys.readouterr().err


def test_image_errors(tmp_path: Path):
    with pytest.raises(UserError, match="no images"):
        list(image_frames(tmp_path))
    (tmp_path / "x.jpg").write_bytes(b"broken")
    with pytest.raises(UserError, match="cannot read image"):
        list(image_frames(tmp_path / "x.jpg"))
    with pytest.raises(UserError, match="none of the 1 images"):
        list(image_frames(tmp_path))


def test_frame_source_from_config(tmp_path: Path):
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((4, 4, 3), np.uint8))
    (tmp_path / "b.png").write_bytes(b"")
    source = FrameSource(str(tmp_path), load_config())
    assert source.kind == "images"
    assert [f.source for f in source.frames()] == ["a.png"]
    assert source.skipped == ["b.png"]


def test_no_camera_is_one_clear_error():
    # No test machine has 64 cameras; the error is raised when the generator starts.
    with pytest.raises(UserError, match="no camera at index 63"):
        next(FrameSource("63", load_config()).frames())


class FakeCapture:
    """Hands out ``n`` numbered frames, then fails (a dropped connection); counts releases."""

    def __init__(self, n: int) -> None:
        self.n, self.sent, self.released = n, 0, 0

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self.sent >= self.n:
            return False, None
        self.sent += 1
        return True, np.full((2, 2, 3), self.sent, np.uint8)

    def release(self) -> None:
        self.released += 1


def test_latest_frame_reader_returns_each_frame_at_most_once_and_the_newest():
    cap = FakeCapture(5)
    reader = LatestFrameReader(cap)
    reader._thread.join(5)  # the capture ran dry: only the newest of its 5 frames is kept
    got = reader.read(timeout_s=1)
    assert got is not None and int(got[0][0, 0, 0]) == 5
    assert reader.read(timeout_s=0.2) is None  # failed, and no new frame
    reader.close()
    assert cap.released == 1


def test_stream_reconnects_with_backoff_then_gives_up():
    caps = [FakeCapture(3), None, FakeCapture(2)]
    opened: list[int] = []
    waits: list[float] = []

    def open_capture(url: str):
        opened.append(1)
        return caps.pop(0) if caps else None

    gen = stream_frames("rtsp://user:secret@cam/live", attempts=2, backoff_s=0.5, timeout_s=2,
                        open_capture=open_capture, sleep=waits.append)
    frames = []
    with pytest.raises(UserError, match=r"lost the connection to stream rtsp://user@cam/live \(gave up after 2"):
        for frame in gen:
            frames.append(frame)
    # Each live capture yields >= 1 frame (the reader keeps the newest). Drop -> wait 0.5 -> refused -> wait 1.0
    # -> delivers again (count reset) -> drop -> wait 0.5 -> refused -> wait 1.0 -> refused: 2 attempts used up.
    assert len(frames) >= 2
    assert [f.index for f in frames] == list(range(len(frames)))
    assert {f.source for f in frames} == {"rtsp://user@cam/live"}
    assert waits == [0.5, 1.0, 0.5, 1.0]
    assert len(opened) == 5


def test_stream_that_never_connects():
    waits: list[float] = []
    gen = stream_frames("http://cam/x", attempts=3, backoff_s=1, timeout_s=1, open_capture=lambda url: None,
                        sleep=waits.append)
    with pytest.raises(UserError, match="cannot connect to stream http://cam/x"):
        next(gen)
    assert waits == [1, 2, 4]


def test_unreachable_stream_url_is_one_clear_error():
    cfg = load_config(overrides=["stream.reconnect_attempts=0"])
    with pytest.raises(UserError, match=r"cannot connect to stream http://127\.0\.0\.1:9/"):
        next(FrameSource("http://127.0.0.1:9/x.mjpg", cfg).frames())


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return None


def test_video_file_over_http_is_read_in_order_to_its_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    _write_video(tmp_path / "clip.avi", 30, fourcc="MJPG")  # AVI/MJPG plays without seeking (plain HTTP server)
    handler = functools.partial(_QuietHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/clip.avi"
        monkeypatch.setattr(sources, "RECONNECT_BACKOFF_S", 0.0)
        cfg = load_config(overrides=["stream.reconnect_attempts=1"])
        frames = list(itertools.islice(FrameSource(url, cfg).frames(), 100))  # bounded even if it replayed
    finally:
        server.shutdown()
        server.server_close()
    assert [f.index for f in frames] == list(range(30))
    assert frames[0].image_bgr.shape == (48, 64, 3) and frames[0].source == url
    assert frames[-1].time_s == pytest.approx(2.9)


def test_truncated_jpeg_in_a_folder_is_skipped_with_a_warning_naming_it(tmp_path: Path, capsys):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "good.jpg"), image)
    data = (tmp_path / "good.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) * 6 // 10])
    assert cv2.imread(str(tmp_path / "cut.jpg")) is not None  # OpenCV alone accepts it (grey lower part)
    (tmp_path / "trailer.jpg").write_bytes(data + b"extra bytes some cameras append")  # still a whole image
    skipped: list[str] = []
    frames = list(image_frames(tmp_path, skipped=skipped))
    assert [f.source for f in frames] == ["good.jpg", "trailer.jpg"]
    assert skipped == ["cut.jpg"]
    assert "skipped truncated image cut.jpg (the JPEG file ends before its image data)" in capsys.readouterr().err
    with pytest.raises(UserError, match=r"cannot read image .*cut\.jpg \(truncated"):
        list(image_frames(tmp_path / "cut.jpg"))


def test_truncated_png_in_a_folder_is_skipped_without_libpngs_own_line(tmp_path: Path, capfd):
    image = np.random.default_rng(2).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "good.png"), image)
    data = (tmp_path / "good.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    (tmp_path / "trailer.png").write_bytes(data + b"x" * 100)  # bytes after IEND: still a whole image
    skipped: list[str] = []
    assert [f.source for f in image_frames(tmp_path, skipped=skipped)] == ["good.png", "trailer.png"]
    assert skipped == ["cut.png"]
    warning = "warning: skipped truncated image cut.png (the PNG file ends before its last chunk)\n"
    assert capfd.readouterr().err == warning


def test_an_image_folder_says_that_its_videos_are_not_read(tmp_path: Path, capsys):
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "clip.mp4").write_bytes(b"")
    assert [f.source for f in image_frames(tmp_path)] == ["a.png"]
    assert capsys.readouterr().err == (f"warning: {tmp_path} also holds 1 video file(s): an image folder's run reads "
                                       "only its images (give the videos with --source)\n")
