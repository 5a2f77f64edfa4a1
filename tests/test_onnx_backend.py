"""CenterFace's two runtimes: the same boxes on real photos, ONNX Runtime's graph (any size, cached), threads."""

from __future__ import annotations

import os
import subprocess
import sys

import cv2
import numpy as np
import onnx
import pytest

from face_detector.centerface import CenterFaceDetector
from face_detector.onnx_backend import (
    INPUT_NAME,
    OUTPUT_NAMES,
    OrtCenterFace,
    any_size_graph,
    cached_graph_path,
    digest_path,
    graph_for_size,
)
from maskwatch.config import PROJECT_ROOT, load_config
from maskwatch.errors import ConfigError, UserError

MODEL = PROJECT_ROOT / "models" / "centerface.onnx"


def _dims(node: onnx.ValueInfoProto) -> list[int]:
    return [d.dim_value for d in node.type.tensor_type.shape.dim]


def test_the_graph_gets_the_size_s_dims_and_no_initializer_inputs():
    original = onnx.load(MODEL)
    assert len(original.graph.input) > 100 and _dims(original.graph.input[0]) == [10, 3, 32, 32]  # as shipped
    graph = onnx.load_model_from_string(graph_for_size(MODEL.read_bytes(), (320, 256)))
    assert [node.name for node in graph.graph.input] == [INPUT_NAME]
    assert _dims(graph.graph.input[0]) == [1, 3, 256, 320]
    assert {o.name: _dims(o) for o in graph.graph.output} == {
        "537": [1, 1, 64, 80], "538": [1, 2, 64, 80], "539": [1, 2, 64, 80], "540": [1, 10, 64, 80]}  # fmt: skip
    assert len(graph.graph.initializer) == len(original.graph.initializer)


@pytest.fixture(scope="module")
def both() -> dict[str, CenterFaceDetector]:
    return {backend: CenterFaceDetector(MODEL, backend=backend, min_size_px=0) for backend in ("onnxruntime", "opencv")}


def _real_frames(astronaut, webcam_close_up) -> dict[str, np.ndarray]:
    from skimage import data

    frame, masked, face = astronaut
    small = cv2.resize(masked, (128, 128), interpolation=cv2.INTER_AREA)
    return {
        "astronaut": frame,
        "masked": masked,
        "small masked": np.ascontiguousarray(np.pad(small, ((176, 176), (256, 256), (0, 0)), mode="edge")),
        "close-up 0.6": webcam_close_up(masked, face, 0.6)[0],
        "close-up 0.9": webcam_close_up(masked, face, 0.9)[0],
        "wide": np.ascontiguousarray(np.pad(frame, ((0, 0), (200, 200), (0, 0)), mode="edge")),
        "coffee": np.ascontiguousarray(data.coffee()[:, :, ::-1]),
    }


@pytest.mark.parametrize("long_sides_px", [(640, 320), (480,)])
def test_both_backends_give_the_same_boxes_on_real_photos(both, astronaut, webcam_close_up, long_sides_px):
    found = 0
    for name, frame in _real_frames(astronaut, webcam_close_up).items():
        for detector in both.values():
            detector.long_sides_px = long_sides_px
        ort, cv = both["onnxruntime"](frame), both["opencv"](frame)
        assert len(ort) == len(cv), name
        assert np.abs(ort.xyxy.astype(int) - cv.xyxy).max(initial=0) <= 1, name
        assert np.abs(ort.confidence - cv.confidence).max(initial=0) <= 1e-3, name
        found += len(ort)
    assert found >= 5  # the photos have faces: the comparison is not between two empty lists


def test_both_backends_give_the_same_outputs(both, astronaut):
    blob = cv2.dnn.blobFromImage(astronaut[1], 1.0, (320, 320), (0, 0, 0), swapRB=True)
    for ort, cv in zip(both["onnxruntime"].network(blob, (320, 320)), both["opencv"].network(blob, (320, 320)),
                       strict=True):  # fmt: skip
        assert ort.shape == cv.shape and np.abs(ort - cv).max() < 1e-3


def test_the_any_size_graph_has_a_free_height_and_width():
    graph = onnx.load_model_from_string(any_size_graph(MODEL.read_bytes()))
    assert [node.name for node in graph.graph.input] == [INPUT_NAME]
    dims = graph.graph.input[0].type.tensor_type.shape.dim
    assert [(d.dim_value, d.dim_param) for d in dims] == [(1, ""), (3, ""), (0, "height"), (0, "width")]
    assert not any(o.type.tensor_type.HasField("shape") for o in graph.graph.output)


