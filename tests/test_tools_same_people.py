"""tools/same_people.py: one person found on both sides, strangers not paired, bad input one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import pytest

pytest.importorskip("dlib")
skimage_data = pytest.importorskip("skimage.data")

from tools import same_people  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
GROUP_PHOTO = ROOT / "tests" / "fixtures" / "insightface_t1.jpg"  # six people, none of them the astronaut


@pytest.fixture
def photos(tmp_path):
    astronaut = skimage_data.astronaut()[..., ::-1]
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    cv2.imwrite(str(a / "astronaut.png"), astronaut)
    other = cv2.resize(cv2.flip(astronaut, 1), None, fx=0.7, fy=0.7, interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(b / "astronaut_mirrored_small.jpg"), other)  # the same woman, another picture of her
    cv2.imwrite(str(b / "group.jpg"), cv2.imread(str(GROUP_PHOTO)))
    (b / "notes.txt").write_text("not an image")
    (b / "broken.jpg").write_bytes(b"not a JPEG")  # unreadable: skipped and counted
    return a, b


def test_the_same_person_pairs_and_strangers_do_not(photos, tmp_path):
    a, b = photos
    describe = same_people.Describer()
    left = [f for p in same_people.image_files([a], "*") for f in describe(p)]
    right = [f for p in same_people.image_files([b], "*") for f in describe(p) or []]
    assert len(left) == 1 and len(right) >= 5  # the astronaut; her copy and the group's faces
    pairs = same_people.close_pairs(left, right, 0.5)
    assert [p[2].path.name for p in pairs] == ["astronaut_mirrored_small.jpg"]
    assert pairs[0][0] < 0.3


def test_the_command_lists_the_pair_and_writes_the_montage(photos, tmp_path):
    a, b = photos
    montage = tmp_path / "pairs.jpg"
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "same_people.py"), str(a), "--against", str(b),
                           "--montage", str(montage)], capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1 and "astronaut.png" in lines[0] and "astronaut_mirrored_small.jpg" in lines[0]
    assert cv2.imread(str(montage)).shape == (same_people.THUMB_PX, 2 * same_people.THUMB_PX, 3)
    assert "unreadable images skipped: 1" in done.stderr


@pytest.mark.parametrize("extra", [["--against", "missing_folder"], ["--against", ".", "--max-distance", "0"],
                                   ["--against", ".", "--montage", str(GROUP_PHOTO)]])  # an input is never replaced
def test_bad_input_is_one_line_exit_2(photos, extra):
    a, _ = photos
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "same_people.py"), str(a), *extra],
                          capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert done.returncode == 2 and done.stderr.startswith("error: ") and len(done.stderr.splitlines()) == 1


def test_no_images_is_an_error(tmp_path):
    with pytest.raises(same_people.UserError, match="no images"):
        same_people.image_files([tmp_path], "*")
