"""``python -m face_detector.train_verifier DEV_DIR [DEV_DIR ...]``: train the face verifier on SSD candidates.

1. Mine: the configured SSD passes run on every image of the labelled development folders (``boxes.csv``, as
   ``python -m face_detector.eval_set DST --split dev`` writes them) with a low score floor and no second look;
   each candidate box is a face (IoU >= 0.4 with a ``mask`` / ``no_mask`` box), not a face (IoU < 0.2 with every
   box, ``ignore`` boxes included, and less than 10% of it on a face), or left out (the rest: boxes on part of a
   face or around one look like faces to a crop classifier; the detector's nested-box suppression drops them).
2. Crop each candidate as the detector will (``verifier_crops``) and embed it with the frozen ImageNet MobileNetV2
   (global average pooling, 1280 values).
3. Logistic regression, cross-validated in folds by person (a person's photos, their masked and unmasked copies,
   seeds, scales and mosaics stay on one side). The threshold lets ``--max-false-per-image`` non-face boxes per
   image through, out of fold, among the boxes the detector will ask about (below ``recheck_max_confidence``).
4. Export base + head as one Keras model taking raw RGB 0-255 -> ``<out>.tflite`` + ``<out>.json`` card (atomic).

Never give it the held-out evaluation set: that set must stay unseen to measure the detector honestly.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from face_detector.eval_set import cv_group, person_groups
from face_detector.evaluate import LabelledImage, read_labelled_folder
from face_detector.matching import IGNORE, iou_matrix, overlap_shares
from face_detector.verifier import verifier_crops
from maskwatch.cli import add_config_args, config_from_args, run
from maskwatch.config import Config
from maskwatch.errors import UserError
from maskwatch.files import atomic_path, write_bytes_atomic, write_json_atomic

POSITIVE, NEGATIVE, LEFT_OUT = 1, 0, -1
NEAR_FACE_SHARE = 0.1  # a non-face candidate with this share of its area inside a face box is left out
HOLDS_FACE_SHARE = 0.5  # and so is one holding this share of a face box


def label_candidates(
    cand_xyxy: np.ndarray, true_xyxy: np.ndarray, true_labels: Sequence[str], *, pos_iou: float = 0.4,
    neg_iou: float = 0.2,
) -> np.ndarray:  # fmt: skip
    """int (n,): ``POSITIVE`` (overlaps a labelled face by ``pos_iou``), ``NEGATIVE`` (every box below
    ``neg_iou``, ignore boxes included) or ``LEFT_OUT``."""
    cand_xyxy = np.asarray(cand_xyxy).reshape(-1, 4)
    out = np.full(len(cand_xyxy), LEFT_OUT, np.int8)
    if len(true_labels) == 0:
        out[:] = NEGATIVE
        return out
    ious = iou_matrix(cand_xyxy, np.asarray(true_xyxy).reshape(-1, 4))
    is_face = np.array([label != IGNORE for label in true_labels], dtype=bool)
    out[(ious[:, is_face] >= pos_iou).any(axis=1) if is_face.any() else np.zeros(len(out), bool)] = POSITIVE
    out[ious.max(axis=1) < neg_iou] = NEGATIVE
    return out


def largest_shares(xyxy: np.ndarray, faces_xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float (n,) twice: the largest share of each box inside one face box, and of one face box inside each box."""
    if len(xyxy) == 0 or len(faces_xyxy) == 0:
        return np.zeros(len(xyxy)), np.zeros(len(xyxy))
    inside, held = overlap_shares(xyxy, faces_xyxy)
    return inside.max(axis=1), held.max(axis=1)


