"""``python -m evaluation.three_class DIR...``: mask classifiers side by side on the same faces of three-class sets.

Each DIR (their faces pooled) is a ``maskify --full-images --classes 3`` folder (``python -m train.starter_data DST
--classes 3 --eval-dir DIR``, ``python -m evaluation.sets DST --classes 3``): images and ``boxes.csv`` with labels
``mask``, ``no_mask``, ``incorrect`` and ``ignore``. The faces are the configured face detector's boxes matched to
labelled faces at IoU >= ``--iou`` (the whole pipeline: detector box -> crop -> classifier; ``--boxes labelled`` crops
the labelled boxes instead, the classifier alone). Every model of ``--models`` (default: the binary ``mask_classifier``
and ``mask_classifier_3class``) classifies the same crops.

Per model: mask / no-mask accuracy (a mask or no-mask face called anything else is wrong), by the labelled face's
height (the bins of the classifier evaluation, ``evaluation.classifier``), incorrect-class precision and recall,
incorrect recall by face height and per wrong placement (from the image name ``<photo>__<placement>.jpg``), the
share of each class's faces called a violation (``no_mask`` or ``incorrect``: what alerts act on), and what it says on
each class. ``--json PATH`` saves it.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evaluation.classifier import BIN_NAMES, height_bin
from evaluation.sets import IGNORE, LabelledImage, read_labelled_folder, readable_images, skipped_line
from maskwatch.cli import Parser, add_config_args, config_from_args, run
from maskwatch.config import Config
from maskwatch.errors import UserError
from maskwatch.files import IMAGE_EXTS, check_writable, write_json_atomic
from maskwatch.geometry import greedy_match, iou_matrix
from maskwatch.labels import CLASSES

MODELS = ("mask_classifier", "mask_classifier_3class")


@dataclass(frozen=True)
class FaceCrop:
    """One labelled face the pipeline found: its crop and what is known about it."""

    image: str
    label: str
    height_px: int
    placement: str  # the wrong placement of an incorrect face ("" otherwise)
    crop_bgr: np.ndarray


def placement_of(path: Path) -> str:
    """``below_nose`` for ``images/photo__below_nose.jpg``; ``""`` for other names."""
    from train.mask_overlay import WRONG_PLACEMENTS

    tail = path.stem.rpartition("__")[2]
    return tail if tail in WRONG_PLACEMENTS else ""


def face_crops(
    images: Sequence[LabelledImage], detector: Any | None, *, iou_min: float, margin: float = 0.0,
    unreadable: list[str] | None = None,
) -> tuple[list[FaceCrop], dict[str, int]]:
    """Crops of the labelled faces (detector boxes matched to them, or with ``detector`` None the labelled boxes);
    returns them and the count of labelled faces per label the detector missed. An unreadable photo is skipped, its
    path appended to ``unreadable``."""
    crops, missed = [], Counter({label: 0 for label in CLASSES})
    for item, frame in readable_images(images, [] if unreadable is None else unreadable):
        labelled = [i for i, label in enumerate(item.labels) if label != IGNORE]
        if detector is None:
            found = {i: frame[y1:y2, x1:x2] for i, (x1, y1, x2, y2) in ((i, item.xyxy[i]) for i in labelled)}
        else:
            faces = detector(frame)
            ious = iou_matrix(faces.xyxy, item.xyxy)
            allowed = np.array([label != IGNORE for label in item.labels], dtype=bool)
            taken = greedy_match(ious, faces.confidence, iou_min, allowed=allowed)
            detected = faces.crops(frame, margin)
            found = {int(t): detected[p] for p, t in enumerate(taken) if t >= 0}
        for i in labelled:
            label = item.labels[i]
            if i not in found:
                missed[label] += 1
                continue
            height = int(item.xyxy[i][3] - item.xyxy[i][1])
            crops.append(FaceCrop(item.path.name, label, height, placement_of(item.path), found[i]))
    return crops, dict(missed)


def classify(classifier: Any, crops: Sequence[FaceCrop], batch: int = 32) -> list[str]:
    """The class name the classifier gives each crop."""
    names: list[str] = []
    for start in range(0, len(crops), batch):
        probs = classifier.probabilities([c.crop_bgr for c in crops[start : start + batch]])
        names += [classifier.class_names[k] for k in classifier.predict(probs)]
    return names


def _ratio(hits: int, n: int) -> float | None:
    return hits / n if n else None


def _recall_at(wrong: Sequence[tuple[FaceCrop, str]], placement: str) -> float | None:
    at = [p for c, p in wrong if c.placement == placement]
    return _ratio(sum(p == "incorrect" for p in at), len(at))


def score(crops: Sequence[FaceCrop], predicted: Sequence[str]) -> dict[str, Any]:
    """Mask / no-mask accuracy (overall and by face height), incorrect precision / recall (overall, by face height,
    per placement)."""
    rows = list(zip(crops, predicted, strict=True))
    binary = [(c, p) for c, p in rows if c.label in ("mask", "no_mask")]
    wrong = [(c, p) for c, p in rows if c.label == "incorrect"]
    called_incorrect = [c for c, p in rows if p == "incorrect"]
    placements = sorted({c.placement for c, _ in wrong if c.placement})
    return {
        "faces": len(rows),
        "mask_no_mask_accuracy": _ratio(sum(c.label == p for c, p in binary), len(binary)),
        "mask_no_mask_faces": len(binary),
        "mask_no_mask_by_face_height_px": _by_height(binary, lambda c, p: c.label == p),
        "incorrect_precision": _ratio(sum(c.label == "incorrect" for c in called_incorrect), len(called_incorrect)),
        "incorrect_recall": _ratio(sum(p == "incorrect" for _, p in wrong), len(wrong)),
        "incorrect_recall_by_face_height_px": _by_height(wrong, lambda c, p: p == "incorrect"),
        "incorrect_recall_by_placement": {where: _recall_at(wrong, where) for where in placements},
        "violation_by_label": {  # what alerts act on with alerts.incorrect_is_violation: no_mask or incorrect
            label: _ratio(sum(p != "mask" for c, p in rows if c.label == label), sum(c.label == label for c in crops))
            for label in CLASSES
        },
        "predicted_by_label": {
            label: dict(Counter(p for c, p in rows if c.label == label)) for label in CLASSES
        },
    }


def _by_height(
    rows: Sequence[tuple[FaceCrop, str]], right: Callable[[FaceCrop, str], bool]
) -> dict[str, dict[str, Any]]:
    """Per face-height bin: faces, how many ``right(crop, predicted)`` holds for, and that share."""
    out = {}
    for bin_name in BIN_NAMES:
        inside = [(c, p) for c, p in rows if height_bin(c.height_px) == bin_name]
        hits = sum(bool(right(c, p)) for c, p in inside)
        out[bin_name] = {"faces": len(inside), "correct": hits, "accuracy": _ratio(hits, len(inside))}
    return out


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def format_table(results: dict[str, dict[str, Any]]) -> str:
    """One line per model, then mask / no-mask accuracy and incorrect recall by face height."""
    lines = [f"{'model':<26} {'faces':>5} {'mask/no-mask acc':>16} {'incorrect P':>11} {'incorrect R':>11}"]
    for name, r in results.items():
        lines.append(f"{name:<26} {r['faces']:>5} {_fmt(r['mask_no_mask_accuracy']):>16} "
                     f"{_fmt(r['incorrect_precision']):>11} {_fmt(r['incorrect_recall']):>11}")  # fmt: skip
    for key, title in (("mask_no_mask_by_face_height_px", "mask / no-mask accuracy"),
                       ("incorrect_recall_by_face_height_px", "incorrect recall")):  # fmt: skip
        lines += ["", f"{title} by face height (px), correct/faces:",
                  f"{'model':<26} " + " ".join(f"{b:>10}" for b in BIN_NAMES)]  # fmt: skip
        for name, r in results.items():
            lines.append(f"{name:<26} " + " ".join(f"{c['correct']:>4}/{c['faces']:<5}" for c in r[key].values()))
    lines += ["", "called a violation (no_mask or incorrect), share of each label's faces:",
              f"{'model':<26} " + " ".join(f"{label:>10}" for label in CLASSES)]  # fmt: skip
    for name, r in results.items():
        lines.append(f"{name:<26} " + " ".join(f"{_fmt(r['violation_by_label'][k]):>10}" for k in CLASSES))
    for name, r in results.items():
        lines.append(f"{name}: on each label {r['predicted_by_label']}; incorrect recall by placement "
                     f"{ {k: _fmt(v) for k, v in r['incorrect_recall_by_placement'].items()} }")  # fmt: skip
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m evaluation.three_class", description=__doc__,
                    formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("dirs", type=Path, nargs="+", metavar="DIR",
                        help="maskify --full-images --classes 3 folders (images/ + boxes.csv), pooled")  # fmt: skip
    parser.add_argument("--models", nargs="+", default=list(MODELS), help="classifier.model values to compare")
    parser.add_argument("--boxes", choices=("detector", "labelled"), default="detector",
                        help="detector: the face detector's matched boxes (default); labelled: boxes.csv")  # fmt: skip
    parser.add_argument("--iou", type=float, default=0.4, help="IoU for a detection to match a face (default 0.4)")
    parser.add_argument("--json", type=Path, help="save the results here")
    add_config_args(parser)
    return parser


def _with_model(cfg: Config, model: str) -> Config:
    return dataclasses.replace(cfg, classifier=dataclasses.replace(cfg.classifier, model=model))


def _check_json(path: Path) -> None:
    """``--json`` must be a file name in a writable folder: checked before the models run, not after."""

    if path.is_dir():
        raise UserError(f"--json {path} is a folder: give a file name, e.g. {path / 'three_class.json'}")
    check_writable("--json", path.parent)


def _main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = config_from_args(args)
    if not 0 < args.iou <= 1:  # above 1 nothing matches: "no labelled face was found" would blame the data
        raise UserError(f"--iou must be above 0 and at most 1, got {args.iou:g}")
    if args.json:
        _check_json(args.json)
    from detector.classifier import MaskClassifier

    images = [im for d in args.dirs for im in read_labelled_folder(d, IMAGE_EXTS, labels=CLASSES)]
    detector = None
    if args.boxes == "detector":
        from face_detector import build_face_detector

        detector = build_face_detector(cfg)
    unreadable: list[str] = []
    crops, missed = face_crops(images, detector, iou_min=args.iou, unreadable=unreadable)
    names = " ".join(map(str, args.dirs))
    if not crops:
        skipped = f" ({skipped_line(unreadable)})" if unreadable else ""
        raise UserError(f"no labelled face of {names} was found{skipped}")
    results = {
        model: score(crops, classify(MaskClassifier.from_config(_with_model(cfg, model)), crops))
        for model in args.models
    }
    labelled = Counter(c.label for c in crops)
    print(f"{names}: {len(crops)} faces found ({dict(labelled)}), missed by the face detector {missed}; "
          f"boxes: {args.boxes}")
    print(format_table(results))
    if unreadable:
        print(skipped_line(unreadable))
    if args.json:
        write_json_atomic(args.json, {"dirs": [str(d) for d in args.dirs], "boxes": args.boxes, "iou": args.iou,
                                      "faces": dict(labelled), "missed": missed, "unreadable": sorted(unreadable),
                                      "models": results})  # fmt: skip
        print(f"wrote {args.json}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
