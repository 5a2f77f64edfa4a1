"""``python -m evaluation.soak --source demo/demo.mp4 --minutes 60 --every-s 30 --out runs/soak``: run the detector
on a looping source for a given time and sample its memory (RSS), threads, open files and frame rate.

A video file is served in a loop at its own frame rate as a local MJPEG stream on 127.0.0.1
(``evaluation.stream_server``), so the detector runs its live-stream path (reader thread, reconnects) for as long as
asked; a URL is used as it is. The detector is ``python -m detector.webcam --no-display`` in a subprocess (extra
arguments after ``--``); frames are counted from its JSONL log. Writes ``soak.json`` (every sample, the command and
a summary: RSS growth after warm-up, thread and open-file ranges, frame rate) and ``soak.png`` in ``--out``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2

from evaluation.stream_server import MjpegServer, jpeg_frames
from maskwatch.cli import Parser, run
from maskwatch.config import PROJECT_ROOT
from maskwatch.errors import UserError
from maskwatch.files import write_json_atomic

WARMUP_S = 60.0  # RSS growth is measured from the first sample after this (models loaded, buffers filled)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m evaluation.soak", description=__doc__,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default="demo/demo.mp4", help="video file (looped over local HTTP) or a URL")
    parser.add_argument("--minutes", type=float, default=10.0, help="how long the detector runs")
    parser.add_argument("--every-s", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--out", default="runs/soak", help="folder for soak.json, soak.png and the detector's log")
    parser.add_argument("detector_args", nargs="*", help="after --: extra arguments for python -m detector.webcam")
    return parser


def proc_sample(pid: int) -> dict[str, float]:
    """RSS (MB), threads and open file descriptors of process ``pid`` (Linux /proc)."""
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {
        "rss_mb": round(int(fields["VmRSS"].split()[0]) / 1024, 2),
        "threads": int(fields["Threads"]),
        "open_files": len(os.listdir(f"/proc/{pid}/fd")),
    }


def summarize(samples: list[dict[str, Any]], warmup_s: float = WARMUP_S) -> dict[str, Any]:
    """RSS growth from the first sample at or after ``warmup_s`` (else the first) to the last; ranges; frame rate."""
    if not samples:
        return {}
    warm = next((s for s in samples if s["t_s"] >= warmup_s), samples[0])
    last = samples[-1]
    fps = [s["fps"] for s in samples if s["fps"] is not None]
    return {
        "rss_warm_mb": warm["rss_mb"], "rss_last_mb": last["rss_mb"], "rss_max_mb": max(s["rss_mb"] for s in samples),
        "rss_growth_pct": round(100 * (last["rss_mb"] - warm["rss_mb"]) / warm["rss_mb"], 2),
        "warm_t_s": warm["t_s"],
        "threads_min_max": [min(s["threads"] for s in samples), max(s["threads"] for s in samples)],
        "open_files_min_max": [min(s["open_files"] for s in samples), max(s["open_files"] for s in samples)],
        "frames": last["frames"],
        "fps_mean": round(sum(fps) / len(fps), 2) if fps else None,
        "ms_per_frame_mean": round(1000 * len(fps) / sum(fps), 1) if fps and sum(fps) else None,
    }


def plot(samples: list[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [s["t_s"] / 60 for s in samples]
    fig, axes = plt.subplots(4, 1, figsize=(8, 9), sharex=True)
    for ax, key, label in zip(axes, ("rss_mb", "threads", "open_files", "fps"),
                              ("RSS (MB)", "threads", "open files", "frames/s"), strict=True):
        ax.plot(t, [s[key] if s[key] is not None else float("nan") for s in samples], marker=".")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_title(title)
    axes[-1].set_xlabel("minutes")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def soak(source: str, minutes: float, every_s: float, out: Path, detector_args: Sequence[str] = ()) -> dict[str, Any]:
    """Run the detector for ``minutes`` on ``source`` (looped), sampling every ``every_s`` seconds."""
    if not sys.platform.startswith("linux"):
        raise UserError("the soak reads /proc: Linux only")
    if minutes <= 0 or every_s <= 0:
        raise UserError("--minutes and --every-s must be positive")
    out.mkdir(parents=True, exist_ok=True)
    log = out / "log.jsonl"
    with contextlib.ExitStack() as stack:
        url = source
        if "://" not in source:
            video = Path(source)
            if not video.is_file():
                raise UserError(f"source not found: {source}")
            fps = cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FPS) or 15.0
            url = stack.enter_context(MjpegServer(jpeg_frames(video), fps=fps)).url
        command = [sys.executable, "-m", "detector.webcam", "--source", url, "--no-display", "--log", str(log),
                   "--overwrite", *detector_args]
        proc = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True)
        samples: list[dict[str, Any]] = []
        t0 = time.monotonic()
        frames_before, t_before = 0, t0
        try:
            while time.monotonic() - t0 < minutes * 60 and proc.poll() is None:
                time.sleep(min(every_s, max(0.0, minutes * 60 - (time.monotonic() - t0))))
                if proc.poll() is not None:
                    break
                now = time.monotonic()
                frames = _count_lines(log)
                fps = (frames - frames_before) / (now - t_before) if frames_before or frames else None
                samples.append({"t_s": round(now - t0, 1), **proc_sample(proc.pid), "frames": frames,
                                "fps": round(fps, 2) if fps is not None else None})
                frames_before, t_before = frames, now
                print(json.dumps(samples[-1]), flush=True)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)  # the detector closes its outputs cleanly
            _, err = proc.communicate(timeout=60)
    if proc.returncode not in (0, 130) or not samples:
        raise UserError(f"the detector stopped early (exit {proc.returncode}): {err.strip().splitlines()[-1:]}")
    result = {"command": command, "source": source, "minutes": minutes, "every_s": every_s,
              "summary": summarize(samples), "samples": samples}
    write_json_atomic(out / "soak.json", result)
    if can_plot():
        plot(samples, out / "soak.png", f"soak: {source}, {minutes:g} min")
    return result


def can_plot() -> bool:
    """matplotlib is the train extra; without it soak.json is written and soak.png is not."""
    return importlib.util.find_spec("matplotlib") is not None


def _count_lines(path: Path) -> int:
    try:
        with path.open("rb") as f:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    except FileNotFoundError:
        return 0


def _main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result = soak(args.source, args.minutes, args.every_s, Path(args.out), args.detector_args)
    print(json.dumps(result["summary"]))
    png = f", {Path(args.out) / 'soak.png'}" if can_plot() else " (no soak.png: it needs matplotlib: the train extra)"
    print(f"soak: {Path(args.out) / 'soak.json'}{png}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
