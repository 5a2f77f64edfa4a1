"""``python -m evaluation.recording_cost [VIDEO]``: ms per frame of the detector's video writer (PyAV, fragmented
MP4, ``detector.sinks.VideoSink``) against OpenCV's ``cv2.VideoWriter`` (mp4v, not readable when cut), measured side by
side, alternating, on the same frames (default demo/demo.mp4), with the file size of each.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from detector.sinks import VideoSink
from detector.sources import Frame
from maskwatch.cli import Parser, run
from maskwatch.errors import UserError


def _frames(video: Path) -> tuple[list[np.ndarray], float]:
    cap = cv2.VideoCapture(str(video))
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    frames = []
    while (got := cap.read())[0]:
        frames.append(got[1])
    cap.release()
    return frames, fps


def _opencv(frames: list[np.ndarray], fps: float, path: Path) -> float:
    h, w = frames[0].shape[:2]
    t0 = time.perf_counter()
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for image in frames:
        writer.write(image)
    writer.release()
    return (time.perf_counter() - t0) / len(frames) * 1000


def _pyav(frames: list[np.ndarray], fps: float, path: Path) -> float:
    t0 = time.perf_counter()
    with VideoSink(path) as sink:
        for i, image in enumerate(frames):
            sink.write(Frame(i, i / fps, image, "x", fps), image)
    return (time.perf_counter() - t0) / len(frames) * 1000


def _main(argv: Sequence[str] | None = None) -> int:
    parser = Parser(prog="python -m evaluation.recording_cost", description=__doc__)
    parser.add_argument("video", nargs="?", default="demo/demo.mp4")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    if args.repeats < 1:
        raise UserError(f"--repeats must be at least 1, got {args.repeats}")
    frames, fps = _frames(Path(args.video))
    if not frames:
        raise UserError(f"no frame could be read from {args.video} (missing, not a video, or damaged)")
    times: dict[str, list[float]] = {"opencv_mp4v": [], "pyav_fragmented_mp4": []}
    with tempfile.TemporaryDirectory() as tmp:
        paths = {"opencv_mp4v": Path(tmp) / "cv.mp4", "pyav_fragmented_mp4": Path(tmp) / "av.mp4"}
        for _ in range(args.repeats):
            times["opencv_mp4v"].append(_opencv(frames, fps, paths["opencv_mp4v"]))
            times["pyav_fragmented_mp4"].append(_pyav(frames, fps, paths["pyav_fragmented_mp4"]))
        h, w = frames[0].shape[:2]
        print(f"{len(frames)} frames {w}x{h} of {args.video}, median of {args.repeats}:")
        for name, ms in times.items():
            print(f"  {name}: {sorted(ms)[len(ms) // 2]:.2f} ms/frame, {paths[name].stat().st_size / 1e6:.2f} MB")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
