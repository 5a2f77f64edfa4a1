"""``python -m evaluation.identity``: identity switches, fragmentation, label flicker and people counts of the
whole pipeline on videos whose people are known.

Videos: a walk made here (``walk_video``) from the held-out photo set (``python -m evaluation.sets DST``: masked and
unmasked versions of the same faces, boxes known): six people cut from those photos walk, cross in front of each
other, stand, and one leaves the picture and comes back; and the demo mosaics (``demo/*.mp4``, one person per
tile, ``demo/<name>.json``). Detections of every frame are computed once, then replayed through
``detector.pipeline.Pipeline`` (the real classifier) with each tracking variant: ``before`` (no memory of unseen
tracks, no re-identification, the label of the last classification), ``no re-id`` (the configured tracker without
re-identification by look) and ``now`` (the configured ``tracking.*``).

Per true person: the track ids their face was given (``id_switches``: changes between consecutive matched frames,
CLEAR-MOT; ``fragments``: distinct ids minus one), flicker (mask <-> no_mask changes of the drawn label, per person
per minute in view), and ``People``' counts against the true number of people.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from detector.people import People
from maskwatch.cli import Parser, add_config_args, config_from_args, run
from maskwatch.config import load_config
from maskwatch.errors import UserError
from maskwatch.faces import LABELS, UNKNOWN, Faces, grow_boxes
from maskwatch.geometry import match_by_iou

MATCH_IOU = 0.3  # a predicted box overlapping a true face this much is that face
MIN_VISIBLE = 0.5  # a true face less visible than this (covered, cut by the frame edge) is not expected
SPRITE_MARGIN = 0.25  # a walker is their face box grown by this share on every side (hair, neck, background)
FRAME_WH = (640, 480)
# (face height px, waypoints (frame, x, y) of the sprite's top-left corner); later walkers pass in front
WALKS: tuple[tuple[int, tuple[tuple[int, int, int], ...]], ...] = (
    (95, ((0, -150, 20), (179, 700, 20))),  # walks right along the top
    (100, ((0, 560, 40), (179, -220, 40))),  # walks left along the top, in front of the first
    (90, ((0, 30, 290), (179, 50, 280))),  # stands bottom left
    (105, ((40, 250, 230), (179, 250, 220))),  # comes in at frame 40 (appears), stands in the middle
    (95, ((0, 470, 290), (179, -160, 300))),  # walks left along the bottom, in front of the two standing
    (90, ((0, 480, 150), (55, 480, 150), (75, 700, 150), (120, 700, 150), (140, 470, 160), (179, 470, 160))),
)  # the last one leaves on the right at frame ~75 and comes back at ~120
VARIANTS: dict[str, dict[str, Any]] = {  # FaceTracker kwargs replacing the product's (detector/tracking.py, config)
    "before": {"memory_keyframes": 0, "reid_keyframes": 0, "vote_keyframes": 1, "vote_min_keyframes": 1,
               "vote_hysteresis": 0.0},
    "no re-id": {"reid_keyframes": 0},
    "now": {},
}


@dataclass(frozen=True)
class Truth:
    """The true faces of one frame: person ids, boxes (int (n, 4)); ``labels``: person id -> label name."""

    ids: np.ndarray
    xyxy: np.ndarray


def read_holdout_faces(folder: Path, count: int) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """``count`` different people of a held-out set (``boxes.csv``): (photo BGR, face box, label), alternately
    masked and unmasked, each person from the photo version with that label."""
    rows = list(csv.DictReader((folder / "boxes.csv").open(encoding="utf-8")))
    by_photo: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        if row["label"] in ("mask", "no_mask"):
            stem = Path(row["file"]).stem.rsplit("__", 1)[0]
            by_photo.setdefault((stem, row["label"]), []).append(row)
    stems = sorted({stem for stem, _ in by_photo})
    people = []
    for k in range(max(len(v) for v in by_photo.values()) if by_photo else 0):  # face k of every photo in turn
        for stem in stems:
            label = LABELS[len(people) % 2]  # no_mask, mask, no_mask, ...
            faces = by_photo.get((stem, label), [])
            if k < len(faces) and len(people) < count:
                row = faces[k]
                image = cv2.imread(str(folder / row["file"]))
                if image is not None:
                    people.append((image, np.array([int(row[c]) for c in ("x1", "y1", "x2", "y2")]), label))
    if len(people) < count:
        raise UserError(f"{folder}: {len(people)} usable faces, the walk needs {count} (python -m evaluation.sets)")
    return people


def sprite(image: np.ndarray, face_xyxy: np.ndarray, face_h: int) -> tuple[np.ndarray, np.ndarray]:
    """The face with its surroundings scaled to ``face_h`` pixels of face height, and the face box in it."""
    grown = grow_boxes(face_xyxy[None], SPRITE_MARGIN, (image.shape[1], image.shape[0]))[0]
    x1, y1, x2, y2 = grown.tolist()
    scale = face_h / (face_xyxy[3] - face_xyxy[1])
    out = cv2.resize(image[y1:y2, x1:x2], (round((x2 - x1) * scale), round((y2 - y1) * scale)),
                     interpolation=cv2.INTER_AREA)  # fmt: skip
    return out, np.rint((face_xyxy - np.array([x1, y1, x1, y1])) * scale).astype(int)


def position(waypoints: Sequence[tuple[int, int, int]], frame: int) -> tuple[int, int] | None:
    """Where a walker's sprite is at ``frame`` (linear between waypoints), None before the first / after the last."""
    if frame < waypoints[0][0] or frame > waypoints[-1][0]:
        return None
    frames = [w[0] for w in waypoints]
    return (round(float(np.interp(frame, frames, [w[1] for w in waypoints]))),
            round(float(np.interp(frame, frames, [w[2] for w in waypoints]))))  # fmt: skip


