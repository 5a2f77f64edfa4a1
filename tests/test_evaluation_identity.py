"""``evaluation.identity``: the identity, flicker and count scores on hand-made sequences; the walk's truth."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation import identity
from evaluation.identity import Truth, assign_by_iou, position, score, walk_video
from maskwatch.faces import MASK, NO_MASK, UNKNOWN, Faces

BOX_A, BOX_B = [0, 0, 40, 40], [100, 0, 140, 40]


def _faces(ids: list[int], labels: list[int]) -> Faces:
    return Faces(np.array([BOX_A, BOX_B][: len(ids)]), np.ones(len(ids)), label=labels, track_id=ids)


def test_switches_fragments_flicker_and_counts():
    truth = Truth(np.array([0, 1]), np.array([BOX_A, BOX_B]))
    # person 0 keeps id 5; person 1 is id 6, then 7 (one switch, one fragment); person 0 flips mask -> no_mask once
    predicted = [_faces([5, 6], [UNKNOWN, NO_MASK]), _faces([5, 6], [MASK, NO_MASK]),
                 _faces([5, 7], [NO_MASK, NO_MASK]), _faces([5, 7], [NO_MASK, UNKNOWN])]  # fmt: skip
    assigned = [assign_by_iou(truth, p) for p in predicted]
    assert assigned[0] == {0: 0, 1: 1}
    s = score(assigned, predicted, {0: "mask", 1: "no_mask"}, fps=1.0, times_s=[0, 1, 2, 3])
    assert (s["id_switches"], s["fragments"], s["label_flips"]) == (1, 1, 1)
    assert s["flicker_per_person_min"] == round(1 / (8 / 60), 2)  # 8 person-frames at 1 fps
    assert s["people_counted"] == 3 and s["true_people"] == 2  # the fragment counts as a third person
    assert s["label_right"] == round(4 / 8, 3) and s["label_unknown"] == round(2 / 8, 3)


def test_walk_truth_follows_the_walkers_and_hides_covered_faces():
    image = np.full((200, 200, 3), 128, np.uint8)
    people = [(image, np.array([50, 50, 150, 150]), "mask"), (image, np.array([50, 50, 150, 150]), "no_mask")]
    walks = ((50, ((0, 0, 0), (9, 90, 0))), (50, ((0, 300, 0), (9, 300, 0))))
    frames, truths = walk_video(people, np.zeros((48, 64, 3), np.uint8), walks, n_frames=10)
    assert len(frames) == 10 and frames[0].shape == (480, 640, 3)
    assert truths[0].ids.tolist() == [0, 1]
    np.testing.assert_array_equal(truths[0].xyxy[0], [12, 12, 62, 62])  # 25 px of margin at this scale
    assert position(walks[0][1], 10) is None
    covering = ((50, ((0, 300, 0), (9, 300, 0))), (50, ((0, 300, 0), (9, 300, 0))))  # the second in front
    _, hidden = walk_video(people, np.zeros((48, 64, 3), np.uint8), covering, n_frames=1)
    assert hidden[0].ids.tolist() == [1]



def test_help_gives_the_whole_first_paragraph_not_half_a_sentence(capsys):
    with pytest.raises(SystemExit):
        identity.main(["--help"])
    first = " ".join(identity.__doc__.split("\n\n")[0].split())
    assert first in " ".join(capsys.readouterr().out.split())
