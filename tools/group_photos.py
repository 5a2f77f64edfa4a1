"""``python tools/group_photos.py DST``: the training photos of small and grouped faces, from a registry package.

Real photos of people that ship inside a Debian package that no held-out set (``tools/holdout_photos.py``) and no
starter source (``train.starter_data``) uses: XEmacs' developer photos in ``xemacs21-support`` (colour versions;
the dithered copies, the caricature, the cartoon, the cat, the dog and the logo are left out, and so is a photo
under a green colour filter). They are small (73-210 px wide; faces 24-135 px), among them a party of seven
(``pez``, faces 27-37 px) and two people lying on a lawn (``vin``). The ``.deb`` is fetched once with ``apt-get
download PKG=VERSION`` into ~/.cache/maskwatch/group_sources (nothing is installed), every photo is checked against
its MD5 and written as ``<package>__<name>.png`` to DST, enlarged ``--enlarge`` times (``cv2.INTER_CUBIC``; 1 =
as shipped) so that dlib's landmarks (``train.maskify``) find the small faces, ready for

    python -m evaluation.sets DST_SET --photos DST --seeds 1 2 3 --scales 1.0

(each file its own group: one person, or one party). The photos are not part of maskwatch: their licence is the
package's (listed), they stay local and are used for training only, never for choosing a setting.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from holdout_photos import SETS, cached_archive, deb_members, flatten_alpha

from maskwatch.cli import Parser, run
from maskwatch.errors import UserError
from maskwatch.files import check_writable, write_bytes_atomic

# registry, package, version, archive kind, package licence, MD5 of the photo, member path (no leading "/").
TABLE = """
apt xemacs21-support 21.4.24-11 deb GPL-2+ 45124fc61470becff7a3e4b043d84108 usr/share/xemacs-21.4.24/etc/photos/adrian.png
apt xemacs21-support 21.4.24-11 deb GPL-2+ 092b9cd6f31434e89cc85de1479445ec usr/share/xemacs-21.4.24/etc/photos/ajc.png
apt xemacs21-support 21.4.24-11 deb GPL-2+ 390287a1182838a5181babc10769452c usr/share/xemacs-21.4.24/etc/photos/baw.png
apt xemacs21-support 21.4.24-11 deb GPL-2+ a974980071f3749ea7e41e22bdd374c4 usr/share/xemacs-21.4.24/etc/photos/ben.png
apt xemacs21-support 21.4.24-11 deb GPL-2+ 7677c6c589c64318f33fdf22dfba049e usr/share/xemacs-21.4.24/etc/photos/bw.png
apt xemacs21-support 21.4.24-11 deb GPL-2+ cfe878570e0dd3b0756f8292f86c8af4 usr/share/xemacs-21.4.24/etc/photos/cthomp.png
apt xemacs21-support 21.4.24-11 deb GPL-2+ 1e4766e63c12dbdf0d36673b62e27f9c usr/share/xemacs-21.4.24/etc/photos/didier.png
apt xemacs21-support 21.4.24-11 deb GPL-2+ da044490ba21608fd0ca3de861ac1640 usr/share/xemacs-21.4.24/etc/photos/dkindred.png
apt xemacs21-support 21.4.24-11 deb GPL-2+ 1b98059eebaab1ef6d0efc0e04f2c2bb usr/share/xemacs-21.4.24/etc/photos/dmoore.png
apt xemacs21-support 21.4.24-11 deb GPL-2+ ac1223c4c667719ad75220224bb01ef5 usr/share/xemacs-21.4.24/etc/photos/dv.png
apt xemacs21-support 21.4.24-11 deb GPL-2+ dfffcb3b47ca283877bebd4ff200c8c8 usr/share/xemacs-21.4.24/etc/photos/fabrice.png
apt xemacs21-support 21.4.24-11 deb GPL-2+ a792f052cf1947614d01af3cb44082ab usr/share/xemacs-21.4.24/etc/photos/golubev.png
apt xemacs21-support 21.4.24-11 deb GPL-2+ 08eba79ed5ea3c9ec023a7aab080734b usr/share/xemacs-21.4.24/etc/photos/hniksic.png
apt xemacs21-support 21.4.24-11 deb GPL-2+ 42894b529fdfd52eaf2d5388253d58e9 usr/share/xemacs-21.4.24/etc/photos/jan.png
apt xemacs21-support 21.4.24-11 deb GPL-2+ 9eac185e0bff7d982fb918411efaa9b4 usr/share/xemacs-21.4.24/etc/photos/jens.png
apt xemacs21-support 21.4.24-11 deb GPL-2+ b0846706bbd68e5746457f81dd3806dd usr/share/xemacs-21.4.24/etc/photos/jmiller.png
apt xemacs21-support 21.4.24-11 deb GPL-2+ 9bc432b79df663a137cb827063ad8ce4 usr/share/xemacs-21.4.24/etc/photos/juhp.png
apt xemacs21-support 21.4.24-11 deb GPL-2+ b28a3adfb59a73c849940af43dc5e68d usr/share/xemacs-21.4.24/etc/photos/jwz.png
apt xemacs21-support 21.4.24-11 deb GPL-2+ eb3dfa6dc01de47fb438d425160531ee usr/share/xemacs-21.4.24/etc/photos/kazz.png
apt xemacs21-support 21.4.24-11 deb GPL-2+ 41ddbc9730f0d65e880f8108935cfead usr/share/xemacs-21.4.24/etc/photos/kyle.png
apt xemacs21-support 21.4.24-11 deb GPL-2+ c92b8ef77bac3d99aec23dc40c45d1aa usr/share/xemacs-21.4.24/etc/photos/larsi.png
apt xemacs21-support 21.4.24-11 deb GPL-2+ 1addab9ef574ced38915fd0a54982272 usr/share/xemacs-21.4.24/etc/photos/martin.png
apt xemacs21-support 21.4.24-11 deb GPL-2+ cfcf699f887fa30cc16a23063771c282 usr/share/xemacs-21.4.24/etc/photos/mcook.png
apt xemacs21-support 21.4.24-11 deb GPL-2+ 4c6d9df313000fab1146377ca1862a2f usr/share/xemacs-21.4.24/etc/photos/pez.png
apt xemacs21-support 21.4.24-11 deb GPL-2+ 32bda9e29ce21b73886a8803763ca995 usr/share/xemacs-21.4.24/etc/photos/piper.png
apt xemacs21-support 21.4.24-11 deb GPL-2+ 0868befb244d6ece36fa755561596f4a usr/share/xemacs-21.4.24/etc/photos/rickc.png
apt xemacs21-support 21.4.24-11 deb GPL-2+ 7a7bf1e24584d2f843f9f8462ba84d8f usr/share/xemacs-21.4.24/etc/photos/sperber.png
apt xemacs21-support 21.4.24-11 deb GPL-2+ 211a8b7f2f864053ac4cc929d0b9594d usr/share/xemacs-21.4.24/etc/photos/stigb.png
apt xemacs21-support 21.4.24-11 deb GPL-2+ 826e13534eddf537ed439a0b96f5d30b usr/share/xemacs-21.4.24/etc/photos/thiessel.png
apt xemacs21-support 21.4.24-11 deb GPL-2+ 7b2c256bf874ef474da59d80fae3372c usr/share/xemacs-21.4.24/etc/photos/vin.png
apt xemacs21-support 21.4.24-11 deb GPL-2+ 689df3172c9565d3e99668e8ad884587 usr/share/xemacs-21.4.24/etc/photos/vladimir.png
apt xemacs21-support 21.4.24-11 deb GPL-2+ 28c84d0a14599b9fe158607e462b80fb usr/share/xemacs-21.4.24/etc/photos/wmperry.png
apt xemacs21-support 21.4.24-11 deb GPL-2+ 0cf9868327fba4c4a66bf96ea5b49257 usr/share/xemacs-21.4.24/etc/photos/youngs.png
"""  # noqa: E501 - one photo per line


def parse_table(table: str | None = None) -> list[tuple[str, ...]]:
    """The table's rows (7 fields each); a malformed row is an error."""
    rows = [tuple(line.split()) for line in (TABLE if table is None else table).strip().splitlines() if line.strip()]
    bad = [row for row in rows if len(row) != 7 or row[0] != "apt" or row[3] != "deb" or len(row[5]) != 32]
    if bad:
        raise ValueError(f"malformed row {' '.join(bad[0])!r}")
    return rows


