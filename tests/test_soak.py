"""The soak command on a short looping local stream: samples, summary and plot."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from evaluation.soak import main, summarize


def test_summary_measures_growth_after_warm_up():
    samples = [{"t_s": t, "rss_mb": rss, "threads": 7, "open_files": 6 + (t > 50), "frames": t, "fps": 10.0}
               for t, rss in ((10, 500.0), (60, 280.0), (120, 282.8))]
    summary = summarize(samples, warmup_s=60)
    assert summary["rss_warm_mb"] == 280.0 and summary["rss_growth_pct"] == 1.0
    assert summary["open_files_min_max"] == [6, 7] and summary["fps_mean"] == 10.0


@pytest.mark.slow
@pytest.mark.parametrize("matplotlib", [True, False])
def test_soak_runs_the_detector_on_a_looping_stream(tmp_path: Path, capsys, monkeypatch, matplotlib: bool):
    find_spec = importlib.util.find_spec
    if not matplotlib:  # the base install: soak.json without its plot, no traceback
        monkeypatch.setattr(importlib.util, "find_spec",
                            lambda name, *a: None if name == "matplotlib" else find_spec(name, *a))
    video = tmp_path / "short.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 15.0, (160, 120))
    for i in range(15):  # one second, looped by the server
        writer.write(np.full((120, 160, 3), i * 10, np.uint8))
    writer.release()
    out = tmp_path / "soak"
    assert main(["--source", str(video), "--minutes", "0.2", "--every-s", "3", "--out", str(out)]) == 0
    result = json.loads((out / "soak.json").read_text())
    assert len(result["samples"]) >= 3
    assert all(s["rss_mb"] > 50 and s["threads"] >= 2 and s["open_files"] >= 3 for s in result["samples"])
    assert result["samples"][-1]["frames"] > 15  # it looped
    assert result["summary"]["threads_min_max"][0] >= 2
    assert (out / "soak.png").stat().st_size > 1000 if matplotlib else not (out / "soak.png").exists()
