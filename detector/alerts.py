"""Alerts: a person (track) ``no_mask`` for ``alerts.no_mask_s`` seconds fires one event, then none for that
person within ``alerts.cooldown_s``; each event saves snapshots and goes to the configured receivers.

``AlertRules`` is the pure, clock-driven rule (frame time in, triggers out). ``Alerts`` is what the loop calls
once per frame: ``update(frame, faces, annotated_bgr) -> [event dict]``; it saves the snapshots (from the annotated
frame the sinks get, so whatever the drawing hides is hidden in them too) and hands each event to the receivers
(``detector.alert_actions``), each on its own worker thread, so a slow or dead receiver never stalls the loop.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import cv2
import numpy as np

from detector.alert_actions import QUEUE_SIZE, RECEIVER_TIMEOUT_S, Receiver, Worker, build_receivers
from detector.sinks import frame_fields, round_prob
from maskwatch.faces import NO_MASK, NO_TRACK, UNKNOWN, Faces, grow_boxes
from maskwatch.files import write_bytes_atomic
from maskwatch.labels import INCORRECT, LABELS

if TYPE_CHECKING:
    from detector.sources import Frame
    from maskwatch.config import AlertsConfig

FACE_CROP_MARGIN = 0.25  # the face snapshot: the box grown by this share of its size on every side
JPEG_QUALITY = 90
CLOCK_EPS_S = 1e-6  # frame times are i / fps: 2.8 - 1.8 < 1.0 in floating point


@dataclass(frozen=True)
class Trigger:
    """A rule firing: ``faces[index]`` (person ``track_id``) has been in violation since ``since_s``; ``label``: its
    label code now (``NO_MASK``, or ``INCORRECT`` when a mask worn wrong counts)."""

    index: int
    track_id: int
    since_s: float
    label: int = NO_MASK


@dataclass
class _PersonState:
    last_seen_s: float
    no_mask_since_s: float | None = None
    last_alert_s: float | None = None


GAP_S = 1.0  # a person out of view longer than this starts the no_mask count over (tracker memory covers it)


class AlertRules:
    """Per-person ``no_mask since`` state driven by the frame clock (``time_s``, seconds, non-decreasing).

    A person's run starts at their first frame labelled one of ``violations`` (``no_mask``, and ``incorrect`` if a
    mask worn wrong counts) and ends when they have another label or are out of view longer than ``gap_s``;
    ``unknown`` frames neither start nor end a run. A run of ``no_mask_s`` fires once; the same person fires again
    only ``cooldown_s`` after their last alert, however often they left and came back in between (re-identified
    people keep their track id). Faces without a track id are ignored.
    """

    def __init__(self, no_mask_s: float, cooldown_s: float, gap_s: float = GAP_S,
                 violations: tuple[int, ...] = (NO_MASK,)) -> None:  # fmt: skip
        self.no_mask_s, self.cooldown_s, self.gap_s = no_mask_s, cooldown_s, gap_s
        self.violations = violations
        self._persons: dict[int, _PersonState] = {}

    def update(self, faces: Faces, time_s: float) -> list[Trigger]:
        triggers = []
        for index, (track_id, label) in enumerate(zip(faces.track_id.tolist(), faces.label.tolist(), strict=True)):
            if track_id == NO_TRACK:
                continue
            state = self._persons.get(track_id)
            if state is None:
                state = self._persons[track_id] = _PersonState(last_seen_s=time_s)
            elif time_s - state.last_seen_s > self.gap_s:
                state.no_mask_since_s = None  # out of view too long: the run starts over
            state.last_seen_s = time_s
            if label not in self.violations and label != UNKNOWN:
                state.no_mask_since_s = None
            elif label in self.violations and state.no_mask_since_s is None:
                state.no_mask_since_s = time_s
            if self._due(state, time_s):
                state.last_alert_s = time_s
                triggers.append(Trigger(index, track_id, state.no_mask_since_s, label))  # type: ignore[arg-type]
        self._forget(time_s)
        return triggers

    def _due(self, state: _PersonState, time_s: float) -> bool:
        if state.no_mask_since_s is None or time_s - state.no_mask_since_s < self.no_mask_s - CLOCK_EPS_S:
            return False
        return state.last_alert_s is None or time_s - state.last_alert_s >= self.cooldown_s - CLOCK_EPS_S

    def _forget(self, time_s: float) -> None:
        """Drop persons gone longer than the gap and the cooldown (they could neither continue a run nor be muted)."""
        keep_s = max(self.gap_s, self.cooldown_s)
        for track_id in [t for t, s in self._persons.items() if time_s - s.last_seen_s > keep_s]:
            del self._persons[track_id]

    def __len__(self) -> int:
        """Persons with state."""
        return len(self._persons)


class SnapshotWriter:
    """``<folder>/<source stem>_f<frame>_t<track>_frame.jpg`` and ``..._face.jpg``, written atomically."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def save(self, frame: Frame, track_id: int, box_xyxy: np.ndarray, image_bgr: np.ndarray) -> tuple[str, str]:
        stem = f"{Path(frame.source).stem or 'frame'}_f{frame.index:06d}_t{track_id}"
        height, width = image_bgr.shape[:2]
        x1, y1, x2, y2 = grow_boxes(box_xyxy, FACE_CROP_MARGIN, (width, height))[0].tolist()
        paths = []
        for kind, image in (("frame", image_bgr), ("face", image_bgr[y1:y2, x1:x2])):
            path = self.folder / f"{stem}_{kind}.jpg"
            ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]) if image.size else (0, 0)
            if not ok:
                raise OSError(f"cannot write snapshot {path}")
            write_bytes_atomic(path, jpeg.tobytes())  # not cv2.imwrite: it crashed on a folder name not UTF-8
            paths.append(str(path))
        return paths[0], paths[1]


