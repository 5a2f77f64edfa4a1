"""Alerts: the rule on a fake clock, every receiver against a real local one (HTTP server, mosquitto broker, shell),
snapshots, a hanging or refusing receiver next to the loop, and the demo end to end."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np
import pytest

from detector import alert_actions, webcam
from detector.alerts import CLOCK_EPS_S, AlertRules, Alerts, SnapshotWriter, snapshot_folder
from detector.draw import DrawStyle, draw
from detector.loop import Outputs, run_loop
from detector.sinks import JsonlLog
from detector.sources import Frame
from detector.stats import RunStats
from maskwatch.config import AlertsConfig, ReceiverSpec, load_config
from maskwatch.errors import ConfigError
from maskwatch.faces import MASK, NO_MASK, NO_TRACK, UNKNOWN, Faces
from maskwatch.labels import INCORRECT

ROOT = Path(__file__).resolve().parents[1]
FPS = 10.0


def _faces(*people: tuple[int, int]) -> Faces:
    """One face per ``(track_id, label)``, side by side, 40 px wide."""
    n = len(people)
    xyxy = [[10 + 50 * i, 20, 50 + 50 * i, 70] for i in range(n)]
    labels = [label for _, label in people]
    prob = [0.9 if label == MASK else 0.1 if label == NO_MASK else np.nan for label in labels]
    return Faces(np.array(xyxy).reshape(-1, 4), np.full(n, 0.9), np.array(prob), np.array(labels),
                 np.array([t for t, _ in people]))


def _run_rules(rules: AlertRules, timeline: list[tuple[tuple[int, int], ...]]) -> list[tuple[float, int, float]]:
    """Feed one frame per ``FPS`` tick; ``(time_s, track_id, since_s)`` of every trigger."""
    fired = []
    for i, people in enumerate(timeline):
        t = i / FPS
        fired += [(round(t, 3), trig.track_id, round(trig.since_s, 3)) for trig in rules.update(_faces(*people), t)]
    return fired


# ------------------------------------------------------------------ the rule, on a fake clock


def test_unmasked_person_fires_once_then_again_only_after_the_cooldown():
    rules = AlertRules(no_mask_s=2.0, cooldown_s=5.0, gap_s=1.0)
    fired = _run_rules(rules, [((1, NO_MASK),)] * 131)  # 13 s unmasked
    assert fired == [(2.0, 1, 0.0), (7.0, 1, 0.0), (12.0, 1, 0.0)]


def test_masked_and_unknown_people_never_fire_and_a_mask_restarts_the_count():
    rules = AlertRules(no_mask_s=1.0, cooldown_s=60.0)
    timeline = [((1, MASK), (2, UNKNOWN), (NO_TRACK, NO_MASK))] * 50
    # track 3: unmasked 0.8 s, masked one frame, unmasked again: the count starts over at 0.9 s
    timeline += [((3, NO_MASK),)] * 8 + [((3, MASK),)] + [((3, UNKNOWN),)] * 3 + [((3, NO_MASK),)] * 20
    fired = _run_rules(rules, timeline)
    assert fired == [(6.2 + 1.0, 3, 6.2)]  # unknown frames neither start nor end a run
    assert all(track == 3 for _, track, _ in fired)


def test_a_person_who_leaves_and_comes_back():
    rules = AlertRules(no_mask_s=1.0, cooldown_s=4.0, gap_s=0.5)
    away, here = (), ((5, NO_MASK),)
    # 0.0-0.7 s here (too short), away 1 s (> gap: starts over), back at 1.8 s: fires at 2.8 s
    timeline = [here] * 8 + [away] * 10 + [here] * 12
    # leaves again for 0.3 s (< gap: the same run), back: muted by the cooldown until 6.8 s
    timeline += [away] * 3 + [here] * 40
    # gone for good; a newcomer with another track id fires on its own
    timeline += [away] * 60 + [((6, NO_MASK),)] * 11
    fired = _run_rules(rules, timeline)
    assert fired == [(2.8, 5, 1.8), (6.8, 5, 1.8), (14.3, 6, 13.3)]
    assert len(rules) == 1  # track 5 was forgotten once gone longer than the cooldown


def test_several_people_are_independent():
    rules = AlertRules(no_mask_s=0.5, cooldown_s=100.0)
    timeline = [((1, NO_MASK), (2, MASK))] * 10 + [((1, NO_MASK), (2, NO_MASK))] * 10
    assert _run_rules(rules, timeline) == [(0.5, 1, 0.0), (1.5, 2, 1.0)]


def test_a_mask_worn_wrong_is_a_violation_only_when_configured():
    # track 1: 1.5 s worn wrong, then 1.5 s unmasked; track 2: worn wrong throughout
    timeline = [((1, INCORRECT), (2, INCORRECT))] * 15 + [((1, NO_MASK), (2, INCORRECT))] * 15
    counted = AlertRules(no_mask_s=1.0, cooldown_s=60.0, violations=(NO_MASK, INCORRECT))
    fired = [(round(i / FPS, 3), trig.track_id, trig.since_s, trig.label) for i, people in enumerate(timeline)
             for trig in counted.update(_faces(*people), i / FPS)]  # fmt: skip
    assert fired == [(1.0, 1, 0.0, INCORRECT), (1.0, 2, 0.0, INCORRECT)]  # one run across both violations
    ignored = AlertRules(no_mask_s=1.0, cooldown_s=60.0)  # the default: no_mask only; worn wrong ends a run
    assert _run_rules(ignored, timeline) == [(2.5, 1, 1.5)]


def test_alert_events_name_the_violation_and_the_config_switch(tmp_path: Path):
    def events(cfg: AlertsConfig, label: int) -> list[str]:
        with Alerts.from_config(cfg, None) as alerts:
            return [e["event"] for i in range(12) for e in alerts.update(
                Frame(i, i / FPS, _scene(i), "cam.mp4", FPS), _faces((4, label)), _scene(i))]

    on = load_config(overrides=["alerts.no_mask_s=1.0"]).alerts
    off = load_config(overrides=["alerts.no_mask_s=1.0", "alerts.incorrect_is_violation=false"]).alerts
    assert on.incorrect_is_violation and events(on, INCORRECT) == ["incorrect"]
    assert events(off, INCORRECT) == [] and events(off, NO_MASK) == ["no_mask"]


def test_a_person_back_after_the_gap_starts_a_new_count_but_stays_muted_until_the_cooldown():
    rules = AlertRules(no_mask_s=1.0, cooldown_s=6.0, gap_s=0.5)
    away, here = (), ((5, NO_MASK),)
    # fires at 1.0 s; away 2 s (> gap, < cooldown); back at 3.1 s (same person id): muted, its count restarts then;
    # the cooldown ends at 7.0 s (the count is past 1 s by then: fires); away again and back at 9.1 s: muted
    timeline = [here] * 11 + [away] * 20 + [here] * 40 + [away] * 20 + [here] * 11
    assert _run_rules(rules, timeline) == [(1.0, 5, 0.0), (7.0, 5, 3.1)]  # back at 9.1 s: within the cooldown


def _fired_at(rules: AlertRules, frames: list[tuple[float, tuple[tuple[int, int], ...]]]) -> list[tuple[float, float]]:
    """``(time_s, since_s)`` of every trigger of ``(time_s, people)`` frames."""
    return [(t, trig.since_s) for t, people in frames for trig in rules.update(_faces(*people), t)]


def test_away_for_exactly_the_gap_continues_the_run():
    here = ((1, NO_MASK),)
    frames = [(0.0, here), (0.5, here), (1.0, here)]  # 0.5 s between frames: not longer than the gap
    assert _fired_at(AlertRules(no_mask_s=1.0, cooldown_s=60.0, gap_s=0.5), frames) == [(1.0, 0.0)]
    assert _fired_at(AlertRules(no_mask_s=1.0, cooldown_s=60.0, gap_s=0.25), frames) == []  # longer: starts over


def test_the_run_and_the_cooldown_are_measured_within_the_clock_tolerance():
    here = ((1, NO_MASK),)
    just, short = 1.0 - CLOCK_EPS_S, 1.0 - 2 * CLOCK_EPS_S
    assert _fired_at(AlertRules(no_mask_s=1.0, cooldown_s=60.0), [(0.0, here), (just, here)]) == [(just, 0.0)]
    assert _fired_at(AlertRules(no_mask_s=1.0, cooldown_s=60.0), [(0.0, here), (short, here)]) == []
    frames = [(0.0, here), (2.0 - CLOCK_EPS_S, here), (4.0 - 3 * CLOCK_EPS_S, here)]
    rules = AlertRules(no_mask_s=0.0, cooldown_s=2.0)
    assert [t for t, _ in _fired_at(rules, frames)] == [0.0, 2.0 - CLOCK_EPS_S]  # the third is 1 us short


# ------------------------------------------------------------------ through the tracker: persons, not tracks


class _Walk:
    """A scripted scene: frame k shows ``faces[k]`` (box, BGR colour, P(mask)) on a grey background; the detector
    finds exactly those boxes and the classifier answers the P(mask) of the face of the crop's colour."""

    def __init__(self, faces: list[list[tuple[list[int], tuple[int, int, int], float]]]) -> None:
        self.faces, self.k = faces, -1

    def frames(self) -> list[np.ndarray]:
        out = []
        shade = np.kron(np.random.default_rng(1).uniform(0.6, 1.0, (30, 30, 1)), np.ones((4, 4, 1)))
        for faces in self.faces:
            frame = np.full((240, 320, 3), 120, np.uint8)
            for (x1, y1, x2, y2), bgr, _ in faces:
                frame[y1:y2, x1:x2] = (shade[: y2 - y1, : x2 - x1] * np.array(bgr)).astype(np.uint8)
            out.append(frame)
        return out

    def detect(self, frame_bgr: np.ndarray) -> Faces:
        self.k += 1
        boxes = [box for box, _, _ in self.faces[self.k]]
        return Faces(np.array(boxes, np.int32).reshape(-1, 4), np.full(len(boxes), 0.9, np.float32))

    def classify(self, crops: list[np.ndarray]) -> np.ndarray:
        colours = np.array([bgr for _, bgr, _ in self.faces[self.k]], np.float64)
        nearest = [np.argmin(np.abs(colours * 0.8 - c.mean(axis=(0, 1))).sum(axis=1)) for c in crops]
        return np.array([self.faces[self.k][j][2] for j in nearest], np.float32)


