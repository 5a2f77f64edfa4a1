"""``detector.people``: one person per track id, counted once; labels, first and last seen; the summary."""

from __future__ import annotations

import numpy as np

from detector.people import People
from detector.stats import RunStats, format_summary
from maskwatch.faces import MASK, NO_MASK, UNKNOWN, Faces


def _faces(ids: list[int], labels: list[int]) -> Faces:
    boxes = [[10 * i, 0, 10 * i + 8, 8] for i in range(len(ids))]
    return Faces(np.array(boxes).reshape(-1, 4), np.ones(len(ids)), label=labels, track_id=ids)


def test_a_person_is_counted_once_with_first_last_seen_and_final_label():
    people = People()
    frames = [([0], [UNKNOWN]), ([0, 1], [MASK, UNKNOWN]), ([0, 1], [MASK, NO_MASK]), ([1], [UNKNOWN]),
              ([1], [NO_MASK])]
    for k, (ids, labels) in enumerate(frames):
        people.update(_faces(ids, labels), k * 0.5)
    counts = people.counts()
    assert counts.in_view == {"no_mask": 1, "mask": 0, "unknown": 0}  # person 1 only
    assert counts.seen == {"no_mask": 1, "mask": 1, "unknown": 0}  # two people, not seven faces
    summary = people.summary()
    assert summary["seen"] == 2
    assert summary["persons"] == [
        {"track_id": 0, "first_seen_s": 0.0, "last_seen_s": 1.0, "frames": 3, "label": "mask"},
        {"track_id": 1, "first_seen_s": 0.5, "last_seen_s": 2.0, "frames": 4, "label": "no_mask"},  # unknown kept it
    ]
    assert people.persons[1].label_since_s == 1.0  # no_mask since frame 2 (for alerts: "no_mask for N seconds")


def test_faces_without_track_ids_are_not_people_and_never_labelled_is_unknown():
    people = People()
    people.update(_faces([-1, -1], [MASK, NO_MASK]), 0.0)
    assert people.summary()["seen"] == 0 and people.counts().in_view == {"no_mask": 0, "mask": 0, "unknown": 0}
    people.update(_faces([4], [UNKNOWN]), 0.1)
    assert people.counts().seen["unknown"] == 1


def test_the_run_summary_carries_the_people():
    stats = RunStats(source="x")
    for k in range(3):
        stats.people.update(_faces([0, 1], [MASK, NO_MASK]), k / 15)
        stats.add_frame(1, 1, {"detect": 0.01})
    summary = stats.summary()
    assert summary["faces"] == 6 and summary["people"]["seen"] == 2
    assert "2 people seen: 1 mask, 1 no mask" in format_summary(summary)
