"""Run statistics: per-stage timings, smoothed FPS for the overlay, the people of the run, and the end-of-run
summary."""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from detector.people import People

STAGES = ("read", "detect", "classify", "draw", "write")
COUNTS = ("frames", "faces", "mask", "no_mask", "unknown", "incorrect")  # summed over the frames


@dataclass
class RunStats:
    """Counts and timings of one run; ``add_frame`` once per processed frame. ``people``: the persons by track id
(the loop updates it with each frame's faces)."""

    source: str = ""
    fps_window: int = 30  # frames the FPS overlay is smoothed over (not a setting)
    frames: int = 0
    faces: int = 0
    mask: int = 0
    no_mask: int = 0
    unknown: int = 0
    incorrect: int = 0
    skipped: list[str] = field(default_factory=list)  # the unreadable images skipped (FrameSource.skipped itself)
    frame_fps: list[float] = field(default_factory=list)
    stage_s: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    people: People = field(default_factory=People)
    _recent_s: deque[float] = field(init=False)  # seconds of the last fps_window frames

    def __post_init__(self) -> None:
        self._recent_s = deque(maxlen=self.fps_window)

    def add_frame(self, n_mask: int, n_no_mask: int, stage_s: dict[str, float], n_unknown: int = 0,
                  n_incorrect: int = 0) -> None:  # fmt: skip
        """Count one frame: its mask / no-mask / unknown / mask-worn-wrong faces and the seconds each stage took."""
        self.frames += 1
        self.faces += n_mask + n_no_mask + n_unknown + n_incorrect
        self.unknown += n_unknown
        self.incorrect += n_incorrect
        self.mask += n_mask
        self.no_mask += n_no_mask
        for stage in STAGES:
            self.stage_s[stage] += stage_s.get(stage, 0.0)
        total_s = sum(stage_s.get(stage, 0.0) for stage in STAGES)
        if total_s > 0:
            self.frame_fps.append(1.0 / total_s)
        self._recent_s.append(total_s)

    def smoothed_fps(self) -> float | None:
        """Frames per second over the last ``fps_window`` frames (``None`` before the first frame)."""
        total_s = sum(self._recent_s)
        return len(self._recent_s) / total_s if total_s > 0 else None

    def summary(self) -> dict[str, Any]:
        """Plain-JSON summary: face counts (per frame, summed; ``incorrect``: masks worn wrong), share without mask
        (of the labelled faces), FPS (mean = frames / processing
        seconds; median of the per-frame FPS), mean ms per stage, and the people (``People.summary``)."""
        n = max(self.frames, 1)
        total_s = sum(self.stage_s.values())
        labelled = self.mask + self.no_mask + self.incorrect
        return {
            "source": self.source,
            **{name: getattr(self, name) for name in COUNTS},
            "share_no_mask": round(self.no_mask / labelled, 4) if labelled else None,
            "fps_mean": round(self.frames / total_s, 2) if total_s > 0 else None,  # throughput
            "fps_median": round(statistics.median(self.frame_fps), 2) if self.frame_fps else None,
            "stage_ms": {stage: round(1000 * self.stage_s[stage] / n, 2) for stage in STAGES},
            "skipped_images": len(self.skipped),
            "people": self.people.summary(),
        }


def format_summary(summary: dict[str, Any]) -> str:
    """A few human-readable lines of ``RunStats.summary()``."""
    share = summary["share_no_mask"]
    unknown_text = _extra(summary)
    if share is not None:
        share_text = f"{100 * share:.1f}% without mask"
    else:  # every face seen unknown (e.g. a run of 1 key frame: a person's label needs 2 votes), or none seen
        share_text = "no face labelled yet" if summary["faces"] else "no face seen"
    fps = summary["fps_mean"]
    fps_text = f"{fps:.1f} FPS mean, {summary['fps_median']:.1f} median" if fps is not None else "no timing"
    stages = ", ".join(f"{k} {v:.1f}" for k, v in summary["stage_ms"].items())
    lines = [
        f"{_plural(summary['frames'], 'frame')}, {_plural(summary['faces'], 'face')}: {summary['mask']} mask, "
        f"{summary['no_mask']} no mask{unknown_text} ({share_text})",
        f"{fps_text}; ms per frame: {stages}",
    ]
    people = summary.get("people")
    if people and people["seen"]:
        by = people["seen_by_label"]
        lines.append(f"{people['seen']} {'person' if people['seen'] == 1 else 'people'} seen: {by['mask']} mask, "
                     f"{by['no_mask']} no mask{_extra(by)}")
    if summary.get("skipped_images"):
        lines.append(f"{_plural(summary['skipped_images'], 'unreadable image')} skipped")
    return "\n".join(lines)


def _extra(by_label: dict[str, Any]) -> str:
    """``, 1 mask worn wrong, 2 unknown``: the labels beside mask and no mask, those with a count only."""
    return "".join(f", {by_label[name]} {text}" for name, text in (("incorrect", "mask worn wrong"),
                                                                    ("unknown", "unknown")) if by_label.get(name))


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
