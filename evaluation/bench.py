"""``python -m evaluation.bench --source VIDEO``: how fast is the loop, and how much faster than the classic one?

Headless. Every measurement runs in its own fresh Python process, so memory, start-up time and threads are those of
that process alone (the parent never imports TensorFlow):

- ``loop``: the detector's ``run_loop`` on ``Pipeline.from_config`` as ``detector.webcam`` builds it on the video:
  FPS, ms per frame and per stage, faces per frame, peak RSS, launch-to-first-annotated-frame, whether TensorFlow
  got imported, tracking drift; ``loop_variants``: the same under each override set of ``LOOP_VARIANTS``;
- ``reference``: the classic tutorial loop (pyimagesearch ``detect_mask_video.py``: SSD, then ONE Keras
  ``model.predict`` per frame over all faces) on the same video; our FPS / its FPS is the speed-up;
- ``paced``: the video read at its native frame rate like a camera (newest frame only), once with the in-order
  ``Pipeline`` and once with the live one (``detector.live``): frame time p50 / p95 / max, frames shown;
- ``models``: each model's FLOPs per call (counted from the ONNX graph and the TFLite model: 2 x the multiply-adds
  of every convolution and matrix product) and its ms per call on each backend, as GFLOP/s, next to ``matmul``:
  this machine's numpy float32 matrix-multiply rate with the same threads (the practical peak).

Loop runs alternate ``--rounds`` times (the median round is kept). Writes one JSON file
(``runs/bench/bench-<UTC time>.json`` unless ``--out``) and a PNG chart next to it, and prints a table.
docs/PERFORMANCE.md explains every field.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import importlib.metadata
import json
import math
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

from maskwatch.cli import Parser, add_config_args, config_from_args, run
from maskwatch.config import PROJECT_ROOT, Config, load_config
from maskwatch.errors import UserError
from maskwatch.files import write_json_atomic

DEFAULT_SOURCES = ("demo/crowd.mp4", "demo/demo.mp4")
FORMAT_VERSION = 3
LOOP_VARIANTS = {  # our loop again with these overrides; skipped with a note when the config lacks a key or the
    # overrides change nothing (the variant is then the default loop itself)
    "every_frame": ("face detector + classifier on every frame", ["tracking.detect_every=1"]),
    "relabel_always": ("every face classified at every key frame", ["tracking.relabel_every=1"]),
    "centerface_opencv": ("CenterFace on OpenCV DNN", ["face_detector.backend=opencv"]),
    "centerface_onnxruntime": ("CenterFace on ONNX Runtime", ["face_detector.backend=onnxruntime"]),
    "every_frame_opencv": ("every frame, CenterFace on OpenCV DNN",
                           ["tracking.detect_every=1", "face_detector.backend=opencv"]),
    "every_frame_onnxruntime": ("every frame, CenterFace on ONNX Runtime",
                                ["tracking.detect_every=1", "face_detector.backend=onnxruntime"]),
}
MATMUL_N = 2048  # float32 n x n @ n x n for the machine's practical peak
MODEL_TIMING_RUNS = 15
CLASSIC_WIDTH_PX = 400  # imutils.resize(frame, width=400) before detection
CLASSIC_INPUT_PX = 224
TARGETS = {
    "speedup_vs_reference_min": 10.0,
    "every_frame_speedup_min": 3.0,
    "live_p95_over_mean_max": 1.5,
    "peak_rss_mb_max": 300.0,
    "first_frame_s_max": 1.0,
}
_VERSION_PACKAGES = (
    "numpy", "opencv-python", "ai-edge-litert", "onnxruntime", "onnx", "tensorflow-cpu", "tensorflow", "keras",
    "imutils",
)


# ---------------------------------------------------------------- statistics and machine (pure, no heavy imports)


def summarize_ms(samples_s: Sequence[float]) -> dict[str, float | int | None]:
    """Median, 90th and 95th percentile (nearest rank), max and mean in milliseconds of durations given in seconds
    (``None`` if empty)."""
    if not samples_s:
        return {"n": 0, "median_ms": None, "p90_ms": None, "p95_ms": None, "max_ms": None, "mean_ms": None}
    ms = sorted(1000.0 * s for s in samples_s)

    def rank(q: float) -> float:
        return round(ms[min(len(ms) - 1, max(0, math.ceil(q * len(ms)) - 1))], 3)

    return {
        "n": len(ms),
        "median_ms": round(statistics.median(ms), 3),
        "p90_ms": rank(0.9),
        "p95_ms": rank(0.95),
        "max_ms": round(ms[-1], 3),
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
    every = (result.get("loop_variants") or {}).get("every_frame") or {}
    live = ((result.get("paced") or {}).get("live") or {}).get("frame_ms") or {}
    live_ratio = live["p95_ms"] / live["mean_ms"] if live.get("p95_ms") and live.get("mean_ms") else None
    rows = [
        ("default loop speed-up vs the classic loop", result.get("speedup"), ">=",
         TARGETS["speedup_vs_reference_min"]),
        ("every-frame detection speed-up vs the classic loop", every.get("speedup"), ">=",
         TARGETS["every_frame_speedup_min"]),
        ("live mode frame time p95 / mean", live_ratio, "<=", TARGETS["live_p95_over_mean_max"]),
        ("detector peak RSS MB", loop.get("peak_rss_mb"), "<=", TARGETS["peak_rss_mb_max"]),
        ("launch to first annotated frame s", loop.get("first_frame_s"), "<=", TARGETS["first_frame_s_max"]),
    ]
    out = []
    for name, value, op, limit in rows:
        met = None if value is None else (value >= limit if op == ">=" else value <= limit)
        shown = round(value, 3) if isinstance(value, float) else value  # compared unrounded, shown rounded
        out.append({"target": name, "value": shown, "op": op, "limit": limit, "met": met})
    out.append({"target": "TensorFlow not imported by the detector loop",
                "value": loop.get("tensorflow_imported"), "op": "==", "limit": False,
                "met": None if not loop else loop.get("tensorflow_imported") is False})
    return out


# ---------------------------------------------------------------- FLOPs (counted from the model files)


def _dims(value_info: Any) -> list[int]:
    return [d.dim_value for d in value_info.type.tensor_type.shape.dim]


def onnx_flops(model_path: str | Path, input_nchw: Sequence[int]) -> int:
    """FLOPs of one forward pass of an ONNX model with its (first) input set to ``input_nchw``: 2 x the
    multiply-adds of every Conv, ConvTranspose, Gemm and MatMul, shapes from ONNX shape inference (element-wise
    ops, activations and normalisation are left out: a few percent at most for a CNN)."""
    import onnx

    model = onnx.load(str(model_path))
    graph = model.graph
    weights = {init.name: list(init.dims) for init in graph.initializer}
    real_inputs = [i for i in graph.input if i.name not in weights]  # initializers listed as inputs dropped
    del graph.input[:]
    graph.input.extend(real_inputs)
    for dim, size in zip(graph.input[0].type.tensor_type.shape.dim, input_nchw, strict=True):
        dim.ClearField("dim_param")
        dim.dim_value = int(size)
    del graph.value_info[:]
    for out in graph.output:
        out.type.tensor_type.ClearField("shape")
    graph = onnx.shape_inference.infer_shapes(model, strict_mode=True).graph
    shapes = {v.name: _dims(v) for v in [*graph.value_info, *graph.input, *graph.output]} | weights
    macs = 0
    for node in graph.node:
        if node.op_type in ("Conv", "ConvTranspose"):
            w = shapes[node.input[1]]  # Conv (Cout, Cin/g, kh, kw); ConvTranspose (Cin, Cout/g, kh, kw)
            spatial = shapes[node.output[0] if node.op_type == "Conv" else node.input[0]]
            macs += math.prod(spatial[:1] + spatial[2:]) * math.prod(w)
        elif node.op_type in ("Gemm", "MatMul"):
            a, out = shapes[node.input[0]], shapes[node.output[0]]
            macs += math.prod(out) * a[-1]
    return 2 * macs


def tflite_flops(model_path: str | Path) -> int:
    """FLOPs of one call of a TFLite model at its stored input shape (batch 1): 2 x the multiply-adds of every
    CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED op, from the tensors' shapes."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(model_path))
    shapes = {t["index"]: [int(x) for x in t["shape"]] for t in interpreter.get_tensor_details()}
    macs = 0
    for op in interpreter._get_ops_details():  # the public API has no op list; this one is stable since TF 2.3
        name, inputs, outputs = op["op_name"], list(op["inputs"]), list(op["outputs"])
        if name == "CONV_2D":  # filter (Cout, kh, kw, Cin), output (N, Ho, Wo, Cout)
            macs += math.prod(shapes[outputs[0]]) * math.prod(shapes[inputs[1]][1:])
        elif name == "DEPTHWISE_CONV_2D":  # filter (1, kh, kw, C)
            macs += math.prod(shapes[outputs[0]]) * math.prod(shapes[inputs[1]][1:3])
        elif name == "FULLY_CONNECTED":  # weights (out, in)
            macs += math.prod(shapes[outputs[0]]) * shapes[inputs[1]][-1]
    return 2 * macs


