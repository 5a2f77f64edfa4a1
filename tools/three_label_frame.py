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
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # python tools/x.py from a checkout

from maskwatch.faces import grow_boxes

CYCLE = ("mask", "below_nose", "no_mask", "mask", "on_chin", "no_mask")
MARGIN = 0.3


def compose(maskify_dir: Path) -> cv2.typing.MatLike:
    """The unmasked photo with each face (by x) replaced by its region in the next variant of ``CYCLE``."""
    with (maskify_dir / "boxes.csv").open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["file"].endswith("__no_mask.jpg") and r["label"] == "no_mask"]
    stem = Path(rows[0]["file"]).name.removesuffix("__no_mask.jpg")
    variants = {name: cv2.imread(str(maskify_dir / "images" / f"{stem}__{name}.jpg")) for name in set(CYCLE)}
    out = variants["no_mask"].copy()
    boxes = sorted([int(r[k]) for k in ("x1", "y1", "x2", "y2")] for r in rows)
    grown = grow_boxes(boxes, MARGIN, (out.shape[1], out.shape[0]))
    for i, (x1, y1, x2, y2) in enumerate(grown.tolist()):
        out[y1:y2, x1:x2] = variants[CYCLE[i % len(CYCLE)]][y1:y2, x1:x2]
    return out


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    cv2.imwrite(sys.argv[2], compose(Path(sys.argv[1])), [cv2.IMWRITE_JPEG_QUALITY, 92])