class Alerts:
    """The loop's alerts: rules, snapshots, receivers on worker threads, and the on-screen banner text.

    A context manager: leaving it stops the workers (waiting up to ``close_timeout_s`` for queued events).
    """

    def __init__(self, rules: AlertRules, receivers: Sequence[Receiver] = (), *,
                 snapshots: SnapshotWriter | None = None, banner_s: float = 0.0, queue_size: int = QUEUE_SIZE,
                 close_timeout_s: float = RECEIVER_TIMEOUT_S) -> None:  # fmt: skip
        self.rules, self.snapshots, self.banner_s = rules, snapshots, banner_s
        self.workers = [Worker(r, queue_size) for r in receivers]
        self.close_timeout_s = close_timeout_s
        self.events: list[dict[str, Any]] = []
        self.snapshot_errors = 0
        self._alerted_s: dict[int, float] = {}  # track id -> time of its last alert (for the banner)

    @classmethod
    def from_config(cls, cfg: AlertsConfig, snapshots_dir: Path | None) -> Alerts:
        """Receivers from ``cfg`` (those not available are skipped with one line each); no snapshots if None."""
        violations = (NO_MASK, INCORRECT) if cfg.incorrect_is_violation else (NO_MASK,)
        return cls(AlertRules(cfg.no_mask_s, cfg.cooldown_s, violations=violations), build_receivers(cfg),
                   snapshots=SnapshotWriter(snapshots_dir) if snapshots_dir is not None else None,
                   banner_s=cfg.banner_s)  # fmt: skip

    def __enter__(self) -> Self:
        return self

    def update(self, frame: Frame, faces: Faces, annotated_bgr: np.ndarray) -> list[dict[str, Any]]:
        """This frame's alert events (usually none); each is saved, queued to every receiver and returned."""
        events = []
        for trig in self.rules.update(faces, frame.time_s):
            box = faces.xyxy[trig.index]
            snap_frame = snap_face = None
            if self.snapshots is not None:
                try:
                    snap_frame, snap_face = self.snapshots.save(frame, trig.track_id, box, annotated_bgr)
                except OSError as exc:
                    self.snapshot_errors += 1
                    if self.snapshot_errors == 1:
                        print(f"alerts: snapshot not saved ({exc}); the alerts go on", flush=True)
            event = {  # one alert, as sent to receivers and logged (format in docs/usage.md, "Alerts")
                "event": LABELS[trig.label], "track_id": trig.track_id, **frame_fields(frame),
                "since_s": round(float(trig.since_s), 4), "box": [int(v) for v in box],
                "prob_mask": round_prob(float(faces.prob_mask[trig.index])), "snapshot_frame": snap_frame,
                "snapshot_face": snap_face, "utc": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            }  # fmt: skip
            for worker in self.workers:
                worker.submit(event)
            self._alerted_s[trig.track_id] = frame.time_s
            events.append(event)
        self.events.extend(events)
        return events

    def banner(self, time_s: float) -> str | None:
        """The banner text at ``time_s``: the people alerted in the last ``banner_s`` seconds (None = no banner).
        The frame an alert fires on is already drawn: the banner starts on the next one."""
        self._alerted_s = {t: s for t, s in self._alerted_s.items() if time_s - s < self.banner_s}
        if not self._alerted_s:
            return None
        people = ", ".join(str(t) for t in sorted(self._alerted_s))
        return f"NO MASK: person{'s' if len(self._alerted_s) > 1 else ''} {people}"

    def summary_line(self) -> str:
        """``alerts: 2 fired; webhook: 2 sent, mqtt: 1 sent 1 failed`` (for the end of the run)."""
        parts = [w.status() for w in self.workers]
        return f"alerts: {len(self.events)} fired" + (f"; {', '.join(parts)}" if parts else "")

    def __exit__(self, *exc: object) -> None:
        for worker in self.workers:
            worker.stop()
        for worker in self.workers:
            worker.join(self.close_timeout_s)


def snapshot_folder(cfg: AlertsConfig, runs_dir: Path, *, log: str | None, output: str | None) -> Path | None:
    """Where snapshots go (None = off): ``alerts.snapshots_dir``, else ``snapshots/`` beside ``--log``, else
    beside ``--output``, else ``<runs_dir>/alerts-<UTC time>/snapshots``. Relative paths are under the current
    folder (``Config.output_path`` already applied to ``runs_dir``)."""
    if not cfg.snapshots:
        return None
    if cfg.snapshots_dir:
        return Path(cfg.snapshots_dir).expanduser()
    for beside in (log, output):
        if beside:
            return Path(beside).expanduser().parent / "snapshots"
    return runs_dir / f"alerts-{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}" / "snapshots"
