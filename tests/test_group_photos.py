from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from maskwatch.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tool():
    sys.path.insert(0, str(ROOT / "tools"))
    spec = importlib.util.spec_from_file_location("group_photos", ROOT / "tools" / "group_photos.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_table_is_well_formed_and_one_name_per_photo(tool) -> None:
    rows = tool.parse_table()
    assert len(rows) == 33
    names = [tool.photo_name(row[1], row[6]) for row in rows]
    assert len(set(names)) == len(names) and len({row[5] for row in rows}) == len(rows)
    with pytest.raises(ValueError, match="malformed"):
        tool.parse_table("apt pkg 1.0 deb MIT abc usr/a.png")


def test_no_package_of_a_held_out_set_or_of_the_starter_data(tool) -> None:
    from train.starter_data import PACKAGES

    packages = {row[1] for row in tool.parse_table()}
    held_out = tool.held_out_packages()
    assert len(held_out) > 5  # the held-out tables were read
    assert not packages & held_out
    assert not {p.lower().replace("_", "-") for p in packages} & {p.lower().replace("_", "-") for p in PACKAGES}


def test_enlarged_scales_the_photo(tool) -> None:
    ok, png = cv2.imencode(".png", np.random.default_rng(0).integers(0, 255, (10, 20, 3), np.uint8))
    assert ok
    assert tool.enlarged(png.tobytes(), 1) == png.tobytes()
    big = cv2.imdecode(np.frombuffer(tool.enlarged(png.tobytes(), 3), np.uint8), cv2.IMREAD_COLOR)
    assert big.shape == (30, 60, 3)
    with pytest.raises(ValueError, match="decoded"):
        tool.enlarged(b"not a png", 2)


def test_main_checks_md5_and_writes_enlarged_pngs(tool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _ok, png = cv2.imencode(".png", np.full((8, 6, 3), 120, np.uint8))
    photo = png.tobytes()
    table = f"apt pkg 1.0 deb MIT {hashlib.md5(photo).hexdigest()} usr/share/pkg/photos/a.png"
    monkeypatch.setattr(tool, "TABLE", table)
    monkeypatch.setattr(tool, "cached_archive", lambda *key: tmp_path / "pkg.deb")
    monkeypatch.setattr(tool, "deb_members", lambda deb, members: {m: photo for m in members})
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert tool.main([str(tmp_path / "out"), "--enlarge", "2"]) == 0
    assert cv2.imread(str(tmp_path / "out" / "pkg__a.png")).shape == (16, 12, 3)
    monkeypatch.setattr(tool, "TABLE", table.replace(hashlib.md5(photo).hexdigest(), "0" * 32))
    with pytest.raises(UserError, match="md5 mismatch"):
        tool.main([str(tmp_path / "bad")])
    with pytest.raises(UserError, match="--enlarge"):
        tool.main([str(tmp_path / "bad"), "--enlarge", "9"])
