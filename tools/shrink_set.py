"""``python tools/shrink_set.py SRC DST --scales 0.5 0.25``: smaller copies of labelled whole-image folders.

Every folder under SRC with a ``boxes.csv`` (``maskify --full-images`` / ``face_detector.eval_set`` layout) is
written to ``DST/<folder>_x<scale>/``: photos shrunk with ``cv2.INTER_AREA`` (a group photo taken from further away),
boxes scaled with them, labels and looks kept. The labels come from the full-size photo, so faces too small for dlib
at the smaller scale stay labelled: the way to evaluate the classifier on small faces (``evaluation.classifier``).
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

from maskwatch.cli import Parser, run
from maskwatch.errors import UserError
from maskwatch.files import check_writable, write_bytes_atomic, write_text_atomic

BOX_KEYS = ("x1", "y1", "x2", "y2")


def shrink_folder(src: Path, dst: Path, scale: float, jpeg_quality: int = 95) -> int:
    """Write the shrunk copy of one labelled folder; return the number of photos."""
    with (src / "boxes.csv").open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        fields = list(reader.fieldnames or ())
        rows = list(reader)
    boxes = [_box(row, src / "boxes.csv", line) for line, row in enumerate(rows, start=2)]  # all, before writing
    done: set[str] = set()
    for row, box in zip(rows, boxes, strict=True):
        if row["file"] not in done:
            image = cv2.imread(str(src / row["file"]), cv2.IMREAD_COLOR)
            if image is None:
                raise UserError(f"cannot read {src / row['file']}")
            small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            ok, data = cv2.imencode(Path(row["file"]).suffix or ".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
            if not ok:
                raise UserError(f"cannot encode {row['file']}")
            write_bytes_atomic(dst / row["file"], data.tobytes())
            done.add(row["file"])
        for k, value in zip(BOX_KEYS, box, strict=True):
            row[k] = str(round(value * scale))
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
    args = parser.parse_args(argv)
    folders = sorted({p.parent for p in args.src.rglob("boxes.csv")})
    if not folders:
        raise UserError(f"{args.src}: no boxes.csv below it")
    check_writable("DST", args.dst)
    for scale in args.scales:
        if not 0 < scale <= 1:
            raise UserError(f"scale must be in (0, 1], got {scale}")
        for folder in folders:
            rel = folder.relative_to(args.src).as_posix()
            name = args.src.name if rel == "." else rel.replace("/", "_")
            out = args.dst / f"{name}_x{scale:g}"
            print(f"{out}: {shrink_folder(folder, out, scale)} photos")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
