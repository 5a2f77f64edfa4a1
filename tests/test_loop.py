"""The detector loop end to end: real face photos in a video, the real SSD, a tiny exported classifier.

The tiny classifier honours the model contract (RGB 0-255 in, sigmoid P(mask) out) with fixed weights:
P(mask) = sigmoid(10 * (mean red - mean blue) / 255). The astronaut's face is warm (red > blue): "mask"; Grace
Hopper's photo is pasted with red and blue swapped (blue > red): "no_mask". So labels are known in advance.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from detector import webcam
from detector.classifier import MaskClassifier
from detector.draw import DrawStyle
from detector.loop import Outputs, run_loop
from detector.pipeline import Pipeline
from detector.sinks import JsonlLog, VideoSink, count_frames
from detector.sources import Frame
from detector.stats import STAGES, RunStats
from maskwatch.config import load_config
from maskwatch.errors import ConfigError
from maskwatch.faces import Faces

ROOT = Path(__file__).resolve().parents[1]
N_FRAMES = 12
SIZE_WH = (320, 240)
LOG_KEYS = {"source", "frame", "time_s", "faces"}
FACE_KEYS = {"box", "label", "prob_mask", "det_conf", "track_id"}


def _photos_bgr() -> tuple[np.ndarray, np.ndarray]:
    import matplotlib.cbook
    from skimage import data

    astronaut = cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), (150, 150))
    grace = cv2.imread(str(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    return astronaut, cv2.resize(grace, (128, 150))[:, :, ::-1].copy()  # R and B swapped: a blue face


def _scene(i: int) -> np.ndarray:
    astronaut, grace = _photos_bgr()
    frame = np.full((SIZE_WH[1], SIZE_WH[0], 3), (90, 110, 100), np.uint8)
    frame[40:190, 5 + i : 155 + i] = astronaut  # moves right by 1 px a frame
    frame[50:200, 185:313] = grace
    return frame


@pytest.fixture(scope="session")
def face_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("video") / "faces.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, SIZE_WH)
    for i in range(N_FRAMES):
        writer.write(_scene(i))
    writer.release()
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model stem exported by ``train.export.save_classifier`` (.tflite, .keras, .h5, .json), 32x32 input."""
    import keras

    from train.export import save_classifier

    inp = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inp)
    conv = keras.layers.Conv2D(1, 1, use_bias=False)
    x = keras.layers.GlobalAveragePooling2D()(conv(x))
    dense = keras.layers.Dense(1, activation="sigmoid")
    model = keras.Model(inp, dense(x))
    conv.set_weights([np.array([10.0, 0.0, -10.0], np.float32).reshape(1, 1, 3, 1)])  # RGB: +R, -B
    dense.set_weights([np.ones((1, 1), np.float32), np.zeros(1, np.float32)])
    stem = tmp_path_factory.mktemp("model") / "tiny"
    save_classifier(model, stem, {"threshold": 0.5})
    return stem


def _run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = webcam.main([*args, "--no-display"])
    out, err = capsys.readouterr()
    return rc, out, err


