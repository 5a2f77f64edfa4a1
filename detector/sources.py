"""Frame sources: a camera, a video file, a network stream, an image or a folder of images.

``FrameSource(spec, cfg).frames()`` returns a generator of ``Frame``; the generator owns its capture and releases
it when it ends or is closed. Bad sources raise ``UserError`` at the first ``next()`` (``primed`` reads it at once).

Cameras and streams are read on a background thread that keeps only the newest frame (``LatestFrameReader``),
so capture never waits for inference; video files are read in order, every frame.
"""

from __future__ import annotations

import functools
import itertools
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from maskwatch.config import Config
from maskwatch.errors import UserError
from maskwatch.files import IMAGE_EXTS, VIDEO_EXTS

RECONNECT_BACKOFF_S = 1.0  # the first wait before reconnecting a dropped stream; doubles each attempt

STREAM_SCHEMES = ("rtsp", "rtsps", "http", "https")
DEFAULT_FPS = 30.0


@dataclass(frozen=True)
class Frame:
    """One frame: ``index`` 0-based in its source, ``time_s`` seconds into the source, BGR pixels."""

    index: int
    time_s: float
    image_bgr: np.ndarray
    source: str
    fps: float = 0.0  # nominal frames per second of the source (0 = unknown or a still image)


class Capture(Protocol):
    def read(self) -> tuple[bool, np.ndarray | None]: ...
    def release(self) -> None: ...


def quiet_opencv() -> None:
    """Silence OpenCV's and FFmpeg's multi-line warnings; our errors say what went wrong in one line."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


def source_kind(spec: str) -> str:
    """``camera``, ``stream``, ``images`` (file or folder) or ``video``; raises ``UserError`` if unusable."""
    spec = spec.strip()
    if spec.isdigit():
        return "camera"
    if "://" in spec:
        scheme = spec.split("://", 1)[0].lower()
        if scheme not in STREAM_SCHEMES:
            raise UserError(f"unknown URL scheme {scheme!r} in --source {spec} (use {', '.join(STREAM_SCHEMES)})")
        return "stream"
    path = Path(spec).expanduser()
    if not path.exists():
        raise UserError(f"source not found: {spec}")
    if path.is_dir() or path.suffix.lower() in IMAGE_EXTS:
        return "images"
    if path.is_fifo():  # OpenCV waits in its open for the pipe's writer, deaf to Ctrl-C, then cannot seek it
        raise UserError(f"--source {spec} is a named pipe: give a video file, a camera index or a stream URL "
                        f"({', '.join(STREAM_SCHEMES)})")
    return "video"


class FrameSource:
    """A ``--source`` value checked and classified; ``frames()`` opens it (once) and yields its frames.

    ``skipped`` lists the unreadable images that an image folder skipped.
    """

    def __init__(self, spec: str, cfg: Config) -> None:
        quiet_opencv()
        self.spec = spec.strip()
        self.kind = source_kind(self.spec)
        self.skipped: list[str] = []
        self._cfg = cfg.stream

    def frames(self) -> Iterator[Frame]:
        """A generator that owns the capture: it is released when the generator ends or is closed."""
        s = self._cfg
        if self.kind == "camera":
            return camera_frames(int(self.spec), timeout_s=s.read_timeout_s)
        if self.kind == "stream":
            retry = {"attempts": s.reconnect_attempts, "backoff_s": RECONNECT_BACKOFF_S, "timeout_s": s.read_timeout_s}
            finite = _open_stream(self.spec, s.read_timeout_s, finite=True)
            if finite is not None:  # a video file served over HTTP: every frame in order; resumed if cut short
                return http_video_frames(self.spec, finite, **retry)
            return stream_frames(self.spec, **retry)
        path = Path(self.spec).expanduser()
        if self.kind == "images":
            return image_frames(path, skipped=self.skipped)
        return video_frames(path)


def primed(frames: Iterator[Frame]) -> Iterator[Frame]:
    """Open the source now (its errors surface before models load): read the first frame, then chain."""
    first = next(frames, None)
    return itertools.chain([first] if first is not None else [], frames)


# ---------------------------------------------------------------- video files


def video_frames(path: Path) -> Iterator[Frame]:
    """Every frame of a video file in order; a truncated file stops at the last good frame."""
    if not os.access(path, os.R_OK):  # OpenCV cannot say why it failed: a file we may not read is not "damaged"
        raise UserError(f"cannot read video {path} (Permission denied)")  # (not opened: a FIFO waits for its writer)
    yield from capture_frames(open_video(path), str(path), path.name)


def open_video(path: Path) -> cv2.VideoCapture:
    """``cv2.VideoCapture`` of a video file of any name: one not valid UTF-8 (OpenCV crashes on it: segmentation
    fault) is opened as ``/dev/fd/N`` of the file opened here for the call."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        fd = os.open(path, os.O_RDONLY)
        try:
            return cv2.VideoCapture(f"/dev/fd/{fd}")
        finally:
            os.close(fd)
    return cv2.VideoCapture(str(path))


