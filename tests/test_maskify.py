"""maskify on real photos: the mask covers mouth and nose, not the eyes; dataset layout; skipped faces counted."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

pytestmark = pytest.mark.slow  # loads dlib's 68-point model (~100 MB) and runs it on real photos

pytest.importorskip("dlib")
pytest.importorskip("face_recognition_models")
skimage_data = pytest.importorskip("skimage.data")

from train.landmarks import Landmarker  # noqa: E402
from train.mask_overlay import (  # noqa: E402
    EYES,
    MOUTH,
    NOSE_TIP_AND_NOSTRILS,
    SHAPES,
    WRONG_PLACEMENTS,
    MaskStyle,
    box_from_landmarks,
    mask_polygon,
    points_inside,
    render_mask,
)
from train.maskify import Face, FaceLocator, Maskifier, main, style_for  # noqa: E402


@pytest.fixture(scope="module")
def landmarker() -> Landmarker:
    return Landmarker()


@pytest.fixture(scope="module")
def astronaut_bgr() -> np.ndarray:
    return cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2BGR)


@pytest.fixture(scope="module")
def astronaut_landmarks(landmarker: Landmarker, astronaut_bgr: np.ndarray) -> np.ndarray:
    found = landmarker.find(astronaut_bgr)
    assert len(found) == 1
    return found[0]


NOSE_TIP = 30


@pytest.mark.parametrize("shape", SHAPES)
def test_wrong_placements_uncover_the_nose_or_the_mouth(astronaut_landmarks: np.ndarray, shape: str) -> None:
    pts = astronaut_landmarks
    assert points_inside(mask_polygon(pts, shape, "correct"), pts[[NOSE_TIP]]).all()
    below = mask_polygon(pts, shape, "below_nose")
    assert not points_inside(below, pts[NOSE_TIP_AND_NOSTRILS]).any()  # nose tip and nostrils visible
    assert points_inside(below, pts[MOUTH]).all()  # the mouth still covered
    chin = mask_polygon(pts, shape, "on_chin")
    assert not points_inside(chin, pts[MOUTH]).any() and points_inside(chin, pts[[8]]).all()  # mouth out, chin in
    for side, uncovered_corner, covered_corner in ((1, 48, 54), (-1, 54, 48)):  # mouth corners: 48 near jaw 0
        aside = mask_polygon(pts, shape, "to_side", side)
        assert not points_inside(aside, pts[[NOSE_TIP, uncovered_corner]]).any()
        assert points_inside(aside, pts[[covered_corner]]).all()
    for placement in WRONG_PLACEMENTS:
        assert not points_inside(mask_polygon(pts, shape, placement), pts[EYES]).any()
    with pytest.raises(ValueError, match="placement"):
        mask_polygon(pts, shape, "on_forehead")


@pytest.mark.parametrize("shape", SHAPES)
def test_polygon_covers_mouth_and_nose_not_eyes(astronaut_landmarks: np.ndarray, shape: str) -> None:
    polygon = mask_polygon(astronaut_landmarks, shape)
    assert points_inside(polygon, astronaut_landmarks[MOUTH]).all()
    assert points_inside(polygon, astronaut_landmarks[NOSE_TIP_AND_NOSTRILS]).all()
    assert not points_inside(polygon, astronaut_landmarks[EYES]).any()


def test_render_changes_mouth_not_eyes(astronaut_bgr: np.ndarray, astronaut_landmarks: np.ndarray) -> None:
    style = MaskStyle(shape="cloth", look="solid", color_bgr=(255, 0, 0))
    masked = render_mask(astronaut_bgr, astronaut_landmarks, style)
    assert masked.shape == astronaut_bgr.shape and masked is not astronaut_bgr
    diff = np.abs(masked.astype(int) - astronaut_bgr.astype(int)).sum(axis=2)
    mouth = astronaut_landmarks[MOUTH].mean(axis=0).astype(int)
    nose = astronaut_landmarks[33].astype(int)
    assert diff[mouth[1], mouth[0]] > 60 and diff[nose[1], nose[0]] > 60
    for x, y in astronaut_landmarks[EYES].astype(int):
        assert diff[y, x] == 0
    assert masked[mouth[1], mouth[0], 0] > masked[mouth[1], mouth[0], 2]  # the blue mask, shaded


def test_box_from_landmarks_contains_the_face(astronaut_landmarks: np.ndarray) -> None:
    x1, y1, x2, y2 = box_from_landmarks(astronaut_landmarks, (512, 512))
    assert 0 <= x1 < x2 <= 512 and 0 <= y1 < y2 <= 512
    assert points_inside(np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]]), astronaut_landmarks[17:]).all()


def test_style_is_fixed_by_key_and_seed() -> None:
    assert style_for("a.jpg#0", seed=1) == style_for("a.jpg#0", seed=1)
    styles = {style_for(f"a.jpg#{i}", seed=1) for i in range(20)}
    assert len(styles) > 10 and {s.shape for s in styles} == set(SHAPES)


def _write(path: Path, image_bgr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), image_bgr)


@pytest.fixture
def photos(tmp_path: Path, astronaut_bgr: np.ndarray) -> Path:
    from matplotlib import cbook

    src = tmp_path / "src"
    _write(src / "astronaut.png", astronaut_bgr)
    with cbook.get_sample_data("grace_hopper.jpg") as f:
        hopper = cv2.imdecode(np.frombuffer(f.read(), np.uint8), cv2.IMREAD_COLOR)
    _write(src / "people" / "hopper.jpg", hopper)
    _write(src / "coffee.jpg", cv2.cvtColor(skimage_data.coffee(), cv2.COLOR_RGB2BGR))
    (src / "broken.jpg").write_bytes(b"not a jpeg")
    return src


def test_cli_writes_pairs_and_groups(photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dst = tmp_path / "out"
    assert main([str(photos), str(dst), "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "4 images (1 unreadable, 1 without a face), 2 faces: 2 masked" in out
    with_mask = sorted(p.name for p in (dst / "with_mask").iterdir())
    without_mask = sorted(p.name for p in (dst / "without_mask").iterdir())
    assert with_mask == without_mask == ["astronaut__astronaut_f0.jpg", "people_hopper__people_hopper_f0.jpg"]
    rows = list(csv.DictReader((dst / "groups.csv").open()))
    assert {(r["file"], r["group"]) for r in rows} == {
        ("with_mask/astronaut__astronaut_f0.jpg", "astronaut"),
        ("without_mask/astronaut__astronaut_f0.jpg", "astronaut"),
        ("with_mask/people_hopper__people_hopper_f0.jpg", "people/hopper"),
        ("without_mask/people_hopper__people_hopper_f0.jpg", "people/hopper"),
    }
    plain = cv2.imread(str(dst / "without_mask" / with_mask[0]))
    masked = cv2.imread(str(dst / "with_mask" / with_mask[0]))
    assert plain.shape == masked.shape
    h = plain.shape[0]
    lower = np.abs(plain[h // 2 :].astype(int) - masked[h // 2 :].astype(int)).mean()
    upper = np.abs(plain[: h // 4].astype(int) - masked[: h // 4].astype(int)).mean()
    assert lower > 20 > upper  # the mask is on the lower face, the forehead untouched
    stats = json.loads((dst / "maskify.json").read_text())["stats"]
    assert stats["unreadable_files"] == ["broken.jpg"]

    # nothing is overwritten without --overwrite
    assert main([str(photos), str(dst)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main([str(photos), str(dst), "--overwrite", "--seed", "4"]) == 0


def test_full_images_write_boxes(photos: Path, tmp_path: Path) -> None:
    dst = tmp_path / "full"
    assert main([str(photos), str(dst), "--full-images"]) == 0
    rows = list(csv.DictReader((dst / "boxes.csv").open()))
    assert sorted((r["file"], r["label"]) for r in rows) == [
        ("images/astronaut__mask.jpg", "mask"),
        ("images/astronaut__no_mask.jpg", "no_mask"),
        ("images/people_hopper__mask.jpg", "mask"),
        ("images/people_hopper__no_mask.jpg", "no_mask"),
    ]
    assert all((r["look"] != "") == (r["label"] == "mask") for r in rows)  # each mask's look, for evaluations
    masked = cv2.imread(str(dst / "images" / "astronaut__mask.jpg"))
    assert masked.shape == (512, 512, 3)
    box = next(r for r in rows if r["file"] == "images/astronaut__mask.jpg")
    x1, y1, x2, y2 = (int(box[k]) for k in ("x1", "y1", "x2", "y2"))
    assert 150 < x1 < x2 < 300 and 30 < y1 < y2 < 250  # the astronaut's face, top left of centre


def test_a_file_name_that_is_not_utf8_is_maskified(photos: Path, tmp_path: Path) -> None:
    """A Latin-1 name (b"caf\\xe9.png") was a UnicodeEncodeError traceback (the style key, the CSV files), and a
    texture named so crashed OpenCV's imread (segmentation fault)."""
    (photos / "astronaut.png").rename(photos / os.fsdecode(b"caf\xe9.png"))
    dst = tmp_path / "full"
    assert main([str(photos), str(dst), "--full-images", "--textures", str(photos)]) == 0
    rows = list(csv.DictReader((dst / "boxes.csv").open()))
    assert sorted(r["file"] for r in rows) == ["images/caf__mask.jpg", "images/caf__no_mask.jpg",
                                               "images/people_hopper__mask.jpg", "images/people_hopper__no_mask.jpg"]


