"""``People``: the persons of a video run, one per track id: when first and last seen, their label, the counts.

``People.update(faces, time_s)`` once per frame with the pipeline's faces (track ids and voted labels). A person
is counted once, however many frames they are in. Their label is the last voted label that was not ``unknown``
(``unknown`` while they never had one). Faces without a track id (``NO_TRACK``, images) are not persons.
Read by the overlay (``counts``), the summary (``summary``) and the alerts (``in_view``, ``persons``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from maskwatch.faces import LABELS, NO_TRACK, UNKNOWN, Faces
from maskwatch.labels import count_labels


@dataclass
class Person:
    """One track: ``first_seen_s`` / ``last_seen_s`` (frame times), ``frames`` seen, ``label`` code, and the
    ``label_since_s`` time it has had that label (for "no_mask for N seconds")."""

    track_id: int
    first_seen_s: float
    last_seen_s: float
    label: int = UNKNOWN
    label_since_s: float = 0.0
    frames: int = 0

    def record(self) -> dict[str, Any]:
        return {"track_id": self.track_id, "first_seen_s": round(self.first_seen_s, 3),
                "last_seen_s": round(self.last_seen_s, 3), "frames": self.frames, "label": LABELS[self.label]}


@dataclass(frozen=True)
class Counts:
    """People in view now and seen so far, each by label name (``mask``, ``no_mask``, ``unknown``)."""

    in_view: dict[str, int]
    seen: dict[str, int]


class People:
    """Every person of the run by track id (see the module docstring)."""

    def __init__(self) -> None:
        self.persons: dict[int, Person] = {}
        self.in_view: list[int] = []  # track ids of the last frame, in its order

    def update(self, faces: Faces, time_s: float) -> None:
        """Count the faces of one frame taken at ``time_s``."""
        self.in_view = []
        for track_id, label in zip(faces.track_id.tolist(), faces.label.tolist(), strict=True):
            if track_id == NO_TRACK:
                continue
            person = self.persons.get(track_id)
            if person is None:
                person = self.persons[track_id] = Person(track_id, time_s, time_s, label_since_s=time_s)
            person.last_seen_s, person.frames = time_s, person.frames + 1
            if label != UNKNOWN and label != person.label:
                person.label, person.label_since_s = label, time_s
            self.in_view.append(track_id)

    def counts(self) -> Counts:
        """People in view now and seen so far, by label."""
        return Counts(count_labels([self.persons[i].label for i in self.in_view]),
                      count_labels([p.label for p in self.persons.values()]))

    def summary(self) -> dict[str, Any]:
        """Plain JSON: people seen by label, and one record per person (first and last seen, frames, final label)."""
        return {"seen": len(self.persons), "seen_by_label": self.counts().seen,
                "persons": [p.record() for p in self.persons.values()]}
