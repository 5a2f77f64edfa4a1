from __future__ import annotations

import pytest

from detector.stats import RunStats, format_summary
from maskwatch.faces import NO_MASK, Faces


def test_a_run_whose_faces_are_all_unknown_says_none_is_labelled_not_that_none_was_seen():
    stats = RunStats(source="x")
    stats.add_frame(0, 0, {"detect": 0.01}, n_unknown=4)
    assert format_summary(stats.summary()).splitlines()[0] == (
        "1 frame, 4 faces: 0 mask, 0 no mask, 4 unknown (no face labelled yet)")
    empty = RunStats(source="x")
    empty.add_frame(0, 0, {"detect": 0.01})
    assert format_summary(empty.summary()).splitlines()[0] == "1 frame, 0 faces: 0 mask, 0 no mask (no face seen)"


def _faces(ids: list[int], labels: list[int]) -> Faces:
    return Faces([[10 * i, 0, 10 * i + 8, 8] for i in range(len(ids))], [1.0] * len(ids), label=labels, track_id=ids)


def test_counts_timings_fps_and_their_summary():
    stats = RunStats(source="clip.mp4", fps_window=2)
    assert stats.smoothed_fps() is None
    stats.add_frame(2, 1, {"read": 0.01, "detect": 0.03, "classify": 0.01}, n_unknown=1, n_incorrect=1)  # 20 FPS
    stats.add_frame(0, 1, {"detect": 0.08, "draw": 0.02})  # 10 FPS
    stats.add_frame(1, 0, {"write": 0.2, "bogus": 5.0})  # 5 FPS; a stage not in STAGES is not timed
    assert stats.smoothed_fps() == pytest.approx(2 / 0.3)  # over the last fps_window frames
    s = stats.summary()
    assert (s["source"], s["frames"], s["faces"], s["mask"], s["no_mask"], s["unknown"], s["incorrect"]) == (
        "clip.mp4", 3, 7, 3, 2, 1, 1)
    assert s["share_no_mask"] == 0.3333  # 2 of the 6 labelled faces
    assert (s["fps_mean"], s["fps_median"]) == (8.57, 10.0)  # 3 frames in 0.35 s; median of 20, 10, 5
    assert s["stage_ms"] == {"read": 3.33, "detect": 36.67, "classify": 3.33, "draw": 6.67, "write": 66.67}
    assert format_summary(s).splitlines() == [
        "3 frames, 7 faces: 3 mask, 2 no mask, 1 mask worn wrong, 1 unknown (33.3% without mask)",
        "8.6 FPS mean, 10.0 median; ms per frame: read 3.3, detect 36.7, classify 3.3, draw 6.7, write 66.7"]  # nobody


def test_one_frame_is_its_own_mean_and_untimed_frames_have_no_fps():
    one = RunStats()
    one.add_frame(1, 0, {"detect": 0.003})
    assert one.summary()["stage_ms"]["detect"] == 3.0 and one.smoothed_fps() == pytest.approx(1000 / 3)
    assert (one.summary()["fps_mean"], one.summary()["fps_median"]) == (333.33, 333.33)
    untimed = RunStats()
    untimed.add_frame(1, 0, {})
    assert untimed.smoothed_fps() is None and untimed.frame_fps == []
    s = untimed.summary()
    assert (s["fps_mean"], s["fps_median"]) == (None, None)
    assert format_summary(s).splitlines()[1] == (
        "no timing; ms per frame: read 0.0, detect 0.0, classify 0.0, draw 0.0, write 0.0")
    none = RunStats().summary()
    assert (none["frames"], none["share_no_mask"], none["fps_mean"]) == (0, None, None)
    assert set(none["stage_ms"].values()) == {0.0}


def test_summary_lines_for_one_person_and_skipped_images():
    stats = RunStats(source="photos")
    stats.people.update(_faces([3], [NO_MASK]), 0.0)
    stats.add_frame(0, 1, {"detect": 0.01})
    stats.skipped.append("a.jpg")
    lines = format_summary(stats.summary()).splitlines()
    assert lines[2:] == ["1 person seen: 0 mask, 1 no mask", "1 unreadable image skipped"]
    stats.skipped.append("b.jpg")
    assert format_summary(stats.summary()).splitlines()[3] == "2 unreadable images skipped"