def test_one_session_serves_every_size_with_the_outputs_of_a_fixed_size_graph():
    import onnxruntime as ort

    network = OrtCenterFace(MODEL.read_bytes(), threads=1)
    rng = np.random.default_rng(0)
    for size in ((64, 64), (96, 64), (128, 96), (64, 64)):
        blob = rng.uniform(0, 255, (1, 3, size[1], size[0])).astype(np.float32)
        outputs = network(blob, size)
        fixed = ort.InferenceSession(graph_for_size(MODEL.read_bytes(), size), providers=["CPUExecutionProvider"])
        for got, want in zip(outputs, fixed.run(list(OUTPUT_NAMES[:3]), {INPUT_NAME: blob}), strict=True):
            assert got.shape == want.shape and np.abs(got - want).max() < 1e-4
        assert outputs[0].shape == (1, 1, size[1] // 4, size[0] // 4)
    options = network.session.get_session_options()
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (1, 1)
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_the_prepared_graph_is_cached_and_a_start_from_the_cache_imports_no_onnx(tmp_path, monkeypatch):
    model_bytes = MODEL.read_bytes()
    OrtCenterFace(model_bytes, threads=1, cache_dir=tmp_path)
    cached = cached_graph_path(model_bytes, tmp_path)
    assert sorted(tmp_path.iterdir()) == [cached, digest_path(cached)]
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx would raise ImportError
    blob = np.zeros((1, 3, 64, 64), np.float32)
    assert OrtCenterFace(model_bytes, threads=1, cache_dir=tmp_path)(blob, (64, 64))[0].shape == (1, 1, 16, 16)
    cached.write_bytes(b"damaged")  # a damaged cache file is made again (with onnx)
    monkeypatch.setitem(sys.modules, "onnx", onnx)
    OrtCenterFace(model_bytes, threads=1, cache_dir=tmp_path)(blob, (64, 64))
    assert cached.read_bytes() == any_size_graph(model_bytes)


def test_a_detector_process_leaves_no_onnx_runtime_telemetry_files(tmp_path):
    """ONNX Runtime's telemetry wrote $TMPDIR/.ses and ~/.cache/Microsoft/... (a device id, an event database that
    grew on every run); the project turns it off before any import of onnxruntime."""
    tmp, home = tmp_path / "tmp", tmp_path / "home"
    tmp.mkdir()
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("ORT_DISABLE_TELEMETRY", "XDG_CACHE_HOME")}
    probe = f"from face_detector.onnx_backend import OrtCenterFace; OrtCenterFace(open({str(MODEL)!r}, 'rb').read(), "
    probe += "threads=1)"
    subprocess.run([sys.executable, "-c", probe], cwd=PROJECT_ROOT, env={**env, "TMPDIR": str(tmp), "HOME": str(home)},
                   check=True, timeout=120)  # fmt: skip
    assert list(tmp.iterdir()) == [] and list(home.iterdir()) == []


def test_a_bad_model_file_is_one_clear_error(tmp_path):
    with pytest.raises(UserError, match=r"cannot load the CenterFace detector from bad\.onnx"):
        OrtCenterFace(b"not an onnx file", threads=1, source="bad.onnx", cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_the_config_picks_the_backend_and_its_threads():
    detector = CenterFaceDetector.from_config(load_config(overrides=["face_detector.threads=1"]))
    assert detector.backend == "onnxruntime" and isinstance(detector.network, OrtCenterFace)
    detector(np.zeros((64, 64, 3), np.uint8))
    assert detector.network.session.get_session_options().intra_op_num_threads == 1
    assert CenterFaceDetector.from_config(load_config(overrides=["face_detector.backend=opencv"])).backend == "opencv"
    with pytest.raises(ConfigError, match="did you mean 'opencv'"):
        load_config(overrides=["face_detector.backend=opencvv"])


def test_missing_onnxruntime_says_how_to_install_or_switch(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime raises ImportError
    with pytest.raises(UserError) as info:
        CenterFaceDetector(MODEL, backend="onnxruntime")
    message = str(info.value)
    assert "pip install onnxruntime" in message and "--set face_detector.backend=opencv" in message
    assert "\n" not in message
    assert CenterFaceDetector(MODEL, backend="opencv").backend == "opencv"  # OpenCV needs no ONNX Runtime


def test_output_names_are_the_network_s():
    assert [o.name for o in onnx.load(MODEL).graph.output] == list(OUTPUT_NAMES)


def test_a_modified_weight_in_the_cached_graph_is_never_run(tmp_path):
    model_bytes = MODEL.read_bytes()
    blob = np.random.default_rng(0).uniform(0, 255, (1, 3, 64, 64)).astype(np.float32)
    want = OrtCenterFace(model_bytes, threads=1, cache_dir=tmp_path)(blob, (64, 64))[0]
    cached = cached_graph_path(model_bytes, tmp_path)
    graph = cached.read_bytes()
    model = onnx.load_model_from_string(graph)
    weights = next(i for i in model.graph.initializer if i.name == model.graph.node[0].input[1]).raw_data
    at = graph.find(weights)  # the first convolution's weights: zeroing some still loads, and changes the outputs
    cached.write_bytes(graph[:at] + bytes(64) + graph[at + 64 :])
    got = OrtCenterFace(model_bytes, threads=1, cache_dir=tmp_path)(blob, (64, 64))[0]
    assert np.array_equal(got, want) and cached.read_bytes() == any_size_graph(model_bytes)
