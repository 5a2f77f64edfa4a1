"""The live web view: an aiohttp server on a thread of its own with the annotated stream, counts, alerts and FPS.

The loop calls ``Viewer.publish`` once per frame; it keeps only the latest JPEG and status (one slot, latest wins),
and encodes the frame only while a browser watches. Each viewer's connection runs on the server's own event loop, so
a slow or stalled viewer skips frames and never slows the loop. Endpoints: ``/`` (the page), ``/stream.mjpg``
(multipart/x-mixed-replace JPEGs), ``/api/status`` (JSON), ``/snapshots/<name>`` (alert snapshots, only from the
run's snapshot folder), ``/healthz``. Binding to an address other than loopback needs the token printed at start
(``?token=`` or ``Authorization: Bearer``).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from aiohttp import web

from detector.sources import Frame
from detector.stats import RunStats
from maskwatch.errors import UserError
from maskwatch.faces import Faces
from maskwatch.labels import count_labels

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
RECENT_ALERTS = 8  # alerts listed on the page and in /api/status
SNAPSHOT_NAME = re.compile(r"^[\w.-]+\.jpg$")
BOUNDARY = "frame"
PAGE = Path(__file__).with_name("web.html")  # the page: counts, alerts and the stream, updated once a second


def live_counts(faces: Faces, stats: RunStats) -> dict[str, Any]:
    """The counts the view shows: people in view and seen so far by label (video with track ids, from
    ``stats.people``), else this frame's faces and the run's face totals including this frame."""
    if stats.people.persons:
        counts = stats.people.counts()  # by every label, zeros included
        return {"unit": "people", "in_view": counts.in_view | {"total": sum(counts.in_view.values())},
                "seen": counts.seen | {"people": sum(counts.seen.values()), "frames": stats.frames + 1}}
    n = count_labels(faces.label)  # every label (each a RunStats count)
    return {"unit": "faces", "in_view": n | {"total": len(faces)},
            "seen": {"frames": stats.frames + 1, "faces": stats.faces + len(faces)}
            | {name: getattr(stats, name) + k for name, k in n.items()}}


def parse_serve(spec: str, default_host: str) -> tuple[str, int]:
    """``--serve [HOST:]PORT`` -> (host, port); a bare port binds ``default_host``."""
    host, sep, port_text = spec.rpartition(":")
    host = host.strip("[]") if sep else default_host
    port = int(port_text) if port_text.isascii() and port_text.isdigit() else -1
    if not 0 < port < 65536 or not host:
        raise UserError(f"--serve wants [HOST:]PORT with a port 1-65535, got {spec!r}")
    return host, port


def token_ok(expected: str | None, query_token: str | None, authorization: str | None) -> bool:
    """True when no token is needed (``expected`` None) or the request's ``?token=`` / Bearer header matches it."""
    if expected is None:
        return True
    given = query_token
    if given is None and authorization and authorization.startswith("Bearer "):
        given = authorization.removeprefix("Bearer ").strip()
    # a header of bytes that are not UTF-8 (aiohttp: surrogates) was a 500 and a traceback on the detector's stderr
    return given is not None and secrets.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode())


