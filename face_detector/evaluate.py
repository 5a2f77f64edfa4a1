"""``python -m face_detector.evaluate DIR [DIR ...]``: recall per label, false positives and speed of the face stage.

DIR holds images and a ``boxes.csv`` (``file,x1,y1,x2,y2,label``; file relative to DIR; label ``mask``,
``no_mask`` or ``ignore``), as written by ``python -m train.maskify SRC DIR --full-images``. Every image under
DIR is evaluated; an image without rows has no face (a folder of non-face photos needs only the header line).
A detection matches a labelled face at IoU >= ``--iou``; detections on ``ignore`` boxes do not count.

``--options FILE.yaml`` compares several detector settings in one run (``options: [{name, set: [...]}]``).
Recall is also reported by the labelled box's height (under 64, 64-127, 128-255, 256+ px): small masked faces are
where the face stage is weakest.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml
from tqdm import tqdm

from face_detector import build_face_detector
from face_detector.matching import IGNORE, match_image
from maskwatch.cli import add_config_args, run
from maskwatch.config import Config, load_config
from maskwatch.errors import UserError
from maskwatch.faces import Faces
from maskwatch.files import write_json_atomic

LABELS = ("mask", "no_mask")
HEIGHT_BINS_PX = (64, 128, 256)  # upper edges of the face-height bins of the report; the last bin is open


def height_bin(height_px: float) -> str:
    """The report's bin of a face ``height_px`` tall: ``"<64"``, ``"64-127"``, ``"128-255"`` or ``">=256"``."""
    low = 0
    for edge in HEIGHT_BINS_PX:
        if height_px < edge:
            return f"<{edge}" if low == 0 else f"{low}-{edge - 1}"
        low = edge
    return f">={low}"


def height_bins() -> list[str]:
    return [height_bin(edge - 1) for edge in HEIGHT_BINS_PX] + [height_bin(HEIGHT_BINS_PX[-1])]


@dataclass(frozen=True)
class LabelledImage:
    path: Path
    xyxy: np.ndarray  # int (m, 4)
    labels: list[str]


@dataclass
class Tally:
    """Counts of one detector setting over the evaluation set."""

    faces: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LABELS, 0))
    found: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LABELS, 0))
    by_height: dict[str, dict[str, list[int]]] = field(  # bin -> label -> [found, faces]
        default_factory=lambda: {b: {k: [0, 0] for k in LABELS} for b in height_bins()}
    )
    images: int = 0
    false_positives: int = 0
    ignored: int = 0
    wall_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        recall = {k: (self.found[k] / self.faces[k] if self.faces[k] else None) for k in LABELS}
        return {
            "recall": recall,
            "faces": self.faces,
            "found": self.found,
            "by_face_height_px": {
                b: {k: {"found": f, "faces": n, "recall": f / n if n else None} for k, (f, n) in labels.items()}
                for b, labels in self.by_height.items()
            },
            "images": self.images,
            "false_positives": self.false_positives,
            "false_positives_per_image": self.false_positives / self.images if self.images else None,
            "ignored_detections": self.ignored,
            "ms_per_image": {
                "wall_mean": statistics.fmean(self.wall_ms) if self.wall_ms else None,
                "wall_median": statistics.median(self.wall_ms) if self.wall_ms else None,
                "cpu_mean": statistics.fmean(self.cpu_ms) if self.cpu_ms else None,
            },
        }


def read_labelled_folder(folder: Path, image_exts: Sequence[str]) -> list[LabelledImage]:
    """All images under ``folder`` with their labelled boxes from ``folder/boxes.csv``."""
    csv_path = folder / "boxes.csv"
    if not csv_path.is_file():
        raise UserError(f"{folder}: no boxes.csv (make one with: python -m train.maskify SRC {folder} --full-images)")
    rows: dict[Path, list[tuple[list[int], str]]] = {}
    with csv_path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = {"file", "x1", "y1", "x2", "y2", "label"} - set(reader.fieldnames or ())
        if missing:
            raise UserError(f"{csv_path}: missing columns {', '.join(sorted(missing))}")
        for line, row in enumerate(reader, start=2):
            label = row["label"].strip()
            if label not in (*LABELS, IGNORE):
                raise UserError(f"{csv_path}:{line}: label {label!r} is not one of mask, no_mask, ignore")
            try:
                box = [int(float(row[k])) for k in ("x1", "y1", "x2", "y2")]
            except ValueError:
                raise UserError(f"{csv_path}:{line}: box coordinates must be numbers") from None
            rows.setdefault(folder / row["file"], []).append((box, label))
    exts = {e.lower() for e in image_exts}
    paths = set(rows) | {p for p in folder.rglob("*") if p.suffix.lower() in exts and p.is_file()}
    images = []
    for path in sorted(paths):
        boxes = rows.get(path, [])
        xyxy = np.array([b for b, _ in boxes], dtype=np.int64).reshape(-1, 4)
        images.append(LabelledImage(path, xyxy, [label for _, label in boxes]))
    return images