def capture_frames(cap: cv2.VideoCapture, where: str, name: str, *, first_index: int = 0, fps: float | None = None,
                   expected: int | None = None) -> Iterator[Frame]:
    """Every frame of an opened finite video (a file, or a file served over HTTP) in order; releases ``cap``.
    ``first_index``: the index of its next frame (resuming); ``expected`` 0: no warning if it ends early."""
    try:
        if not cap.isOpened():
            raise UserError(f"cannot read video {where} (not a video, or an unsupported or damaged file)")
        fps = _fps(cap) if fps is None else fps
        expected = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if expected is None else expected
        index = first_index
        while True:
            ok, image = cap.read()
            if not ok or image is None:
                break
            yield Frame(index, index / (fps or DEFAULT_FPS), image, name, fps)
            index += 1
        if index == 0:
            raise UserError(f"cannot read video {where}: no frame could be decoded")
        if expected and index < expected:
            _warn(f"{name} ended after {index} of {expected} frames (truncated or damaged?)")
    finally:
        cap.release()


def _fps(cap: cv2.VideoCapture) -> float:
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    return fps if 0.0 < fps < 1000.0 else 0.0


# ---------------------------------------------------------------- images


def list_images(path: Path) -> list[Path]:
    """``path`` itself, or the image files (``IMAGE_EXTS``) directly inside folder ``path``, sorted by name."""
    if path.is_file():
        return [path]
    images = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS)
    if not images:
        raise UserError(f"no images ({', '.join(IMAGE_EXTS)}) in folder {path}")
    return images


def image_frames(path: Path, *, skipped: list[str] | None = None) -> Iterator[Frame]:
    """Each image once (``frame`` 0, ``source`` = file name); unreadable ones are skipped and appended to
    ``skipped``. A single unreadable image, or a folder of only unreadable ones, is a ``UserError``."""
    skipped = [] if skipped is None else skipped
    images = list_images(path)
    if path.is_dir() and (videos := sum(p.suffix.lower() in VIDEO_EXTS for p in path.iterdir() if p.is_file())):
        _warn(f"{path} also holds {videos} video file(s): an image folder's run reads only its images (give the videos "
              "with --source)")
    for image_path in images:
        image, problem = read_image(image_path)
        if image is None:
            if path.is_file():
                raise UserError(f"cannot read image {image_path} ({problem})")
            kind, _, detail = problem.partition(": ")
            _warn(f"skipped {kind} image {image_path.name} ({detail})")
            skipped.append(image_path.name)
            continue
        yield Frame(0, 0.0, image, image_path.name, 0.0)
    if len(skipped) == len(images):
        raise UserError(f"none of the {len(images)} images in {path} could be read")


def read_image(path: Path) -> tuple[np.ndarray | None, str]:
    """BGR pixels, or ``None`` and why: ``unreadable ...`` or ``truncated ...`` (OpenCV decodes a cut JPEG with a
    grey lower part without an error, so a JPEG must end after its last scan; a PNG must end with its IEND chunk)."""
    try:
        data = np.fromfile(path, np.uint8)
    except OSError as exc:
        return None, f"unreadable: {exc.strerror or exc}"
    raw = data.tobytes()
    if raw[:2] == b"\xff\xd8" and raw.rfind(b"\xff\xd9") < raw.rfind(b"\xff\xda"):  # no end marker after last scan
        return None, "truncated: the JPEG file ends before its image data"
    if raw[:8] == b"\x89PNG\r\n\x1a\n" and b"IEND" not in raw:  # libpng would print its own line
        return None, "truncated: the PNG file ends before its last chunk"
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        return None, "unreadable: damaged or not an image"
    return image, ""


