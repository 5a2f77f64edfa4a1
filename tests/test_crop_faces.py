"""``python -m train.crop_faces``: whole photos -> the crops the detector command classifies, a set ``train`` reads;
on a real group photo (insightface's ``t1.jpg``, six faces) and skimage's astronaut, with the shipped CenterFace."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

from detector.pipeline import Pipeline
from face_detector import build_face_detector
from maskwatch.config import load_config
from train import crop_faces
from train.dataset import scan

GROUP_PHOTO = Path(__file__).resolve().parent / "fixtures" / "insightface_t1.jpg"


@pytest.fixture(scope="module")
def detect():
    return build_face_detector(load_config())


@pytest.fixture
def src(tmp_path: Path, astronaut) -> Path:
    """with_mask/alice/t1.jpg (six faces), without_mask/alice/astronaut.png, a damaged and a faceless photo."""
    src = tmp_path / "src"
    (src / "with_mask" / "alice").mkdir(parents=True)
    (src / "without_mask" / "alice").mkdir(parents=True)
    (src / "with_mask" / "alice" / "t1.jpg").write_bytes(GROUP_PHOTO.read_bytes())
    cv2.imwrite(str(src / "without_mask" / "alice" / "astronaut.png"), astronaut[0])
    (src / "without_mask" / "damaged.jpg").write_bytes(b"not a photo")
    (src / "with_mask" / "alice" / "IMG_0001.HEIC").write_bytes(b"a phone's photo")
    cv2.imwrite(str(src / "without_mask" / "wall.png"), np.full((240, 320, 3), 128, np.uint8))
    return src


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_the_largest_face_of_each_photo_cut_as_the_pipeline_cuts_it(src: Path, tmp_path: Path, detect,
                                                                    capsys) -> None:  # fmt: skip
    assert crop_faces.main([str(src), str(tmp_path / "dst"), "--quiet"]) == 0
    dst = tmp_path / "dst"
    out = capsys.readouterr().out
    assert "2 crops (with_mask 1, without_mask 1)" in out
    assert "skipped 1 not images, 1 unreadable, 1 without a face" in out
    assert "1 photo(s) showed more faces: kept the largest" in out
    crops = {r["photo"]: r for r in _rows(dst / "crops.csv")}
    assert sorted(crops) == ["with_mask/alice/t1.jpg", "without_mask/alice/astronaut.png"]
    assert {r["file"]: r["group"] for r in _rows(dst / "groups.csv")} == {
        crops["with_mask/alice/t1.jpg"]["file"]: "alice", crops["without_mask/alice/astronaut.png"]["file"]: "alice"}
    assert {r["photo"]: r["reason"].split(" (")[0].split(":")[0] for r in _rows(dst / "skipped.csv")} == {
        "with_mask/alice/IMG_0001.HEIC": "not an image file", "without_mask/damaged.jpg": "unreadable",
        "without_mask/wall.png": "no face found"}

    seen: list[np.ndarray] = []  # what the detector command's pipeline hands its classifier for the same photo
    frame = cv2.imread(str(GROUP_PHOTO))
    faces = Pipeline(detect, lambda batch: seen.extend(batch) or np.full(len(batch), 0.9))(frame)
    largest = int(np.argmax([c.shape[0] * c.shape[1] for c in seen]))
    written = cv2.imread(str(dst / crops["with_mask/alice/t1.jpg"]["file"]))
    assert len(seen) == 6 and np.array_equal(written, seen[largest])
    assert [int(crops["with_mask/alice/t1.jpg"][k]) for k in ("x1", "y1", "x2", "y2")] == faces.xyxy[largest].tolist()
    assert cv2.imread(str(dst / "preview.jpg")).shape[1] == crop_faces.PREVIEW_TILE_PX * crop_faces.PREVIEW_COLUMNS
    files, ignored = scan(dst, (".png",))  # what python -m train --dataset DST reads
    assert sorted((f.label, f.group) for f in files) == [(0, "alice"), (1, "alice")] and not ignored


def test_all_faces_keeps_every_face_and_min_face_px_the_big_ones(src: Path, tmp_path: Path, detect) -> None:
    assert crop_faces.main([str(src), str(tmp_path / "all"), "--all-faces", "--quiet"]) == 0
    heights = sorted(int(r["y2"]) - int(r["y1"]) for r in _rows(tmp_path / "all" / "crops.csv")
                     if r["photo"].endswith("t1.jpg"))  # fmt: skip
    assert len(heights) == len(detect(cv2.imread(str(GROUP_PHOTO)))) == 6
    limit = heights[3]
    argv = [str(src), str(tmp_path / "big"), "--all-faces", "--min-face-px", str(limit), "--quiet"]
    assert crop_faces.main(argv) == 0
    kept = [r for r in _rows(tmp_path / "big" / "crops.csv") if r["photo"].endswith("t1.jpg")]
    assert len(kept) == sum(h >= limit for h in heights)
    assert "lower than" in {r["photo"]: r["reason"] for r in _rows(tmp_path / "big" / "skipped.csv")}[
        "with_mask/alice/t1.jpg"]


@pytest.mark.parametrize(("make", "args", "message"), [
    (None, ["SRC", "SRC/with_mask/new"], "overlap: give DST outside SRC"),
    (None, ["SRC", "SRC/..", "--overwrite"], "overlap: give DST outside SRC"),  # replacing DST would delete SRC
    ("dst", ["SRC", "DST"], "already exists (use --overwrite to replace it)"),
    (None, ["SRC/with_mask/alice", "DST"], "no photos (.jpg .jpeg .png .bmp .webp) in"),
    (None, ["SRC/nope", "DST"], "SRC folder not found"),
    (None, ["SRC", "DST", "--min-face-px", "-1"], "--min-face-px must be >= 0"),
    (None, ["SRC", "DST", "--min-face-px", "5000"], "no face found in the photos of"),
])  # fmt: skip
def test_bad_input_is_one_line_and_loses_nothing(src: Path, tmp_path: Path, capsys, make: str | None,
                                                 args: list[str], message: str) -> None:  # fmt: skip
    dst = tmp_path / "DST"
    if make:
        (dst / "with_mask").mkdir(parents=True)
        (dst / "with_mask" / "mine.png").write_bytes(b"earlier")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    argv = [a.replace("SRC", str(src)).replace("DST", str(dst)) for a in args]
    assert crop_faces.main([*argv, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_an_interrupted_run_leaves_the_old_dst_and_no_partial_folder(src: Path, tmp_path: Path, monkeypatch,
                                                                     detect, capsys) -> None:  # fmt: skip
    dst = tmp_path / "dst"
    assert crop_faces.main([str(src), str(dst), "--quiet"]) == 0
    old = {p.relative_to(dst): p.read_bytes() for p in dst.rglob("*") if p.is_file()}
    calls = []

    def interrupted(frame: np.ndarray):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return detect(frame)

    monkeypatch.setattr("face_detector.build_face_detector", lambda cfg: interrupted)
    assert crop_faces.main([str(src), str(dst), "--all-faces", "--overwrite", "--quiet"]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert {p.relative_to(dst): p.read_bytes() for p in dst.rglob("*") if p.is_file()} == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dst", "src"]


def test_groups_come_from_the_sub_folder_then_the_name_prefix_then_the_photo(tmp_path: Path) -> None:
    class_dir = tmp_path / "with_mask"
    assert crop_faces.group_of(class_dir, class_dir / "alice" / "2020" / "p.jpg") == "alice"
    assert crop_faces.group_of(class_dir, class_dir / "bob__1.jpg") == "bob"  # as python -m train reads names
    assert crop_faces.group_of(class_dir, class_dir / "p.jpg") == "with_mask/p.jpg"


def test_the_preview_spreads_its_tiles_over_all_crops_of_a_class() -> None:
    crops = [np.full((30, 20, 3), i, np.uint8) for i in range(100)]
    sheet = crop_faces.preview({"with_mask": crops})
    tile, columns = crop_faces.PREVIEW_TILE_PX, crop_faces.PREVIEW_COLUMNS
    assert sheet.shape == (24 + tile * crop_faces.PREVIEW_PER_CLASS // columns, tile * columns, 3)
    assert sheet[24 + tile // 2, tile // 2, 0] == 0 and sheet[-tile // 2, -tile // 2, 0] == 99  # first and last
