"""``python tools/detector_crops.py SRC DST``: training crops cut the way the detector cuts them, and a dev split.

Every labelled whole-photo folder under SRC (a ``boxes.csv``, the ``maskify --full-images`` / ``evaluation.sets``
layout, with ``faces.csv`` naming each photo's group) is shrunk to each of ``--scales`` (``cv2.INTER_AREA``, a
group photo taken from further away); the configured face detector (``face_detector.*``, CenterFace by default)
runs on it through the pipeline's own code, its boxes are matched to the known boxes (IoU >= 0.4, strongest first,
as ``evaluation.classifier``), and each matched mask / no_mask face is cut with the detector's box
(``Faces.crops``, as the pipeline cuts them) and written losslessly (PNG) to ``DST/with_mask/``,
``DST/without_mask/`` or (faces labelled ``incorrect``, ``maskify --full-images --classes 3``)
``DST/incorrect_mask/`` as ``<group>__<photo>_x<scale>_f<i>.png`` (``<group>__<folder>__<photo>...`` when SRC holds
several folders, e.g. one per mask-style seed), with ``DST/groups.csv``.

``--dev-share F`` picks whole groups (people) for development, seeded by ``--seed``, until they hold at least F of
the labelled faces (``--dev-groups FILE`` names them instead, one a line: the same people as another set's
``dev_groups.txt``); they are written to ``DST/dev_groups.txt`` and left out of DST, and ``--dev-out DEV`` writes
their photos (every scale) as labelled folders for ``python -m evaluation.classifier DEV --choose``. ``--base DIR``
copies a crop dataset (``with_mask/``, ``without_mask/``, ``incorrect_mask/``, ``groups.csv``:
``train.starter_data``) into DST without the development groups, so DST is the whole training set.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import random
import shutil
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from evaluation.classifier import IOU_MIN, LabelledImage, find_folders, match_boxes, read_folder
from evaluation.sets import readable_images, skipped_line
from maskwatch.cli import Parser, add_config_args, config_from_args, run
from maskwatch.config import Config
from maskwatch.errors import UserError
from maskwatch.files import check_writable, write_bytes_atomic, write_text_atomic

CLASS_DIRS = {"mask": "with_mask", "no_mask": "without_mask", "incorrect": "incorrect_mask"}


def photo_groups(folder: Path) -> dict[str, str]:
    """Image file (relative to ``folder``) -> group, from ``folder/faces.csv`` (``image,group,...``)."""
    path = folder / "faces.csv"
    if not path.is_file():
        raise UserError(f"{path} not found: groups are needed to keep a person on one side")
    with path.open(newline="", encoding="utf-8") as fh:
        return {row["image"]: row["group"] for row in csv.DictReader(fh)}


def group_of(image: LabelledImage, folder: Path, groups: dict[str, str]) -> str:
    rel = image.path.relative_to(folder).as_posix()
    if rel in groups:
        return groups[rel]
    stem = Path(rel).stem.rsplit("__", 1)[0]  # <photo>__mask.jpg / <photo>__no_mask.jpg
    return next((g for f, g in groups.items() if Path(f).stem.rsplit("__", 1)[0] == stem), stem)


def pick_dev_groups(face_counts: Counter[str], share: float, seed: int) -> set[str]:
    """Whole groups, in a seeded random order, until they hold at least ``share`` of the faces."""
    if share <= 0:
        return set()
    order = sorted(face_counts)
    random.Random(seed).shuffle(order)
    total, picked, n = sum(face_counts.values()), set(), 0
    for g in order:
        if n >= share * total:
            break
        picked.add(g)
        n += face_counts[g]
    return picked


def detector_crops(
    frame_bgr: np.ndarray, image: LabelledImage, scale: float, detect
) -> list[tuple[int, str, np.ndarray]]:
    """(face index, label, crop) of every labelled mask / no_mask / incorrect face the detector finds in the shrunk
    photo."""
    small = cv2.resize(frame_bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale != 1 else frame_bgr
    faces = detect(small)
    xyxy = np.asarray(faces.xyxy).reshape(-1, 4)
    match = match_boxes(xyxy, np.asarray(faces.confidence).reshape(-1), image.xyxy * scale, IOU_MIN)
    crops = faces.crops(small)
    return [(i, label, crops[m]) for i, (label, m) in enumerate(zip(image.labels, match, strict=True))
            if m >= 0 and label in CLASS_DIRS and crops[m].size]  # fmt: skip


def write_crops(folders: Sequence[Path], dst: Path, scales: Sequence[float], dev: set[str], cfg: Config,
                unreadable: list[str] | None = None) -> Counter:  # fmt: skip
    """Write the crops of the photos of groups not in ``dev``; a photo that cannot be read is skipped, its path
    appended to ``unreadable``."""
    from face_detector import build_face_detector

    detect, counts, rows = build_face_detector(cfg), Counter(), []
    common = Path(os.path.commonpath(folders)) if folders else Path()
    for folder in folders:
        groups = photo_groups(folder)
        rel_folder = folder.relative_to(common).as_posix()  # several sets of the same photos: names stay apart
        tag = "" if rel_folder == "." else rel_folder.replace("/", "_") + "__"
        images = [(im, group_of(im, folder, groups)) for im in read_folder(folder)]
        group_by_path = {im.path: g for im, g in images if g not in dev}
        kept = [im for im, g in images if g not in dev]
        for image, frame in readable_images(kept, [] if unreadable is None else unreadable, desc="photos"):
            group = group_by_path[image.path]
            for scale in scales:
                for i, label, crop in detector_crops(frame, image, scale, detect):
                    rel = f"{CLASS_DIRS[label]}/{group}__{tag}{image.path.stem}_x{scale:g}_f{i}.png"
                    ok, data = cv2.imencode(".png", crop)
                    if not ok:
                        raise UserError(f"cannot encode a crop of {image.path}")
                    write_bytes_atomic(dst / rel, data.tobytes())
                    rows.append((rel, group))
                    counts[(label, scale)] += 1
    _append_groups(dst, rows)
    return counts


def _append_groups(dst: Path, rows: list[tuple[str, str]]) -> None:
    path = dst / "groups.csv"
    old = path.read_text(encoding="utf-8").splitlines()[1:] if path.is_file() else []
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(("file", "group"))
    for line in old:
        buf.write(line + "\n")
    w.writerows(rows)
    write_text_atomic(path, buf.getvalue())


def base_rows(base: Path, dev: set[str]) -> list[tuple[str, str]]:
    """(file, group) of the crops of ``base`` whose group is not in ``dev``; ``UserError`` when ``base`` is not a
    crop dataset or lacks a file it lists (checked before anything is written)."""
    path = base / "groups.csv"
    if not path.is_file():
        raise UserError(f"--base {base}: no groups.csv (a crop dataset of python -m train.starter_data)")
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        if not {"file", "group"} <= set(reader.fieldnames or ()):
            raise UserError(f"{path}: needs the columns file,group")
        rows = [(r["file"], r["group"]) for r in reader if r["group"] not in dev]
    missing = [file for file, _ in rows if not (base / file).is_file()]
    if missing:
        raise UserError(f"--base {base}: {missing[0]} is listed in groups.csv but not there"
                        + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    return rows


def copy_base(base: Path, dst: Path, dev: set[str]) -> int:
    """Copy the crops of ``base`` whose group is not in ``dev``; return how many."""
    rows = base_rows(base, dev)
    for file, _ in rows:
        (dst / file).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(base / file, dst / file)
    _append_groups(dst, rows)
    return len(rows)


def write_dev(folders: Sequence[Path], src: Path, dev_out: Path, dev: set[str]) -> int:
    """The development groups' photos as labelled folders (boxes.csv + faces.csv kept to those photos)."""
    n = 0
    for folder in folders:
        groups = photo_groups(folder)
        images = read_folder(folder)
        keep = {im.path.relative_to(folder).as_posix() for im in images if group_of(im, folder, groups) in dev}
        rel = folder.relative_to(src).as_posix()
        out = dev_out / ("." if rel == "." else rel)
        for name in ("boxes.csv", "faces.csv"):
            with (folder / name).open(newline="", encoding="utf-8") as fh:
                reader = csv.DictReader(fh)
                key = "file" if name == "boxes.csv" else "image"
                buf = io.StringIO()
                w = csv.DictWriter(buf, fieldnames=list(reader.fieldnames or ()), lineterminator="\n")
                w.writeheader()
                w.writerows(r for r in reader if r[key] in keep)
            write_text_atomic(out / name, buf.getvalue())
        for file in keep:
            (out / file).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(folder / file, out / file)
        n += len(keep)
    return n