def _read_video(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


# ------------------------------------------------------------------ the whole CLI on a video


@pytest.mark.slow
def test_video_headless_output_log_summary(face_video: Path, tiny_model: Path, tmp_path: Path, capsys):
    out, log, summary_path = tmp_path / "out.mp4", tmp_path / "log.jsonl", tmp_path / "s.json"
    rc, stdout, err = _run_cli(["--source", str(face_video), "--output", str(out), "--log", str(log),
                                "--summary", str(summary_path), "--set", f"classifier.model={tiny_model}"], capsys)
    assert rc == 0, err

    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(records) == N_FRAMES
    for i, rec in enumerate(records):
        assert set(rec) == LOG_KEYS
        assert (rec["source"], rec["frame"]) == ("faces.mp4", i)
        assert rec["time_s"] == pytest.approx(i / 10)
        for face in rec["faces"]:
            assert set(face) == FACE_KEYS
            x1, y1, x2, y2 = face["box"]
            assert all(isinstance(v, int) for v in face["box"])
            assert 0 <= x1 < x2 <= SIZE_WH[0] and 0 <= y1 < y2 <= SIZE_WH[1]
            assert 0 <= face["prob_mask"] <= 1 and 0 <= face["det_conf"] <= 1
            assert face["track_id"] in (0, 1)  # two people, each keeps their id
            if face["label"] != "unknown":  # voted: the mean P(mask) of the person's classifications
                assert face["label"] == ("mask" if face["prob_mask"] >= 0.5 else "no_mask")
        # Both real faces found in every frame; the astronaut (left) is "mask", the blue Grace Hopper "no_mask";
        # unknown only until the second classification (the second key frame, frame 4)
        labels = {("left" if f["box"][0] < 160 else "right"): f["label"] for f in rec["faces"]}
        assert labels == ({"left": "mask", "right": "no_mask"} if i >= 4 else {"left": "unknown", "right": "unknown"})

    frames = _read_video(out)
    assert len(frames) == N_FRAMES
    assert frames[0].shape[:2] == (SIZE_WH[1], SIZE_WH[0])
    assert not list(tmp_path.glob(".out.*"))  # no temporary file left

    summary = json.loads(summary_path.read_text())
    faces = [f for rec in records for f in rec["faces"]]
    assert summary["frames"] == N_FRAMES
    assert len(faces) == 2 * N_FRAMES
    assert summary["mask"] + summary["no_mask"] == 2 * (N_FRAMES - 4) and summary["unknown"] == 2 * 4
    assert summary["faces"] == 2 * N_FRAMES
    people = summary["people"]
    assert people["seen"] == 2 and people["seen_by_label"] == {"mask": 1, "no_mask": 1, "incorrect": 0, "unknown": 0}
    assert [p["frames"] for p in people["persons"]] == [N_FRAMES, N_FRAMES]
    assert people["persons"][0]["last_seen_s"] == pytest.approx((N_FRAMES - 1) / 10)
    assert summary["mask"] == sum(f["label"] == "mask" for f in faces)
    assert summary["share_no_mask"] == pytest.approx(summary["no_mask"] / (summary["mask"] + summary["no_mask"]),
                                                     abs=1e-4)  # of the labelled faces
    assert set(summary["stage_ms"]) == set(STAGES)
    assert summary["fps_mean"] > 0 and summary["fps_median"] > 0
    assert f"{N_FRAMES} frames, {2 * N_FRAMES} faces" in stdout and str(out) in stdout
    assert "2 people seen: 1 mask, 1 no mask" in stdout


@pytest.mark.slow
def test_max_frames_and_image_folder(face_video: Path, tiny_model: Path, tmp_path: Path, capsys):
    log = tmp_path / "log.jsonl"
    rc, _, err = _run_cli(["--source", str(face_video), "--max-frames", "3", "--log", str(log),
                           "--set", f"classifier.model={tiny_model}"], capsys)
    assert rc == 0, err
    assert [json.loads(line)["frame"] for line in log.read_text().splitlines()] == [0, 1, 2]

    images, annotated = tmp_path / "images", tmp_path / "annotated"
    images.mkdir()
    cv2.imwrite(str(images / "a_scene.png"), _scene(0))
    cv2.imwrite(str(images / "b_small.jpg"), cv2.resize(_scene(3), (200, 150)))
    (images / "c_broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    rc, stdout, err = _run_cli(["--source", str(images), "--output", str(annotated), "--log", str(log), "--overwrite",
                                "--summary", str(tmp_path / "s.json"), "--set", f"classifier.model={tiny_model}"],
                               capsys)
    assert rc == 0, err
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["source"], r["frame"], r["time_s"]) for r in records] == [("a_scene.png", 0, 0.0),
                                                                         ("b_small.jpg", 0, 0.0)]
    assert len(records[0]["faces"]) == 2
    assert sorted(p.name for p in annotated.iterdir()) == ["a_scene.png", "b_small.jpg"]
    assert cv2.imread(str(annotated / "b_small.jpg")).shape == (150, 200, 3)
    assert not np.array_equal(cv2.imread(str(annotated / "a_scene.png")), _scene(0))  # it was drawn on
    summary = json.loads((tmp_path / "s.json").read_text())
    assert (summary["frames"], summary["skipped_images"]) == (2, 1)
    assert "skipped unreadable image c_broken.jpg" in err
    assert "1 unreadable image skipped" in stdout


