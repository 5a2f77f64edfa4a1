"""Per-frame recall on mosaic demo videos (``evaluation.video``): pure helpers and a tracked replay."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation import video
from evaluation.video import face_present, label_summary, main, replay, summarize, tile_hits
from maskwatch.faces import MASK, NO_MASK, UNKNOWN, Faces

META = {  # 2 x 1 mosaic of 200 x 100: tile 0 masked, tile 1 has no face from frame 2 on
    "mosaic_cols_rows": [2, 1],
    "tiles": [
        {"path": "a.mp4", "start_s": 0.0, "masked": True},
        {"path": "feat/tests/data/face_noface.mov", "start_s": 0.0, "masked": False},
    ],
}


def test_tile_hits_by_box_centre_and_extra_boxes():
    boxes = np.array([[10, 10, 50, 60], [60, 20, 90, 80], [150, 10, 190, 90]])  # two in tile 0, one in tile 1
    hit, extra = tile_hits(boxes, (2, 1), (200, 100))
    assert hit.tolist() == [True, True] and extra == 1
    hit, extra = tile_hits(np.array([[90, 0, 130, 40]]), (2, 1), (200, 100))  # centre x 110: tile 1
    assert hit.tolist() == [False, True] and extra == 0
    assert tile_hits(np.zeros((0, 4)), (2, 1), (200, 100))[0].tolist() == [False, False]


def test_face_present_and_summary(monkeypatch):
    import evaluation.video as vr

    monkeypatch.setattr(vr, "NO_FACE_FROM", {("feat/tests/data/face_noface.mov", 0.0): 2})
    assert face_present(META, 3).tolist() == [[True, True], [True, True], [True, False]]
    tile0, tile1 = [20, 20, 60, 80], [120, 20, 160, 80]
    boxes = [np.array([tile0, tile1]), np.array([tile1]), np.array([tile0, tile1])]
    s = summarize(boxes, META, (200, 100))
    # masked tile found on frames 0 and 2 (2/3); unmasked tile on frames 0, 1 (present), frame 2 a box without face
    assert (s["recall_mask"], s["recall_no_mask"], s["recall"]) == (0.667, 1.0, 0.8)
    assert (s["extra_boxes"], s["boxes_without_face"]) == (0, 1)


def test_label_summary_counts_faces_right_by_their_tile(monkeypatch):
    import evaluation.video as vr

    monkeypatch.setattr(vr, "NO_FACE_FROM", {("feat/tests/data/face_noface.mov", 0.0): 1})

    def faces(boxes, labels):
        n = len(boxes)
        return Faces(np.array(boxes, np.int32).reshape(n, 4), np.ones(n, np.float32), np.full(n, 0.5, np.float32),
                     np.array(labels, np.int8))  # fmt: skip

    tile0, tile1 = [20, 20, 60, 80], [120, 20, 160, 80]
    frames = [faces([tile0, tile1], [MASK, MASK]),  # tile 0 masked: right; tile 1 unmasked: wrong
              faces([tile0, tile1], [UNKNOWN, NO_MASK])]  # frame 1: tile 1 has no face, its box is not counted
    assert label_summary(frames, META, (200, 100)) == {"mask": [1, 2, 1], "no_mask": [0, 1, 0]}


def test_replay_coasts_a_missed_face():
    frames = [np.full((100, 200, 3), 100, np.uint8) for _ in range(6)]
    for f in frames:
        f[20:80, 20:80] = np.kron(np.random.default_rng(0).integers(0, 255, (6, 6, 3), dtype=np.uint8),
                                  np.ones((10, 10, 1), np.uint8))  # fmt: skip
    face = Faces(np.array([[20, 20, 80, 80]], np.int32), np.array([0.9], np.float32))
    detections = [face, face, face, Faces.empty(), Faces.empty(), Faces.empty()]
    without = replay(frames, detections, detect_every=3, max_missed=0)
    with_coasting = replay(frames, detections, detect_every=3, max_missed=1)
    assert [len(b) for b in without] == [1, 1, 1, 0, 0, 0]
    assert [len(b) for b in with_coasting] == [1, 1, 1, 1, 1, 1]


def test_bad_arguments_are_one_line_errors(tmp_path, capsys):
    video = tmp_path / "v.mp4"
    video.write_bytes(b"")
    assert main([str(video), "--max-missed", "x"]) == 2
    assert "--max-missed" in capsys.readouterr().err
    assert main([str(video)]) == 2
    assert "v.json not found" in capsys.readouterr().err


def test_a_missing_labels_model_fails_before_any_work(capsys):
    from pathlib import Path

    demo = Path(__file__).resolve().parents[1] / "demo" / "demo.mp4"
    assert main([str(demo), "--labels", "no_such_model"]) == 2
    captured = capsys.readouterr()
    assert "no trained model" in captured.err and "| video |" not in captured.out


def test_help_gives_the_whole_first_paragraph_not_half_a_sentence(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    first = " ".join(video.__doc__.split("\n\n")[0].split())
    assert first in " ".join(capsys.readouterr().out.split())
