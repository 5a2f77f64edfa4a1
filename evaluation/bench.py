"""``python -m evaluation.bench --source VIDEO``: how fast is the loop, and how much faster than the classic one?

Headless. Every measurement runs in its own fresh Python process, so memory, start-up time and threads are those of
that process alone (the parent never imports TensorFlow):

- ``loop``: the detector's ``run_loop`` on ``Pipeline.from_config`` as ``detector.webcam`` builds it on the video:
  FPS, ms per frame and per stage, faces per frame, peak RSS, launch-to-first-annotated-frame, whether TensorFlow
  got imported, tracking drift; ``loop_variants``: the same under each override set of ``LOOP_VARIANTS``;
- ``reference``: the classic tutorial loop (pyimagesearch ``detect_mask_video.py``: SSD, then ONE Keras
  ``model.predict`` per frame over all faces) on the same video; our FPS / its FPS is the speed-up.

Writes one JSON file (``runs/bench/bench-<UTC time>.json`` unless ``--out``) and prints a table.
docs/PERFORMANCE.md explains every field.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from maskwatch.cli import add_config_args, config_from_args, run
from maskwatch.config import PROJECT_ROOT, Config, load_config
from maskwatch.errors import UserError
from maskwatch.files import write_json_atomic

DEFAULT_SOURCES = ("demo/crowd.mp4", "demo/demo.mp4")
FORMAT_VERSION = 2
LOOP_VARIANTS = {  # our loop again with these overrides (when they change the config): where the speed comes from
    "every_frame": ("face detector + classifier on every frame", ["tracking.detect_every=1"]),
    "relabel_always": ("every face classified at every key frame", ["tracking.relabel_every=1"]),
}
CLASSIC_WIDTH_PX = 400  # imutils.resize(frame, width=400) before detection
CLASSIC_INPUT_PX = 224
TARGETS = {
    "speedup_vs_reference_min": 5.0,
    "peak_rss_mb_max": 350.0,
    "first_frame_s_max": 1.5,
}
_VERSION_PACKAGES = (
    "numpy", "opencv-python", "ai-edge-litert", "tensorflow-cpu", "tensorflow", "keras", "imutils",
)


# ---------------------------------------------------------------- statistics and machine (pure, no heavy imports)


def summarize_ms(samples_s: Sequence[float]) -> dict[str, float | int | None]:
    """Median, 90th percentile and mean in milliseconds of durations given in seconds (``None`` if empty)."""
    if not samples_s:
        return {"n": 0, "median_ms": None, "p90_ms": None, "mean_ms": None}
    ms = sorted(1000.0 * s for s in samples_s)
    p90_index = min(len(ms) - 1, max(0, round(0.9 * len(ms)) - 1))
    return {
        "n": len(ms),
        "median_ms": round(statistics.median(ms), 3),
        "p90_ms": round(ms[p90_index], 3),
        "mean_ms": round(statistics.fmean(ms), 3),
    }


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else ``platform.processor()``)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """CPU, cores, load, OS, Python and library versions (versions from package metadata: nothing imported)."""
    versions = {"python": platform.python_version()}
    for name in _VERSION_PACKAGES:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[name] = importlib.metadata.version(name)
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu_model": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "usable_cores": usable,
        "load_avg_1_5_15": [round(v, 2) for v in os.getloadavg()],
        "os": platform.platform(),
        "versions": versions,
    }


def speedup(ours_fps: float | None, reference_fps: float | None) -> float | None:
    """Our FPS over the reference FPS, or ``None`` when either is missing or zero."""
    if not ours_fps or not reference_fps:
        return None
    return round(ours_fps / reference_fps, 2)


def check_targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of the issue with the measured value and whether it is met (``None`` = not measured)."""
    loop = result.get("loop") or {}
    rows = [
        ("speedup vs reference loop", result.get("speedup"), ">=", TARGETS["speedup_vs_reference_min"]),
        ("detector peak RSS MB", loop.get("peak_rss_mb"), "<=", TARGETS["peak_rss_mb_max"]),
        ("launch to first annotated frame s", loop.get("first_frame_s"), "<=", TARGETS["first_frame_s_max"]),
    ]
    out = []
    for name, value, op, limit in rows:
        met = None if value is None else (value >= limit if op == ">=" else value <= limit)
        out.append({"target": name, "value": value, "op": op, "limit": limit, "met": met})
    out.append({"target": "TensorFlow not imported by the detector loop",
                "value": loop.get("tensorflow_imported"), "op": "==", "limit": False,
                "met": None if not loop else loop.get("tensorflow_imported") is False})
    return out


