"""``python -m tools.time_centerface [--model EXTRA.onnx ...]``: CenterFace's runtimes side by side, in one run.

Times (median ms of ``--runs`` rounds, the variants alternating within each round, same input, same threads):
the network's forward at each ``--sizes`` (default 640x480 and 320x256) and the detector call as a whole
(``CenterFaceDetector(frame)``: resize, forward at each configured pass, decoding, NMS) on the first frame of
``--video`` (default demo/crowd.mp4). Variants: OpenCV DNN and ONNX Runtime on the configured file, and ONNX Runtime
on each ``--model`` (e.g. an int8 or fp16 CenterFace from tools/quantize_centerface.py). A tool, not runtime code.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # python tools/x.py from a checkout

from face_detector.centerface import CenterFaceDetector
from face_detector.dnn import set_opencv_threads
from maskwatch.cli import Parser, add_config_args, config_from_args, run
from maskwatch.config import PROJECT_ROOT
from maskwatch.errors import UserError


def _first_frame(video: Path) -> np.ndarray:
    capture = cv2.VideoCapture(str(video))
    ok, frame = capture.read()
    capture.release()
    if not ok:
        raise UserError(f"cannot read a frame from {video} (missing, or not a video)")
    return frame


def _sizes(text: str) -> list[tuple[int, int]]:
    """``640x480,320x256`` -> [(640, 480), (320, 256)]; ``UserError`` for anything else."""
    try:
        sizes = [tuple(int(v) for v in s.split("x")) for s in text.split(",")]
    except ValueError:
        sizes = []
    if not sizes or any(len(s) != 2 or min(s) < 1 for s in sizes):
        raise UserError(f"--sizes must be WxH sizes of at least 1x1, comma-separated (e.g. 640x480,320x256), "
                        f"got {text!r}")
    return sizes  # type: ignore[return-value]


def _ms(call) -> float:
    start = time.perf_counter()
    call()
    return (time.perf_counter() - start) * 1000


def main(argv: list[str] | None = None) -> int:
    return run(_main, argv)


def _main(argv: list[str] | None) -> int:
    parser = Parser(description=__doc__.splitlines()[0])
    add_config_args(parser)
    parser.add_argument("--model", action="append", default=[], type=Path, help="extra ONNX file (ONNX Runtime)")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--sizes", default="640x480,320x256", help="forward input sizes WxH, comma-separated")
    parser.add_argument("--video", type=Path, default=PROJECT_ROOT / "demo" / "crowd.mp4")
    args = parser.parse_args(argv)
    if args.runs < 1:
        raise UserError(f"--runs must be at least 1, got {args.runs}")
    sizes = _sizes(args.sizes)
    cfg = config_from_args(args)
    fd = cfg.face_detector
    set_opencv_threads(fd.threads)
    onnx = cfg.resolve_path(fd.onnx)
    kw = dict(long_sides_px=fd.long_sides_px, min_confidence=fd.min_confidence,
              min_size_px=fd.min_size_px, threads=fd.threads)  # fmt: skip
    variants = {"opencv": CenterFaceDetector(onnx, backend="opencv", **kw),
                "onnxruntime": CenterFaceDetector(onnx, backend="onnxruntime", **kw)}  # fmt: skip
    for extra in args.model:
        variants[f"onnxruntime {extra.name}"] = CenterFaceDetector(extra, backend="onnxruntime", **kw)
    frame = _first_frame(args.video)
    blobs = {s: cv2.dnn.blobFromImage(frame, 1.0, s, (0, 0, 0), swapRB=True) for s in sizes}
    times: dict[tuple[str, str], list[float]] = {}
    for detector in variants.values():  # warm-up: build every network and session
        for size in sizes:
            detector.network(blobs[size], size)
        detector(frame)
    for _ in range(args.runs):
        for name, detector in variants.items():
            for size in sizes:
                times.setdefault((name, "x".join(map(str, size))), []).append(
                    _ms(lambda d=detector, s=size: d.network(blobs[s], s)))
            times.setdefault((name, "detector call"), []).append(_ms(lambda d=detector: d(frame)))
    columns = [*("x".join(map(str, s)) for s in sizes), "detector call"]
    h, w = frame.shape[:2]
    print(f"CenterFace, median ms of {args.runs} alternating rounds; OpenCV and ONNX Runtime threads {fd.threads}; "
          f"detector call on {args.video.name} frame 0 ({w}x{h}), "
          f"passes {list(fd.long_sides_px)}")
    print("| variant | " + " | ".join(f"forward {c}" if c[0].isdigit() else c for c in columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for name in variants:
        cells = [f"{statistics.median(times[(name, c)]):.1f}" for c in columns]
        print(f"| {name} | " + " | ".join(cells) + " |")
    base = {c: statistics.median(times[("opencv", c)]) for c in columns}
    for name in list(variants)[1:]:
        ratios = ", ".join(f"{c} {base[c] / statistics.median(times[(name, c)]):.2f}x" for c in columns)
        print(f"{name} vs opencv (speed-up): {ratios}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
