"""CenterFace's network on two runtimes, one callable each: ``forward(blob, size_wh) -> (heatmap, log_size, offset)``.

``OrtCenterFace`` runs it on ONNX Runtime, ``OpenCVCenterFace`` on OpenCV DNN. Both get the same blob (RGB 0-255,
NCHW float32, from ``cv2.dnn.blobFromImage``) and return the same outputs; decoding and NMS are shared
(``centerface_boxes``, ``select_faces``).

The shipped file has fixed 32x32 input dims and lists its initializers as graph inputs. For ONNX Runtime the graph
gets a free input height and width (``any_size_graph``) and the initializers are dropped from its inputs (constant
folding then applies): ONE session serves every input size. That graph is made once with the ``onnx`` package
(~1.3 s to import) and cached beside the checksum cache, keyed by the model's SHA-256 and checked against its
own recorded SHA-256 on every start, so a start imports no ``onnx`` and never runs a damaged or modified graph.
OpenCV DNN keeps one network per input size, built on first use, the last ``max_sizes`` kept.
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path

import cv2
import numpy as np

from face_detector.dnn import NetsBySize
from maskwatch.errors import UserError
from maskwatch.files import write_bytes_atomic

INPUT_NAME = "input.1"
OUTPUT_NAMES = ("537", "538", "539", "540")  # heatmap, log size (h, w), offset (y, x), landmarks
OUTPUT_CHANNELS = (1, 2, 2, 10)
STRIDE_PX = 4  # input pixels per output cell

Outputs = tuple[np.ndarray, np.ndarray, np.ndarray]  # heatmap (1, 1, h, w), log size and offset (1, 2, h, w)


def missing_onnxruntime_message() -> str:
    return ("face_detector.backend onnxruntime needs onnxruntime and onnx: pip install onnxruntime onnx "
            "(or use --set face_detector.backend=opencv)")  # fmt: skip


def graph_for_size(model_bytes: bytes, size_wh: tuple[int, int] | None) -> bytes:
    """The serialized CenterFace graph with input dims (1, 3, h, w) and matching output dims (``size_wh`` None:
    height and width free, output dims left to ONNX Runtime), initializers removed from the graph inputs, inner
    shapes (``value_info``, e.g. of a quantized file) left to ONNX Runtime."""
    import onnx

    model = onnx.load_model_from_string(model_bytes)
    initializers = {init.name for init in model.graph.initializer}
    inputs = [node for node in model.graph.input if node.name not in initializers]
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    del model.graph.value_info[:]
    width, height = size_wh if size_wh is not None else ("width", "height")
    dims: dict[str, tuple[int | str, ...]] = {INPUT_NAME: (1, 3, height, width)}
    if size_wh is not None:
        dims |= {name: (1, channels, size_wh[1] // STRIDE_PX, size_wh[0] // STRIDE_PX)
                 for name, channels in zip(OUTPUT_NAMES, OUTPUT_CHANNELS, strict=True)}  # fmt: skip
    for node in (*model.graph.input, *model.graph.output):
        if node.name not in dims:
            if size_wh is None:  # free input size: the output shapes are ONNX Runtime's to infer
                node.type.tensor_type.ClearField("shape")
            continue
        shape = node.type.tensor_type.shape
        del shape.dim[:]
        for value in dims[node.name]:
            dim = shape.dim.add()
            if isinstance(value, str):
                dim.dim_param = value
            else:
                dim.dim_value = value
    return model.SerializeToString()


def any_size_graph(model_bytes: bytes) -> bytes:
    """The graph ONNX Runtime runs at every input size (free height and width; ``graph_for_size``)."""
    return graph_for_size(model_bytes, None)


def cached_graph_path(model_bytes: bytes, cache_dir: Path) -> Path:
    """Where ``any_size_graph`` of these model bytes is cached (named by their SHA-256)."""
    return Path(cache_dir) / f"centerface-any-size-{hashlib.sha256(model_bytes).hexdigest()[:16]}.onnx"


def digest_path(cached: Path) -> Path:
    """The file beside a cached graph that holds its SHA-256 (hex), written after the graph."""
    return cached.with_name(cached.name + ".sha256")


def read_cached_graph(cached: Path) -> bytes | None:
    """The cached graph's bytes if they match the SHA-256 recorded beside them, else None (missing, damaged or
    modified: the graph is made again), so a changed weight can never reach the detector."""
    try:
        graph, digest = cached.read_bytes(), digest_path(cached).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return graph if hashlib.sha256(graph).hexdigest() == digest else None


class OrtCenterFace:
    """CenterFace on ONNX Runtime's CPU provider, one session for every input size: ``threads`` intra-op threads
    (0 = ONNX Runtime's default), one inter-op thread, sequential execution, worker threads that sleep instead of
    spinning (they would fight OpenCV's threads for the cores), a memory arena but no memory pattern.
    ``cache_dir``: where the prepared graph is kept between runs (None: prepared on every start)."""

    def __init__(self, model_bytes: bytes, *, threads: int, source: str = "bytes",
                 cache_dir: Path | None = None) -> None:  # fmt: skip
        try:
            import onnxruntime as ort
        except ImportError:
            raise UserError(missing_onnxruntime_message()) from None
        self._ort = ort
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = int(threads), 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # one session: its memory arena keeps the tensors between calls (without it, the freed buffers fragment
        # the heap: ~45 MB more peak RSS in the loop); no memory pattern (planned per input shape: more memory)
        options.enable_cpu_mem_arena, options.enable_mem_pattern = True, False
        options.log_severity_level = 3  # the file's unused batch-norm counters would each log a warning
        self._options = options
        self.session = self._build(model_bytes, source, cache_dir)  # a bad file fails here, not on the first frame

    def _build(self, model_bytes: bytes, source: str, cache_dir: Path | None):  # -> onnxruntime.InferenceSession
        """The session, from the cached graph if there is one (a damaged cache file is made again)."""
        cached = cached_graph_path(model_bytes, cache_dir) if cache_dir is not None else None
        graph = read_cached_graph(cached) if cached is not None else None
        if graph is not None:
            with contextlib.suppress(Exception):  # ONNX Runtime's load errors share no base class but Exception
                return self._session(graph)
        try:
            graph = any_size_graph(model_bytes)
            session = self._session(graph)
        except ImportError:
            raise UserError(missing_onnxruntime_message()) from None
        except Exception as exc:  # onnx raises DecodeError and others, without a common base
            msg = " ".join(str(exc).split())[-200:]
            raise UserError(f"cannot load the CenterFace detector from {source}: {msg}") from None
        if cached is not None:
            with contextlib.suppress(OSError):  # a read-only cache only means preparing it again next time
                write_bytes_atomic(cached, graph)
                write_bytes_atomic(digest_path(cached), hashlib.sha256(graph).hexdigest().encode())
        return session

    def _session(self, graph: bytes | str):  # -> onnxruntime.InferenceSession
        return self._ort.InferenceSession(graph, self._options, providers=["CPUExecutionProvider"])

    def __call__(self, blob: np.ndarray, size_wh: tuple[int, int]) -> Outputs:
        heatmap, log_size, offset = self.session.run(list(OUTPUT_NAMES[:3]), {INPUT_NAME: blob})
        return heatmap, log_size, offset


class OpenCVCenterFace:
    """CenterFace on OpenCV DNN (threads: ``cv2.setNumThreads``, set by the caller). One network per input size,
    never re-planned: fed a new input shape after its first forward, OpenCV 4.x returned dozens of full-score boxes
    for this network (measured; a test guards it)."""

    def __init__(self, model_bytes: bytes, *, max_sizes: int, source: str = "bytes") -> None:
        buffer = np.frombuffer(model_bytes, np.uint8)
        try:  # a bad file fails here, not on the first frame; this network serves the first input size
            first = cv2.dnn.readNetFromONNX(buffer)
        except cv2.error as exc:
            msg = " ".join(str(exc).split())[-200:]
            raise UserError(f"cannot load the CenterFace detector from {source}: {msg}") from None
        self._nets = NetsBySize(lambda: cv2.dnn.readNetFromONNX(buffer), max_sizes, spare=first)

    def __call__(self, blob: np.ndarray, size_wh: tuple[int, int]) -> Outputs:
        net = self._nets.net_for(size_wh)
        net.setInput(blob)
        heatmap, log_size, offset, _ = net.forward(list(OUTPUT_NAMES))
        return heatmap, log_size, offset