# ---------------------------------------------------------------- workers (each runs in a fresh process)


def _frame_source(source: str) -> Iterable[Any]:
    from detector.sources import video_frames

    return video_frames(Path(source))


def _timed_frames(frames: Iterable[Any]) -> Iterable[tuple[Any, float]]:
    """Each frame with the seconds its read (decode) took."""
    iterator = iter(frames)
    while True:
        t0 = time.perf_counter()
        frame = next(iterator, None)
        if frame is None:
            return
        yield frame, time.perf_counter() - t0


class FrameRecorder:
    """Per-frame samples: seconds per stage, faces, and the clock when each frame was finished."""

    def __init__(self, stages: Sequence[str]) -> None:
        self.stages: dict[str, list[float]] = {name: [] for name in stages}
        self.faces: list[int] = []
        self.done_s: list[float] = []  # time.perf_counter() at the end of each frame
        self.first_frame_time: float | None = None  # time.time() when the first annotated frame was done

    def add(self, stage_s: dict[str, float], n_faces: int) -> None:
        if self.first_frame_time is None:
            self.first_frame_time = time.time()
        self.done_s.append(time.perf_counter())
        for name, values in self.stages.items():
            values.append(stage_s.get(name, 0.0))
        self.faces.append(n_faces)

    def report(self, launch_time: float, warmup: int) -> dict[str, Any]:
        """FPS over the frames after ``warmup`` (frame-finish to frame-finish), per-stage and per-frame ms."""
        import resource

        n = len(self.faces)
        warm = min(warmup, max(n - 1, 0))
        totals = [sum(values[i] for values in self.stages.values()) for i in range(n)]
        span_s = self.done_s[-1] - self.done_s[warm] if n > warm + 1 else 0.0
        return {
            "frames": n,
            "frames_measured": n - warm - 1 if span_s > 0 else 0,
            "warmup_frames": warm,
            "fps": round((n - warm - 1) / span_s, 2) if span_s > 0 else None,
            "ms_per_frame": summarize_ms(totals[warm + 1:]),
            "stages": {name: summarize_ms(values[warm + 1:]) for name, values in self.stages.items()},
            "faces_per_frame": {
                "mean": round(statistics.fmean(self.faces), 2) if self.faces else None,
                "min": min(self.faces, default=None),
                "max": max(self.faces, default=None),
            },
            "first_frame_s": None if self.first_frame_time is None else round(self.first_frame_time - launch_time, 3),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "tensorflow_imported": "tensorflow" in sys.modules,
        }


