"""``python tools/eval_classifier_boxes.py DIR``: the mask classifier on the labelled boxes of a maskify
``--full-images`` set (``DIR/boxes.csv``), through the detector's runtime. Crops are the labelled boxes (not
the face detector's), so this measures the classifier alone. Prints a scikit-learn report; ``--json PATH`` saves it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from detector.outputs import check_outputs
from evaluation.classifier import read_folder
from evaluation.sets import readable_images, skipped_line
from maskwatch.cli import Parser, add_config_args, config_from_args, run
from maskwatch.errors import UserError
from maskwatch.files import write_json_atomic


def load_crops(folder: Path, unreadable: list[str] | None = None) -> tuple[list[np.ndarray], np.ndarray, list[str]]:
    """Crops (BGR), labels (1 = mask) and names of the ``mask`` / ``no_mask`` boxes; ``ignore`` rows skipped; a photo
    that cannot be read is skipped, its path appended to ``unreadable``."""
    path = folder / "boxes.csv"
    if not path.is_file():
        raise UserError(f"{path} not found (make one with: python -m train.maskify PHOTOS DIR --full-images)")
    crops, labels, names = [], [], []
    for image, frame in readable_images(read_folder(folder), [] if unreadable is None else unreadable, desc="photos"):
        rel = image.path.relative_to(folder).as_posix()
        for (x1, y1, x2, y2), label in zip(image.xyxy.tolist(), image.labels, strict=True):
            if label not in ("mask", "no_mask"):
                continue
            crop = frame[max(y1, 0) : max(y2, 0), max(x1, 0) : max(x2, 0)]
            if not crop.size:
                raise UserError(f"{path}: the box {x1},{y1},{x2},{y2} of {rel} is empty or outside the "
                                f"{frame.shape[1]}x{frame.shape[0]} photo")
            crops.append(crop)
            labels.append(1 if label == "mask" else 0)
            names.append(f"{rel}:{x1},{y1}")
    if not crops:
        raise UserError(f"no mask / no_mask box in {path}" + (f" ({skipped_line(unreadable)})" if unreadable else ""))
    return crops, np.array(labels), names


def _main(argv: Sequence[str] | None = None) -> int:
    parser = Parser(prog="python tools/eval_classifier_boxes.py", description=__doc__)
    parser.add_argument("dir", type=Path, help="a maskify --full-images folder (images/ + boxes.csv)")
    parser.add_argument("--json", type=Path, help="save the report here")
    add_config_args(parser)
    args = parser.parse_args(argv)
    cfg = config_from_args(args)
    check_outputs([args.dir / "boxes.csv", *args.dir.rglob("*")], {"--json": args.json}, overwrite=True)
    unreadable: list[str] = []
    crops, labels, names = load_crops(args.dir, unreadable)  # bad input before the classifier loads
    from sklearn.metrics import classification_report, f1_score

    from detector.classifier import MaskClassifier

    classifier = MaskClassifier.from_config(cfg)
    probs = classifier(crops)
    predicted = (probs >= classifier.threshold).astype(int)
    names_cls = ["no_mask", "mask"]
    print(classification_report(labels, predicted, labels=[1, 0], target_names=names_cls[::-1], digits=3))
    wrong = [f"{n} (label {names_cls[t]}, P(mask) {p:.3f})" for n, t, p in zip(names, labels, probs, strict=True)
             if (p >= classifier.threshold) != bool(t)]  # fmt: skip
    for line in wrong:
        print(f"wrong: {line}")
    report = {
        "n": len(labels),
        "accuracy": float((predicted == labels).mean()),
        "f1_mask": float(f1_score(labels, predicted, pos_label=1)),
        "f1_no_mask": float(f1_score(labels, predicted, pos_label=0)),
        "threshold": classifier.threshold,
        "wrong": wrong,
        "p_mask": {n: round(float(p), 4) for n, p in zip(names, probs, strict=True)},
        "unreadable": sorted(unreadable),
    }
    print(f"accuracy {report['accuracy']:.3f}, F1 mask {report['f1_mask']:.3f}, F1 no_mask {report['f1_no_mask']:.3f}")
    if unreadable:
        print(skipped_line(unreadable), file=sys.stderr)
    if args.json:
        write_json_atomic(args.json, report)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