def walk_video(people: Sequence[tuple[np.ndarray, np.ndarray, str]], background_bgr: np.ndarray,
               walks: Sequence = WALKS, n_frames: int = 180) -> tuple[list[np.ndarray], list[Truth]]:  # fmt: skip
    """Frames of the walkers over a still background, and the visible true faces of each frame."""
    sprites = [sprite(image, face, face_h) for (image, face, _), (face_h, _) in zip(people, walks, strict=True)]
    background = cv2.resize(background_bgr, FRAME_WH, interpolation=cv2.INTER_AREA)
    frames, truths = [], []
    for f in range(n_frames):
        canvas, owner = background.copy(), np.full(FRAME_WH[::-1], -1, np.int32)
        boxes: dict[int, np.ndarray] = {}
        for pid, ((img, face), (_, waypoints)) in enumerate(zip(sprites, walks, strict=True)):
            at = position(waypoints, f)
            if at is None:
                continue
            x, y = at
            h, w = img.shape[:2]
            cx1, cy1, cx2, cy2 = max(x, 0), max(y, 0), min(x + w, FRAME_WH[0]), min(y + h, FRAME_WH[1])
            if cx2 <= cx1 or cy2 <= cy1:
                continue
            canvas[cy1:cy2, cx1:cx2] = img[cy1 - y : cy2 - y, cx1 - x : cx2 - x]
            owner[cy1:cy2, cx1:cx2] = pid
            boxes[pid] = face + np.array([x, y, x, y])
        ids, kept = [], []
        for pid, (x1, y1, x2, y2) in boxes.items():
            area = (x2 - x1) * (y2 - y1)
            visible = (owner[max(y1, 0) : max(y2, 0), max(x1, 0) : max(x2, 0)] == pid).sum() / area
            if visible >= MIN_VISIBLE:
                ids.append(pid)
                kept.append(np.clip([x1, y1, x2, y2], 0, [*FRAME_WH, *FRAME_WH]))
        frames.append(canvas)
        truths.append(Truth(np.array(ids, int), np.array(kept, int).reshape(-1, 4)))
    return frames, truths


def assign_by_iou(truth: Truth, faces: Faces) -> dict[int, int]:
    """True person id -> index of the predicted face matched to them (one to one, IoU >= ``MATCH_IOU``)."""
    pair = match_by_iou(truth.xyxy, faces.xyxy, MATCH_IOU)
    return {int(pid): int(j) for pid, j in zip(truth.ids, pair, strict=True) if j >= 0}