def contact_sheet(crops_rgb: Sequence[np.ndarray], captions: Sequence[str], *, columns: int = 10) -> np.ndarray:
    """Crops in a grid (BGR) with a caption under each: to look at what the verifier gets wrong."""
    if not crops_rgb:
        return np.full((40, 400, 3), 255, np.uint8)
    side = crops_rgb[0].shape[0]
    rows = -(-len(crops_rgb) // columns)
    sheet = np.full((rows * (side + 16), columns * side, 3), 255, np.uint8)
    for k, (crop, caption) in enumerate(zip(crops_rgb, captions, strict=True)):
        y, x = (k // columns) * (side + 16), (k % columns) * side
        sheet[y:y + side, x:x + side] = cv2.cvtColor(crop, cv2.COLOR_RGB2BGR)
        cv2.putText(sheet, caption, (x + 2, y + side + 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
    return sheet


@dataclasses.dataclass
class Mined:
    crops_rgb: list[np.ndarray] = dataclasses.field(default_factory=list)
    labels: list[int] = dataclasses.field(default_factory=list)
    masked: list[bool] = dataclasses.field(default_factory=list)
    scores: list[float] = dataclasses.field(default_factory=list)
    groups: list[str] = dataclasses.field(default_factory=list)
    inside_face: list[float] = dataclasses.field(default_factory=list)  # share of the box inside a labelled face
    holds_face: list[float] = dataclasses.field(default_factory=list)  # largest share of a labelled face in the box

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(v) for k, v in dataclasses.asdict(self).items()}


def mine(
    cfg: Config, images: Sequence[LabelledImage], groups: dict[str, str], *, size_px: int, context: float,
    neg_per_image: int,
) -> Mined:  # fmt: skip
    """Step 1-2 input: labelled candidate crops (RGB, ``size_px`` square) of the configured SSD passes."""
    from face_detector.detector import FaceDetector

    detector = FaceDetector.from_config(cfg)
    out = Mined()
    unreadable = 0
    for image in tqdm(images, desc="mining candidates", unit="image"):
        frame = cv2.imread(str(image.path), cv2.IMREAD_COLOR)
        if frame is None:
            unreadable += 1
            continue
        faces = detector(frame)
        labels = label_candidates(faces.xyxy, image.xyxy, image.labels)
        negatives = np.flatnonzero(labels == NEGATIVE)[:neg_per_image]  # strongest first (select_faces order)
        keep = np.concatenate([np.flatnonzero(labels == POSITIVE), negatives]).astype(int)
        crops = verifier_crops(frame, faces.xyxy[keep], context)
        true_faces = image.xyxy[[lb != IGNORE for lb in image.labels]]
        inside, holds = largest_shares(faces.xyxy[keep], true_faces)
        masked = "__mask" in image.path.name
        for i, crop, share, held in zip(keep, crops, inside, holds, strict=True):
            small = cv2.resize(crop, (size_px, size_px), interpolation=cv2.INTER_AREA)
            out.crops_rgb.append(cv2.cvtColor(small, cv2.COLOR_BGR2RGB))
            out.labels.append(int(labels[i]))
            out.masked.append(masked and labels[i] == POSITIVE)
            out.scores.append(float(faces.confidence[i]))
            out.groups.append(cv_group(image.path, groups))
            out.inside_face.append(float(share))
            out.holds_face.append(float(held))
    if unreadable:
        print(f"skipped {unreadable} unreadable images")
    return out


def build_embedder(size_px: int, cfg: Config) -> Any:
    """Raw RGB 0-255 -> MobileNetV2 (ImageNet, frozen) -> global average pooling (1280)."""
    import keras

    from models.assets import resolve
    from train.model import BASE_NAME

    inputs = keras.Input((size_px, size_px, 3), name="image_rgb_0_255")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1, name="mobilenet_v2_preprocess")(inputs)
    base = keras.applications.MobileNetV2(
        weights=None, include_top=False, input_shape=(size_px, size_px, 3), name=BASE_NAME
    )
    base.load_weights(resolve("mobilenetv2_weights", cfg))
    base.trainable = False
    x = keras.layers.GlobalAveragePooling2D(name="pool")(base(x, training=False))
    return keras.Model(inputs, x, name="face_embedder")


def cross_validate(features: np.ndarray, labels: np.ndarray, groups: np.ndarray, c: float, folds: int) -> np.ndarray:
    """Out-of-fold P(face) of every candidate (one fold per group)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold

    probs = np.zeros(len(labels))
    for train_idx, test_idx in GroupKFold(n_splits=min(folds, len(set(groups)))).split(features, labels, groups):
        model = LogisticRegression(C=c, max_iter=2000, class_weight="balanced")
        model.fit(features[train_idx], labels[train_idx])
        probs[test_idx] = model.predict_proba(features[test_idx])[:, 1]
    return probs


def pick_threshold(probs: np.ndarray, labels: np.ndarray, images: int, max_false_per_image: float) -> float:
    """The lowest threshold at which at most ``max_false_per_image`` non-face candidates per image pass
    (out-of-fold probabilities of the candidates the detector will ask about)."""
    negatives = np.sort(probs[labels == NEGATIVE])[::-1]
    allowed = int(np.floor(max_false_per_image * images))
    if allowed >= len(negatives):
        return 0.0
    return float(np.nextafter(negatives[allowed], 1.0))


def rates(probs: np.ndarray, labels: np.ndarray, masked: np.ndarray, threshold: float, images: int) -> dict[str, float]:
    keep = probs >= threshold
    pos = labels == POSITIVE
    return {
        "threshold": threshold,
        "recall_masked": float(keep[pos & masked].mean()) if (pos & masked).any() else float("nan"),
        "recall_unmasked": float(keep[pos & ~masked].mean()) if (pos & ~masked).any() else float("nan"),
        "false_per_image": float(keep[labels == NEGATIVE].sum() / images),
    }


def export(embedder: Any, coef: np.ndarray, intercept: float, stem: Path, card: dict[str, Any]) -> None:
    """Embedder + logistic head as one model -> ``<stem>.tflite``, then the card (last: it marks a complete model)."""
    import keras

    from train.export import tflite_bytes

    head = keras.layers.Dense(1, activation="sigmoid", name="p_face")
    model = keras.Model(embedder.input, head(embedder.output), name="face_verifier")
    head.set_weights([coef.reshape(-1, 1).astype(np.float32), np.array([intercept], np.float32)])
    write_bytes_atomic(stem.with_suffix(".tflite"), tflite_bytes(model))
    write_json_atomic(stem.with_suffix(".json"), card)


def write_review(folder: Path, mined: dict[str, np.ndarray], probs: np.ndarray, asked: np.ndarray,
                 threshold: float, n: int = 40) -> None:  # fmt: skip
    """Contact sheets of the verifier's worst out-of-fold mistakes among the boxes it will be asked about."""
    labels, masked = mined["labels"], mined["masked"]
    for name, pick, order in (("false_faces", asked & (labels == NEGATIVE), -1),
                              ("lost_masked_faces", asked & (labels == POSITIVE) & masked, 1)):  # fmt: skip
        idx = np.flatnonzero(pick)
        idx = idx[np.argsort(order * probs[idx], kind="stable")][:n]
        captions = [f"p{probs[i]:.2f} s{mined['scores'][i]:.2f} in{mined['inside_face'][i]:.1f}" for i in idx]
        ok, buf = cv2.imencode(".png", contact_sheet([mined["crops_rgb"][i] for i in idx], captions))
        if ok:
            write_bytes_atomic(folder / f"{name}.png", buf.tobytes())
    print(f"review sheets (threshold {threshold:.3f}): {folder}/false_faces.png, {folder}/lost_masked_faces.png")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m face_detector.train_verifier", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("dirs", type=Path, nargs="+", help="labelled development folders (boxes.csv + images)")
    parser.add_argument("--out", type=Path, default=Path("models/face_verifier"), help="output stem")
    parser.add_argument("--floor", type=float, default=0.05, help="SSD score floor of the mined candidates (0.05)")
    parser.add_argument("--size", type=int, default=96, help="input side in pixels (96)")
    parser.add_argument("--context", type=float, default=0.25, help="crop context, fraction of the box (0.25)")
    parser.add_argument("--neg-per-image", type=int, default=20, help="strongest negatives kept per image (20)")
    parser.add_argument("--c", type=float, default=0.1, help="inverse L2 strength of the logistic head (0.1)")
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds by photo group (5)")
    parser.add_argument("--max-false-per-image", type=float, default=0.01,
                        help="false boxes per image the threshold lets through in cross-validation (0.01)")
    parser.add_argument("--cache", type=Path, help="mined candidates: loaded if the file exists, else saved there")
    parser.add_argument("--report", type=Path, help="folder for the review sheets and cross-validation arrays "
                        "(default runs/face_verifier-<time>)")  # fmt: skip
    add_config_args(parser)
    return parser


def _main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    base_cfg = config_from_args(args)
    fd = dataclasses.replace(base_cfg.face_detector, min_confidence=args.floor, recheck_size_px=0, verifier="")
    cfg = dataclasses.replace(base_cfg, face_detector=fd)
    images = [im for d in args.dirs for im in read_labelled_folder(d, cfg.stream.image_exts)]
    if not images:
        raise UserError(f"no images in {', '.join(map(str, args.dirs))}")
    started = time.monotonic()
    if args.cache and args.cache.is_file():
        with np.load(args.cache) as cached:
            mined = {k: cached[k] for k in cached.files}
        print(f"candidates from {args.cache}")
    else:
        mined = mine(cfg, images, person_groups(args.dirs), size_px=args.size, context=args.context,
                     neg_per_image=args.neg_per_image).arrays()  # fmt: skip
        if args.cache:
            with atomic_path(args.cache) as tmp, tmp.open("wb") as f:
                np.savez(f, **mined)
    labels, masked, groups = mined["labels"].copy(), mined["masked"], mined["groups"]
    # boxes on part of a face, or around a face, are no clean non-faces (nested-box suppression drops them)
    near = (mined["inside_face"] >= NEAR_FACE_SHARE) | (mined["holds_face"] >= HOLDS_FACE_SHARE)
    labels[(labels == NEGATIVE) & near] = LEFT_OUT
    used = labels != LEFT_OUT
    mined = {k: v[used] for k, v in mined.items()}
    labels, masked, groups = labels[used], masked[used], groups[used]
    n_pos = int((labels == POSITIVE).sum())
    if n_pos == 0 or n_pos == len(labels) or len(set(groups)) < 2:
        raise UserError(f"{len(labels)} candidate boxes ({n_pos} faces) in {len(set(groups))} fold(s): training "
                        "needs faces, non-faces and several people (python -m face_detector.eval_set DST --split dev)")
    print(f"{len(labels)} candidates: {n_pos} faces ({int(masked.sum())} masked), {len(labels) - n_pos} not faces, "
          f"{len(set(groups))} folds")  # fmt: skip
    embedder = build_embedder(args.size, cfg)
    features = np.asarray(embedder.predict(mined["crops_rgb"].astype(np.float32), batch_size=64, verbose=1))
    probs = cross_validate(features, labels, groups, args.c, args.folds)
    scores = mined["scores"]
    # the boxes the detector will ask about (and those at the border)
    asked = (scores >= fd.recheck_min_confidence) & (scores < fd.recheck_max_confidence)
    threshold = pick_threshold(probs[asked], labels[asked], len(images), args.max_false_per_image)
    cv = rates(probs[asked], labels[asked], masked[asked], threshold, len(images))
    print(f"cross-validated, boxes {fd.recheck_min_confidence}-{fd.recheck_max_confidence}: threshold "
          f"{threshold:.3f} keeps masked {cv['recall_masked']:.3f}, unmasked {cv['recall_unmasked']:.3f}, "
          f"{cv['false_per_image']:.3f} false boxes per image")  # fmt: skip
    curve = [rates(probs[asked], labels[asked], masked[asked], t, len(images)) for t in np.linspace(0.05, 0.95, 19)]
    from sklearn.linear_model import LogisticRegression

    final = LogisticRegression(C=args.c, max_iter=2000, class_weight="balanced").fit(features, labels)
    card = {
        "kind": "face_verifier",
        "input_size_px": args.size,
        "context": args.context,
        "threshold": threshold,
        "input_color": "RGB",
        "input_range": [0, 255],
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m face_detector.train_verifier " + " ".join(sys.argv[1:] if argv is None else argv),
        "training": {
            "dirs": [str(d) for d in args.dirs],
            "floor": args.floor,
            "candidates": len(labels),
            "faces": n_pos,
            "masked_faces": int(masked.sum()),
            "folds": len(set(groups)),
            "c": args.c,
            "max_false_per_image": args.max_false_per_image,
            "ssd_long_sides_px": list(fd.input_long_sides_px),
            "min_aspect_hw": fd.min_aspect_hw,
        },
        "cross_validation": {"asked": [fd.recheck_min_confidence, fd.recheck_max_confidence], **cv, "curve": curve},
    }
    export(embedder, final.coef_[0], float(final.intercept_[0]), args.out, card)
    report = args.report or Path("runs") / f"face_verifier-{datetime.now():%Y%m%d-%H%M%S}"
    write_review(report, mined, probs, asked, threshold)
    with atomic_path(report / "cross_validation.npz") as tmp, tmp.open("wb") as f:
        np.savez_compressed(f, probs=probs, **{k: v for k, v in mined.items() if k != "crops_rgb"})
    write_json_atomic(report / "card.json", card)
    print(f"wrote {args.out.with_suffix('.tflite')} and {args.out.with_suffix('.json')} "
          f"in {time.monotonic() - started:.0f} s")  # fmt: skip
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
