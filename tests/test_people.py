"""``detector.people``: one person per track id, counted once; labels, first and last seen; the summary."""

from __future__ import annotations

import numpy as np

from detector.people import People
from detector.stats import RunStats, format_summary
from maskwatch.faces import MASK, NO_MASK, UNKNOWN, Faces
from maskwatch.labels import INCORRECT, LABELS


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
    assert counts.in_view == {"no_mask": 1, "mask": 0, "incorrect": 0, "unknown": 0}  # person 1 only
    assert counts.seen == {"no_mask": 1, "mask": 1, "incorrect": 0, "unknown": 0}  # two people, not seven faces
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
    assert people.summary()["seen"] == 0 and people.counts().in_view == dict.fromkeys(LABELS, 0)
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


def test_masks_worn_wrong_are_counted_and_summed_apart():
    stats = RunStats(source="x")
    for k in range(4):  # person 0 masked, person 1 wears the mask wrong from the second frame on
        stats.people.update(_faces([0, 1], [MASK, NO_MASK if k == 0 else INCORRECT]), k / 15)
        stats.add_frame(1, int(k == 0), {"detect": 0.01}, n_incorrect=int(k > 0))
    assert stats.people.counts().in_view == {"no_mask": 0, "mask": 1, "incorrect": 1, "unknown": 0}
    assert stats.people.summary()["persons"][1]["label"] == "incorrect"
    summary = stats.summary()
    assert (summary["faces"], summary["mask"], summary["no_mask"], summary["incorrect"]) == (8, 4, 1, 3)
    assert summary["share_no_mask"] == 0.125  # of the labelled faces, masks worn wrong among them
    text = format_summary(summary)
    assert "4 frames, 8 faces: 4 mask, 1 no mask, 3 mask worn wrong (12.5% without mask)" in text
    assert "2 people seen: 1 mask, 0 no mask, 1 mask worn wrong" in text


def test_before_any_frame_nobody_is_in_view_and_times_are_rounded_to_the_millisecond():
    people = People()
    assert people.counts().in_view == dict.fromkeys(LABELS, 0) and people.summary()["seen"] == 0
    people.update(_faces([2], [MASK]), 1 / 15)
    people.update(_faces([2], [MASK]), 2 / 3)
    assert people.summary()["persons"] == [
        {"track_id": 2, "first_seen_s": 0.067, "last_seen_s": 0.667, "frames": 2, "label": "mask"}]