class Viewer:
    """The one-slot holder between the loop (``publish``) and the server (latest JPEG, latest status)."""

    def __init__(self, jpeg_quality: int = 80, snapshots_dir: str | Path | None = None) -> None:
        self.jpeg_quality = jpeg_quality
        self.snapshots_dir = Path(snapshots_dir).resolve() if snapshots_dir is not None else None
        self.viewers = 0  # open /stream.mjpg connections (changed on the server's thread)
        self.frames_encoded = 0
        self._lock = threading.Lock()
        self._jpeg: bytes | None = None
        self._seq = 0
        self._status: dict[str, Any] = {"running": True, "frame": None, "fps": None,
                                        "in_view": None, "seen": None, "alerts": [], "alerts_total": 0}
        self._alerts: deque[dict[str, Any]] = deque(maxlen=RECENT_ALERTS)
        self._alerts_total = 0
        self.on_frame: Callable[[], None] | None = None  # run after each frame (the server's wake-up)

    def publish(self, frame: Frame, faces: Faces, annotated_bgr: np.ndarray, stats: RunStats,
                events: list[dict[str, Any]]) -> None:
        """The loop's hook: keep this frame (JPEG only while someone watches) and its status; never blocks."""
        jpeg = None
        if self.viewers > 0:
            ok, buf = cv2.imencode(".jpg", annotated_bgr, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
            jpeg = buf.tobytes() if ok else None
        for event in events:
            self._alerts.appendleft(self._public_alert(event))
            self._alerts_total += 1
        fps = stats.smoothed_fps()
        status = {"running": True, "source": frame.source, "frame": frame.index, "time_s": round(frame.time_s, 3),
                  "fps": round(fps, 2) if fps is not None else None, **live_counts(faces, stats),
                  "alerts": list(self._alerts), "alerts_total": self._alerts_total}
        with self._lock:
            self._status = status
            if jpeg is not None:
                self._jpeg, self._seq = jpeg, self._seq + 1
                self.frames_encoded += 1
        if self.on_frame is not None:
            self.on_frame()

    def finish(self) -> None:
        """The run ended: the status says so (the server may stay up until closed)."""
        with self._lock:
            self._status = self._status | {"running": False}

    def status(self) -> dict[str, Any]:
        with self._lock:
            return self._status | {"viewers": self.viewers}

    def latest_jpeg(self) -> tuple[bytes | None, int]:
        with self._lock:
            return self._jpeg, self._seq

    def snapshot_path(self, name: str) -> Path | None:
        """The file ``name`` in the snapshot folder, or None (no folder, odd name, outside it, missing)."""
        if self.snapshots_dir is None or not SNAPSHOT_NAME.match(name):
            return None
        path = (self.snapshots_dir / name).resolve()
        return path if path.parent == self.snapshots_dir and path.is_file() else None

    def _public_alert(self, event: dict[str, Any]) -> dict[str, Any]:
        """An alert for the page: no local paths, snapshot URLs only for files in the snapshot folder."""
        out = {k: event.get(k) for k in ("track_id", "utc", "time_s", "since_s", "prob_mask", "frame")}
        for key in ("snapshot_face", "snapshot_frame"):
            path = Path(event[key]).resolve() if event.get(key) else None
            out[key] = f"/snapshots/{path.name}" if path is not None and path.parent == self.snapshots_dir else None
        return out


class WebServer:
    """``Viewer`` served over HTTP while the ``with`` block runs, on a thread and event loop of its own.

    ``token`` None on a loopback bind means open; on any other bind a token is made if none is given.
    """

    def __init__(self, viewer: Viewer, host: str = "127.0.0.1", port: int = 0, token: str | None = None) -> None:
        self.viewer, self.host, self.port = viewer, host, port
        self.token = token if token is not None or host in LOCAL_HOSTS else secrets.token_urlsafe(24)
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), name="maskwatch-web",
                                        daemon=True)  # fmt: skip
        self._started = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._new_frame = asyncio.Event()  # replaced on every frame: its waiters are the stream handlers
        self._stop = asyncio.Event()
        self._closing = False
        self._error: OSError | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/" + (f"?token={self.token}" if self.token else "")

    def __enter__(self) -> WebServer:
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            raise UserError(f"cannot serve the web view on {self.host}:{self.port}: {self._error}")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None
        self._closing = True
        self._wake()
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)
        self.viewer.on_frame = None

    # -- the server's thread ---------------------------------------------------------------------------------------

    async def _serve(self) -> None:
        app = web.Application(middlewares=[self._auth])
        app.on_response_prepare.append(self._no_store)
        app.add_routes([web.get("/", self._page), web.get("/stream.mjpg", self._stream),
                        web.get("/api/status", self._status), web.get("/healthz", self._health),
                        web.get("/snapshots/{name}", self._snapshot)])  # fmt: skip
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
            self.port = runner.addresses[0][1]  # the bound port (port 0 = a free one)
            self._loop = asyncio.get_running_loop()
            self.viewer.on_frame = self._wake
        except OSError as exc:
            self._error = exc
        self._started.set()
        if self._error is None:
            await self._stop.wait()
        await runner.cleanup()

    def _wake(self) -> None:
        """From any thread: wake the stream handlers (a new frame, or closing)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._set_new_frame)

    def _set_new_frame(self) -> None:
        self._new_frame.set()
        self._new_frame = asyncio.Event()

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path != "/healthz" and not token_ok(self.token, request.query.get("token"),
                                                       request.headers.get("Authorization")):
            return web.json_response({"error": "missing or wrong token"}, status=401)
        return await handler(request)

    async def _no_store(self, request: web.Request, response: web.StreamResponse) -> None:
        response.headers["Cache-Control"] = "no-store"  # every answer is live

    async def _page(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(PAGE)

    async def _status(self, request: web.Request) -> web.Response:
        return web.json_response(self.viewer.status())

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "running": self.viewer.status()["running"]})

    async def _snapshot(self, request: web.Request) -> web.StreamResponse:
        path = self.viewer.snapshot_path(request.match_info["name"])
        if path is None:
            raise web.HTTPNotFound()
        return web.FileResponse(path)

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": f"multipart/x-mixed-replace; boundary={BOUNDARY}"})
        await resp.prepare(request)
        self.viewer.viewers += 1
        seen = -1
        try:
            while not self._closing:
                jpeg, seq = self.viewer.latest_jpeg()
                if jpeg is None or seq == seen:
                    if request.transport is None or request.transport.is_closing():
                        break  # the viewer left while no frame came
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._new_frame.wait(), timeout=1.0)
                    continue
                seen = seq
                await resp.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                                 .encode() + jpeg + b"\r\n")  # waits for this viewer only; frames meanwhile drop
        except (ConnectionError, asyncio.CancelledError):  # ConnectionResetError is a ConnectionError
            pass
        finally:
            self.viewer.viewers -= 1
        return resp