def test_faces_without_landmarks_or_too_small_are_skipped_and_counted(
    landmarker: Landmarker, astronaut_bgr: np.ndarray
) -> None:
    face = landmarker.find(astronaut_bgr)[0]
    box = box_from_landmarks(face, (512, 512))
    # another detector's boxes: the real face, a patch of the astronaut's suit (no face) and a tiny box
    locator = FaceLocator(landmarker, lambda _img: np.array([box, (300, 380, 420, 500), (10, 10, 30, 30)]))
    faces = locator(astronaut_bgr)
    assert [f.landmarks_xy is not None for f in faces] == [True, False, False]

    class Collect:
        def write(self, image_bgr, masked_bgr, faces, good, key, group, incorrect=(), looks=()) -> None:
            self.good, self.looks = list(good), list(looks)

    maskifier = Maskifier(locator, min_face_px=40)
    writer = Collect()
    maskifier.add(astronaut_bgr, "astronaut.png", "astronaut", writer)  # type: ignore[arg-type]
    assert len(writer.good) == 1 and isinstance(writer.good[0], Face)
    assert len(writer.looks) == 1 and writer.looks[0].split()[-1] in ("surgical", "cloth", "n95", "pattern", "texture")
    assert maskifier.stats.faces == 3 and maskifier.stats.masked == 1
    assert maskifier.stats.skipped_no_landmarks == 2  # the suit patch and the 20 px box have no landmarks
    maskifier.add(None, "broken.jpg", "broken", writer)  # type: ignore[arg-type]
    assert maskifier.stats.unreadable == 1