def score(assigned: Sequence[dict[int, int]], predicted: Sequence[Faces], truth_labels: dict[int, str],
          fps: float, times_s: Sequence[float]) -> dict:  # fmt: skip
    """Identity switches, fragments, flicker, label accuracy and people counts of one run (see the module doc)."""
    tracks: dict[int, list[int]] = {pid: [] for pid in truth_labels}
    labels: dict[int, list[int]] = {pid: [] for pid in truth_labels}
    matched_ids: set[int] = set()
    for pairs, faces in zip(assigned, predicted, strict=True):
        for pid, j in pairs.items():
            tracks[pid].append(int(faces.track_id[j]))
            labels[pid].append(int(faces.label[j]))
            matched_ids.add(int(faces.track_id[j]))
    switches = sum(int(np.count_nonzero(np.diff(t))) for t in tracks.values() if len(t) > 1)
    fragments = sum(max(len(set(t)) - 1, 0) for t in tracks.values())
    flips = 0
    for seq in labels.values():
        sure = [v for v in seq if v != UNKNOWN]
        flips += int(np.count_nonzero(np.diff(sure))) if len(sure) > 1 else 0
    person_min = sum(len(t) for t in tracks.values()) / fps / 60
    right = sum(sum(LABELS[v] == truth_labels[pid] for v in seq) for pid, seq in labels.items())
    n_matched = sum(len(seq) for seq in labels.values())
    people = People()
    for faces, t in zip(predicted, times_s, strict=True):
        people.update(faces, t)
    counted = people.summary()
    return {
        "true_people": len(truth_labels),
        "true_by_label": {name: sum(v == name for v in truth_labels.values()) for name in ("mask", "no_mask")},
        "people_counted": counted["seen"],
        "counted_by_label": counted["seen_by_label"],
        "tracks_on_no_person": len(set(people.persons) - matched_ids),
        "id_switches": switches,
        "fragments": fragments,
        "label_flips": flips,
        "flicker_per_person_min": round(flips / person_min, 2) if person_min else None,
        "label_right": round(right / n_matched, 3) if n_matched else None,
        "label_unknown": round(sum(v == UNKNOWN for s in labels.values() for v in s) / n_matched, 3)
        if n_matched else None,
        "matched_share": round(n_matched / max(sum(len(a) for a in assigned), 1), 3),
    }


def replay(frames: Sequence[np.ndarray], detections: Sequence[Faces], classify: Callable,
           variant: dict[str, Any], args: argparse.Namespace) -> list[Faces]:  # fmt: skip
    """The faces of every frame from a ``Pipeline`` built from the config with this tracking ``variant``, fed the
    cached detections."""
    from detector.pipeline import Pipeline

    cfg = load_config(args.config, args.overrides)
    index = 0
    pipeline = Pipeline.from_config(cfg, video=True, models=(lambda _frame: detections[index], classify), **variant)
    out = []
    for index, frame in enumerate(frames):  # noqa: B007 - read by the lambda above
        out.append(pipeline(frame))
    return out


def tile_truth(meta: dict, n_frames: int) -> tuple[list[Truth], dict[int, str]]:
    """A demo mosaic's people: one per tile (present while the clip shows a face), labelled by the layout."""
    from evaluation.video import face_present

    present = face_present(meta, n_frames)
    cols, rows = meta["mosaic_cols_rows"]
    w, h = meta["size_wh"][0] // cols, meta["size_wh"][1] // rows
    tiles = np.array([[c * w, r * h, (c + 1) * w, (r + 1) * h] for r in range(rows) for c in range(cols)])
    truths = [Truth(np.flatnonzero(p), tiles[p]) for p in present]
    return truths, {i: "mask" if t["masked"] else "no_mask" for i, t in enumerate(meta["tiles"])}