def worker_loop(spec: dict[str, Any]) -> dict[str, Any]:
    """Our loop: the detector's own ``run_loop`` on ``Pipeline.from_config`` as the detector builds it for a video,
    headless, no output file; a ``RunStats`` subclass records every frame."""
    from detector.draw import DrawStyle
    from detector.loop import Outputs, run_loop
    from detector.pipeline import Pipeline
    from detector.stats import STAGES, RunStats

    recorder = FrameRecorder(STAGES)

    class RecordingStats(RunStats):
        def add_frame(self, n_mask: int, n_no_mask: int, stage_s: dict[str, float], n_unknown: int = 0) -> None:
            super().add_frame(n_mask, n_no_mask, stage_s, n_unknown)
            recorder.add(stage_s, n_mask + n_no_mask + n_unknown)

    cfg = load_config(spec["config"], spec["overrides"])
    pipeline = Pipeline.from_config(cfg, video=True)
    stats = RecordingStats(source=spec["source"], fps_window=cfg.draw.fps_window)
    run_loop(_frame_source(spec["source"]), pipeline, style=DrawStyle.from_config(cfg.draw), outputs=Outputs(),
             stats=stats, max_frames=spec["frames"] or None)
    report = recorder.report(spec["launch_time"], spec["warmup"])
    report["tracking"] = pipeline.quality()
    report["settings"] = {
        **dataclasses.asdict(cfg.tracking),
        "face_detector": cfg.face_detector.model,
        "opencv_threads": cfg.face_detector.opencv_threads,
        "classifier_threads": cfg.classifier.threads,
        "classifier_backend": cfg.classifier.backend,
        "model": str(cfg.classifier_stem()),
    }
    return report


def _keras_model(cfg: Config) -> tuple[Any, str]:
    """The project's trained ``<stem>.keras`` if present, else the same architecture with random weights."""
    import keras

    from maskwatch.card import stem_file

    path = stem_file(cfg.classifier_stem(), "keras")
    if path.is_file():
        return keras.models.load_model(path, compile=False), str(path)
    from train.model import build_classifier

    return build_classifier(CLASSIC_INPUT_PX, None), "MobileNetV2 (weights=None) + head, rebuilt (same cost)"