def _alerts_through_the_tracker(walk: _Walk, **tracking: float) -> list[tuple[float, int, float]]:
    """The alerts (time, person, since) of ``walk`` at FPS through the real pipeline (every frame a key frame)."""
    from detector.pipeline import Pipeline

    params = {"detect_every": 1, "track": True, "max_missed": 0, "memory_keyframes": 2, "vote_keyframes": 5,
              "vote_min_keyframes": 2, "vote_hysteresis": 0.1} | tracking
    pipeline = Pipeline(walk.detect, walk.classify, **params)
    rules = AlertRules(no_mask_s=1.0, cooldown_s=30.0, gap_s=0.5)
    fired = []
    for i, frame in enumerate(walk.frames()):
        faces = pipeline(frame)
        fired += [(round(i / FPS, 3), t.track_id, round(t.since_s, 3)) for t in rules.update(faces, i / FPS)]
    return fired


RED, BLUE = (40, 60, 220), (220, 90, 40)


def test_a_person_who_leaves_and_comes_back_elsewhere_fires_once_within_the_cooldown():
    left, right, masked = [20, 40, 80, 100], [220, 120, 280, 180], ([120, 40, 180, 100], BLUE, 0.95)
    walk = [[(left, RED, 0.05), masked]] * 15 + [[masked]] * 20 + [[(right, RED, 0.05), masked]] * 15
    assert _alerts_through_the_tracker(_Walk(walk), reid_keyframes=40) == [(1.1, 0, 0.1)]  # once: the same person
    per_track = _alerts_through_the_tracker(_Walk(walk), reid_keyframes=0)  # without re-id: a second "person"
    assert [(t, p) for t, p, _ in per_track] == [(1.1, 0), (4.6, 2)]