@pytest.mark.slow
def test_default_path_never_imports_tensorflow(face_video: Path, tiny_model: Path, tmp_path: Path):
    code = (
        "import sys; from detector.webcam import main; "
        f"rc = main(['--source', {str(face_video)!r}, '--no-display', '--max-frames', '2', "
        f"'--set', 'classifier.model={tiny_model}']); "
        "print('tensorflow loaded:', 'tensorflow' in sys.modules, 'keras loaded:', 'keras' in sys.modules); "
        "sys.exit(rc)"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "tensorflow loaded: False keras loaded: False" in proc.stdout


@pytest.mark.slow
def test_sigterm_stops_like_ctrl_c_and_keeps_the_video(tmp_path: Path):
    out, log = tmp_path / "out.mp4", tmp_path / "log.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "detector.webcam", "--source", str(ROOT / "demo" / "demo.mp4"),
                             "--no-display", "--quiet", "--output", str(out), "--log", str(log)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    end = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < end and (not log.exists() or len(log.read_bytes()) == 0):
        time.sleep(0.05)
    proc.terminate()  # SIGTERM, as `kill` or a service manager sends
    stdout, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err.strip().endswith("interrupted"), err
    assert f"video: {out}" in stdout
    assert 0 < count_frames(out) < 150 and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


# ------------------------------------------------------------------ the classifier runtime


@pytest.mark.slow
def test_tflite_and_keras_backends_agree(face_video: Path, tiny_model: Path):
    detect_cfg = load_config()
    from face_detector.ssd import SSDFaceDetector

    detector = SSDFaceDetector.from_config(detect_cfg)
    crops = [c for i in range(0, N_FRAMES, 4) for c in detector(_scene(i)).crops(_scene(i))]
    rng = np.random.default_rng(0)
    crops += [rng.integers(0, 255, (int(rng.integers(10, 90)), int(rng.integers(10, 90)), 3), dtype=np.uint8)
              for _ in range(6)]
    crops += [np.full((20, 20, 3), (0, 0, 255), np.uint8), np.full((20, 20, 3), (255, 0, 0), np.uint8)]
    lite = MaskClassifier(tiny_model, backend="tflite")
    keras_clf = MaskClassifier(tiny_model, backend="keras")
    p_lite, p_keras = lite(crops), keras_clf(crops)
    assert p_lite.shape == p_keras.shape == (len(crops),) and p_lite.dtype == np.float32
    np.testing.assert_allclose(p_lite, p_keras, atol=1e-5)
    assert ((p_lite >= 0.5) == (p_keras >= 0.5)).all()
    assert p_lite[-2] > 0.99 and p_lite[-1] < 0.01  # BGR red crop -> "mask", blue -> "no mask": BGR->RGB done
    np.testing.assert_allclose(lite(crops[:1]), p_lite[:1], atol=1e-6)  # batch size changes are handled
    assert lite([]).shape == (0,)
    assert lite.input_size_wh == (32, 32)


# ------------------------------------------------------------------ bad input: one line, exit code 2


def _small_video(path: Path) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (64, 48))
    for i in range(3):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.release()
    return path


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("63", "no camera at index 63"),
        ("missing.mp4", "source not found: missing.mp4"),
        ("ftp://example.org/v.mp4", "unknown URL scheme 'ftp'"),
        ("TEXTFILE", "cannot read video"),
        ("EMPTYDIR", "no images"),
    ],
)
def test_bad_sources_one_line_exit_2(source: str, message: str, tmp_path: Path, capsys):
    (tmp_path / "clip.mp4").write_text("not a video\n" * 50)
    (tmp_path / "empty").mkdir()
    source = {"TEXTFILE": str(tmp_path / "clip.mp4"), "EMPTYDIR": str(tmp_path / "empty")}.get(source, source)
    rc, _, err = _run_cli(["--source", source], capsys)
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err, err
    assert "Traceback" not in err