def worker_reference(spec: dict[str, Any]) -> dict[str, Any]:
    """The classic loop of the tutorials: resize to 400 px wide, SSD, per face BGR->RGB, 224, array, then ONE
    ``model.predict(faces, batch_size=32)`` per frame, draw. TensorFlow's threads are left at its defaults.

    The SSD threshold is ours (``face_detector.min_confidence``, the tutorial's is 0.5), so both loops classify
    about the same faces and the speed-up is not inflated by extra faces."""
    import cv2
    import imutils
    import keras
    import numpy as np

    from models.assets import resolve

    cfg = load_config(spec["config"], spec["overrides"])
    net = cv2.dnn.readNetFromCaffe(str(resolve("prototxt", cfg)), str(resolve("caffemodel", cfg)))
    model, model_name = _keras_model(cfg)
    size = tuple(model.input_shape[1:3])[::-1]
    recorder = FrameRecorder(("read", "detect", "classify", "draw"))
    for frame, read_s in _timed_frames(_frame_source(spec["source"])):
        t0 = time.perf_counter()
        image = imutils.resize(frame.image_bgr, width=CLASSIC_WIDTH_PX)
        h, w = image.shape[:2]
        net.setInput(cv2.dnn.blobFromImage(image, 1.0, (300, 300), (104.0, 177.0, 123.0)))
        detections = net.forward()
        t1 = time.perf_counter()
        faces, boxes = [], []
        for i in range(detections.shape[2]):
            if detections[0, 0, i, 2] < cfg.face_detector.min_confidence:
                continue
            x1, y1, x2, y2 = (detections[0, 0, i, 3:7] * np.array([w, h, w, h])).astype("int")
            x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w - 1, x2), min(h - 1, y2)
            crop = image[y1:y2, x1:x2]
            if crop.size == 0:
                continue
            crop = cv2.resize(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB), size)
            # preprocess_input is the model's first layer (Rescaling), so the array stays raw 0-255 here
            faces.append(keras.utils.img_to_array(crop))
            boxes.append((x1, y1, x2, y2))
        preds = model.predict(np.array(faces, dtype="float32"), batch_size=32, verbose=0) if faces else []
        t2 = time.perf_counter()
        for (x1, y1, x2, y2), pred in zip(boxes, preds, strict=True):
            mask = float(pred[0]) >= 0.5
            color = (0, 255, 0) if mask else (0, 0, 255)
            label = f"{'Mask' if mask else 'No Mask'}: {100 * max(float(pred[0]), 1 - float(pred[0])):.2f}%"
            cv2.putText(image, label, (x1, y1 - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.45, color, 2)
            cv2.rectangle(image, (x1, y1), (x2, y2), color, 2)
        t3 = time.perf_counter()
        recorder.add({"read": read_s, "detect": t1 - t0, "classify": t2 - t1, "draw": t3 - t2}, len(faces))
        if spec["frames"] and len(recorder.faces) >= spec["frames"]:
            break
    report = recorder.report(spec["launch_time"], spec["warmup"])
    report["settings"] = {"model": model_name, "frame_width_px": CLASSIC_WIDTH_PX,
                          "min_confidence": cfg.face_detector.min_confidence,
                          "tensorflow_threads": "default (all cores)"}
    return report


WORKERS = {
    "loop": worker_loop,
    "reference": worker_reference,
}


# ---------------------------------------------------------------- the parent: run workers, collect, report


def run_detector_cli(source: Path, config: str | None, overrides: Sequence[str]) -> dict[str, Any]:
    """The real CLI, ``python -m detector.webcam --source VIDEO --no-display --max-frames 1``: wall seconds from
    launch to exit (an upper bound of launch-to-first-annotated-frame) and its peak RSS (``wait4``)."""
    cmd = [sys.executable, "-m", "detector.webcam", "--source", str(source), "--no-display", "--max-frames", "1"]
    cmd += ["--config", config] if config else []
    for item in overrides:
        cmd += ["--set", item]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": _pythonpath()}
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall_s = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            lines = err.read().decode(errors="replace").strip().splitlines()
            raise UserError(f"python -m detector.webcam failed: {lines[-1] if lines else proc.returncode}")
    return {"command": " ".join(["python", *cmd[1:]]), "wall_s_one_frame": round(wall_s, 3),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}


def run_worker(kind: str, spec: dict[str, Any], *, timeout_s: float = 1800.0) -> dict[str, Any]:
    """Run one worker in a fresh interpreter and return its JSON result; a failure is a one-line ``UserError``."""
    with tempfile.TemporaryDirectory(prefix="maskwatch-bench-") as tmp:
        spec_path, result_path = Path(tmp) / "spec.json", Path(tmp) / "result.json"
        cmd = [sys.executable, "-m", "evaluation.bench", "--worker", kind, "--spec", str(spec_path),
               "--result", str(result_path)]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": _pythonpath()}
        spec_path.write_text(json.dumps({**spec, "launch_time": time.time()}))  # the clock starts here
        try:
            proc = subprocess.run(cmd, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise UserError(f"benchmark step {kind!r} took longer than {timeout_s:g} s") from None
        if proc.returncode != 0 or not result_path.is_file():
            lines = [ln for ln in (proc.stderr or "").strip().splitlines() if ln.strip()]
            last = lines[-1].removeprefix("error: ") if lines else f"exit code {proc.returncode}"
            raise UserError(f"benchmark step {kind!r} failed: {last}")
        return json.loads(result_path.read_text())


def _pythonpath() -> str:
    current = os.environ.get("PYTHONPATH", "")
    return str(PROJECT_ROOT) + (os.pathsep + current if current else "")


def default_source(cfg: Config) -> Path:
    for name in DEFAULT_SOURCES:
        path = cfg.resolve_path(name)
        if path.is_file():
            return path
    raise UserError(f"no demo video ({' or '.join(DEFAULT_SOURCES)}): pass --source VIDEO (any video with faces)")


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def benchmark(args: argparse.Namespace, cfg: Config) -> dict[str, Any]:
    """All steps; loop and reference alternate ``--rounds`` times so both see the same machine load."""
    source = Path(args.source).expanduser().resolve() if args.source else default_source(cfg)
    if not source.is_file():
        raise UserError(f"source not found: {source} (the benchmark needs a video file)")
    base = {"config": args.config, "overrides": list(args.overrides), "source": str(source),
            "warmup": args.warmup}
    result: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "created_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": "python -m evaluation.bench " + " ".join(sys.argv[1:] if args.argv is None else args.argv),
        "source": str(source),
        "machine": machine_info(),
        "targets_spec": TARGETS,
    }
    variants = loop_variants(cfg, args.config, args.overrides)
    loops: list[dict[str, Any]] = []
    others: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    refs: list[dict[str, Any]] = []
    for r in range(args.rounds):
        _say(f"round {r + 1}/{args.rounds}: our loop ({args.frames or 'all'} frames)")
        loops.append(run_worker("loop", {**base, "frames": args.frames}))
        for name, (label, overrides) in variants.items():
            _say(f"round {r + 1}/{args.rounds}: our loop, {label}")
            spec = {**base, "frames": args.frames, "overrides": [*base["overrides"], *overrides]}
            others[name].append(run_worker("loop", spec))
        if not args.no_reference:
            _say(f"round {r + 1}/{args.rounds}: classic reference loop ({args.reference_frames} frames)")
            refs.append(run_worker("reference", {**base, "frames": args.reference_frames}))
    result["loop"] = _median_round(loops)
    result["reference"] = _median_round(refs) if refs else None
    result["speedup"] = round_speedup(loops, refs)
    result["loop_variants"] = {
        name: {"label": label, "overrides": overrides, "speedup": round_speedup(others[name], refs),
               **_median_round(others[name])}
        for name, (label, overrides) in variants.items()
    }
    result["rounds"] = {
        "loop_fps": [x["fps"] for x in loops],
        "reference_fps": [x["fps"] for x in refs],
        "speedup": [speedup(a["fps"], b["fps"]) for a, b in zip(loops, refs, strict=False)],
        **{f"{name}_fps": [x["fps"] for x in runs] for name, runs in others.items()},
    }
    _say("the detector CLI on one frame")
    result["detector_cli"] = run_detector_cli(source, args.config, args.overrides)
    result["machine"]["load_avg_1_5_15_after"] = [round(v, 2) for v in os.getloadavg()]
    result["targets"] = check_targets(result)
    return result


def round_speedup(ours: list[dict[str, Any]], references: list[dict[str, Any]]) -> float | None:
    """Median over rounds of our FPS / the reference's FPS in the same round (same machine load)."""
    ratios = [r for r in (speedup(a["fps"], b["fps"]) for a, b in zip(ours, references, strict=False)) if r]
    return round(statistics.median(ratios), 2) if ratios else None


def loop_variants(cfg: Config, config: str | None, overrides: Sequence[str]) -> dict[str, tuple[str, list[str]]]:
    """The ``LOOP_VARIANTS`` that change this config (a variant whose keys this config lacks is left out)."""
    chosen = {}
    for name, (label, extra) in LOOP_VARIANTS.items():
        try:
            changed = load_config(config, [*overrides, *extra]) != cfg
        except UserError:
            continue
        if changed:
            chosen[name] = (label, list(extra))
    return chosen


def _median_round(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The round with the median FPS (a real run, not a blend of runs)."""
    ranked = sorted(rounds, key=lambda x: x["fps"] or 0.0)
    return ranked[(len(ranked) - 1) // 2]


# ---------------------------------------------------------------- the table


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _loop_lines(name: str, res: dict[str, Any] | None) -> list[str]:
    if not res:
        return [f"{name:<10} (not run)"]
    f, st = res["ms_per_frame"], res["stages"]
    stage_text = "  ".join(f"{k} {_fmt(v['mean_ms'])}" for k, v in st.items())
    return [
        f"{name:<10} {_fmt(res['fps']):>6} fps   ms/frame mean {_fmt(f['mean_ms'])} median {_fmt(f['median_ms'])} "
        f"p90 {_fmt(f['p90_ms'])}   "
        f"faces/frame {_fmt(res['faces_per_frame']['mean'], 2)}",
        f"{'':<10} stages, mean ms: {stage_text}",
        f"{'':<10} peak RSS {_fmt(res['peak_rss_mb'])} MB, first annotated frame {_fmt(res['first_frame_s'], 2)} s "
        f"after launch, TensorFlow imported: {res['tensorflow_imported']}",
    ]


def format_table(result: dict[str, Any]) -> str:
    """The human-readable summary printed at the end."""
    m = result["machine"]
    lines = [f"machine: {m['cpu_model']}, {m['cpu_cores']} cores, load {m['load_avg_1_5_15']} -> "
             f"{m.get('load_avg_1_5_15_after')}", f"source: {result['source']}", ""]
    every = result["loop"]["settings"]["detect_every"]
    lines += _loop_lines("ours", result["loop"])
    if result["loop"].get("tracking"):
        t = result["loop"]["tracking"]
        lines.append(f"{'':<10} face detector + classifier every {every} frames; tracked boxes vs fresh detections: "
                     f"mean IoU {_fmt(t['drift_mean_iou'], 3)}, min {_fmt(t['drift_min_iou'], 3)}, unmatched "
                     f"{t['drift_unmatched']}")
    for name, variant in (result.get("loop_variants") or {}).items():
        lines += _loop_lines(name, variant)
        lines.append(f"{'':<10} = {variant['label']}; speed-up {_fmt(variant['speedup'], 2)}x")
    lines += _loop_lines("reference", result["reference"])
    cli = result.get("detector_cli") or {}
    lines.append(f"{'cli':<10} {cli.get('command')}: {_fmt(cli.get('wall_s_one_frame'), 2)} s launch to exit, "
                 f"peak RSS {_fmt(cli.get('peak_rss_mb'))} MB")
    lines.append(f"speed-up: {_fmt(result['speedup'], 2)}x (per round: {result['rounds']['speedup']})")
    lines += ["", "targets:"]
    for t in result["targets"]:
        mark = {True: "met ", False: "MISS", None: "n/a "}[t["met"]]
        lines.append(f"  [{mark}] {t['target']}: {t['value']} (target {t['op']} {t['limit']})")
    return "\n".join(lines)


# ---------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m evaluation.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", help=f"video file with faces (default: {' or '.join(DEFAULT_SOURCES)})")
    parser.add_argument("--frames", type=int, default=300, help="frames of our loop per run (0 = all; default 300)")
    parser.add_argument("--reference-frames", type=int, default=60,
                        help="frames of the classic reference loop per run (default 60)")
    parser.add_argument("--warmup", type=int, default=5, help="first frames left out of the FPS (default 5)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="alternate our loop and the reference this many times; the median is kept")
    parser.add_argument("--no-reference", action="store_true",
                        help="skip the classic reference loop (it needs TensorFlow)")
    parser.add_argument("--out", help="JSON path (default: <runs_dir>/bench/bench-<UTC time>.json)")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    add_config_args(parser)
    return parser


def _check_args(args: argparse.Namespace) -> None:
    for name in ("frames", "reference_frames", "warmup"):
        if getattr(args, name) < 0:
            raise UserError(f"--{name.replace('_', '-')} must be >= 0")
    if args.rounds < 1:
        raise UserError("--rounds must be >= 1")
    for name in ("frames", "reference_frames"):
        value = getattr(args, name)
        if value and value <= args.warmup:
            raise UserError(f"--{name.replace('_', '-')} ({value}) must be larger than --warmup ({args.warmup})")


def _main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = argv
    if args.worker:
        spec = json.loads(Path(args.spec).read_text())
        write_json_atomic(args.result, WORKERS[args.worker](spec))
        return 0
    _check_args(args)
    cfg = config_from_args(args)
    result = benchmark(args, cfg)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    out = Path(args.out) if args.out else cfg.output_path(cfg.paths.runs_dir) / "bench" / f"bench-{stamp}.json"
    write_json_atomic(out, result)
    print(format_table(result))
    print(f"\nwrote {out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
