"""One photo with masks worn right, worn wrong and none: each face taken from one of maskify's variants of it.

    python -m train.maskify SRC DST --full-images --classes 3 --upsample 2 --seed 1   # SRC: one group photo
    python tools/three_label_frame.py DST OUT.jpg
    python -m detector.webcam --source OUT.jpg --no-display --output FRAME.jpg \
        --set classifier.model=mask_classifier_3class      # docs/three_labels.jpg: FRAME.jpg at JPEG quality 80

The faces, left to right, take their region (the box grown by ``MARGIN``) from the variants in ``CYCLE``, in turn;
the rest of the photo is the unmasked original (every variant is the same photo but for the masks).
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Sequence
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # python tools/x.py from a checkout

from detector.outputs import check_outputs
from maskwatch.cli import Parser, run
from maskwatch.errors import UserError
from maskwatch.faces import grow_boxes
from maskwatch.files import IMAGE_EXTS, write_bytes_atomic

CYCLE = ("mask", "below_nose", "no_mask", "mask", "on_chin", "no_mask")
MARGIN = 0.3


def _rows(maskify_dir: Path) -> list[dict[str, str]]:
    """The unmasked variant's ``no_mask`` rows of ``boxes.csv``; ``UserError`` when it has none."""
    path = maskify_dir / "boxes.csv"
    if not path.is_file():
        raise UserError(f"{path} not found (make one with: python -m train.maskify SRC {maskify_dir} --full-images "
                        "--classes 3)")
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = {"file", "label", "x1", "y1", "x2", "y2"} - set(reader.fieldnames or ())
        if missing:
            raise UserError(f"{path}: missing columns {', '.join(sorted(missing))}")
        rows = [r for r in reader if (r["file"] or "").endswith("__no_mask.jpg") and r["label"] == "no_mask"]
    if not rows:
        raise UserError(f"{path} has no no_mask face of a __no_mask.jpg photo (maskify --full-images --classes 3)")
    return rows


def variant_paths(maskify_dir: Path) -> dict[str, Path]:
    stem = Path(_rows(maskify_dir)[0]["file"]).name.removesuffix("__no_mask.jpg")
    return {name: maskify_dir / "images" / f"{stem}__{name}.jpg" for name in sorted(set(CYCLE))}


def compose(maskify_dir: Path) -> cv2.typing.MatLike:
    """The unmasked photo with each face (by x) replaced by its region in the next variant of ``CYCLE``."""
    rows = _rows(maskify_dir)
    variants = {name: cv2.imread(str(path)) for name, path in variant_paths(maskify_dir).items()}
    bad = [str(variant_paths(maskify_dir)[n]) for n, im in variants.items() if im is None]
    if bad:
        raise UserError(f"cannot read {bad[0]} (every variant of {', '.join(sorted(set(CYCLE)))} is needed)")
    out = variants["no_mask"].copy()
    try:
        boxes = sorted([int(r[k]) for k in ("x1", "y1", "x2", "y2")] for r in rows)
    except ValueError:
        raise UserError(f"{maskify_dir / 'boxes.csv'}: box coordinates must be integers") from None
    grown = grow_boxes(boxes, MARGIN, (out.shape[1], out.shape[0]))
    for i, (x1, y1, x2, y2) in enumerate(grown.tolist()):
        out[y1:y2, x1:x2] = variants[CYCLE[i % len(CYCLE)]][y1:y2, x1:x2]
    return out


def _main(argv: Sequence[str] | None = None) -> int:
    parser = Parser(prog="python tools/three_label_frame.py", description=__doc__.splitlines()[0])
    parser.add_argument("maskify_dir", type=Path, help="a maskify --full-images --classes 3 folder of one photo")
    parser.add_argument("out", type=Path, help="the composed photo (.jpg)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    args = parser.parse_args(argv)
    if args.out.suffix.lower() not in IMAGE_EXTS:
        raise UserError(f"OUT {args.out}: end the name in {', '.join(IMAGE_EXTS)}")
    sources = list(variant_paths(args.maskify_dir).values())
    check_outputs(sources, {"OUT": args.out}, overwrite=args.overwrite)
    ok, data = cv2.imencode(args.out.suffix, compose(args.maskify_dir), [cv2.IMWRITE_JPEG_QUALITY, 92])
    if not ok:
        raise UserError(f"cannot encode {args.out}")
    write_bytes_atomic(args.out, data.tobytes())
    print(f"wrote {args.out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
