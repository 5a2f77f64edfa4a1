"""Network streams against local servers on 127.0.0.1: a server that never answers, one that drops and returns,
one that stalls while connected, and a video file whose transfer ends early. Sockets and threads must not grow."""

from __future__ import annotations

import contextlib
import functools
import http.server
import itertools
import os
import socket
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from detector import sources
from detector.sources import FrameSource
from evaluation.stream_server import MjpegServer, noise_jpegs
from maskwatch.config import load_config
from maskwatch.errors import UserError


@pytest.fixture(autouse=True)
def _fast_reconnects(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources, "RECONNECT_BACKOFF_S", 0.01)


def _cfg(timeout_s: float, attempts: int):
    return load_config(overrides=[f"stream.read_timeout_s={timeout_s}", f"stream.reconnect_attempts={attempts}"])


def _sockets() -> int:
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the listing's own fd is gone by now
            n += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
    return n


def _settled_counts(wait_s: float = 1.5) -> tuple[int, int]:
    time.sleep(wait_s)  # closed connections' threads finish (client readers and the test server's handlers)
    return _sockets(), threading.active_count()


def test_server_that_accepts_but_never_answers_gives_up_after_the_read_timeout(capsys):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []

    def accept_and_say_nothing() -> None:
        with contextlib.suppress(OSError):  # the test closes the server
            while True:
                accepted.append(server.accept()[0])

    threading.Thread(target=accept_and_say_nothing, daemon=True).start()
    url = f"http://127.0.0.1:{server.getsockname()[1]}/live"
    t0 = time.monotonic()
    try:
        with pytest.raises(UserError, match=r"cannot connect to stream .* \(gave up after 1 reconnect attempts"):
            next(FrameSource(url, _cfg(timeout_s=0.5, attempts=1)).frames())
    finally:
        server.close()
        for conn in accepted:
            conn.close()
    assert time.monotonic() - t0 < 5.0  # probe + open + one reconnect, 0.5 s each (was ~91 s)
    assert len(accepted) >= 2
    assert capsys.readouterr().err.count("reconnect 1/1") == 1


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts sockets in /proc/self/fd")
def test_stream_that_drops_and_returns_reconnects_without_leaking(capsys):
    with MjpegServer(noise_jpegs(5), fps=60, frames_per_connection=6) as server:
        frames = FrameSource(server.url, _cfg(timeout_s=2.0, attempts=2)).frames()
        first = list(itertools.islice(frames, 13))  # two reconnects in
        before = _settled_counts()
        rest = list(itertools.islice(frames, 60))  # ten more reconnects
        after = _settled_counts()
        frames.close()
    assert [f.index for f in first + rest] == list(range(73))
    assert server.connections >= 12
    assert after[0] <= before[0] and after[1] <= before[1], (before, after)
    err = capsys.readouterr().err
    assert "dropped; reconnect 1/2" in err and "reconnect 2/2" not in err  # each success resets the count


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts sockets in /proc/self/fd")
def test_stalled_connection_is_closed_on_reconnect(capsys):
    with MjpegServer(noise_jpegs(5), fps=60, stall_after=4) as server:
        frames = FrameSource(server.url, _cfg(timeout_s=0.5, attempts=1)).frames()
        first = list(itertools.islice(frames, 8))
        before = _settled_counts()
        rest = list(itertools.islice(frames, 16))  # four more stalls
        after = _settled_counts()
        frames.close()
    assert [f.index for f in first + rest] == list(range(24))
    assert after[0] <= before[0] and after[1] <= before[1], (before, after)
    assert "dropped; reconnect 1/1" in capsys.readouterr().err


def _write_avi(path: Path, n: int) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    rng = np.random.default_rng(0)
    for i in range(n):
        frame = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
        frame[:8, :8] = i * 8  # frame number in a corner
        writer.write(frame)
    writer.release()


class _CutHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files; the first ``cut`` GETs announce the whole file but send only half of it, then close."""

    cut = 1
    gets = 0

    def copyfile(self, source, outputfile) -> None:  # type: ignore[no-untyped-def]
        type(self).gets += 1
        data = source.read()
        if type(self).gets <= self.cut:
            outputfile.write(data[: len(data) // 2])
            self.close_connection = True
            return
        outputfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.mark.parametrize("cuts", [1, 99])
def test_http_video_that_ends_early_is_resumed(cuts: int, tmp_path: Path, capsys):
    _write_avi(tmp_path / "clip.avi", 30)
    handler = type("Handler", (_CutHandler,), {"cut": cuts, "gets": 0})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/clip.avi"
        frames = list(itertools.islice(FrameSource(url, _cfg(timeout_s=2.0, attempts=2)).frames(), 100))
    finally:
        server.shutdown()
        server.server_close()
    err = capsys.readouterr().err
    n = len(frames)
    assert [f.index for f in frames] == list(range(n))
    assert [int(f.image_bgr[:8, :8].mean() / 8 + 0.5) for f in frames] == list(range(n))  # no frame repeated
    if cuts == 1:
        assert n == 30 and err.count("\n") == 1 and "of 30 frames; reconnect 1/2" in err, err
    else:
        assert 0 < n < 30 and f"ended after {n} of 30 frames (gave up after 2 reconnect attempts)" in err, err


class _AnswerHandler(http.server.BaseHTTPRequestHandler):
    """404 / 500 / 401 unless the right credentials come / a web page, by path."""

    def do_GET(self) -> None:
        if self.path in ("/404", "/500"):
            self.send_error(int(self.path[1:]))
        elif self.path == "/private" and self.headers.get("Authorization") != "Basic dXNlcjpzZWNyZXQ=":  # user:secret
            self.send_error(401)
        else:
            self.send_response(200)
            self.send_header("Content-Type", "text/html" if self.path == "/page" else "video/x-motion-jpeg")
            self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.mark.parametrize(("path", "final", "said"), [
    ("/404", True, "answered HTTP 404 Not Found"),
    ("/private", True, "answered HTTP 401 Unauthorized"),
    ("/page", True, "answered with a text/html page, not a video"),
    ("/500", False, "answered HTTP 500 Internal Server Error"),
])
def test_an_http_server_that_answers_without_video_says_so(path: str, final: bool, said: str, capsys):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _AnswerHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}{path}"
    try:
        assert sources.http_answer(url, 2.0) == (final, said)
        assert sources.http_answer(url.replace("http://", "http://user:secret@"), 2.0) == (
            None if path == "/private" else (final, said))  # credentials in the URL are sent
        with pytest.raises(UserError) as error:
            list(sources.stream_frames(url, attempts=3, backoff_s=0.0, timeout_s=2.0, open_capture=lambda u: None,
                                       sleep=lambda s: None))
    finally:
        server.shutdown()
        server.server_close()
    retries = capsys.readouterr().err.splitlines()
    if final:  # a wrong URL is not retried
        assert str(error.value) == f"cannot connect to stream {url}: it {said}" and retries == []
    else:  # a server error may pass: retried, and each retry says why
        assert len(retries) == 3 and all(said in line for line in retries), retries
    assert sources.http_answer(f"rtsp://127.0.0.1:{server.server_address[1]}/x", 1.0) is None
