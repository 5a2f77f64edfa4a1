"""The runtime's import graph: the detector command holds no training, evaluation or research module."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("evaluation", "tensorflow", "keras", "face_detector.ssd", "face_detector.evaluate",
             "face_detector.eval_set", "face_detector.train_verifier")  # fmt: skip
PROBE = """
import json, runpy, sys
sys.argv = ["detector.webcam", "--demo", "--max-frames", "5", "--set", "paths.runs_dir=RUNS"]
try:
    runpy.run_module("detector.webcam", run_name="__main__")
except SystemExit as exc:
    assert exc.code == 0, exc.code
print("MODULES " + json.dumps(sorted(sys.modules)))
"""


def _is(module: str, name: str) -> bool:
    return module == name or module.startswith(name + ".")


def _modules_after(probe: str, tmp_path: Path, runs: int = 1) -> list[str]:
    """``sys.modules`` at the end of the last of ``runs`` fresh processes running ``probe``."""
    for _ in range(runs):
        proc = subprocess.run([sys.executable, "-c", probe.replace("RUNS", str(tmp_path))], cwd=ROOT,
                              capture_output=True, text=True, timeout=300)  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("MODULES "))
    return json.loads(line.removeprefix("MODULES "))


@pytest.mark.slow
def test_the_detector_command_imports_no_training_evaluation_or_research_code(tmp_path: Path):
    modules = _modules_after(PROBE, tmp_path)
    assert "detector.pipeline" in modules and "detector.tracking" in modules  # the probe ran the real loop
    assert [m for m in modules if any(_is(m, name) for name in FORBIDDEN)] == []
    assert [m for m in modules if _is(m, "train")] == []


LAZY = ("onnx", "av", "aiohttp", "paho", "urllib.request", "detector.alerts", "detector.web")
LEAN_PROBE = """
import json, runpy, sys
sys.argv = ["detector.webcam", "--source", "demo/crowd.mp4", "--no-display", "--max-frames", "2", "--quiet",
            "--set", "paths.runs_dir=RUNS"]
try:
    runpy.run_module("detector.webcam", run_name="__main__")
except SystemExit as exc:
    assert exc.code == 0, exc.code
print("MODULES " + json.dumps(sorted(sys.modules)))
"""


@pytest.mark.slow
def test_a_plain_video_run_imports_only_what_it_uses(tmp_path: Path):
    """No video written, no alerts, no web view: no PyAV, aiohttp, paho, urllib; CenterFace's graph from the cache
    (the first run makes it with onnx, the second imports no onnx)."""
    modules = _modules_after(LEAN_PROBE, tmp_path, runs=2)
    assert "detector.pipeline" in modules and "onnxruntime" in modules  # the probe ran the real loop
    assert [m for m in modules if any(_is(m, name) for name in LAZY)] == []