def gflops_per_s(flops: int | None, ms: float | None) -> float | None:
    """Achieved GFLOP/s of ``flops`` done in ``ms`` milliseconds (``None`` if either is missing)."""
    if not flops or not ms:
        return None
    return round(flops / (ms / 1000) / 1e9, 2)


# ---------------------------------------------------------------- workers (each runs in a fresh process)


def _frame_source(source: str, frames: int = 0) -> Iterable[Any]:
    """The video's frames in order; with ``frames`` > 0, read again from its start (a cut, as in any edited video)
    until that many frames, so a short clip still gives a measurement of several seconds (0: the video once)."""
    import cv2

    from detector.sources import capture_frames

    index = 0
    while True:
        start = index
        for frame in capture_frames(cv2.VideoCapture(source), source, Path(source).name, first_index=index,
                                    expected=0):  # fmt: skip
            yield frame
            index += 1
            if index == frames:
                return
        if not frames or index == start:
            if index == 0:
                raise UserError(f"cannot read video {source}: no frame could be decoded")
            return


class PacedCapture:
    """A video file that delivers frame i at i / fps seconds after its first frame, like a camera or a stream."""

    def __init__(self, path: str, frames: int = 0) -> None:
        import cv2

        self._path, self._frames = path, frames
        self._cap = cv2.VideoCapture(path)
        self.fps = float(self._cap.get(cv2.CAP_PROP_FPS)) or 30.0
        self.delivered = 0
        self._start: float | None = None

    def read(self) -> tuple[bool, Any]:
        """The next frame at its time; the video starts again at its end until ``frames`` frames (0: once)."""
        import cv2

        if self._frames and self.delivered >= self._frames:
            return False, None
        ok, image = self._cap.read()
        if not ok and self._frames and self.delivered:
            self._cap.release()
            self._cap = cv2.VideoCapture(self._path)
            ok, image = self._cap.read()
        if self._start is None:
            self._start = time.monotonic()
        wait_s = self._start + self.delivered / self.fps - time.monotonic()
        if wait_s > 0:
            time.sleep(wait_s)
        self.delivered += int(ok)
        return ok, image

    def release(self) -> None:
        self._cap.release()