def assign_by_tile(truth: Truth, faces: Faces) -> dict[int, int]:
    """Tile person id -> the predicted face whose centre lies in the tile (the largest if several)."""
    out: dict[int, int] = {}
    centers = (faces.xyxy[:, :2] + faces.xyxy[:, 2:]) / 2
    areas = np.prod(faces.size_wh, axis=1)
    for pid, (x1, y1, x2, y2) in zip(truth.ids.tolist(), truth.xyxy.tolist(), strict=True):
        inside = np.flatnonzero((centers[:, 0] >= x1) & (centers[:, 0] < x2) & (centers[:, 1] >= y1)
                                & (centers[:, 1] < y2))  # fmt: skip
        if len(inside):
            out[pid] = int(inside[np.argmax(areas[inside])])
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m evaluation.identity", description=__doc__.split("\n\n")[0])
    parser.add_argument("--holdout", type=Path, default=Path("data/h19fd/eval_holdout"),
                        help="a held-out set (python -m evaluation.sets DST; a folder with boxes.csv) for the walk")
    parser.add_argument("--demos", nargs="*", type=Path, default=[Path("demo/demo.mp4"), Path("demo/crowd.mp4")],
                        help="demo mosaics with a <name>.json layout beside them")
    parser.add_argument("--save-walk", type=Path, help="also write the walk video here (.mp4)")
    parser.add_argument("--json", type=Path, help="write the results as JSON")
    add_config_args(parser)
    return parser


def _videos(args: argparse.Namespace) -> list[tuple]:
    """(name, frames, truths, true labels, fps, assign) of the walk and of every demo video."""
    from evaluation.sets import library_images
    from evaluation.video import read_video

    if not (args.holdout / "boxes.csv").is_file():
        raise UserError(f"{args.holdout}/boxes.csv not found: build the held-out set with python -m evaluation.sets "
                        f"DST and pass --holdout DST")  # fmt: skip
    people = read_holdout_faces(args.holdout, len(WALKS))
    frames, truths = walk_video(people, next(iter(library_images("holdout").values())))
    if args.save_walk:
        writer = cv2.VideoWriter(str(args.save_walk), cv2.VideoWriter_fourcc(*"mp4v"), 15.0, FRAME_WH)
        for frame in frames:
            writer.write(frame)
        writer.release()
    videos = [("walk (held-out photos)", frames, truths, {i: p[2] for i, p in enumerate(people)}, 15.0,
               assign_by_iou)]  # fmt: skip
    for path in args.demos:
        if not path.with_suffix(".json").is_file():
            raise UserError(f"{path.with_suffix('.json')} not found (the layout: python -m demo.make_demo)")
        meta = json.loads(path.with_suffix(".json").read_text())
        demo_frames = read_video(path)
        demo_truths, demo_labels = tile_truth(meta, len(demo_frames))
        videos.append((path.name, demo_frames, demo_truths, demo_labels, float(meta["fps"]), assign_by_tile))
    return videos


def _main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = config_from_args(args)
    from detector.classifier import MaskClassifier
    from face_detector import build_face_detector

    detector, classify = build_face_detector(cfg, video=True), MaskClassifier.from_config(cfg)
    results = []
    print("| video | tracking | people (true) | counted mask/no_mask/unknown (true) | id switches | fragments | "
          "flicker /person/min | label right | unknown |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, frames, truths, truth_labels, fps, assign in _videos(args):
        detections = [detector(f) for f in tqdm(frames, desc=name, unit="frame", file=sys.stderr)]
        times = [i / fps for i in range(len(frames))]
        for variant, tracking in VARIANTS.items():
            predicted = replay(frames, detections, classify, tracking, args)
            s = score([assign(t, p) for t, p in zip(truths, predicted, strict=True)], predicted, truth_labels, fps,
                      times)  # fmt: skip
            results.append({"video": name, "variant": variant, **s})
            c, t = s["counted_by_label"], s["true_by_label"]
            print(f"| {name} | {variant} | {s['people_counted']} ({s['true_people']}) | {c['mask']}/{c['no_mask']}/"
                  f"{c['unknown']} ({t['mask']}/{t['no_mask']}/0) | {s['id_switches']} | {s['fragments']} | "
                  f"{s['flicker_per_person_min']} | {s['label_right']} | {s['label_unknown']} |")
    if args.json:
        from maskwatch.files import write_json_atomic

        write_json_atomic(args.json, results)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