def _main(argv: Sequence[str] | None = None) -> int:
    parser = Parser(prog="python tools/detector_crops.py", description=__doc__,
                    formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("src", type=Path, help="folder holding labelled whole-photo folders (boxes.csv, faces.csv)")
    parser.add_argument("dst", type=Path, help="output crop dataset (class folders, groups.csv)")
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 0.5, 0.25, 0.125],
                        help="photo shrink factors (1 0.5 0.25 0.125)")
    parser.add_argument("--dev-share", type=float, default=0.0, help="share of faces whose groups go to dev (0)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the development groups' choice (0)")
    parser.add_argument("--dev-groups", type=Path, help="file of development groups, one a line (not --dev-share)")
    parser.add_argument("--dev-out", type=Path, help="write the development groups' labelled photos here")
    parser.add_argument("--base", type=Path, help="crop dataset to copy into DST without the development groups")
    add_config_args(parser)
    args = parser.parse_args(argv)
    cfg = config_from_args(args)
    if any(not 0 < s <= 1 for s in args.scales):
        raise UserError("--scales must be in (0, 1]")
    if not 0 <= args.dev_share < 1:
        raise UserError("--dev-share must be in [0, 1)")
    if (args.dst / "groups.csv").exists():
        raise UserError(f"{args.dst} already holds a dataset; choose a new folder")
    _check_outputs(args)
    folders: list[Path] = []
    faces: Counter[str] = Counter()
    for folder in find_folders([args.src]):
        images = read_folder(folder)
        if not any(lb in CLASS_DIRS for im in images for lb in im.labels):
            continue  # a folder without labelled faces (no_faces/) gives no crops
        folders.append(folder)
        groups = photo_groups(folder)
        for im in images:
            faces[group_of(im, folder, groups)] += sum(lb in CLASS_DIRS for lb in im.labels)
    if args.dev_groups is not None:
        if args.dev_share:
            raise UserError("give --dev-groups or --dev-share, not both")
        if not args.dev_groups.is_file():
            raise UserError(f"{args.dev_groups} not found")
        dev = {line.strip() for line in args.dev_groups.read_text(encoding="utf-8").splitlines() if line.strip()}
    else:
        dev = pick_dev_groups(faces, args.dev_share, args.seed)
    if args.base is not None:
        base_rows(args.base, dev)  # a bad --base before anything is written
    args.dst.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.dst / "dev_groups.txt", "".join(f"{g}\n" for g in sorted(dev)))
    if dev:
        print(f"dev groups ({sum(faces[g] for g in dev)} of {sum(faces.values())} faces): {', '.join(sorted(dev))}")
    if args.dev_out is not None:
        print(f"{args.dev_out}: {write_dev(folders, args.src, args.dev_out, dev)} photos of the dev groups")
    if args.base is not None:
        print(f"{args.dst}: {copy_base(args.base, args.dst, dev)} crops copied from {args.base}")
    unreadable: list[str] = []
    counts = write_crops(folders, args.dst, args.scales, dev, cfg, unreadable)
    for scale in args.scales:
        found = ", ".join(f"{counts[(label, scale)]} {label}" for label in CLASS_DIRS if counts[(label, scale)])
        print(f"x{scale:g}: {found or 'no'} detector crops")
    if unreadable:
        print(skipped_line(unreadable), file=sys.stderr)
    return 0


def _check_outputs(args: argparse.Namespace) -> None:
    """DST and --dev-out outside SRC, apart, new (--dev-out gets boxes.csv files: never over a labelled set), and
    writable, before anything is written."""
    src = args.src.resolve()
    for name, out in (("DST", args.dst), ("--dev-out", args.dev_out)):
        if out is None:
            continue
        if out.resolve().is_relative_to(src):
            raise UserError(f"{name} {out} is inside SRC {args.src}: choose a folder outside it")
        check_writable(name, out)
    if args.dev_out is None:
        return
    if args.dev_out.resolve() == args.dst.resolve():
        raise UserError(f"--dev-out {args.dev_out} is DST: give the development photos their own folder")
    if args.dev_out.is_dir() and any(args.dev_out.rglob("boxes.csv")):
        raise UserError(f"--dev-out {args.dev_out} already holds a labelled set; choose a new folder")


def main(argv: Sequence[str] | None = None) -> int:
    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