def test_two_unmasked_people_crossing_fire_once_each():
    walk = [[([20 + 8 * k, 60, 80 + 8 * k, 120], RED, 0.05), ([240 - 8 * k, 90, 300 - 8 * k, 150], BLUE, 0.1)]
            for k in range(26)]  # fmt: skip
    assert _alerts_through_the_tracker(_Walk(walk), reid_keyframes=40) == [(1.1, 0, 0.1), (1.1, 1, 0.1)]


def test_one_wrong_classification_neither_delays_nor_repeats_the_alert():
    box = [100, 60, 160, 120]
    probs = [0.05] * 6 + [0.95] + [0.05] * 20  # one frame the classifier sees a mask
    walk = [[(box, RED, p)] for p in probs]
    assert _alerts_through_the_tracker(_Walk(walk), reid_keyframes=40) == [(1.1, 0, 0.1)]
    assert _alerts_through_the_tracker(_Walk(walk), reid_keyframes=40, vote_keyframes=1, vote_min_keyframes=1,
                                       vote_hysteresis=0) == [(1.7, 0, 0.7)]  # fmt: skip - without the vote


# ------------------------------------------------------------------ receivers against real local servers


class _Collector(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, dict]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.headers["Content-Type"], json.loads(body)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


@contextlib.contextmanager
def _http_server() -> Iterator[tuple[str, list]]:
    handler = type("Handler", (_Collector,), {"received": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", handler.received
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def _silent_server() -> Iterator[int]:
    """A port that accepts connections and never answers (a hung receiver)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(condition, timeout_s: float = 10.0) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


EVENT = {"event": "no_mask", "track_id": 3, "source": "cam.mp4", "frame": 40, "time_s": 4.0, "since_s": 2.0,
         "box": [1, 2, 30, 40], "prob_mask": 0.1, "snapshot_frame": None, "snapshot_face": None, "utc": "x"}


def test_webhook_posts_the_event_as_json():
    with _http_server() as (url, received):
        worker = alert_actions.Worker(alert_actions.webhook(url, timeout_s=5.0))
        assert worker.submit(EVENT)
        assert _wait_for(lambda: worker.sent == 1)
        worker.stop()
        worker.join(5)
    assert received == [("application/json", EVENT)]
    assert (worker.failed, worker.dropped) == (0, 0)


@pytest.fixture(scope="module")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(exe).exists():
        pytest.fail("mosquitto is not installed: apt-get install -y mosquitto (.ci/run does it)")
    port = _closed_port()
    conf = tmp_path_factory.mktemp("mqtt") / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        def up() -> bool:
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0
        assert _wait_for(up, 10), f"mosquitto did not start: {proc.stderr.read1().decode() if proc.poll() else ''}"
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def test_mqtt_publishes_the_event_to_a_real_broker(mosquitto: int):
    import paho.mqtt.client as paho

    got: list[tuple[str, dict]] = []
    subscribed = threading.Event()
    sub = paho.Client(paho.CallbackAPIVersion.VERSION2)
    sub.on_message = lambda c, u, msg: got.append((msg.topic, json.loads(msg.payload)))
    sub.on_subscribe = lambda *a: subscribed.set()
    sub.on_connect = lambda c, u, f, rc, p: c.subscribe("site/alerts", qos=1)
    sub.connect("127.0.0.1", mosquitto)
    sub.loop_start()
    try:
        assert subscribed.wait(10)
        worker = alert_actions.Worker(alert_actions.mqtt("127.0.0.1", mosquitto, "site/alerts", timeout_s=5.0))
        for k in range(2):
            worker.submit({**EVENT, "frame": k})
        assert _wait_for(lambda: len(got) == 2), (worker.status(), got)
        worker.stop()
        worker.join(5)
    finally:
        sub.loop_stop()
        sub.disconnect()
    assert got == [("site/alerts", {**EVENT, "frame": 0}), ("site/alerts", {**EVENT, "frame": 1})]
    assert (worker.sent, worker.failed) == (2, 0)


def test_command_gets_the_event_on_stdin_and_a_failing_one_is_reported_once(tmp_path: Path, capsys):
    out = tmp_path / "events.jsonl"
    worker = alert_actions.Worker(alert_actions.command(f"cat >> '{out}'", timeout_s=10))
    for k in range(3):
        worker.submit({**EVENT, "frame": k})
    assert _wait_for(lambda: worker.sent == 3, 20)
    assert [json.loads(line)["frame"] for line in out.read_text().splitlines()] == [0, 1, 2]
    assert json.loads(out.read_text().splitlines()[0]) == EVENT | {"frame": 0}

    bad = alert_actions.Worker(alert_actions.command("echo nope >&2; exit 3", timeout_s=10))
    for _ in range(3):
        bad.submit(EVENT)
    assert _wait_for(lambda: bad.failed == 3, 20)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("alerts:")]
    assert lines == ["alerts: command failed: RuntimeError: exit code 3 (nope) (further failures counted, not shown)"]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
def test_a_command_that_times_out_or_outlives_the_run_is_killed_with_what_it_started(tmp_path: Path, ended):
    started = tmp_path / "pid"
    cmd = f"sleep 60 & echo $! > '{started}'; wait"  # the shell and a command it started
    with pytest.raises(subprocess.TimeoutExpired):
        alert_actions.command(cmd, timeout_s=0.5).send(EVENT)
    assert _wait_for(lambda: ended(int(started.read_text())), 5)  # the timeout once killed only the shell

    started.unlink()
    worker = alert_actions.Worker(alert_actions.command(cmd, timeout_s=60))
    worker.submit(EVENT)
    assert _wait_for(lambda: started.exists() and started.read_text().strip() != "", 5)
    worker.stop()
    worker.join(0.5)  # the end of the run: the command still busy is stopped, not left running
    assert _wait_for(lambda: ended(int(started.read_text())), 5)
    assert _wait_for(lambda: worker.failed == 1, 5)  # killed: a failure (its line printed here, not after the test)


def test_events_cut_off_by_the_end_of_the_run_are_counted():
    release = threading.Event()
    worker = alert_actions.Worker(alert_actions.Receiver("slow", lambda event: release.wait(10)), queue_size=4)
    for _ in range(3):
        worker.submit(EVENT)
    assert _wait_for(lambda: worker._busy, 5)
    worker.stop()
    worker.join(0.1)  # the end of the run: one still being sent, two queued
    assert worker.status() == "slow: 0 sent, 0 failed, 0 dropped, 3 cut off by the end of the run"
    release.set()
    worker.join(5)
    assert worker.status() == "slow: 3 sent, 0 failed, 0 dropped"


def test_desktop_notification_is_skipped_with_one_line_where_missing(monkeypatch: pytest.MonkeyPatch, capsys):
    monkeypatch.setattr(alert_actions.shutil, "which", lambda name: None)
    receivers = alert_actions.build_receivers(AlertsConfig(receivers=("desktop", "bell")))
    assert [r.name for r in receivers] == ["bell"]
    assert capsys.readouterr().out == "alerts: no desktop notifications here (notify-send not found): skipped\n"


@pytest.mark.parametrize("spec", ["ftp://x", "http://", "exec:", "mqtt://", "mqtt://b:99999/t", "beep", "Bell!"])
def test_a_receiver_of_no_known_form_is_one_config_line(spec: str):
    with pytest.raises(ConfigError, match=r"^alerts\.receivers\[0\]: .* is not a receiver; expected one of bell, "):
        load_config(overrides=[f"alerts.receivers=[{json.dumps(spec)}]"])


def test_receivers_parse_to_their_kind_and_target():
    specs = AlertsConfig(receivers=("bell", " Desktop", "exec: jq -r .frame", "https://hub/hook?x=1",
                                    "mqtt://broker", "mqtt://broker:8883/site/door1")).receiver_specs()
    assert specs == [ReceiverSpec("bell"), ReceiverSpec("desktop"), ReceiverSpec("exec", "jq -r .frame"),
                     ReceiverSpec("webhook", "https://hub/hook?x=1"),
                     ReceiverSpec("mqtt", "maskwatch/alerts", "broker", 1883),
                     ReceiverSpec("mqtt", "site/door1", "broker", 8883)]  # fmt: skip
    names = [r.name for r in alert_actions.build_receivers(AlertsConfig(receivers=("bell", "exec:true")))]
    assert names == ["bell", "command"]


# ------------------------------------------------------------------ snapshots, banner, the loop


def _scene(i: int) -> np.ndarray:
    return np.full((240, 320, 3), 90 + i % 50, np.uint8)


def _frames(n: int) -> Iterator[Frame]:
    for i in range(n):
        yield Frame(i, i / FPS, _scene(i), "cam.mp4", FPS)


class _Unmasked:
    """A pipeline: two unmasked people (tracks 7, 8) in every frame, after a fixed model time ``delay_s``."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s

    def __call__(self, frame_bgr: np.ndarray) -> Faces:
        if self.delay_s:
            time.sleep(self.delay_s)
        return _faces((7, NO_MASK), (8, NO_MASK))


def test_loop_logs_alerts_and_saves_valid_jpeg_snapshots(tmp_path: Path):
    snaps = tmp_path / "run" / "snapshots"
    alerts = Alerts(AlertRules(no_mask_s=1.0, cooldown_s=100.0), snapshots=SnapshotWriter(snaps), banner_s=2.0)
    with alerts, JsonlLog(tmp_path / "log.jsonl") as log:
        run_loop(_frames(25), _Unmasked(), style=DrawStyle(), outputs=Outputs(log=log), stats=RunStats(),
                 alerts=alerts)
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    with_alerts = [r for r in records if "alerts" in r]
    assert [r["frame"] for r in with_alerts] == [10]  # 1.0 s at 10 fps
    events = with_alerts[0]["alerts"]
    assert [e["track_id"] for e in events] == [7, 8] and events == alerts.events
    e = events[0]
    assert set(e) == {"event", "track_id", "source", "frame", "time_s", "since_s", "box", "prob_mask",
                      "snapshot_frame", "snapshot_face", "utc"}
    assert (e["event"], e["source"], e["frame"], e["time_s"], e["since_s"]) == ("no_mask", "cam.mp4", 10, 1.0, 0.0)
    assert e["box"] == [10, 20, 50, 70] and e["prob_mask"] == pytest.approx(0.1)
    assert sorted(p.name for p in snaps.iterdir()) == ["cam_f000010_t7_face.jpg", "cam_f000010_t7_frame.jpg",
                                                       "cam_f000010_t8_face.jpg", "cam_f000010_t8_frame.jpg"]
    frame_jpg, face_jpg = cv2.imread(e["snapshot_frame"]), cv2.imread(e["snapshot_face"])
    assert Path(e["snapshot_frame"]).read_bytes()[:3] == b"\xff\xd8\xff"
    assert frame_jpg.shape == (240, 320, 3)
    assert face_jpg.shape == (50 + 2 * 12, 40 + 2 * 10, 3)  # the box grown by 25 % on every side
    # the snapshot is the annotated frame: the red no-mask box is in it
    assert np.abs(frame_jpg[20:70, 10].astype(int) - (0, 0, 230)).max() < 60


def test_banner_is_drawn_across_the_top_after_an_alert():
    frame = np.full((120, 200, 3), 128, np.uint8)
    plain = draw(frame, Faces.empty(), DrawStyle())
    bannered = draw(frame, Faces.empty(), DrawStyle(), banner="NO MASK: person 3")
    assert np.array_equal(plain[60:], bannered[60:])
    assert (bannered[2, :, 2] == 230).mean() > 0.8  # the no-mask colour fills the bar
    alerts = Alerts(AlertRules(no_mask_s=0.0, cooldown_s=100.0), banner_s=2.0)
    assert alerts.banner(0.0) is None
    alerts.update(next(_frames(1)), _faces((3, NO_MASK), (12, NO_MASK)), frame)
    assert alerts.banner(1.9) == "NO MASK: persons 3, 12" and alerts.banner(2.0) is None
    assert Alerts(AlertRules(0.0, 100.0), banner_s=0.0).banner(0.0) is None
    one = Alerts(AlertRules(no_mask_s=0.0, cooldown_s=100.0), banner_s=2.0)
    one.update(Frame(10, 1.0, frame, "cam.mp4", FPS), _faces((5, NO_MASK)), frame)  # at 1.0 s: shown until 3.0 s
    assert one.banner(2.5) == "NO MASK: person 5" and one.banner(3.0) is None


def _frame_times_s(alerts: Alerts | None, n: int = 40, delay_s: float = 0.02) -> list[float]:
    """Per-frame wall time of the loop with ``alerts`` (every frame fires for both people)."""
    stamps: list[float] = []

    def frames() -> Iterator[Frame]:
        for frame in _frames(n):
            stamps.append(time.perf_counter())
            yield frame
        stamps.append(time.perf_counter())

    with JsonlLog(None) as log:
        run_loop(frames(), _Unmasked(delay_s), style=DrawStyle(), outputs=Outputs(log=log), stats=RunStats(),
                 alerts=alerts)
    return np.diff(stamps).tolist()


def test_hanging_or_refusing_receivers_do_not_slow_the_loop(capsys):
    names = ("hung webhook", "refused webhook", "hung mqtt", "refused mqtt")
    with _silent_server() as hung_port:
        refused = _closed_port()
        receivers = [alert_actions.webhook(f"http://127.0.0.1:{hung_port}/", timeout_s=1.5),
                     alert_actions.webhook(f"http://127.0.0.1:{refused}/", timeout_s=1.5),
                     alert_actions.mqtt("127.0.0.1", hung_port, "t", timeout_s=1.5),
                     alert_actions.mqtt("127.0.0.1", refused, "t", timeout_s=1.5)]
        for name, r in zip(names, receivers, strict=True):
            r.name = name
        alerts = Alerts(AlertRules(no_mask_s=0.0, cooldown_s=0.0), receivers, queue_size=4, close_timeout_s=0.1)
        baseline = _frame_times_s(None)
        with alerts:
            slowed = _frame_times_s(alerts)
            leaving = time.monotonic()
        left_s = time.monotonic() - leaving  # 0.1 s per worker; closing a hung connection blocked ~60 s
        status = {w.receiver.name: w for w in alerts.workers}
        assert len(alerts.events) == 80  # every frame, both people
        ratio = statistics.median(slowed) / statistics.median(baseline)
        # a receiver called on the loop would hold a frame for its 1.5 s timeout; the margins absorb machine noise
        assert ratio < 1.5, (statistics.median(slowed), statistics.median(baseline))
        assert max(slowed) < 1.0, max(slowed)
        assert left_s < 5.0, left_s
        assert status["hung webhook"].dropped >= 80 - 4 - 1  # one in flight, the queue full, the rest dropped
        assert status["hung webhook"].sent == 0
    for worker in alerts.workers:  # the hung ones fail fast now that their server is gone
        worker.join(20)
    assert not any(w._thread.is_alive() for w in alerts.workers)
    assert status["refused webhook"].failed >= 1 and status["refused mqtt"].failed >= 1
    assert all(w.sent == 0 for w in alerts.workers)
    failed = [line for line in capsys.readouterr().out.splitlines() if " failed: " in line]
    assert len(failed) == len({line.split(" failed")[0] for line in failed})  # once per receiver
    refused_lines = [line for line in failed if line.startswith("alerts: refused")]
    assert len(refused_lines) == 2 and all("Connection refused" in line for line in refused_lines), failed


SNAPSHOT_PROBE = """
import os, sys, numpy as np
from detector.alerts import SnapshotWriter
from detector.sources import Frame
folder = os.fsdecode(sys.argv[1].encode() + b"/caf\\xe9")
image = np.full((60, 80, 3), 99, np.uint8)
print(SnapshotWriter(folder).save(Frame(3, 0.2, image, "cam.mp4", 15.0), 1, np.array([[10, 10, 40, 50]]), image))
"""


def test_a_snapshot_folder_whose_name_is_not_utf8_is_written(tmp_path: Path):
    """cv2.imwrite crashed the run (segmentation fault) on such a folder (``alerts.snapshots_dir``, or beside
    ``--log``); a subprocess, so that a crash fails this test only."""
    proc = subprocess.run([sys.executable, "-c", SNAPSHOT_PROBE, str(tmp_path)], cwd=ROOT, capture_output=True,
                          timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-1000:]
    names = sorted(p.name for p in (tmp_path / os.fsdecode(b"caf\xe9")).iterdir())
    assert names == ["cam_f000003_t1_face.jpg", "cam_f000003_t1_frame.jpg"]


def test_snapshot_folder_rules(tmp_path: Path):
    cfg = AlertsConfig()
    assert snapshot_folder(cfg, tmp_path, log="out/log.jsonl", output="x/a.mp4") == Path("out/snapshots")
    assert snapshot_folder(cfg, tmp_path, log=None, output="x/a.mp4") == Path("x/snapshots")
    assert snapshot_folder(AlertsConfig(snapshots_dir="snaps"), tmp_path, log="l.jsonl", output=None) == Path("snaps")
    auto = snapshot_folder(cfg, tmp_path, log=None, output=None)
    assert auto.parent.parent == tmp_path and auto.parent.name.startswith("alerts-") and auto.name == "snapshots"
    assert snapshot_folder(AlertsConfig(snapshots=False), tmp_path, log="l.jsonl", output=None) is None


def test_alerts_section_in_the_shipped_config():
    cfg = load_config(overrides=["alerts.no_mask_s=1.5", "alerts.receivers=[bell, 'mqtt://b:8883/t']"])
    assert (cfg.alerts.enabled, cfg.alerts.no_mask_s, cfg.alerts.receivers) == (False, 1.5, ("bell", "mqtt://b:8883/t"))
    with pytest.raises(ConfigError, match=r"^alerts\.mqtt_port: now one entry of alerts\.receivers: mqtt://"):
        load_config(overrides=["alerts.mqtt_port=8883"])


# ------------------------------------------------------------------ the demo end to end


def test_the_end_line_names_no_snapshot_folder_when_no_snapshot_was_saved(tmp_path: Path, capsys, monkeypatch):
    def full_disk(self: SnapshotWriter, *args: object) -> tuple[str, str]:
        raise OSError(28, "No space left on device")  # the folder was writable at the start

    monkeypatch.setattr(SnapshotWriter, "save", full_disk)
    rc = webcam.main(["--source", str(ROOT / "demo" / "demo.mp4"), "--no-display", "--quiet", "--max-frames", "25",
                      "--alerts", "--set", "alerts.no_mask_s=1", "--set", f"alerts.snapshots_dir={tmp_path / 'snaps'}"])
    out = capsys.readouterr().out
    assert rc == 0 and "alerts: snapshot not saved" in out
    assert "alerts: 2 fired\n" in out and "snapshots in" not in out, out


def test_a_snapshot_folder_that_cannot_be_written_is_refused_before_the_run(tmp_path: Path, capsys):
    """A file where the folder should be was found out at the first alert, and the run went on without snapshots."""
    (tmp_path / "taken").write_text("a file where the snapshot folder should be")
    rc = webcam.main(["--source", str(ROOT / "demo" / "demo.mp4"), "--no-display", "--quiet", "--max-frames", "25",
                      "--alerts", "--set", f"alerts.snapshots_dir={tmp_path / 'taken' / 'snaps'}"])
    captured = capsys.readouterr()
    assert rc == 2 and "alerts.snapshots_dir: cannot create the folder" in captured.err
    assert "Traceback" not in captured.err and "fired" not in captured.out


@pytest.mark.slow
def test_demo_fires_once_per_unmasked_person(tmp_path: Path):
    hook_log = tmp_path / "hook.jsonl"
    with _http_server() as (url, received):
        proc = subprocess.run(
            [sys.executable, "-m", "detector.webcam", "--demo", "--alerts", "--set", f"paths.runs_dir={tmp_path}",
             "--set", "alerts.no_mask_s=1.0",
             "--set", f"alerts.receivers=[{json.dumps(url)}, {json.dumps(f'exec:cat >> {hook_log}')}]"],
            cwd=ROOT, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in (tmp_path / "demo" / "log.jsonl").read_text().splitlines()]
    events = [e for r in records for e in r.get("alerts", [])]
    demo = json.loads((ROOT / "demo" / "demo.json").read_text())
    cols, rows = demo["mosaic_cols_rows"]
    width, height = demo["size_wh"]
    unmasked = {i for i, tile in enumerate(demo["tiles"]) if not tile["masked"]}

    def tile_of(box: list[int]) -> int:
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        return int(cy // (height / rows)) * cols + int(cx // (width / cols))

    assert sorted(tile_of(e["box"]) for e in events) == sorted(unmasked), events  # once per unmasked person
    for e in events:
        assert e["time_s"] - e["since_s"] >= 1.0
        assert cv2.imread(e["snapshot_frame"]) is not None and cv2.imread(e["snapshot_face"]) is not None
        assert Path(e["snapshot_frame"]).parent == tmp_path / "demo" / "snapshots"
    assert [body for _, body in received] == events
    assert [json.loads(line) for line in hook_log.read_text().splitlines()] == events
    assert f"alerts: {len(events)} fired" in proc.stdout


def test_video_detected_every_frame_still_fires_and_images_say_no_alert_can_fire(tmp_path: Path, capsys):
    demo = str(ROOT / "demo" / "demo.mp4")
    common = ["--no-display", "--quiet", "--alerts", "--set", "alerts.no_mask_s=1", "--set", "alerts.snapshots=false"]
    assert webcam.main(["--source", demo, "--max-frames", "25", "--set", "tracking.detect_every=1", *common]) == 0
    out = capsys.readouterr().out
    assert "no alert can fire" not in out and "alerts: 2 fired" in out, out
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((64, 64, 3), np.uint8))
    assert webcam.main(["--source", str(tmp_path / "a.png"), *common]) == 0
    assert "alerts: no alert can fire: they need track ids (a video, camera or stream source, not images)" in (
        capsys.readouterr().out)