def test_small_faces_are_skipped(landmarker: Landmarker, astronaut_bgr: np.ndarray) -> None:
    maskifier = Maskifier(FaceLocator(landmarker), min_face_px=400)

    class Collect:
        def write(self, image_bgr, masked_bgr, faces, good, key, group, incorrect=(), looks=()) -> None:
            self.good, self.looks = list(good), list(looks)

    writer = Collect()
    maskifier.add(astronaut_bgr, "astronaut.png", "astronaut", writer)  # type: ignore[arg-type]
    assert writer.good == [] and maskifier.stats.skipped_small == 1


def test_missing_source_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "nope"), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: source not found") and "\n" not in err


def test_output_that_is_a_file_is_one_line_error(photos: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    dst = tmp_path / "out.txt"
    dst.write_text("a file, not a folder")
    assert main([str(photos), str(dst)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: DST: cannot create the folder") and "is a file" in err and "\n" not in err
    assert dst.read_text() == "a file, not a folder"


def test_three_classes_write_incorrect_masks_in_the_same_groups(photos: Path, tmp_path: Path) -> None:
    dst = tmp_path / "three"
    assert main([str(photos), str(dst), "--classes", "3", "--seed", "3"]) == 0
    names = {d: sorted(p.name for p in (dst / d).iterdir()) for d in ("with_mask", "without_mask", "incorrect_mask")}
    assert names["with_mask"] == names["without_mask"] == names["incorrect_mask"] and len(names["with_mask"]) == 2
    rows = {r["file"]: r["group"] for r in csv.DictReader((dst / "groups.csv").open())}
    for name in names["with_mask"]:
        assert len({rows[f"{d}/{name}"] for d in names}) == 1  # one person, one side of the split
        plain, right, wrong = (cv2.imread(str(dst / d / name)).astype(int)
                               for d in ("without_mask", "with_mask", "incorrect_mask"))  # fmt: skip
        assert np.abs(wrong - plain).mean() > 5 and np.abs(wrong - right).mean() > 5
    # the binary layout's masks are unchanged by the third class (same seed, same keys)
    two = tmp_path / "two"
    assert main([str(photos), str(two), "--seed", "3"]) == 0
    for name in names["with_mask"]:
        assert (two / "with_mask" / name).read_bytes() == (dst / "with_mask" / name).read_bytes()
    assert not (two / "incorrect_mask").exists()


def test_three_classes_full_images_have_one_image_per_wrong_placement(photos: Path, tmp_path: Path) -> None:
    dst = tmp_path / "full3"
    assert main([str(photos), str(dst), "--full-images", "--classes", "3"]) == 0
    rows = list(csv.DictReader((dst / "boxes.csv").open()))
    wrong = {r["file"] for r in rows if r["label"] == "incorrect"}
    assert wrong == {f"images/{stem}__{p}.jpg" for stem in ("astronaut", "people_hopper") for p in WRONG_PLACEMENTS}
    assert sum(r["label"] == "mask" for r in rows) == sum(r["label"] == "no_mask" for r in rows) == 2