def evaluate(
    detector: Callable[[np.ndarray], Faces],
    images: Sequence[LabelledImage],
    *,
    iou_min: float = 0.4,
    desc: str = "evaluate",
) -> tuple[Tally, list[dict[str, Any]], list[str]]:
    """Run ``detector`` on every image; returns the tally, per-image details and unreadable files."""
    tally, details, unreadable = Tally(), [], []
    warmed_up = False
    for item in tqdm(images, desc=desc, unit="image", leave=False):
        frame = cv2.imread(str(item.path), cv2.IMREAD_COLOR)
        if frame is None:
            unreadable.append(str(item.path))
            continue
        if not warmed_up:  # the first forward pass allocates; keep it out of the timing
            detector(frame)
            warmed_up = True
        wall, cpu = time.perf_counter(), time.thread_time()
        faces = detector(frame)
        tally.cpu_ms.append(1000 * (time.thread_time() - cpu))
        tally.wall_ms.append(1000 * (time.perf_counter() - wall))
        result = match_image(faces.xyxy, faces.confidence, item.xyxy, item.labels, iou_min=iou_min)
        tally.images += 1
        tally.false_positives += result.false_positives
        tally.ignored += result.ignored
        for box, label, found in zip(item.xyxy, item.labels, result.found, strict=True):
            if label in LABELS:
                tally.faces[label] += 1
                tally.found[label] += int(found)
                counts = tally.by_height[height_bin(box[3] - box[1])][label]
                counts[0] += int(found)
                counts[1] += 1
        details.append({
            "image": str(item.path),
            "missed": [[*map(int, b), lab] for b, lab, f in zip(item.xyxy, item.labels, result.found, strict=True)
                       if lab in LABELS and not f],
            "false_positives": result.false_positives,
        })  # fmt: skip
    return tally, details, unreadable


def read_options(path: Path | None) -> list[tuple[str, list[str]]]:
    """Named override sets from ``path`` (``options: [{name: ..., set: [key=value, ...]}]``)."""
    if path is None:
        return [("configured", [])]
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        options = [(str(o["name"]), [str(s) for s in o.get("set", [])]) for o in data["options"]]
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise UserError(f"{path}: expected options: [{{name: ..., set: [key=value, ...]}}] ({exc})") from None
    if not options:
        raise UserError(f"{path}: no options")
    return options


def format_table(results: Sequence[dict[str, Any]]) -> str:
    """A Markdown table: one row per detector setting."""
    lines = [
        "| option | recall mask | recall no_mask | false positives (per image) | ms/image wall | ms/image CPU |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        s = r["summary"]
        rec = {k: "-" if v is None else f"{v:.3f} ({s['found'][k]}/{s['faces'][k]})" for k, v in s["recall"].items()}
        ms = s["ms_per_image"]
        fpi = s["false_positives_per_image"] or 0.0
        lines.append(
            f"| {r['name']} | {rec['mask']} | {rec['no_mask']} | {s['false_positives']} ({fpi:.2f}) "
            f"| {ms['wall_mean'] or 0:.1f} | {ms['cpu_mean'] or 0:.1f} |"
        )
    return "\n".join(lines)


def format_height_table(results: Sequence[dict[str, Any]], label: str = "mask") -> str:
    """A Markdown table of ``label``'s recall by face height: one row per detector setting."""
    bins = height_bins()
    lines = [f"| option | {' | '.join(f'{label} {b} px' for b in bins)} |", "|---" * (len(bins) + 1) + "|"]
    for r in results:
        cells = []
        for b in bins:
            c = r["summary"]["by_face_height_px"][b][label]
            cells.append("-" if not c["faces"] else f"{c['recall']:.3f} ({c['found']}/{c['faces']})")
        lines.append(f"| {r['name']} | {' | '.join(cells)} |")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m face_detector.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("dirs", nargs="+", type=Path, metavar="DIR", help="labelled folder(s) with boxes.csv")
    parser.add_argument("--options", type=Path, help="YAML of named detector settings to compare")
    parser.add_argument("--iou", type=float, default=0.4, help="IoU for a detection to match a face (0.4)")
    parser.add_argument("--json", type=Path, help="report path (default: <runs_dir>/face_eval/<time>.json)")
    add_config_args(parser)
    return parser


def _main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    base = load_config(args.config, args.overrides)
    images: list[LabelledImage] = []
    for folder in args.dirs:
        if not folder.is_dir():
            raise UserError(f"not a folder: {folder}")
        images += read_labelled_folder(folder, base.stream.image_exts)
    if not images:
        raise UserError(f"no images in {', '.join(map(str, args.dirs))}")
    results = []
    for name, overrides in read_options(args.options):
        cfg: Config = load_config(args.config, [*args.overrides, *overrides])
        detector = build_face_detector(cfg)
        tally, details, unreadable = evaluate(detector, images, iou_min=args.iou, desc=name)
        results.append({"name": name, "set": overrides, "face_detector": cfg.to_dict()["face_detector"],
                        "summary": tally.summary(), "unreadable": unreadable, "images": details})  # fmt: skip
        print(format_table(results[-1:]).splitlines()[-1], flush=True)
    report = {
        "tool": "face_detector.evaluate",
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python -m face_detector.evaluate", *(argv if argv is not None else sys.argv[1:])]),
        "dirs": [str(d) for d in args.dirs],
        "iou_min": args.iou,
        "opencv": cv2.__version__,
        "results": results,
    }
    out = args.json or base.resolve_path(base.paths.runs_dir) / "face_eval" / (
        datetime.now(UTC).strftime("%Y%m%d-%H%M%S") + ".json"
    )
    write_json_atomic(out, report)
    print()
    print(format_table(results))
    for label in LABELS:
        print()
        print(format_height_table(results, label))
    skipped = {f for r in results for f in r["unreadable"]}
    if skipped:
        print(f"skipped {len(skipped)} unreadable image(s): {', '.join(sorted(skipped))}")
    print(f"wrote {out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
