"""``tools/detector_crops.py``: crops cut with the detector's boxes at several scales, labelled by matching, and a
development split by group that never reaches the training folder."""

from __future__ import annotations

import csv
import importlib.util
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

from maskwatch.faces import Faces

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("detector_crops", ROOT / "tools" / "detector_crops.py")
dc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dc)


def _photo_set(folder: Path) -> None:
    """Two photos of two groups; each has one masked and one unmasked face (boxes in full-size pixels)."""
    (folder / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in ("alice__mask", "bob__no_mask"):
        cv2.imwrite(str(folder / "images" / f"{name}.png"), rng.integers(0, 255, (400, 400, 3), dtype=np.uint8))
    (folder / "boxes.csv").write_text(
        "file,x1,y1,x2,y2,label\n"
        "images/alice__mask.png,40,40,200,200,mask\n"
        "images/alice__mask.png,250,250,330,330,ignore\n"
        "images/bob__no_mask.png,40,40,200,200,no_mask\n")  # fmt: skip
    (folder / "faces.csv").write_text(
        "image,group,source,face,x1,y1,x2,y2\n"
        "images/alice__mask.png,alice,a,0,40,40,200,200\n"
        "images/bob__no_mask.png,bob,b,0,40,40,200,200\n")  # fmt: skip


def fake_detector(frame_bgr: np.ndarray) -> Faces:
    """Finds the face at (40, 40, 200, 200) of the full-size photo, a little off, at any scale, and a stray box."""
    s = frame_bgr.shape[0] / 400
    return Faces(np.array([[44 * s, 36 * s, 204 * s, 196 * s], [0, 0, 5, 5]]), np.array([0.9, 0.95]))


def test_crops_use_the_detector_box_at_each_scale(tmp_path: Path) -> None:
    _photo_set(tmp_path / "src")
    image = dc.read_folder(tmp_path / "src")[0]
    frame = cv2.imread(str(image.path))
    for scale in (1.0, 0.25):
        crops = dc.detector_crops(frame, image, scale, fake_detector)
        assert [(i, label) for i, label, _ in crops] == [(0, "mask")]  # the ignore face and the stray box: none
        small = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale != 1 else frame
        x1, y1, x2, y2 = np.rint(np.array([44, 36, 204, 196]) * scale).astype(int)
        np.testing.assert_array_equal(crops[0][2], small[y1:y2, x1:x2])  # the detector's box, not the label's


def test_dev_groups_stay_out_of_training(tmp_path: Path, monkeypatch) -> None:
    _photo_set(tmp_path / "src")
    base = tmp_path / "base"
    for cls in ("with_mask", "without_mask"):
        (base / cls).mkdir(parents=True)
        for g in ("alice", "bob"):
            cv2.imwrite(str(base / cls / f"{g}__c.png"), np.zeros((8, 8, 3), np.uint8))
    (base / "groups.csv").write_text("file,group\n" + "".join(
        f"{c}/{g}__c.png,{g}\n" for c in ("with_mask", "without_mask") for g in ("alice", "bob")))
    assert dc.pick_dev_groups(Counter(alice=1, bob=1), 0.4, seed=3) in ({"alice"}, {"bob"})
    monkeypatch.setattr(dc, "pick_dev_groups", lambda faces, share, seed: {"bob"})
    monkeypatch.setattr("face_detector.build_face_detector", lambda cfg: fake_detector)
    dst, dev = tmp_path / "train", tmp_path / "dev"
    assert dc.main([str(tmp_path / "src"), str(dst), "--scales", "1", "0.5", "--dev-share", "0.5",
                    "--dev-out", str(dev), "--base", str(base)]) == 0  # fmt: skip
    rows = list(csv.DictReader((dst / "groups.csv").open()))
    assert {r["group"] for r in rows} == {"alice"}
    assert sorted(r["file"] for r in rows) == sorted([
        "with_mask/alice__c.png", "without_mask/alice__c.png",
        "with_mask/alice__alice__mask_x1_f0.png", "with_mask/alice__alice__mask_x0.5_f0.png"])  # fmt: skip
    assert all((dst / r["file"]).is_file() for r in rows)
    assert not list(dst.rglob("bob*"))
    assert (dst / "dev_groups.txt").read_text() == "bob\n"
    dev_rows = list(csv.DictReader((dev / "boxes.csv").open()))
    assert [r["file"] for r in dev_rows] == ["images/bob__no_mask.png"] and (dev / "images/bob__no_mask.png").is_file()
    assert dc.main([str(tmp_path / "src"), str(dst)]) == 2  # never writes over a dataset


def test_incorrect_faces_and_a_given_dev_split(tmp_path: Path, monkeypatch) -> None:
    """A three-class set (maskify --full-images --classes 3): incorrect faces go to incorrect_mask/, and
    --dev-groups keeps exactly the named people out."""
    src = tmp_path / "src"
    (src / "images").mkdir(parents=True)
    rng = np.random.default_rng(1)
    names = ("alice__mask", "alice__on_chin", "bob__below_nose")
    for name in names:
        cv2.imwrite(str(src / "images" / f"{name}.png"), rng.integers(0, 255, (400, 400, 3), dtype=np.uint8))
    (src / "boxes.csv").write_text("file,x1,y1,x2,y2,label\n" + "".join(
        f"images/{n}.png,40,40,200,200,{'mask' if n.endswith('mask') else 'incorrect'}\n" for n in names))
    (src / "faces.csv").write_text("image,group,source,face,x1,y1,x2,y2\nalice,alice,a,0,40,40,200,200\n"
                                   "bob,bob,b,0,40,40,200,200\n")  # fmt: skip
    (tmp_path / "dev.txt").write_text("bob\n")
    monkeypatch.setattr("face_detector.build_face_detector", lambda cfg: fake_detector)
    dst = tmp_path / "train"
    assert dc.main([str(src), str(dst), "--scales", "1", "--dev-groups", str(tmp_path / "dev.txt")]) == 0
    rows = list(csv.DictReader((dst / "groups.csv").open()))
    assert sorted(r["file"] for r in rows) == [
        "incorrect_mask/alice__alice__on_chin_x1_f0.png", "with_mask/alice__alice__mask_x1_f0.png"]
    assert (dst / "dev_groups.txt").read_text() == "bob\n"
    assert dc.main([str(src), str(tmp_path / "t2"), "--dev-groups", str(tmp_path / "nope.txt")]) == 2


def test_several_sets_of_the_same_photos_keep_their_crops_apart(tmp_path: Path, monkeypatch) -> None:
    """SRC holding one folder per mask-style seed (and a no_faces/ folder): every crop kept, named by its folder."""
    for seed in ("s1_seed1", "s1_seed2"):
        _photo_set(tmp_path / "src" / seed)
    (tmp_path / "src" / "no_faces" / "images").mkdir(parents=True)
    (tmp_path / "src" / "no_faces" / "boxes.csv").write_text("file,x1,y1,x2,y2,label\n")
    monkeypatch.setattr("face_detector.build_face_detector", lambda cfg: fake_detector)
    dst = tmp_path / "train"
    assert dc.main([str(tmp_path / "src"), str(dst), "--scales", "1"]) == 0
    files = sorted(r["file"] for r in csv.DictReader((dst / "groups.csv").open()))
    assert files == [f"{c}/{g}__s1_seed{k}__{g}__{lb}_x1_f0.png" for c, g, lb in
                     (("with_mask", "alice", "mask"), ("without_mask", "bob", "no_mask")) for k in (1, 2)]  # fmt: skip
    assert all((dst / f).is_file() for f in files)


def test_a_dst_that_is_a_file_is_one_error_line(tmp_path: Path, capsys) -> None:
    _photo_set(tmp_path / "src" / "s1")
    dst = tmp_path / "crops"
    dst.write_text("a file")
    assert dc.main([str(tmp_path / "src"), str(dst), "--scales", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: DST: cannot create the folder {dst}: {dst} is a file"