# ---------------------------------------------------------------- cameras and streams


class LatestFrameReader:
    """Reads a capture on a daemon thread and keeps only the newest frame.

    ``read()`` returns each frame at most once: the newest one not yet returned, waiting for it if needed.
    It returns ``None`` when the capture failed (camera unplugged, stream dropped) or nothing came in time.
    """

    def __init__(self, capture: Capture, *, name: str = "frame-reader") -> None:
        self._capture = capture
        self._cond = threading.Condition()
        self._image: np.ndarray | None = None
        self._stamp = 0.0
        self._seq = 0
        self._taken = 0
        self._failed = False
        self._stop = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop:
                ok, image = self._capture.read()
                with self._cond:
                    if not ok or image is None:
                        return
                    self._image, self._stamp, self._seq = image, time.monotonic(), self._seq + 1
                    self._cond.notify_all()
        finally:  # the thread owns the capture: a read that was stuck still releases it (socket) when it returns
            self._capture.release()
            with self._cond:
                self._failed = True
                self._cond.notify_all()

    def read(self, timeout_s: float) -> tuple[np.ndarray, float] | None:
        """The newest unseen frame and its ``time.monotonic()`` stamp, or ``None`` on failure or timeout."""
        with self._cond:
            self._cond.wait_for(lambda: self._seq > self._taken or self._failed, timeout=timeout_s)
            if self._seq <= self._taken or self._image is None:
                return None
            self._taken = self._seq
            return self._image, self._stamp

    def close(self, join_timeout_s: float = 2.0) -> None:
        """Stop the thread; it releases the capture when its current read returns (a stream's read gives up after
        its read timeout, so a stalled connection is closed, not leaked)."""
        self._stop = True
        self._thread.join(timeout=join_timeout_s)


def camera_frames(index: int, *, timeout_s: float) -> Iterator[Frame]:
    """Live frames of camera ``index`` (newest frame each time); ends if the camera stops delivering."""
    cap = cv2.VideoCapture(index)
    if not cap.isOpened():
        cap.release()
        raise UserError(f"no camera at index {index} (try another index, or --source VIDEO_OR_IMAGE)")
    name = f"camera {index}"
    reader = LatestFrameReader(cap, name=name)
    try:
        frame = None
        for frame in _live_frames(reader, name, _fps(cap) or DEFAULT_FPS, timeout_s, 0, time.monotonic()):
            yield frame
        if frame is None:
            raise UserError(f"camera {index} opened but delivered no frame within {timeout_s:g} s")
    finally:
        reader.close()


def _live_frames(
    reader: LatestFrameReader, name: str, fps: float, timeout_s: float, start_index: int, start_s: float
) -> Iterator[Frame]:
    """Frames from ``reader`` until it fails; ``time_s`` counts from ``start_s`` (``time.monotonic()``)."""
    index = start_index
    while (got := reader.read(timeout_s)) is not None:
        image, stamp = got
        yield Frame(index, stamp - start_s, image, name, fps)
        index += 1


