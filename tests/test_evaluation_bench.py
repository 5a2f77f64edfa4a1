"""The benchmark: pure helpers, bad input, and one real run on a tiny video with a tiny exported model.

No timed assertions: the run checks that every field the issue asks for is present and well-formed.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from evaluation import bench

SIZE_WH = (320, 240)
N_FRAMES = 12
STAGE_KEYS = {"read", "detect", "classify", "draw"}
STATS_KEYS = {"n", "median_ms", "p90_ms", "mean_ms"}


# ------------------------------------------------------------------ pure helpers


def test_summarize_ms_median_p90_p95_max_mean():
    stats = bench.summarize_ms([i / 1000 for i in range(1, 11)])  # 1..10 ms
    assert stats == {"n": 10, "median_ms": 5.5, "p90_ms": 9.0, "p95_ms": 10.0, "max_ms": 10.0, "mean_ms": 5.5}
    assert bench.summarize_ms([i / 1000 for i in range(1, 101)])["p95_ms"] == 95.0
    assert bench.summarize_ms([0.002]) == {"n": 1, "median_ms": 2.0, "p90_ms": 2.0, "p95_ms": 2.0, "max_ms": 2.0,
                                           "mean_ms": 2.0}
    assert bench.summarize_ms([])["median_ms"] is None


def test_speedup():
    ours, reference = [{"fps": 30.0}, {"fps": 20.0}, {"fps": 9.0}], [{"fps": 6.0}, {"fps": 2.0}, {"fps": 3.0}]
    assert bench.round_speedup(ours, reference) == 5.0  # median of 5, 10, 3
    assert bench.round_speedup([{"fps": 30.0}], []) is None
    assert bench.speedup(30.0, 6.0) == 5.0
    assert bench.speedup(None, 6.0) is None
    assert bench.speedup(30.0, 0.0) is None


def _result(speedup: float, every: float, live_p95: float, rss: float, first_s: float, tf: bool) -> dict:
    return {"speedup": speedup, "loop": {"peak_rss_mb": rss, "first_frame_s": first_s, "tensorflow_imported": tf},
            "loop_variants": {"every_frame": {"speedup": every}},
            "paced": {"live": {"frame_ms": {"p95_ms": live_p95, "mean_ms": 10.0}}}}


def test_check_targets_met_and_missed():
    good = bench.check_targets(_result(11.0, 3.5, 14.0, 200.0, 0.9, False))
    assert [t["met"] for t in good] == [True] * 6
    bad = bench.check_targets(_result(9.0, 2.0, 16.0, 400.0, 1.2, True))
    assert [t["met"] for t in bad] == [False] * 6
    assert bad[0]["value"] == 9.0 and bad[0]["limit"] == bench.TARGETS["speedup_vs_reference_min"] == 10.0
    assert bad[2]["value"] == 1.6  # p95 / mean
    edge = bench.check_targets(_result(11.0, 3.5, 15.04, 200.0, 0.9, False))[2]
    assert edge["met"] is False and edge["value"] == 1.504  # compared unrounded: 1.504 is not <= 1.5
    missing = bench.check_targets({"speedup": None, "loop": None})
    assert [t["met"] for t in missing] == [None] * 6


def test_flops_counted_from_an_onnx_graph(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    conv_w = numpy_helper.from_array(np.zeros((8, 3, 3, 3), np.float32), "w")  # 3 -> 8 channels, 3x3
    dw_w = numpy_helper.from_array(np.zeros((8, 1, 3, 3), np.float32), "dw")  # depthwise, group 8
    up_w = numpy_helper.from_array(np.zeros((8, 4, 2, 2), np.float32), "up")  # ConvTranspose 8 -> 4, x2
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["a"], pads=[1, 1, 1, 1]),
         helper.make_node("Conv", ["a", "dw"], ["b"], pads=[1, 1, 1, 1], group=8),
         helper.make_node("ConvTranspose", ["b", "up"], ["y"], strides=[2, 2])],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [10, 3, 32, 32])],  # fixed dims, like CenterFace
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [conv_w, dw_w, up_w])
    path = tmp_path / "tiny.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    macs = 16 * 16 * 8 * 3 * 9 + 16 * 16 * 8 * 9 + 16 * 16 * 8 * 4 * 4  # conv, depthwise, transposed (input side)
    assert bench.onnx_flops(path, (1, 3, 16, 16)) == 2 * macs
    assert bench.onnx_flops(path, (2, 3, 16, 16)) == 4 * macs


def test_flops_of_the_shipped_models():
    pytest.importorskip("onnx")
    from maskwatch.config import load_config

    cfg = load_config()
    path = cfg.resolve_path(cfg.face_detector.onnx)
    big, small = bench.onnx_flops(path, (1, 3, 512, 640)), bench.onnx_flops(path, (1, 3, 256, 320))
    assert big == pytest.approx(4 * small, rel=0.01)  # fully convolutional: FLOPs grow with the pixels
    assert 3e9 < bench.onnx_flops(path, (1, 3, 480, 640)) < 5e9  # a MobileNetV2 backbone at 640x480
    tflite = cfg.classifier_stem().with_suffix(".tflite")
    if tflite.is_file():  # MobileNetV2 1.0 at 224: ~300 M multiply-adds (Sandler et al. 2018) + the small head
        assert 2 * 290e6 < bench.tflite_flops(tflite) < 2 * 320e6
    assert bench.gflops_per_s(2_000_000_000, 100.0) == 20.0 and bench.gflops_per_s(None, 5.0) is None


def test_machine_info():
    info = bench.machine_info()
    assert info["cpu_cores"] >= 1 and info["usable_cores"] >= 1
    assert isinstance(info["cpu_model"], str) and info["cpu_model"]
    assert len(info["load_avg_1_5_15"]) == 3
    assert {"python", "numpy", "opencv-python"} <= set(info["versions"])


def test_loop_variants_only_when_they_change_the_config():
    from maskwatch.config import load_config

    every = ["tracking.detect_every=1"]
    chosen, _ = bench.loop_variants(load_config(overrides=["tracking.detect_every=3"]), None,
                                    ["tracking.detect_every=3"])
    assert "every_frame" in chosen
    chosen, skipped = bench.loop_variants(load_config(overrides=every), None, every)
    assert "every_frame" not in chosen and skipped["every_frame"].startswith("same as the default loop")
    chosen, skipped = bench.loop_variants(load_config(), None, [])
    assert set(chosen) | set(skipped) == set(bench.LOOP_VARIANTS) and not set(chosen) & set(skipped)
    assert {"every_frame", "relabel_always"} <= set(chosen)
    try:  # before the ONNX Runtime backend exists the backend variants are skipped with a note, after it one runs
        load_config(overrides=["face_detector.backend=opencv"])
    except Exception:
        assert skipped["centerface_opencv"].startswith("not in this config")
    else:
        assert ("centerface_opencv" in chosen) != ("centerface_onnxruntime" in chosen)


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--source", "no/such/video.mp4"], "source not found"),
        (["--frames", "3", "--warmup", "5"], "must be larger than --warmup"),
        (["--rounds", "0"], "--rounds must be >= 1"),
        (["--set", "face_detector.thread=2"], "did you mean face_detector.threads"),
    ],
)
def test_bad_input_is_one_line_error(args, message, capsys):
    assert bench.main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1


def test_failing_step_is_one_line_error(tmp_path, capsys):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    assert bench.main(["--source", str(bad), "--no-reference", "--out", str(tmp_path / "b.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: benchmark step 'loop' failed: ") and "error: error" not in err[-1]
    assert "Traceback" not in "\n".join(err) and not (tmp_path / "b.json").exists()


# ------------------------------------------------------------------ a real run


def _faces_bgr() -> tuple[np.ndarray, np.ndarray]:
    import matplotlib.cbook
    from skimage import data

    astronaut = cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), (150, 150))
    grace = cv2.imread(str(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    return astronaut, cv2.resize(grace, (128, 150))


@pytest.fixture(scope="module")
def face_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 frames 320x240 with two real faces, one moving."""
    astronaut, grace = _faces_bgr()
    path = tmp_path_factory.mktemp("video") / "faces.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, SIZE_WH)
    for i in range(N_FRAMES):
        frame = np.full((SIZE_WH[1], SIZE_WH[0], 3), 100, np.uint8)
        frame[40:190, 5 + i : 155 + i] = astronaut
        frame[50:200, 185:313] = grace
        writer.write(frame)
    writer.release()
    return path


