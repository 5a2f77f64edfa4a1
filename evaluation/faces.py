"""``python -m evaluation.faces DIR [DIR ...]``: recall per label, false positives and speed of the configured face
detector (``face_detector.build_face_detector``; ``--config`` / ``--set`` as everywhere).

DIR holds images and a ``boxes.csv`` (``file,x1,y1,x2,y2,label``; file relative to DIR; label ``mask``,
``no_mask`` or ``ignore``), as written by ``python -m train.maskify SRC DIR --full-images`` or
``python -m evaluation.sets``. Every image under DIR is evaluated; an image without rows has no face. A detection
matches a labelled face at IoU >= ``--iou``; detections on ``ignore`` boxes do not count. Recall is also reported by
the labelled box's height (under 64, 64-127, 128-255, 256+ px). To compare two settings, run twice with different
``--set``.
"""

from __future__ import annotations

import argparse
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

from evaluation.sets import IGNORE, LABELS, LabelledImage, read_labelled_folder, readable_images, skipped_line
from face_detector import build_face_detector
from maskwatch.cli import Parser, add_config_args, config_from_args, run
from maskwatch.errors import UserError
from maskwatch.faces import Faces
from maskwatch.files import IMAGE_EXTS, write_json_atomic
from maskwatch.geometry import greedy_match, iou_matrix

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


@dataclass(frozen=True)
class ImageMatch:
    """Result of one image: which labelled faces were found, how many detections matched nothing."""

    found: np.ndarray  # bool (m,): labelled face i matched a detection (always False for ignore boxes)
    false_positives: int
    ignored: int  # detections on ignore boxes: neither rewarded nor penalised


def match_image(
    pred_xyxy: np.ndarray,
    pred_confidence: np.ndarray,
    true_xyxy: np.ndarray,
    true_labels: list[str],
    *,
    iou_min: float = 0.4,
) -> ImageMatch:
    """Greedy matching, strongest detection first, each labelled face at most once (like PASCAL VOC).

    A detection that overlaps no free labelled face by ``iou_min`` but overlaps an ``ignore`` box is ignored;
    any other unmatched detection (including a second box on an already found face) is a false positive.
    """
    ious = iou_matrix(np.asarray(pred_xyxy).reshape(-1, 4), true_xyxy)
    is_ignore = np.array([label == IGNORE for label in true_labels], dtype=bool)
    taken = greedy_match(ious, pred_confidence, iou_min, allowed=~is_ignore)
    found = np.zeros(len(true_labels), dtype=bool)
    found[taken[taken >= 0]] = True
    on_ignore = (ious[:, is_ignore] >= iou_min).any(axis=1) if is_ignore.any() else np.zeros(len(ious), bool)
    ignored = int((on_ignore & (taken < 0)).sum())
    return ImageMatch(found, int((taken < 0).sum()) - ignored, ignored)


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
    for item, frame in readable_images(images, unreadable, desc):
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


def format_table(results: Sequence[dict[str, Any]]) -> str:
    """A Markdown table: one row per detector setting."""
    lines = [
        "| setting | recall mask | recall no_mask | false positives (per image) | ms/image wall | ms/image CPU |",
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
    lines = [f"| setting | {' | '.join(f'{label} {b} px' for b in bins)} |", "|---" * (len(bins) + 1) + "|"]
    for r in results:
        cells = []
        for b in bins:
            c = r["summary"]["by_face_height_px"][b][label]
            cells.append("-" if not c["faces"] else f"{c['recall']:.3f} ({c['found']}/{c['faces']})")
        lines.append(f"| {r['name']} | {' | '.join(cells)} |")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m evaluation.faces", description=__doc__,
                    formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("dirs", nargs="+", type=Path, metavar="DIR", help="labelled folder(s) with boxes.csv")
    parser.add_argument("--iou", type=float, default=0.4, help="IoU for a detection to match a face (0.4)")
    parser.add_argument("--json", type=Path, help="report path (default: <runs_dir>/face_eval/<time>.json)")
    add_config_args(parser)
    return parser


def _main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = config_from_args(args)
    images: list[LabelledImage] = []
    for folder in args.dirs:
        if not folder.is_dir():
            raise UserError(f"not a folder: {folder}")
        images += read_labelled_folder(folder, IMAGE_EXTS)
    if not images:
        raise UserError(f"no images in {', '.join(map(str, args.dirs))}")
    name = " ".join(args.overrides) or "configured"
    tally, details, unreadable = evaluate(build_face_detector(cfg), images, iou_min=args.iou, desc=name)
    result = {"name": name, "set": args.overrides, "face_detector": cfg.to_dict()["face_detector"],
              "summary": tally.summary(), "unreadable": unreadable, "images": details}  # fmt: skip
    report = {
        "tool": "evaluation.faces",
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python -m evaluation.faces", *(argv if argv is not None else sys.argv[1:])]),
        "dirs": [str(d) for d in args.dirs],
        "iou_min": args.iou,
        "opencv": cv2.__version__,
        "results": [result],
    }
    out = args.json or cfg.output_path(cfg.paths.runs_dir) / "face_eval" / (
        datetime.now(UTC).strftime("%Y%m%d-%H%M%S") + ".json"
    )
    write_json_atomic(out, report)
    print(format_table([result]))
    for label in LABELS:
        print()
        print(format_height_table([result], label))
    if unreadable:
        print(skipped_line(unreadable))
    print(f"wrote {out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