def stream_frames(
    url: str,
    *,
    attempts: int,
    backoff_s: float,
    timeout_s: float,
    open_capture: Callable[[str], Capture | None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[Frame]:
    """Live frames of a network stream. A dropped (or refused) connection is reopened up to ``attempts`` times
    in a row, waiting ``backoff_s``, then twice as long, ...; then a ``UserError`` says the stream is gone. An HTTP
    server that answers with an error or a web page says so; a 4xx status or a page is an error at once."""
    open_capture = open_capture or functools.partial(_open_stream, timeout_s=timeout_s)
    name = _safe_url(url)
    index, attempt, start_s, answer = 0, 0, time.monotonic(), None
    while True:
        cap = open_capture(url)
        if cap is None and index == 0 and attempt == 0:  # asked once: a silent server costs one more timeout
            answer = http_answer(url, timeout_s)
        if answer is not None and answer[0]:
            raise UserError(f"cannot connect to stream {name}: it {answer[1]}")
        if cap is not None:
            reader = LatestFrameReader(cap, name="stream")
            try:
                for frame in _live_frames(reader, name, 0.0, timeout_s, index, start_s):
                    index, attempt = frame.index + 1, 0
                    yield frame
            finally:
                reader.close(join_timeout_s=timeout_s + 1.0)
        if attempt >= attempts:
            what = "cannot connect to" if index == 0 else "lost the connection to"
            raise UserError(f"{what} stream {name} (gave up after {attempts} reconnect attempts)")
        attempt += 1
        what = (answer[1] if answer else "is not answering") if index == 0 else "dropped"
        _back_off(f"stream {name} {what}", attempt, attempts, backoff_s, sleep)


def http_answer(url: str, timeout_s: float) -> tuple[bool, str] | None:
    """What an HTTP(S) server says when OpenCV gets no video from ``url``: ``(final, "answered HTTP 404 Not
    Found")``. A 4xx status (but 408, 429) or a web page will not change on a retry (``final``); a 5xx may. ``None``:
    not HTTP, no answer (refused, unreachable, silent: the retries handle it) or nothing wrong to report."""
    import base64
    import urllib.error
    import urllib.parse
    import urllib.request  # here: ~15 ms that camera and file runs do not need

    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        return None
    headers = {}
    if parts.username:  # credentials in the URL, as OpenCV's FFmpeg sends them
        creds = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
        headers["Authorization"] = "Basic " + base64.b64encode(creds.encode()).decode()
    netloc = parts.netloc.rpartition("@")[2]
    request = urllib.request.Request(urllib.parse.urlunsplit(parts._replace(netloc=netloc)), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # the headers only: no body is read
            kind = response.headers.get_content_type()
    except urllib.error.HTTPError as exc:
        return 400 <= exc.code < 500 and exc.code not in (408, 429), f"answered HTTP {exc.code} {exc.reason}"
    except (OSError, ValueError):
        return None
    if kind in ("text/html", "application/xhtml+xml", "text/plain", "application/json"):
        return True, f"answered with a {kind} page, not a video"
    return None


def http_video_frames(url: str, cap: cv2.VideoCapture, *, attempts: int, backoff_s: float, timeout_s: float
                      ) -> Iterator[Frame]:  # fmt: skip
    """Every frame of a video file served over HTTP, in order. If the transfer ends before the file's last frame,
    it is reopened (up to ``attempts`` times in a row, with back-off) and resumed after the last frame read; then
    one line says how far it got."""
    name = _safe_url(url)
    expected, index, attempt = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), 0, 0
    fps = _fps(cap)
    try:
        while True:
            skipped = 0
            while skipped < index and cap.grab():  # resume: skip the frames already delivered
                skipped += 1
            if cap.isOpened() and skipped == index:
                for frame in capture_frames(cap, name, name, first_index=index, fps=fps, expected=0):
                    index, attempt = frame.index + 1, 0
                    yield frame
            cap.release()
            if index >= expected:
                return
            if attempt >= attempts:
                _warn(f"{name} ended after {index} of {expected} frames (gave up after {attempts} reconnect attempts)")
                return
            attempt += 1
            _back_off(f"{name} ended after {index} of {expected} frames", attempt, attempts, backoff_s, time.sleep)
            cap = open_capture(url, timeout_s)
    finally:
        cap.release()


def _back_off(what: str, attempt: int, attempts: int, backoff_s: float, sleep: Callable[[float], None]) -> None:
    """One line ``<what>; reconnect 2/5 in 2 s``, then wait: ``backoff_s`` doubled for each earlier attempt."""
    wait_s = backoff_s * 2 ** (attempt - 1)
    _warn(f"{what}; reconnect {attempt}/{attempts} in {wait_s:g} s")
    sleep(wait_s)


def open_capture(url: str, timeout_s: float) -> cv2.VideoCapture:
    """``cv2.VideoCapture`` on FFmpeg whose opening and every read give up after ``timeout_s`` of silence."""
    ms = max(1, round(timeout_s * 1000))
    params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
    return cv2.VideoCapture(url, cv2.CAP_FFMPEG, params)


def _open_stream(url: str, timeout_s: float, *, finite: bool = False) -> cv2.VideoCapture | None:
    """An opened capture, else ``None``; ``finite``: only if ``url`` is a video file (it reports a frame count)."""
    cap = open_capture(url, timeout_s)
    if cap.isOpened() and (not finite or cap.get(cv2.CAP_PROP_FRAME_COUNT) > 0):
        return cap
    cap.release()
    return None


def _safe_url(url: str) -> str:
    """The URL without a password, for messages and logs."""
    scheme, _, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    return f"{scheme}://{creds.split(':')[0]}@{host}" if at else url


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)