def test_missing_model_names_the_command(tmp_path: Path, capsys):
    video = _small_video(tmp_path / "v.mp4")
    rc, _, err = _run_cli(["--source", str(video), "--set", f"classifier.model={tmp_path / 'none'}"], capsys)
    assert rc == 2 and err.count("\n") == 1
    assert "no trained model at" in err and "python -m train" in err


def test_missing_tflite_file_suggests_the_keras_backend(tmp_path: Path, capsys):
    video = _small_video(tmp_path / "v.mp4")
    card = {"format_version": 1, "input_size_wh": [32, 32], "threshold": 0.5, "files": {"keras": "m.keras"},
            "positive_class": "mask"}
    (tmp_path / "m.json").write_text(json.dumps(card))
    rc, _, err = _run_cli(["--source", str(video), "--set", f"classifier.model={tmp_path / 'm'}"], capsys)
    assert rc == 2 and "m.tflite is missing" in err and "classifier.backend=keras" in err


def test_demo_without_demo_video_says_how_to_make_it(monkeypatch: pytest.MonkeyPatch, capsys):
    monkeypatch.setattr(webcam, "DEMO_VIDEO", "demo/no_such_demo.mp4")
    rc, _, err = _run_cli(["--demo"], capsys)
    assert rc == 2 and err.count("\n") == 1
    assert "demo/no_such_demo.mp4 is missing" in err and webcam.DEMO_VIDEO_HINT in err


def test_display_without_a_screen_is_one_clear_error(tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    rc = webcam.main(["--source", str(_small_video(tmp_path / "v.mp4"))])
    err = capsys.readouterr().err
    assert rc == 2 and "no display available" in err and "--no-display" in err


# ------------------------------------------------------------------ the loop without weights


def _fake_frames(n: int, stop_after: int | None = None) -> Iterator[Frame]:
    for i in range(n):
        if stop_after is not None and i == stop_after:
            raise KeyboardInterrupt
        yield Frame(i, i / 25, np.full((48, 64, 3), i, np.uint8), "fake.mp4", 25.0)


class FakeClassifier:
    """P(mask) 0.9 for crops of even frames' first face, else 0.1; records each call's batch size."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    def __call__(self, crops):
        self.batches.append(len(crops))
        return np.array([0.9 if c.mean() % 2 == 0 and k == 0 else 0.1 for k, c in enumerate(crops)], np.float32)


def _three_faces(frame_bgr: np.ndarray) -> Faces:
    return Faces(np.array([[0, 0, 10, 10], [20, 5, 40, 30], [44, 20, 60, 44]]), np.array([0.9, 0.8, 0.7]))


def test_loop_classifies_each_frame_in_one_batch_and_counts_add_up(tmp_path: Path):
    clf = FakeClassifier()
    stats = RunStats(fps_window=3)
    with VideoSink(tmp_path / "o.mp4") as sink, JsonlLog(tmp_path / "l.jsonl") as log:
        run_loop(_fake_frames(6), Pipeline(_three_faces, clf), style=DrawStyle(), outputs=Outputs(sink, log),
                 stats=stats)
    assert clf.batches == [3] * 6
    summary = stats.summary()
    assert (summary["frames"], summary["faces"], summary["mask"], summary["no_mask"]) == (6, 18, 3, 15)
    assert summary["share_no_mask"] == pytest.approx(15 / 18, abs=1e-4)
    lines = [json.loads(s) for s in (tmp_path / "l.jsonl").read_text().splitlines()]
    assert sum(f["label"] == "mask" for rec in lines for f in rec["faces"]) == 3
    assert len(_read_video(tmp_path / "o.mp4")) == 6


def test_interrupted_run_leaves_a_playable_video_and_the_log(tmp_path: Path):
    stats = RunStats()
    out = tmp_path / "o.mp4"
    with pytest.raises(KeyboardInterrupt), VideoSink(out) as sink, JsonlLog(tmp_path / "l.jsonl") as log:
        run_loop(_fake_frames(20, stop_after=5), Pipeline(_three_faces, FakeClassifier()), style=DrawStyle(),
                 outputs=Outputs(sink, log), stats=stats)
    assert stats.frames == 5
    assert len(_read_video(out)) == 5
    assert len((tmp_path / "l.jsonl").read_text().splitlines()) == 5
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


class CtrlCDuringWrite(VideoSink):
    """A video sink that gets a real Ctrl-C (SIGINT, or SIGTERM as ``kill`` sends) while it writes frame ``at``."""

    def __init__(self, path: Path, at: int, signum: int) -> None:
        super().__init__(path)
        self.at, self.signum = at, signum

    def write(self, frame: Frame, annotated_bgr: np.ndarray) -> None:
        if frame.index == self.at:
            signal.raise_signal(self.signum)  # the handler runs here, between two bytecodes of this write
        super().write(frame, annotated_bgr)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_ctrl_c_during_a_frames_writes_stops_after_them(signum: int, tmp_path: Path):
    """A Ctrl-C that landed inside the video write (or a Ray cancel, which calls the same handler) stopped the run
    before that frame's log line: the video was a frame ahead of the log. The frame's writes now finish first, and
    the run's own handlers are back after each frame."""
    term = signal.signal(signal.SIGTERM, signal.default_int_handler)  # as detector.webcam sets it
    try:
        out = tmp_path / "o.mp4"
        with pytest.raises(KeyboardInterrupt), CtrlCDuringWrite(out, 3, signum) as sink, \
                JsonlLog(tmp_path / "l.jsonl") as log:  # fmt: skip
            run_loop(_fake_frames(20), Pipeline(_three_faces, FakeClassifier()), style=DrawStyle(),
                     outputs=Outputs(sink, log), stats=RunStats())
        assert signal.getsignal(signal.SIGINT) is signal.getsignal(signal.SIGTERM) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGTERM, term)
    assert [json.loads(s)["frame"] for s in (tmp_path / "l.jsonl").read_text().splitlines()] == [0, 1, 2, 3]
    assert len(_read_video(out)) == 4


