"""Many sources: one worker per source, per-source outputs, a combined summary; the Ray engine gives the same logs.

The end-to-end tests run the shipped models (CenterFace + the shipped classifier, no TensorFlow) on the first frames
of copies of the demo video.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from detector import batch, cluster, webcam
from detector.batch import Result, combine, expand_sources, format_combined, is_batch, source_names, thread_overrides
from detector.cluster import model_files, unpack
from maskwatch.config import PROJECT_ROOT, load_config
from maskwatch.errors import UserError

CFG = load_config()
N_FRAMES = 8


def _touch(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def test_expand_sources_globs_and_folders_of_videos(tmp_path: Path):
    videos = tmp_path / "videos"
    videos.mkdir()
    a, b = _touch(videos / "b.mp4"), _touch(videos / "a.MOV")
    _touch(videos / "notes.txt")
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "x.png"), np.zeros((4, 4, 3), np.uint8))
    assert expand_sources([str(videos)]) == [str(b), str(a)]  # sorted: a.MOV, b.mp4
    assert expand_sources([str(videos / "*.mp4"), "0"]) == [str(a), "0"]
    assert expand_sources([str(photos)]) == [str(photos)]  # an image folder is one source
    assert is_batch([str(videos)]) and is_batch(["a.mp4", "b.mp4"])
    assert not is_batch([str(photos)]) and not is_batch(["clip.mp4"]) and not is_batch(None)
    with pytest.raises(Exception, match="matches no file"):
        expand_sources([str(tmp_path / "*.avi")])


def test_source_names_are_unique_folder_names():
    assert source_names(["x/clip.mp4", "y/clip.mp4", "0", "rtsp://cam/s", "clip.avi"]) == [
        "clip", "clip-2", "camera0", "stream4", "clip-3"]


def test_threads_are_split_between_workers_unless_set():
    assert thread_overrides(2, [], cpus=2) == ("face_detector.threads=1", "classifier.threads=1")
    assert thread_overrides(1, ["classifier.threads=3"], cpus=4) == ("classifier.threads=3", "face_detector.threads=4")


@pytest.mark.parametrize("engine", ["local", "ray"])
def test_zero_workers_is_one_line_before_anything_runs(engine: str, tmp_path: Path, capsys):
    """``--workers 0`` once meant all CPUs locally and a Ray instance with no CPU (a hang)."""
    a, b = _touch(tmp_path / "a.mp4"), _touch(tmp_path / "b.mp4")
    rc = webcam.main(["--source", str(a), "--source", str(b), "--workers", "0", "--engine", engine, "--no-display",
                      "--run-dir", str(tmp_path / "run"), "--quiet"])
    assert rc == 2 and capsys.readouterr().err == "error: --workers must be at least 1, got 0\n"
    assert not (tmp_path / "run").exists()


def test_batch_outputs_are_checked_like_a_single_runs_before_anything_runs(tmp_path: Path, capsys):
    """Two outputs with one name once lost the log (the summary replaced it), and a second run into the same
    ``--run-dir`` replaced the first one's files without ``--overwrite``."""
    a, b = _touch(tmp_path / "a.mp4"), _touch(tmp_path / "b.mp4")
    run_dir = tmp_path / "run"
    argv = ["--source", str(a), "--source", str(b), "--no-display", "--run-dir", str(run_dir), "--quiet"]
    assert webcam.main([*argv, "--log", "r.jsonl", "--summary", "r.jsonl"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --summary ") and "is the same file as --log" in err and err.count("\n") == 1
    assert not run_dir.exists()
    (run_dir / "b").mkdir(parents=True)
    (run_dir / "b" / "log.jsonl").write_text("kept\n")
    assert webcam.main(argv) == 2
    err = capsys.readouterr().err
    assert err == f"error: --log {run_dir / 'b' / 'log.jsonl'} exists: add --overwrite to replace it, or choose " \
                  "another file name\n"
    assert (run_dir / "b" / "log.jsonl").read_text() == "kept\n" and not (run_dir / "a").exists()


def test_blur_faces_reaches_every_source(tmp_path: Path):
    """``--blur-faces`` was silently dropped by a batch: its videos showed every face."""
    args = webcam.build_parser().parse_args(["--source", "a.mp4", "--source", "b.mp4", "--blur-faces", "masked",
                                             "--set", "draw.thickness_px=3", "--run-dir", str(tmp_path)])  # fmt: skip
    _, jobs = batch.plan_jobs(args, CFG, workers=2)
    for job in jobs:
        cfg = load_config(job.config, job.overrides)
        assert cfg.privacy.blur == "masked" and "draw.thickness_px=3" in job.overrides
    args = webcam.build_parser().parse_args(["--source", "a.mp4", "--source", "b.mp4", "--run-dir", str(tmp_path)])
    assert all(load_config(j.config, j.overrides).privacy.blur == CFG.privacy.blur
               for j in batch.plan_jobs(args, CFG, workers=2)[1])


@pytest.mark.parametrize(("flags", "message"), [
    (["--serve", "8099"], "--serve (web.serve) works with one source, not a batch"),
    (["--alerts"], "--alerts (alerts.enabled) works with one source, not a batch"),
    (["--set", "alerts.enabled=true"], "--alerts (alerts.enabled) works with one source, not a batch"),
])
def test_a_batch_refuses_the_live_view_and_alerts(flags: list[str], message: str, capsys):
    """They were silently ignored: no web view, no alert, no word."""
    from maskwatch.cli import run

    assert run(webcam._main, ["--source", "a.mp4", "--source", "b.mp4", "--no-display", *flags]) == 2
    assert capsys.readouterr().err == f"error: {message}: run that source on its own\n"


def test_combined_summary_totals_and_one_line_per_failure():
    ok = {"frames": 10, "faces": 6, "mask": 1, "no_mask": 3, "unknown": 2, "incorrect": 0, "fps_mean": 5.0}
    results = [Result("a", "a.mp4", "/r/a", summary=ok), Result("b", "b.mp4", "/r/b", error="source not found: b.mp4")]
    combined = combine(results, wall_s=4.0)
    assert combined["total"] == {"frames": 10, "faces": 6, "mask": 1, "no_mask": 3, "unknown": 2, "incorrect": 0,
                                 "share_no_mask": 0.75, "sources": 2, "failed": 1, "interrupted": 0, "wall_s": 4.0,
                                 "fps": 2.5}
    lines = format_combined(combined).splitlines()
    assert lines[1] == "b: error: source not found: b.mp4"
    assert lines[2].startswith("total: 2 sources (1 failed), 10 frames")


def test_interrupted_sources_are_counted_apart_from_failed_ones():
    """A Ctrl-C'd source was counted as failed: 'total: 3 sources (3 failed)' after a Ctrl-C and one bad source."""
    part = {"frames": 10, "faces": 6, "mask": 1, "no_mask": 3, "unknown": 2, "incorrect": 0, "fps_mean": 5.0}
    results = [Result("a", "a.mp4", "/r/a", error="source not found: a.mp4"),
               Result("b", "b.mp4", "/r/b", summary=part, error="interrupted"),
               Result("c", "c.mp4", "/r/c", error="interrupted")]
    combined = combine(results, wall_s=4.0)
    assert (combined["total"]["failed"], combined["total"]["interrupted"]) == (1, 2)
    assert [r["error"] for r in combined["sources"]] == ["source not found: a.mp4", "interrupted", "interrupted"]
    lines = format_combined(combined).splitlines()
    assert lines[1:3] == ["b: interrupted (after 10 frames, 6 faces (1 mask, 3 no mask), 5.0 FPS)", "c: interrupted"]
    assert lines[3].startswith("total: 3 sources (1 failed, 2 interrupted), 10 frames")


def test_shipped_model_files_load_from_their_copy(tmp_path: Path):
    from detector.classifier import MaskClassifier

    files = model_files(CFG)
    overrides = unpack(files, tmp_path)
    assert unpack(files, tmp_path) == overrides
    cfg = load_config(None, overrides)
    assert cfg.resolve_path(cfg.face_detector.onnx).read_bytes() == files["face_detector.onnx"][1]
    assert cfg.classifier_stem().parent != CFG.classifier_stem().parent
    crops = [np.full((40, 40, 3), 120, np.uint8)]
    assert MaskClassifier.from_config(cfg)(crops) == pytest.approx(MaskClassifier.from_config(CFG)(crops))


def test_every_worker_of_a_node_shares_one_copy_of_the_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Each Ray worker process wrote the models (17 MB) to a new temporary folder and never removed it: 280 folders,
    4.5 GB in /tmp on the development machine. Now one folder per set of files, in the user cache."""
    files = {"a": ("one.bin", b"1" * 10), "b": ("two.bin", b"2" * 10)}
    overrides = unpack(files, tmp_path)
    monkeypatch.setattr(cluster, "_UNPACKED", set())  # another worker process
    (folder,) = (tmp_path / "ray-models").iterdir()
    (folder / "two.bin").write_bytes(b"torn")  # a copy damaged since: written again
    assert unpack(files, tmp_path) == overrides == (f"a={folder / 'one.bin'}", f"b={folder / 'two.bin'}")
    assert list((tmp_path / "ray-models").iterdir()) == [folder] and (folder / "two.bin").read_bytes() == b"2" * 10
    assert sorted(p.name for p in folder.iterdir()) == ["one.bin", "two.bin"]  # no temporary file left


def test_model_copies_no_worker_used_for_a_week_are_removed(tmp_path: Path):
    parent = tmp_path / "ray-models"
    old, recent = parent / "old", parent / "recent"
    for folder in (old, recent):
        folder.mkdir(parents=True)
        (folder / "m.bin").write_bytes(b"x")
    week_ago = time.time() - (cluster.KEEP_UNUSED_DAYS + 1) * 86400
    os.utime(old, (week_ago, week_ago))
    unpack({"a": ("m.bin", b"new")}, tmp_path)
    names = {p.name for p in parent.iterdir()}
    assert len(names) == 2 and "recent" in names and "old" not in names  # and the new set's folder
    os.utime(recent, (week_ago, week_ago))
    cluster.remove_unused(parent, keep=recent)  # the folder in use stays, however old
    assert recent.is_dir()


def test_a_node_that_cannot_write_the_models_fails_its_sources_in_one_line(tmp_path: Path):
    blocked = tmp_path / "file"
    blocked.write_bytes(b"")  # the cache folder's place is taken by a file
    job = batch.Job("cam", "cam.mp4", str(tmp_path / "out"), overrides=(f"paths.cache_dir={blocked}",))
    result = cluster.run_shipped(job, {"a": ("m.bin", b"x")})
    assert result.error.startswith(f"cannot write the batch's model files to {blocked / 'ray-models'}")
    assert "\n" not in result.error and result.summary is None


@pytest.mark.parametrize(("address", "preset", "mode"), [(None, None, "token"), (None, "disabled", "disabled"),
                                                      ("auto", None, None)])
def test_a_local_ray_instance_gets_token_authentication_without_rays_warning(
        address: str | None, preset: str | None, mode: str | None, monkeypatch: pytest.MonkeyPatch):  # fmt: skip
    """Ray 2.59+ warned 'Token authentication is enabled for this Ray cluster. Set RAY_AUTH_MODE=disabled to opt
    out' on every local batch: it warns only when RAY_AUTH_MODE is unset. A cluster (--ray-address) keeps the
    user's setting and Ray's own warnings (the one that auth is off is a real one)."""
    seen = {}

    def init(**kwargs: object) -> None:
        seen["mode"] = os.environ.get("RAY_AUTH_MODE")
        raise ConnectionError("stop here")

    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    if preset:
        monkeypatch.setenv("RAY_AUTH_MODE", preset)
    monkeypatch.setitem(sys.modules, "ray", type(sys)("ray"))
    monkeypatch.setattr(sys.modules["ray"], "init", init, raising=False)
    from detector.cluster import run_ray

    with pytest.raises(UserError, match="cannot connect to Ray"):
        run_ray([], CFG, address=address, workers=1, on_done=lambda r: None)
    assert seen["mode"] == mode


def test_ctrl_c_stops_the_running_job_once_and_ends_queued_jobs_at_once(monkeypatch: pytest.MonkeyPatch):
    """A worker that had seen Ctrl-C once ran the job queued behind the interrupted one to its end."""
    monkeypatch.setattr(batch, "_WORKER", {"running": True, "stopping": False})
    with pytest.raises(KeyboardInterrupt):
        batch._stop_on_sigint(signal.SIGINT, None)
    batch._stop_on_sigint(signal.SIGINT, None)  # the second one (passed on by the driver) lets the files close
    result = batch.run_job(batch.Job("a", "missing.mp4", "/nonexistent/a"))
    assert result.error == "interrupted" and result.summary is None


# ---------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("clips")
    return [Path(shutil.copy(PROJECT_ROOT / "demo" / "demo.mp4", folder / f"cam{i}.mp4")) for i in (1, 2)]


def _logs(run_dir: Path, names: list[str], log_name: str) -> dict[str, str]:
    return {name: (run_dir / name / log_name).read_text() for name in names}


@pytest.mark.slow
def test_batch_runs_every_source_and_matches_single_runs(clips: list[Path], tmp_path: Path, capsys):
    run_dir = tmp_path / "run"
    argv = [a for c in clips for a in ("--source", str(c))] + ["--source", str(tmp_path / "missing.mp4"),
           "--workers", "2", "--max-frames", str(N_FRAMES), "--run-dir", str(run_dir), "--log", "log.csv", "--quiet"]
    rc = webcam.main(argv)
    out, err = capsys.readouterr()
    assert rc == 2  # one source failed, the others ran
    assert "error: missing (" in err and "source not found" in err
    combined = json.loads((run_dir / "summary.json").read_text())
    assert [s["name"] for s in combined["sources"]] == ["cam1", "cam2", "missing"]
    assert combined["total"]["frames"] == 2 * N_FRAMES and combined["total"]["failed"] == 1
    for name in ("cam1", "cam2"):
        assert sorted(p.name for p in (run_dir / name).iterdir()) == ["annotated.mp4", "log.csv", "summary.json"]
        assert json.loads((run_dir / name / "summary.json").read_text())["frames"] == N_FRAMES
    assert "total: 3 sources (1 failed)" in out
    batch_logs = _logs(run_dir, ["cam1", "cam2"], "log.csv")
    for clip in clips:  # the single-source run (2 threads) writes the same log as its batch worker (1 thread)
        single = tmp_path / f"{clip.stem}.csv"
        assert webcam.main(["--source", str(clip), "--no-display", "--quiet", "--max-frames", str(N_FRAMES),
                            "--log", str(single)]) == 0
        rows = batch_logs[clip.stem].splitlines()
        assert len(rows) > N_FRAMES and single.read_text() == batch_logs[clip.stem]


@pytest.mark.slow
def test_ray_engine_gives_the_local_engines_logs(clips: list[Path], tmp_path: Path):
    pytest.importorskip("ray", reason="the cluster extra: pip install -e '.[cluster]'")
    runs = {}
    ray_tmp = Path(tempfile.mkdtemp(prefix="mw"))  # short: Ray's socket paths must stay under ~107 characters
    for engine in ("local", "ray"):
        run_dir = tmp_path / engine
        argv = [a for c in clips for a in ("--source", str(c))] + [
            "--engine", engine, "--workers", "2", "--max-frames", str(N_FRAMES), "--run-dir", str(run_dir)]
        env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "RAY_USAGE_STATS_ENABLED": "0",
               "XDG_CACHE_HOME": str(tmp_path / "cache"), "TMPDIR": str(ray_tmp)}
        proc = subprocess.run([sys.executable, "-m", "detector.webcam", *argv], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "Token authentication" not in proc.stderr, proc.stderr  # Ray's warning on every local instance
        runs[engine] = _logs(run_dir, ["cam1", "cam2"], "log.jsonl")
        assert json.loads((run_dir / "summary.json").read_text())["total"]["frames"] == 2 * N_FRAMES
    assert runs["ray"] == runs["local"]
    assert len(list((tmp_path / "cache" / "maskwatch" / "ray-models").iterdir())) == 1  # 2 workers, one model copy
    left = sorted(p.name for p in (ray_tmp / "ray").iterdir())
    shutil.rmtree(ray_tmp, ignore_errors=True)
    assert not [name for name in left if name.startswith("session_")], left  # Ray's logs of the run: removed


def test_a_local_ray_sessions_folder_and_its_latest_link_are_removed(tmp_path: Path):
    ray_tmp = tmp_path / "ray"
    old, done = ray_tmp / "session_2026-12-01_old", ray_tmp / "session_2026-12-07_done"
    for folder in (old, done):
        (folder / "logs").mkdir(parents=True)
    (ray_tmp / "session_latest").symlink_to(done)
    cluster.remove_session(done)
    assert sorted(p.name for p in ray_tmp.iterdir()) == [old.name]  # another run's folder is not this run's to remove
    (ray_tmp / "session_latest").symlink_to(old)
    cluster.remove_session(tmp_path)  # not a session folder: nothing removed
    cluster.remove_session(done)
    assert sorted(p.name for p in ray_tmp.iterdir()) == [old.name, "session_latest"]


@pytest.mark.slow
def test_batch_benchmark_compares_worker_counts(capsys):
    from evaluation import batch as bench

    assert bench.main(["--copies", "2", "--workers", "1", "2", "--max-frames", "3"]) == 0
    out = capsys.readouterr().out
    assert "2 worker(s): median" in out and "speed-up" in out and "logs identical across runs: yes" in out


def _long_clip(path: Path, repeats: int) -> Path:
    cap = cv2.VideoCapture(str(PROJECT_ROOT / "demo" / "demo.mp4"))
    frames = []
    while (got := cap.read())[0]:
        frames.append(got[1])
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 15.0, frames[0].shape[1::-1])
    for frame in frames * repeats:
        writer.write(frame)
    writer.release()
    return path


@pytest.mark.slow
@pytest.mark.parametrize(("engine", "signum"), [("local", signal.SIGINT), ("local", signal.SIGTERM),
                                               ("ray", signal.SIGINT)])  # fmt: skip
def test_sigint_or_sigterm_stops_a_batch_at_once_with_its_outputs_and_summary(engine: str, signum: int,
                                                                              tmp_path: Path):  # fmt: skip
    """SIGINT to the batch once waited for every running and queued source to finish (~25 s for 3 long clips on 2
    workers), then wrote no combined summary; SIGTERM killed the driver at once and left its workers running; with
    Ray, the tasks were killed (videos left under their temporary names) and no summary was written."""
    if engine == "ray":
        pytest.importorskip("ray", reason="the cluster extra: pip install -e '.[cluster]'")
    clip = _long_clip(tmp_path / "long.mp4", repeats=4)
    clips = [shutil.copy(clip, tmp_path / f"cam{i}.mp4") for i in (1, 2, 3)]
    run_dir = tmp_path / "run"
    argv = [a for c in clips for a in ("--source", str(c))] + ["--workers", "2", "--run-dir", str(run_dir), "--quiet",
                                                               "--engine", engine]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "RAY_USAGE_STATS_ENABLED": "0",
           "XDG_CACHE_HOME": str(tmp_path / "cache")}
    proc = subprocess.Popen([sys.executable, "-m", "detector.webcam", *argv], cwd=tmp_path, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # also run in background
    logs = [run_dir / name / "log.jsonl" for name in ("cam1", "cam2")]  # both running sources under way
    deadline = time.monotonic() + 120
    while not all(log.exists() and log.read_text().count("\n") >= 10 for log in logs) and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signum)  # the driver only: its workers are told by it
    t0 = time.monotonic()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and time.monotonic() - t0 < 10, (proc.returncode, err[-2000:])
    assert "total: 3 sources (0 failed, 3 interrupted)" in out
    assert err.strip().splitlines()[-1] == "interrupted" and "Traceback" not in err
    combined = json.loads((run_dir / "summary.json").read_text())
    assert [s["error"] for s in combined["sources"]] == ["interrupted"] * 3
    assert (combined["total"]["failed"], combined["total"]["interrupted"]) == (0, 3)
    for name in ("cam1", "cam2"):  # the interrupted sources keep their whole outputs
        lines = (run_dir / name / "log.jsonl").read_text().splitlines()
        assert 0 < len(lines) < 4 * 150 and json.loads(lines[-1])
        frames = int(cv2.VideoCapture(str(run_dir / name / "annotated.mp4")).get(cv2.CAP_PROP_FRAME_COUNT))
        assert frames == len(lines)  # a frame's video frame and log line go together (maskwatch.interrupts.held)
    assert not (run_dir / "cam3").exists()
