"""A local MJPEG-over-HTTP stream on 127.0.0.1 for soak runs and tests: it loops frames at a given rate and can
drop each connection after some frames (a camera that drops and returns) or stall while staying connected.
"""

from __future__ import annotations

import http.server
import select
import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from maskwatch.errors import UserError

BOUNDARY = "maskwatchframe"


def jpeg_frames(video: Path, *, quality: int = 85) -> list[bytes]:
    """Every frame of ``video`` as JPEG bytes."""
    cap = cv2.VideoCapture(str(video))
    frames = []
    while True:
        ok, image = cap.read()
        if not ok:
            break
        frames.append(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes())
    cap.release()
    if not frames:
        raise UserError(f"no frame could be read from {video} (not a video, or damaged)")
    return frames


class MjpegServer:
    """``with MjpegServer(frames, fps=15) as server: server.url``; each connection streams ``frames`` in a loop.

    ``frames_per_connection``: close the connection after that many frames (``None`` = never).
    ``stall_after``: after that many frames keep the connection open but send nothing more.
    """

    def __init__(self, frames: Sequence[bytes], *, fps: float = 15.0, frames_per_connection: int | None = None,
                 stall_after: int | None = None) -> None:
        self.frames, self.fps = list(frames), fps
        self.frames_per_connection, self.stall_after = frames_per_connection, stall_after
        self.connections = 0
        self._stop = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.connections += 1
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                self.end_headers()
                server._stream(self)

            def log_message(self, format: str, *args: object) -> None:
                return None

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/stream.mjpg"

    def _stream(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        n, next_t = 0, time.monotonic()
        try:
            while not self._stop.is_set():
                if self.frames_per_connection is not None and n >= self.frames_per_connection:
                    return
                if self.stall_after is not None and n >= self.stall_after:
                    if _closed_by_client(handler.connection, wait_s=0.2):
                        return
                    continue
                jpg = self.frames[n % len(self.frames)]
                handler.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpg)}\r\n\r\n"
                                    .encode() + jpg + b"\r\n")
                handler.wfile.flush()
                n += 1
                next_t += 1.0 / self.fps
                time.sleep(max(0.0, next_t - time.monotonic()))
        except (BrokenPipeError, ConnectionResetError):
            return

    def __enter__(self) -> MjpegServer:
        threading.Thread(target=self._httpd.serve_forever, name="mjpeg-server", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()


def _closed_by_client(conn: socket.socket, *, wait_s: float) -> bool:
    readable, _, _ = select.select([conn], [], [], wait_s)
    if not readable:
        return False
    try:
        return conn.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def noise_jpegs(n: int, size_wh: tuple[int, int] = (64, 48)) -> list[bytes]:
    """``n`` small noisy JPEG frames (tests)."""
    rng = np.random.default_rng(0)
    return [cv2.imencode(".jpg", rng.integers(0, 255, (size_wh[1], size_wh[0], 3), dtype=np.uint8))[1].tobytes()
            for _ in range(n)]