def paced_frames(source: str, capture: PacedCapture) -> Iterable[Any]:
    """The frames of ``capture`` as a camera gives them: read on a thread, only the newest frame each time
    (``detector.sources.LatestFrameReader``); the loop skips the frames it was too slow for."""
    from detector.sources import Frame, LatestFrameReader

    reader = LatestFrameReader(capture, name="paced-video")
    index, start = 0, time.monotonic()
    try:
        while (got := reader.read(10.0)) is not None:
            yield Frame(index, got[1] - start, got[0], source, capture.fps)
            index += 1
    finally:
        reader.close()


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
        work = [sum(v[i] for k, v in self.stages.items() if k != "read") for i in range(n)]
        span_s = self.done_s[-1] - self.done_s[warm] if n > warm + 1 else 0.0
        return {
            "frames": n,
            "frames_measured": n - warm - 1 if span_s > 0 else 0,
            "warmup_frames": warm,
            "fps": round((n - warm - 1) / span_s, 2) if span_s > 0 else None,
            "ms_per_frame": summarize_ms(totals[warm + 1:]),
            "frame_ms": summarize_ms(work[warm + 1:]),  # a frame's work after it was read: pipeline, draw, write
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
    headless, no output file; a ``RunStats`` subclass records every frame. ``spec["paced"]``: the video read at
    its native rate like a camera, with the live pipeline if ``spec["live"]``."""
    from detector.draw import DrawStyle
    from detector.live import LivePipeline
    from detector.loop import Outputs, run_loop
    from detector.pipeline import Pipeline
    from detector.stats import STAGES, RunStats

    recorder = FrameRecorder(STAGES)

    class RecordingStats(RunStats):
        def add_frame(self, n_mask: int, n_no_mask: int, stage_s: dict[str, float], n_unknown: int = 0,
                      n_incorrect: int = 0) -> None:  # fmt: skip
            super().add_frame(n_mask, n_no_mask, stage_s, n_unknown, n_incorrect)
            recorder.add(stage_s, n_mask + n_no_mask + n_unknown + n_incorrect)

    cfg = load_config(spec["config"], spec["overrides"])
    pipeline = (LivePipeline if spec.get("live") else Pipeline).from_config(cfg, video=True)
    stats = RecordingStats(source=spec["source"])
    capture = PacedCapture(spec["source"], spec["frames"]) if spec.get("paced") else None
    frames = paced_frames(spec["source"], capture) if capture else _frame_source(spec["source"], spec["frames"])
    try:
        run_loop(frames, pipeline, style=DrawStyle.from_config(cfg.draw), outputs=Outputs(), stats=stats,
                 max_frames=spec["frames"] or None)
    finally:
        getattr(pipeline, "close", lambda: None)()
    report = recorder.report(spec["launch_time"], spec["warmup"])
    report["tracking"] = pipeline.quality()
    if capture is not None:
        report["paced"] = {"source_fps": capture.fps, "source_frames": capture.delivered,
                           "frames_shown": len(recorder.faces),
                           "live": bool(spec.get("live"))}  # fmt: skip
    report["settings"] = {
        **dataclasses.asdict(cfg.tracking),
        "face_detector": cfg.face_detector.model,
        "face_detector_backend": getattr(cfg.face_detector, "backend", "opencv"),
        "opencv_threads": cfg.face_detector.threads,
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


def _median_ms(call: Any, runs: int = MODEL_TIMING_RUNS, warmup: int = 3) -> float:
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return round(1000 * statistics.median(times), 3)


def _ort_session(onnx_path: Path, size_wh: tuple[int, int], threads: int) -> Any:
    """An ONNX Runtime session of CenterFace at one input size: input dims set, initializers removed from the
    graph inputs, no spinning (the settings issue 20 measured)."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(onnx_path))
    names = {init.name for init in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in names]
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    del model.graph.value_info[:]
    dims = model.graph.input[0].type.tensor_type.shape.dim
    for dim, size in zip(dims, (1, 3, size_wh[1], size_wh[0]), strict=True):
        dim.dim_value = size
    for out in model.graph.output:
        out.type.tensor_type.ClearField("shape")
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # no warning per unused initializer
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def worker_models(spec: dict[str, Any]) -> dict[str, Any]:
    """Each model's FLOPs per call and median ms per call on each backend (a frame of the video, the configured
    threads): CenterFace at each input size of ``face_detector.long_sides_px``, the whole face detector call
    (all passes, decoding, NMS), and the classifier at batch 1 and at the frame's faces."""
    import cv2

    from detector.classifier import MaskClassifier
    from face_detector import build_face_detector
    from face_detector.centerface import input_size_wh
    from maskwatch.card import stem_file

    cfg = load_config(spec["config"], spec["overrides"])
    fd = cfg.face_detector
    frame = next(iter(_frame_source(spec["source"]))).image_bgr
    height, width = frame.shape[:2]
    onnx_path = cfg.resolve_path(fd.onnx)
    ort_threads = int(getattr(fd, "threads", 2))
    cv2.setNumThreads(fd.threads if fd.threads > 0 else -1)  # as face_detector.dnn.set_opencv_threads
    out: dict[str, Any] = {"centerface": [], "notes": []}
    for long_side in fd.long_sides_px:
        size = input_size_wh((width, height), long_side)
        row: dict[str, Any] = {"input_wh": list(size), "flops": None, "ms": {}, "gflops_per_s": {}}
        try:
            row["flops"] = onnx_flops(onnx_path, (1, 3, size[1], size[0]))
        except ImportError:
            out["notes"].append("onnx not installed: CenterFace FLOPs not counted")
        blob = cv2.dnn.blobFromImage(frame, 1.0, size, (0, 0, 0), swapRB=True)
        net = cv2.dnn.readNetFromONNX(str(onnx_path))

        def opencv_forward(net: Any = net, blob: Any = blob) -> None:
            net.setInput(blob)
            net.forward()

        row["ms"]["opencv"] = _median_ms(opencv_forward)
        try:
            session = _ort_session(onnx_path, size, ort_threads)
            feed = {session.get_inputs()[0].name: blob}
            row["ms"]["onnxruntime"] = _median_ms(lambda session=session, feed=feed: session.run(None, feed))
        except ImportError:
            out["notes"].append("onnx / onnxruntime not installed: CenterFace on ONNX Runtime not timed")
        row["gflops_per_s"] = {k: gflops_per_s(row["flops"], ms) for k, ms in row["ms"].items()}
        out["centerface"].append(row)
    detect = build_face_detector(cfg, video=True)
    faces = detect(frame)
    flops_all = [r["flops"] for r in out["centerface"]]
    detector_ms = _median_ms(lambda: detect(frame))
    out["face_detector_call"] = {
        "backend": getattr(fd, "backend", "opencv"), "model": fd.model, "ms": detector_ms,
        "flops": sum(flops_all) if fd.model == "centerface" and all(flops_all) else None,
        "faces": len(faces),
    }
    out["face_detector_call"]["gflops_per_s"] = gflops_per_s(out["face_detector_call"]["flops"], detector_ms)
    classify = MaskClassifier.from_config(cfg)
    crops = faces.crops(frame) or [frame[: height // 2, : width // 2]]
    tflite = stem_file(cfg.classifier_stem(), "tflite")
    flops_face = tflite_flops(tflite) if tflite.is_file() and cfg.classifier.backend == "tflite" else None
    batch = crops[:4]
    ms_1, ms_b = _median_ms(lambda: classify(crops[:1])), _median_ms(lambda: classify(batch))
    out["classifier"] = {
        "backend": cfg.classifier.backend, "threads": cfg.classifier.threads, "flops_per_face": flops_face,
        "batch_1_ms": ms_1, "batch_n": len(batch), "batch_n_ms": ms_b,
        "gflops_per_s_batch_1": gflops_per_s(flops_face, ms_1),
        "gflops_per_s_batch_n": gflops_per_s(flops_face * len(batch) if flops_face else None, ms_b),
    }
    out["threads"] = {"opencv": fd.threads, "onnxruntime": ort_threads, "classifier": cfg.classifier.threads}
    return out


def worker_matmul(spec: dict[str, Any]) -> dict[str, Any]:
    """numpy float32 ``n x n @ n x n`` (BLAS threads from the environment the parent set): best GFLOP/s of 10."""
    import numpy as np

    n = spec["n"]
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n), np.float32), rng.standard_normal((n, n), np.float32)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(10))
    return {"n": n, "threads": spec["threads"], "best_ms": round(1000 * best, 2),
            "gflops_per_s": round(2 * n**3 / best / 1e9, 2)}