def test_window_quits_on_q_or_esc(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    import detector.loop as loop

    shown: list[tuple[int, ...]] = []
    keys = iter([-1, -1, ord("q")])
    monkeypatch.setattr(loop.cv2, "imshow", lambda title, image: shown.append(image.shape))
    monkeypatch.setattr(loop.cv2, "waitKey", lambda ms: next(keys, -1))
    monkeypatch.setattr(loop.cv2, "destroyWindow", lambda title: None)
    monkeypatch.setenv("DISPLAY", ":0")
    stats = RunStats()
    with loop.Window() as window, JsonlLog(None) as log:
        run_loop(_fake_frames(10), Pipeline(_three_faces, FakeClassifier()), style=DrawStyle(),
                 outputs=Outputs(VideoSink(tmp_path / "unused.mp4"), log), stats=stats, show=window)
    assert stats.frames == 3 and len(shown) == 3
    for key, keep_going in ((27, False), (ord("Q"), False), (ord("a"), True), (-1, True)):
        monkeypatch.setattr(loop.cv2, "waitKey", lambda ms, key=key: key)
        assert window(np.zeros((4, 4, 3), np.uint8)) is keep_going


@pytest.mark.slow
def test_single_image_to_single_output_file(tiny_model: Path, tmp_path: Path, capsys):
    image = tmp_path / "one.png"
    cv2.imwrite(str(image), _scene(2))
    out = tmp_path / "res" / "annotated.jpg"
    rc, stdout, err = _run_cli(["--source", str(image), "--output", str(out), "--set",
                                f"classifier.model={tiny_model}"], capsys)
    assert rc == 0, err
    assert cv2.imread(str(out)).shape == (SIZE_WH[1], SIZE_WH[0], 3)
    assert "1 frame, 2 faces: 1 mask, 1 no mask" in stdout


def test_blur_faces_flag_defaults_to_all_and_config_key_otherwise():
    parser = webcam.build_parser()
    assert parser.parse_args(["--blur-faces"]).blur_faces == "all"
    assert parser.parse_args(["--blur-faces", "masked"]).blur_faces == "masked"
    assert parser.parse_args([]).blur_faces is None  # then privacy.blur decides
    assert load_config(overrides=["privacy.blur=masked"]).privacy.blur == "masked"
    with pytest.raises(ConfigError, match=r"privacy\.blur"):
        load_config(overrides=["privacy.blur=faces"])
