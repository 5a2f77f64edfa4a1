from __future__ import annotations

from detector.stats import RunStats, format_summary


def test_a_run_whose_faces_are_all_unknown_says_none_is_labelled_not_that_none_was_seen():
    stats = RunStats(source="x")
    stats.add_frame(0, 0, {"detect": 0.01}, n_unknown=4)
    assert format_summary(stats.summary()).splitlines()[0] == (
        "1 frame, 4 faces: 0 mask, 0 no mask, 4 unknown (no face labelled yet)")
    empty = RunStats(source="x")
    empty.add_frame(0, 0, {"detect": 0.01})
    assert format_summary(empty.summary()).splitlines()[0] == "1 frame, 0 faces: 0 mask, 0 no mask (no face seen)"
