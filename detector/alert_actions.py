"""Alert receivers (terminal bell, desktop notification, shell command, webhook, MQTT) and the worker thread that
feeds each one from a bounded queue.

Every receiver is a ``Receiver(name, send)`` where ``send(event_dict)`` may block or raise: it runs on its own
daemon thread (``Worker``), never on the video loop. A full queue drops the event and counts it; a failure is
printed once per receiver in one line, counted, and the run goes on.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from maskwatch.config import AlertsConfig

Event = dict[str, Any]
RECEIVER_TIMEOUT_S = 5.0  # time limit per event of a command, webhook, MQTT publish, notification (and at the end)
QUEUE_SIZE = 32  # events waiting per receiver; more are dropped and counted
_STOP = object()


@dataclass
class Receiver:
    """``send(event)`` delivers one event (may block, may raise); ``close()`` releases its connection; ``abort()``
    ends a send still running when the run ends (must not block)."""

    name: str
    send: Callable[[Event], None]
    close: Callable[[], None] = field(default=lambda: None)
    abort: Callable[[], None] = field(default=lambda: None)


class Worker:
    """One receiver's daemon thread and bounded queue; ``submit`` never blocks."""

    def __init__(self, receiver: Receiver, queue_size: int = QUEUE_SIZE) -> None:
        self.receiver = receiver
        self.sent = self.failed = self.dropped = 0
        self._busy = False  # a send is running
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_size)
        self._thread = threading.Thread(target=self._run, name=f"alerts-{receiver.name}", daemon=True)
        self._thread.start()

    def submit(self, event: Event) -> bool:
        """Queue ``event``; False (and one more dropped) if the queue is full."""
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1:
                print(f"alerts: {self.receiver.name} is behind, its queue is full: dropping events (counted)",
                      flush=True)
            return False
        return True

    def _run(self) -> None:
        while (event := self._queue.get()) is not _STOP:
            self._busy = True
            try:
                self.receiver.send(event)  # type: ignore[arg-type]
            except Exception as exc:  # any receiver failure: one line, the run goes on
                self._busy = False  # before the count: status() counts each event once
                self.failed += 1
                if self.failed == 1:
                    print(f"alerts: {self.receiver.name} failed: {_one_line(exc)} (further failures counted, "
                          "not shown)", flush=True)
            else:
                self._busy = False
                self.sent += 1
        with contextlib.suppress(Exception):
            self.receiver.close()

    def stop(self) -> None:
        """Ask the thread to end after the queued events (the stop mark waits if the queue is full)."""
        threading.Thread(target=self._queue.put, args=(_STOP,), daemon=True).start()

    def join(self, timeout_s: float) -> None:
        """Wait up to ``timeout_s`` for the thread; a send still running then is aborted (a command is killed)."""
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                self.receiver.abort()

    def status(self) -> str:
        """``webhook: 2 sent, 1 failed, 0 dropped``, and ``, 3 cut off by the end of the run`` for events still
        being sent or queued when the run ended (after ``join``)."""
        cut = (self._busy and self._thread.is_alive()) + sum(e is not _STOP for e in list(self._queue.queue))
        text = f"{self.receiver.name}: {self.sent} sent, {self.failed} failed, {self.dropped} dropped"
        return text + (f", {cut} cut off by the end of the run" if cut else "")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if not text.startswith(type(exc).__name__) else text


# ---------------------------------------------------------------- receivers


def bell() -> Receiver:
    """The terminal bell (BEL on stderr)."""

    def send(event: Event) -> None:
        sys.stderr.write("\a")
        sys.stderr.flush()

    return Receiver("bell", send)


def desktop(timeout_s: float) -> Receiver | None:
    """A desktop notification via ``notify-send`` (Linux); None where there is none."""
    exe = shutil.which("notify-send")
    if exe is None:
        return None

    def send(event: Event) -> None:
        subprocess.run([exe, "-u", "critical", "maskwatch: no mask", _event_text(event)], check=True,
                       timeout=timeout_s, capture_output=True)  # fmt: skip

    return Receiver("desktop", send)


def command(cmd: str, timeout_s: float) -> Receiver:
    """``cmd`` run by the shell, the event as one JSON line on its stdin; a non-zero exit is a failure. It runs in a
    process group of its own: one still running after ``timeout_s`` (or at ``abort``) is killed with all it started
    (killing only the shell left its commands running)."""
    running: set[subprocess.Popen[str]] = set()

    def send(event: Event) -> None:
        with subprocess.Popen(cmd, shell=True, text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, process_group=0) as proc:  # fmt: skip
            running.add(proc)
            try:
                _, err = proc.communicate(json.dumps(event) + "\n", timeout=timeout_s)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                raise
            finally:
                running.discard(proc)
        if proc.returncode != 0:
            tail = " ".join(err.split())[-200:]
            raise RuntimeError(f"exit code {proc.returncode}" + (f" ({tail})" if tail else ""))

    def abort() -> None:
        for proc in list(running):
            _kill_group(proc)

    return Receiver("command", send, abort=abort)


def _kill_group(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def webhook(url: str, timeout_s: float) -> Receiver:
    """An HTTP POST of the event as JSON (``Content-Type: application/json``); a non-2xx answer is a failure."""
    import urllib.request  # only with a webhook (http.client, email, ssl: ~30 ms)

    def send(event: Event) -> None:
        request = urllib.request.Request(url, data=json.dumps(event).encode("utf-8"), method="POST",
                                         headers={"Content-Type": "application/json"})  # fmt: skip
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            response.read()

    return Receiver("webhook", send)


def mqtt(host: str, port: int, topic: str, timeout_s: float, qos: int = 1) -> Receiver:
    """An MQTT publish of the event as JSON to ``topic`` (paho-mqtt; connects on the first event, reconnects)."""
    import paho.mqtt.client as paho

    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="", protocol=paho.MQTTv311)
    client.connect_timeout = timeout_s
    state = {"connected": False}

    def send(event: Event) -> None:
        if not state["connected"]:
            client.connect(host, port, keepalive=60)
            client.loop_start()  # the network thread; it reconnects on its own after a drop
            state["connected"] = True
        info = client.publish(topic, json.dumps(event), qos=qos)
        info.wait_for_publish(timeout_s)
        if not info.is_published():
            raise TimeoutError(f"not acknowledged by {host}:{port} within {timeout_s:g} s")

    def close() -> None:
        if state["connected"]:
            client.loop_stop()
            client.disconnect()

    return Receiver(f"mqtt {host}:{port}", send, close)


def _event_text(event: Event) -> str:
    return f"person {event['track_id']} without a mask for {event['time_s'] - event['since_s']:.1f} s " \
           f"({event['source']}, frame {event['frame']})"


def build_receivers(cfg: AlertsConfig) -> list[Receiver]:
    """The receivers ``cfg`` turns on; a desktop notification where there is none is skipped with one line."""
    receivers = []
    for spec in cfg.receiver_specs():
        if spec.kind == "bell":
            receivers.append(bell())
        elif spec.kind == "desktop":
            note = desktop(RECEIVER_TIMEOUT_S)
            if note is None:
                print("alerts: no desktop notifications here (notify-send not found): skipped", flush=True)
            else:
                receivers.append(note)
        elif spec.kind == "exec":
            receivers.append(command(spec.target, RECEIVER_TIMEOUT_S))
        elif spec.kind == "webhook":
            receivers.append(webhook(spec.target, RECEIVER_TIMEOUT_S))
        else:
            receivers.append(mqtt(spec.host, spec.port, spec.target, RECEIVER_TIMEOUT_S))
    return receivers