def photo_name(package: str, member: str) -> str:
    return f"{package}__{Path(member).stem}.png"


def held_out_packages() -> set[str]:
    """Every package a held-out set (2-6) reads photos from."""
    return {line.split()[1] for table, _ in SETS.values() for line in table.strip().splitlines()}


def enlarged(png: bytes, factor: float) -> bytes:
    """The photo ``factor`` times larger (``cv2.INTER_CUBIC``), as PNG; ``factor`` 1 returns it unchanged."""
    if factor == 1:
        return png
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError("photo could not be decoded")
    ok, buf = cv2.imencode(".png", cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC))
    if not ok:
        raise ValueError("photo could not be encoded")
    return buf.tobytes()


def main(argv: list[str] | None) -> int:
    parser = Parser(prog="python tools/group_photos.py", description=__doc__.split("\n")[0])
    parser.add_argument("dst", type=Path, help="folder for the photos")
    parser.add_argument("--enlarge", type=float, default=1.0, help="enlarge each photo this many times (1)")
    args = parser.parse_args(argv)
    if not 1 <= args.enlarge <= 8:
        raise UserError("--enlarge must be in [1, 8]")
    check_writable("DST", args.dst)  # before the fetch, not after it
    rows = parse_table()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "maskwatch" / "group_sources"
    by_archive: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
    for row in rows:
        by_archive.setdefault(row[:4], []).append(row)
    for key, members in by_archive.items():
        data = deb_members(cached_archive(*key, cache), [row[6] for row in members])
        for _registry, package, _version, _kind, _licence, md5, member in members:
            photo = data[member]
            if hashlib.md5(photo).hexdigest() != md5:
                raise UserError(f"{package} {member}: md5 mismatch")
            write_bytes_atomic(args.dst / photo_name(package, member), enlarged(flatten_alpha(photo), args.enlarge))
    print(f"{len(rows)} photos in {args.dst} (enlarged x{args.enlarge:g})")
    return 0


def _cli(argv: list[str] | None) -> int:
    """``main`` with a failed fetch or a bad archive as one line, exit code 1 (bad input, through ``run``: 2; Ctrl-C:
    130)."""
    try:
        return main(argv)
    except (OSError, LookupError, ValueError) as exc:
        print(f"error: {' '.join(str(exc).split())[:300]}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(run(_cli))