def _timed(call: Any) -> float:
    t0 = time.perf_counter()
    call()
    return time.perf_counter() - t0


WORKERS = {
    "loop": worker_loop,
    "reference": worker_reference,
    "models": worker_models,
    "matmul": worker_matmul,
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


def run_worker(kind: str, spec: dict[str, Any], *, timeout_s: float = 1800.0,
               env_extra: dict[str, str] | None = None) -> dict[str, Any]:
    """Run one worker in a fresh interpreter and return its JSON result; a failure is a one-line ``UserError``."""
    with tempfile.TemporaryDirectory(prefix="maskwatch-bench-") as tmp:
        spec_path, result_path = Path(tmp) / "spec.json", Path(tmp) / "result.json"
        cmd = [sys.executable, "-m", "evaluation.bench", "--worker", kind, "--spec", str(spec_path),
               "--result", str(result_path)]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": _pythonpath(), **(env_extra or {})}
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
    """All steps; in each of ``--rounds`` rounds every loop runs once, in the same order, so all see the same load."""
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
    variants, skipped = loop_variants(cfg, args.config, args.overrides)
    loops: list[dict[str, Any]] = []
    others: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    paced: dict[str, list[dict[str, Any]]] = {"in_order": [], "live": []} if not args.no_paced else {}
    refs: list[dict[str, Any]] = []
    for r in range(args.rounds):
        _say(f"round {r + 1}/{args.rounds}: our loop ({args.frames or 'all'} frames)")
        loops.append(run_worker("loop", {**base, "frames": args.frames}))
        for name, (label, overrides) in variants.items():
            _say(f"round {r + 1}/{args.rounds}: our loop, {label}")
            spec = {**base, "frames": args.frames, "overrides": [*base["overrides"], *overrides]}
            others[name].append(run_worker("loop", spec))
        for name, runs in paced.items():
            _say(f"round {r + 1}/{args.rounds}: the video at its own frame rate, {name.replace('_', '-')} pipeline")
            runs.append(run_worker("loop", {**base, "frames": args.frames, "paced": True, "live": name == "live"}))
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
    result["skipped_variants"] = skipped
    result["paced"] = {name: _median_round(runs, key="frame_ms") for name, runs in paced.items()} or None
    result["rounds"] = {
        "loop_fps": [x["fps"] for x in loops],
        "reference_fps": [x["fps"] for x in refs],
        "speedup": [speedup(a["fps"], b["fps"]) for a, b in zip(loops, refs, strict=False)],
        **{f"{name}_fps": [x["fps"] for x in runs] for name, runs in others.items()},
        **{f"paced_{name}_p95_ms": [x["frame_ms"]["p95_ms"] for x in runs] for name, runs in paced.items()},
    }
    if not args.no_models:
        _say("models: FLOPs and ms per call on each backend")
        result["models"] = run_worker("models", base)
        threads = str(cfg.face_detector.threads or os.cpu_count() or 1)
        _say(f"numpy float32 {MATMUL_N}x{MATMUL_N} matmul, {threads} threads")
        result["matmul"] = run_worker("matmul", {"n": MATMUL_N, "threads": int(threads)},
                                      env_extra=dict.fromkeys(_BLAS_THREAD_VARS, threads))
    _say("the detector CLI on one frame")
    result["detector_cli"] = run_detector_cli(source, args.config, args.overrides)
    result["machine"]["load_avg_1_5_15_after"] = [round(v, 2) for v in os.getloadavg()]
    result["targets"] = check_targets(result)
    return result


_BLAS_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def round_speedup(ours: list[dict[str, Any]], references: list[dict[str, Any]]) -> float | None:
    """Median over rounds of our FPS / the reference's FPS in the same round (same machine load)."""
    ratios = [r for r in (speedup(a["fps"], b["fps"]) for a, b in zip(ours, references, strict=False)) if r]
    return round(statistics.median(ratios), 2) if ratios else None


def loop_variants(cfg: Config, config: str | None, overrides: Sequence[str]
                  ) -> tuple[dict[str, tuple[str, list[str]]], dict[str, str]]:  # fmt: skip
    """The ``LOOP_VARIANTS`` to run, and the skipped ones with the reason: a key this config lacks (e.g. a backend
    before it exists), or overrides that give the default loop's or an earlier variant's config."""
    chosen, skipped, seen = {}, {}, [("the default loop", cfg)]
    for name, (label, extra) in LOOP_VARIANTS.items():
        try:
            variant = load_config(config, [*overrides, *extra])
        except UserError as exc:
            skipped[name] = f"not in this config: {exc}"
            continue
        same = next((other for other, c in seen if c == variant), None)
        if same is None:
            chosen[name] = (label, list(extra))
            seen.append((name, variant))
        else:
            skipped[name] = f"same as {same} (" + ", ".join(extra) + ")"
    return chosen, skipped


def _median_round(rounds: list[dict[str, Any]], key: str = "fps") -> dict[str, Any]:
    """The round with the median FPS (``key`` "frame_ms": the median p95 frame time), a real run, not a blend."""
    if key == "frame_ms":
        ranked = sorted(rounds, key=lambda x: x["frame_ms"]["p95_ms"] or 0.0)
    else:
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
    w = res.get("frame_ms") or f
    return [
        f"{name:<10} {_fmt(res['fps']):>6} fps   ms/frame mean {_fmt(f['mean_ms'])} median {_fmt(f['median_ms'])} "
        f"p95 {_fmt(f.get('p95_ms'))} max {_fmt(f.get('max_ms'))}   "
        f"faces/frame {_fmt(res['faces_per_frame']['mean'], 2)}",
        f"{'':<10} frame time (after read) p50 {_fmt(w['median_ms'])} p95 {_fmt(w.get('p95_ms'))} "
        f"max {_fmt(w.get('max_ms'))} mean {_fmt(w['mean_ms'])} ms",
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
    for name, why in (result.get("skipped_variants") or {}).items():
        lines.append(f"{name:<10} skipped: {why}")
    lines += _loop_lines("reference", result["reference"])
    for name, res in (result.get("paced") or {}).items():
        lines += _loop_lines(f"paced {name}", res)
        pc, tq = res.get("paced") or {}, res.get("tracking") or {}
        lines.append(f"{'':<10} video at {_fmt(pc.get('source_fps'))} fps: {pc.get('frames_shown')} of "
                     f"{pc.get('source_frames')} frames shown" + (
                         f"; results applied {tq.get('results_applied')}, lag {_fmt(tq.get('lag_frames_mean'))} "
                         f"frames mean, max {tq.get('lag_frames_max')}, worker {_fmt(tq.get('worker_ms_mean'))} ms"
                         if tq.get("live") else ""))
    lines += _model_lines(result.get("models"), result.get("matmul"))
    cli = result.get("detector_cli") or {}
    lines.append(f"{'cli':<10} {cli.get('command')}: {_fmt(cli.get('wall_s_one_frame'), 2)} s launch to exit, "
                 f"peak RSS {_fmt(cli.get('peak_rss_mb'))} MB")
    lines.append(f"speed-up: {_fmt(result['speedup'], 2)}x (per round: {result['rounds']['speedup']})")
    lines += ["", "targets:"]
    for t in result["targets"]:
        mark = {True: "met ", False: "MISS", None: "n/a "}[t["met"]]
        lines.append(f"  [{mark}] {t['target']}: {t['value']} (target {t['op']} {t['limit']})")
    return "\n".join(lines)


def _model_lines(models: dict[str, Any] | None, matmul: dict[str, Any] | None) -> list[str]:
    if not models:
        return []
    peak = (matmul or {}).get("gflops_per_s")
    lines = [f"matmul     numpy float32 {matmul['n']}^2 x {matmul['threads']} threads: {_fmt(peak)} GFLOP/s"
             if matmul else "matmul     (not run)"]

    def share(gf: float | None) -> str:
        return f" ({100 * gf / peak:.0f}% of matmul)" if gf and peak else ""

    for row in models["centerface"]:
        per = ", ".join(f"{k} {_fmt(ms)} ms = {_fmt(row['gflops_per_s'].get(k))} GFLOP/s"
                        f"{share(row['gflops_per_s'].get(k))}" for k, ms in row["ms"].items())
        lines.append(f"CenterFace {row['input_wh'][0]}x{row['input_wh'][1]}: "
                     f"{_fmt(row['flops'] / 1e9 if row['flops'] else None, 2)} GFLOP per call; {per}")
    d = models["face_detector_call"]
    lines.append(f"detector   whole call ({d['model']}, {d['backend']}, all passes + decoding + NMS): {_fmt(d['ms'])} "
                 f"ms = {_fmt(d['gflops_per_s'])} GFLOP/s{share(d['gflops_per_s'])}")
    c = models["classifier"]
    lines.append(f"classifier MobileNetV2 ({c['backend']}, {c['threads']} threads): "
                 f"{_fmt(c['flops_per_face'] / 1e9 if c['flops_per_face'] else None, 3)} GFLOP per face; batch 1 "
                 f"{_fmt(c['batch_1_ms'])} ms = {_fmt(c['gflops_per_s_batch_1'])} GFLOP/s"
                 f"{share(c['gflops_per_s_batch_1'])}; batch {c['batch_n']} {_fmt(c['batch_n_ms'])} ms = "
                 f"{_fmt(c['gflops_per_s_batch_n'])} GFLOP/s{share(c['gflops_per_s_batch_n'])}")
    lines += [f"note: {n}" for n in models.get("notes", [])]
    return lines


# ---------------------------------------------------------------- the chart


def write_chart(result: dict[str, Any], path: Path) -> Path | None:
    """A PNG: FPS of every loop (with its speed-up over the classic loop, as in the table), frame time p50 / p95 /
    max of the loops, and each model's GFLOP/s against the matmul peak. ``None`` without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    loops = {"classic": result.get("reference"), "default": result.get("loop"),
             **(result.get("loop_variants") or {})}  # fmt: skip
    loops = {k: v for k, v in loops.items() if v}
    fig, axes = plt.subplots(1, 3, figsize=(18, 5.5))
    ax = axes[0]
    names = list(loops)
    fps = [loops[n]["fps"] or 0 for n in names]
    ax.barh(names, fps, color=["grey" if n == "classic" else "tab:blue" for n in names])
    speedups = {"classic": 1.0, "default": result.get("speedup"),
                **{k: v.get("speedup") for k, v in (result.get("loop_variants") or {}).items()}}  # fmt: skip
    for i, (name, value) in enumerate(zip(names, fps, strict=True)):  # the speed-up of the median round, as reported
        ax.text(value, i, f" {value:.1f}" + (f" ({speedups[name]:.2f}x)" if speedups.get(name) else ""), va="center")
    ax.set_xlabel("frames per second (video file, in order)")
    ax.set_title("loops, same run")
    ax.invert_yaxis()
    ax = axes[1]
    timed = {**{k: v for k, v in loops.items() if k != "classic"},
             **{f"paced {k}": v for k, v in (result.get("paced") or {}).items()}}  # fmt: skip
    labels = list(timed)
    for j, (stat, color) in enumerate((("median_ms", "tab:green"), ("p95_ms", "tab:orange"), ("max_ms", "tab:red"))):
        values = [timed[n]["frame_ms"][stat] or 0 for n in labels]
        ax.barh([i + 0.27 * (j - 1) for i in range(len(labels))], values, height=0.27, color=color,
                label=stat.removesuffix("_ms").replace("median", "p50"))
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xscale("log")
    ax.set_xlim(right=8 * max(timed[n]["frame_ms"]["max_ms"] or 1 for n in labels))  # room for the legend
    ax.set_xlabel("frame time after read, ms (log)")
    ax.set_title("frame time p50 / p95 / max")
    ax.legend()
    ax.invert_yaxis()
    ax = axes[2]
    models, bars = result.get("models") or {}, {}
    for row in models.get("centerface", []):
        for backend, gf in row["gflops_per_s"].items():
            bars[f"CenterFace {row['input_wh'][0]}x{row['input_wh'][1]} {backend}"] = gf or 0
    if models.get("classifier"):
        c = models["classifier"]
        bars["MobileNetV2 batch 1"] = c["gflops_per_s_batch_1"] or 0
        bars[f"MobileNetV2 batch {c['batch_n']}"] = c["gflops_per_s_batch_n"] or 0
    ax.barh(list(bars), list(bars.values()), color="tab:purple")
    peak = (result.get("matmul") or {}).get("gflops_per_s")
    if peak:
        ax.axvline(peak, color="black", linestyle="--", label=f"numpy float32 matmul {peak:.0f} GFLOP/s")
        ax.legend(loc="lower right")
    ax.set_xlabel("achieved GFLOP/s")
    ax.set_title("models vs the matmul peak")
    ax.invert_yaxis()
    m = result["machine"]
    fig.suptitle(f"{result['command']}  |  {m['cpu_model']}, {m['cpu_cores']} cores, load {m['load_avg_1_5_15']}"
                 f" -> {m.get('load_avg_1_5_15_after')}  |  {result['created_utc']}", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    os.replace(tmp, path)
    return path


# ---------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m evaluation.bench", description=__doc__,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", help=f"video file with faces (default: {' or '.join(DEFAULT_SOURCES)})")
    parser.add_argument("--frames", type=int, default=300,
                        help="frames of our loops per run, the video read again from its start if shorter "
                             "(0 = the video once; default 300)")
    parser.add_argument("--reference-frames", type=int, default=60,
                        help="frames of the classic reference loop per run (default 60)")
    parser.add_argument("--warmup", type=int, default=5, help="first frames left out of the FPS (default 5)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="alternate our loop and the reference this many times; the median is kept")
    parser.add_argument("--no-reference", action="store_true",
                        help="skip the classic reference loop (it needs TensorFlow)")
    parser.add_argument("--no-paced", action="store_true",
                        help="skip the runs at the video's own frame rate (in-order and live pipeline)")
    parser.add_argument("--no-models", action="store_true", help="skip the FLOPs, per-model timing and matmul peak")
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
    chart = write_chart(result, out.with_suffix(".png"))
    print(format_table(result))
    print(f"\nwrote {out}" + (f" and {chart}" if chart else ""))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
