"""``python tools/shrink_set.py SRC DST --scales 0.5 0.25``: smaller copies of labelled whole-image folders.

Every folder under SRC with a ``boxes.csv`` (``maskify --full-images`` / ``face_detector.eval_set`` layout) is
written to ``DST/<folder>_x<scale>/``: photos shrunk with ``cv2.INTER_AREA`` (a group photo taken from further away),
boxes scaled with them, labels and looks kept. The labels come from the full-size photo, so faces too small for dlib
at the smaller scale stay labelled: the way to evaluate the classifier on small faces (``evaluation.classifier``).
A photo OpenCV cannot read is skipped (its rows too) and counted; an existing output folder needs ``--overwrite``.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from collections.abc import Sequence
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from evaluation.sets import skipped_line
from maskwatch.cli import Parser, run
from maskwatch.errors import UserError
from maskwatch.files import check_writable, write_bytes_atomic, write_text_atomic

BOX_KEYS = ("x1", "y1", "x2", "y2")


def shrink_folder(src: Path, dst: Path, scale: float, jpeg_quality: int = 95,
                  unreadable: list[str] | None = None) -> int:  # fmt: skip
    """Write the shrunk copy of one labelled folder; return the number of photos. A photo that cannot be read is
    left out with its rows, its path appended to ``unreadable``."""
    with (src / "boxes.csv").open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        fields = list(reader.fieldnames or ())
        rows = list(reader)
    boxes = [_box(row, src / "boxes.csv", line) for line, row in enumerate(rows, start=2)]  # all, before writing
    done: set[str] = set()
    bad: set[str] = set()
    for row, box in zip(rows, boxes, strict=True):
        if row["file"] not in done | bad:
            image = cv2.imread(str(src / row["file"]), cv2.IMREAD_COLOR)
            if image is None:
                bad.add(row["file"])
                continue
            small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            suffix = Path(row["file"]).suffix or ".jpg"
            params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if suffix.lower() in (".jpg", ".jpeg") else []
            ok, data = cv2.imencode(suffix, small, params)
            if not ok:
                raise UserError(f"cannot encode {row['file']}")
            write_bytes_atomic(dst / row["file"], data.tobytes())
            done.add(row["file"])
        for k, value in zip(BOX_KEYS, box, strict=True):
            row[k] = str(round(value * scale))
    rows = [r for r in rows if r["file"] not in bad]
    if unreadable is not None:
        unreadable.extend(str(src / f) for f in sorted(bad))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: v or "" for k, v in r.items() if k in fields} for r in rows)
    write_text_atomic(dst / "boxes.csv", buf.getvalue())
    return len(done)


def _box(row: dict[str, str], csv_path: Path, line: int) -> list[int]:
    try:
        return [int(row[k]) for k in BOX_KEYS]
    except (KeyError, TypeError, ValueError):
        raise UserError(f"{csv_path}:{line}: box coordinates must be integers") from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = Parser(prog="python tools/shrink_set.py", description=__doc__,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src", type=Path, help="folder holding labelled folders (boxes.csv + images)")
    parser.add_argument("dst", type=Path, help="output folder")
    parser.add_argument("--scales", type=float, nargs="+", default=[0.5, 0.25], help="shrink factors (0.5 0.25)")
    parser.add_argument("--overwrite", action="store_true", help="replace earlier outputs in DST")
    args = parser.parse_args(argv)
    bad = [s for s in args.scales if not 0 < s <= 1]
    if bad:  # all checked before anything is written
        raise UserError(f"scale must be in (0, 1], got {bad[0]}")
    folders = sorted({p.parent for p in args.src.rglob("boxes.csv")})
    if not folders:
        raise UserError(f"{args.src}: no boxes.csv below it")
    if args.dst.resolve().is_relative_to(args.src.resolve()):
        raise UserError(f"DST {args.dst} is inside SRC {args.src}: a later run would read the copies as sets; "
                        "choose a folder outside it")
    check_writable("DST", args.dst)
    outs = [(scale, folder, args.dst / f"{_name(folder, args.src)}_x{scale:g}") for scale in args.scales
            for folder in folders]  # fmt: skip
    existing = [out for _, _, out in outs if (out / "boxes.csv").exists()]
    if existing and not args.overwrite:
        raise UserError(f"{existing[0]} already exists (use --overwrite to replace the outputs in {args.dst})")
    unreadable: list[str] = []
    for scale, folder, out in outs:
        print(f"{out}: {shrink_folder(folder, out, scale, unreadable=unreadable)} photos")
    if unreadable:
        print(skipped_line(sorted(set(unreadable))), file=sys.stderr)
    return 0


def _name(folder: Path, src: Path) -> str:
    rel = folder.relative_to(src).as_posix()
    return src.name if rel == "." else rel.replace("/", "_")


if __name__ == "__main__":
    raise SystemExit(run(main))