def test_a_short_video_is_read_again_until_the_frames_asked(face_video):
    """Our loops measure ``--frames`` frames even from a shorter clip: the video starts again at its end (its frames
    in order, indices continuing); 0 reads it once."""
    first = [f.image_bgr for f in bench._frame_source(str(face_video))]
    assert len(first) == N_FRAMES
    frames = list(bench._frame_source(str(face_video), 2 * N_FRAMES + 5))
    assert [f.index for f in frames] == list(range(2 * N_FRAMES + 5))
    for i, frame in enumerate(frames):
        assert np.array_equal(frame.image_bgr, first[i % N_FRAMES])
    paced = bench.PacedCapture(str(face_video), N_FRAMES + 3)
    paced.fps = 1000.0  # no waiting in a test
    got = [paced.read() for _ in range(N_FRAMES + 5)]
    assert [ok for ok, _ in got] == [True] * (N_FRAMES + 3) + [False] * 2
    assert np.array_equal(got[N_FRAMES + 1][1], first[1]) and paced.delivered == N_FRAMES + 3
    once = bench.PacedCapture(str(face_video))
    once.fps = 1000.0
    assert sum(once.read()[0] for _ in range(N_FRAMES + 2)) == N_FRAMES


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A contract-honouring model (RGB 0-255 32x32 in, sigmoid out) exported with ``save_classifier``."""
    import keras

    from train.export import save_classifier

    inp = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inp)
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inp, keras.layers.Dense(1, activation="sigmoid")(x))
    stem = tmp_path_factory.mktemp("model") / "tiny"
    save_classifier(model, stem, {"threshold": 0.5})
    return stem


@pytest.fixture(scope="module")
def ssd_available() -> None:
    from maskwatch.config import load_config
    from maskwatch.errors import UserError

    try:
        from models.assets import resolve

        cfg = load_config()
        resolve("prototxt", cfg)
        resolve("caffemodel", cfg)
    except (ImportError, UserError) as exc:
        pytest.skip(f"SSD face detector assets unavailable: {exc}")


def _check_stats(stats: dict) -> None:
    assert set(stats) >= STATS_KEYS
    assert stats["n"] >= 1
    assert 0 <= stats["median_ms"] <= stats["p90_ms"]


def _check_loop(res: dict, frames: int, warmup: int) -> None:
    assert res["frames"] == frames and res["warmup_frames"] == warmup
    assert res["fps"] > 0
    _check_stats(res["ms_per_frame"])
    assert set(res["stages"]) >= STAGE_KEYS
    for stats in res["stages"].values():
        _check_stats(stats)
    assert res["faces_per_frame"]["min"] >= 1  # the real faces are found
    assert res["faces_per_frame"]["max"] <= 2
    assert 0 < res["first_frame_s"] < 600
    assert res["peak_rss_mb"] > 10


@pytest.mark.slow
def test_bench_writes_every_field(face_video, tiny_model, ssd_available, tmp_path, capsys):
    out = tmp_path / "bench.json"
    rc = bench.main(["--source", str(face_video), "--frames", "10", "--reference-frames", "8", "--warmup", "2",
                     "--out", str(out),
                     "--set", f"classifier.model={tiny_model}"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert f"wrote {out}" in captured.out and "speed-up" in captured.out
    result = json.loads(out.read_text())

    assert result["format_version"] == 3 and result["source"] == str(face_video.resolve())
    machine = result["machine"]
    assert machine["cpu_model"] and machine["cpu_cores"] >= 1
    assert {"python", "numpy", "opencv-python", "ai-edge-litert"} <= set(machine["versions"])

    _check_loop(result["loop"], frames=10, warmup=2)
    assert result["loop"]["tensorflow_imported"] is False  # our loop's default path never imports TensorFlow
    every = result["loop"]["settings"]["detect_every"]
    tracking = result["loop"]["tracking"]
    assert tracking["keyframes"] == len(range(0, 10, every)) and tracking["classifier_calls"] == tracking["keyframes"]
    assert tracking["drift_mean_iou"] > 0.5  # tracked boxes still on the faces at the next detection
    variants = result["loop_variants"]
    assert set(variants) <= set(bench.LOOP_VARIANTS) and "every_frame" in variants
    for variant in variants.values():
        _check_loop(variant, frames=10, warmup=2)
        assert variant["speedup"] == pytest.approx(variant["fps"] / result["reference"]["fps"], abs=0.01)  # 1 round
    assert variants["every_frame"]["settings"]["detect_every"] == 1
    _check_loop(result["reference"], frames=8, warmup=2)
    assert result["reference"]["tensorflow_imported"] is True
    assert result["speedup"] == pytest.approx(result["loop"]["fps"] / result["reference"]["fps"], abs=0.01)

    cli = result["detector_cli"]
    assert cli["command"].startswith("python -m detector.webcam --source") and "--max-frames 1" in cli["command"]
    assert cli["wall_s_one_frame"] > 0 and cli["peak_rss_mb"] > 10

    assert {t["target"] for t in result["targets"]} == {t["target"] for t in bench.check_targets({})}
    assert all(why for why in result["skipped_variants"].values())

    paced = result["paced"]  # the video at its own frame rate, newest frame only
    assert set(paced) == {"in_order", "live"}
    for name, res in paced.items():
        assert 1 <= res["paced"]["frames_shown"] <= res["paced"]["source_frames"] <= N_FRAMES
        assert res["paced"]["live"] is (name == "live")
        frame_ms = res["frame_ms"]  # empty when a loaded machine showed no more frames than --warmup
        assert frame_ms["n"] == 0 or frame_ms["max_ms"] >= frame_ms["p95_ms"] >= frame_ms["median_ms"]
    assert paced["live"]["tracking"]["live"] is True and paced["live"]["tracking"]["results_applied"] >= 1

    models = result["models"]
    for row in models["centerface"]:
        assert row["flops"] > 1e8 and row["ms"]["opencv"] > 0 and row["gflops_per_s"]["opencv"] > 0
    assert models["classifier"]["flops_per_face"] > 0 and models["classifier"]["batch_1_ms"] > 0
    assert result["matmul"]["gflops_per_s"] > 0 and result["matmul"]["threads"] >= 1
    assert "GFLOP/s" in captured.out
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
