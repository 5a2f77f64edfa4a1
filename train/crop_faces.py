"""``python -m train.crop_faces SRC DST``: a training set of face crops from your own whole photos, cut the way the
detector cuts them.

SRC holds ``with_mask/`` and ``without_mask/`` (and ``incorrect_mask/`` for a three-class model) of whole photos,
in any sub-folder depth. The configured face detector (``face_detector.*``; the default CenterFace finds masked
faces) runs on each photo, and each face is cut with its box as the detector command cuts it (``Faces.crops``) and
written losslessly (PNG) to the same class folder of DST. Only the largest face of a photo is kept (the people
behind a masked person may wear none); ``--all-faces`` keeps each. Files that are not images (``.heic``, notes),
photos that cannot be read, photos without a face and faces lower than ``--min-face-px`` are skipped, counted and
listed in ``DST/skipped.csv``.

``DST/groups.csv`` keeps a person on one side of the training split: the faces of one photo share a group, and so do
the photos of one sub-folder of a class folder (``with_mask/alice/``, ``without_mask/alice/``: one group, alice) or of
one name prefix (``alice__1.jpg``, as ``python -m train`` reads names).
``DST/crops.csv`` says where each crop comes from (photo, box, detector score) and ``DST/preview.jpg`` shows the
crops of each class, to check at a glance. DST appears whole or not at all (it is built beside DST and moved into
place at the end); an existing DST is replaced only with ``--overwrite``. Then: ``python -m train --dataset DST``.
"""

from __future__ import annotations

import argparse
import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from detector.sources import read_image
from maskwatch.cli import Parser, add_config_args, config_from_args, run
from maskwatch.errors import UserError
from maskwatch.faces import Faces
from maskwatch.files import IMAGE_EXTS, check_writable, write_bytes_atomic, write_csv_atomic
from maskwatch.interrupts import held
from train.dataset import CLASS_DIRS, INCORRECT_DIR, group_from_name

CLASS_FOLDERS = (*CLASS_DIRS, INCORRECT_DIR)
PREVIEW_TILE_PX = 64
PREVIEW_PER_CLASS = 40
PREVIEW_COLUMNS = 10


def photos(src: Path) -> list[tuple[str, Path]]:
    """(class folder, file) of every file below SRC's class folders, sorted (other files than images too: they are
    skipped and listed); ``UserError`` without any image."""
    if not src.is_dir():
        raise UserError(f"SRC folder not found: {src}")
    found = [(name, path) for name in CLASS_FOLDERS if (src / name).is_dir()
             for path in sorted((src / name).rglob("*")) if path.is_file()]  # fmt: skip
    if not any(is_image(path) for _, path in found):
        raise UserError(f"no photos ({' '.join(IMAGE_EXTS)}) in {src}/with_mask, {src}/without_mask or "
                        f"{src}/incorrect_mask")  # fmt: skip
    return found


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTS


def group_of(class_dir: Path, photo: Path) -> str:
    """The photo's group: the first sub-folder below its class folder (a person), else what its name says
    (``<group>__<photo>``, as ``python -m train`` reads names), else the photo itself."""
    rel = photo.relative_to(class_dir)
    return rel.parts[0] if len(rel.parts) > 1 else group_from_name(photo, f"{class_dir.name}/{rel.as_posix()}")


def kept_faces(faces: Faces, *, all_faces: bool, min_face_px: int) -> tuple[np.ndarray, int]:
    """Indices of the faces to keep (at least ``min_face_px`` high; only the largest unless ``all_faces``) and how
    many were too small."""
    heights = faces.xyxy[:, 3] - faces.xyxy[:, 1]
    big = np.flatnonzero(heights >= min_face_px)
    if not all_faces and len(big):
        areas = (faces.xyxy[big, 2] - faces.xyxy[big, 0]) * heights[big]
        big = big[[int(np.argmax(areas))]]
    return big, int((heights < min_face_px).sum())


def preview(crops_by_class: dict[str, list[np.ndarray]]) -> np.ndarray:
    """BGR image: one labelled block per class of up to ``PREVIEW_PER_CLASS`` of its crops, evenly spread."""
    tile, rows = PREVIEW_TILE_PX, []
    for name, crops in crops_by_class.items():
        header = np.full((24, tile * PREVIEW_COLUMNS, 3), 255, np.uint8)
        cv2.putText(header, f"{name}: {len(crops)} crops", (4, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1,
                    cv2.LINE_AA)  # fmt: skip
        shown = np.unique(np.linspace(0, len(crops) - 1, min(len(crops), PREVIEW_PER_CLASS)).round().astype(int))
        tiles = [cv2.resize(crops[i], (tile, tile), interpolation=cv2.INTER_AREA) for i in shown]  # spread out
        tiles += [np.full((tile, tile, 3), 255, np.uint8)] * (-len(tiles) % PREVIEW_COLUMNS)
        grid = [np.hstack(tiles[i : i + PREVIEW_COLUMNS]) for i in range(0, len(tiles), PREVIEW_COLUMNS)]
        rows += [header, *grid]
    return np.vstack(rows)


def check_folders(src: Path, dst: Path, overwrite: bool) -> None:
    """DST neither holds nor sits inside SRC, is writable, and exists only with ``overwrite``."""
    s, d = src.resolve(), dst.resolve()
    if d == s or d.is_relative_to(s) or s.is_relative_to(d):
        raise UserError(f"DST {dst} and SRC {src} overlap: give DST outside SRC")
    if dst.exists() and not overwrite:
        raise UserError(f"{dst} already exists (use --overwrite to replace it)")
    check_writable("DST", dst.parent if not dst.exists() else dst)


class _Crops:
    """The crops' rows, thumbnails and skipped files, written into a folder that becomes DST at the end."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.skipped = folder, Counter()
        self.crop_rows: list[tuple] = []
        self.group_rows: list[tuple[str, str]] = []
        self.skipped_rows: list[tuple[str, str]] = []
        self.by_class: dict[str, list[np.ndarray]] = {}
        self.more_faces = 0

    def add(self, class_name: str, rel_photo: str, group: str, frame_bgr: np.ndarray, faces: Faces,
            keep: np.ndarray) -> None:  # fmt: skip
        stem = Path(rel_photo).relative_to(class_name).with_suffix("").as_posix().replace("/", "__")
        for i, crop in zip(keep, faces[keep].crops(frame_bgr), strict=True):
            rel = f"{class_name}/{stem}_{Path(rel_photo).suffix[1:].lower()}_f{i}.png"
            ok, data = cv2.imencode(".png", crop)
            if not ok:
                raise UserError(f"cannot encode a crop of {rel_photo}")
            write_bytes_atomic(self.folder / rel, data.tobytes())
            x1, y1, x2, y2 = faces.xyxy[i].tolist()
            self.crop_rows.append((rel, rel_photo, x1, y1, x2, y2, round(float(faces.confidence[i]), 4)))
            self.group_rows.append((rel, group))
            thumbnail = cv2.resize(crop, (PREVIEW_TILE_PX, PREVIEW_TILE_PX), interpolation=cv2.INTER_AREA)
            self.by_class.setdefault(class_name, []).append(thumbnail)  # for the preview; crops can be large

    def skip(self, rel_photo: str, reason: str, kind: str) -> None:
        self.skipped_rows.append((rel_photo, reason))
        self.skipped[kind] += 1

    def finish(self) -> None:
        write_csv_atomic(self.folder / "groups.csv", ("file", "group"), self.group_rows)
        write_csv_atomic(self.folder / "crops.csv", ("file", "photo", "x1", "y1", "x2", "y2", "detector_score"),
                         self.crop_rows)  # fmt: skip
        write_csv_atomic(self.folder / "skipped.csv", ("photo", "reason"), self.skipped_rows)
        ok, data = cv2.imencode(".jpg", preview(self.by_class), [cv2.IMWRITE_JPEG_QUALITY, 90])
        if ok:
            write_bytes_atomic(self.folder / "preview.jpg", data.tobytes())


def cut(src: Path, files: list[tuple[str, Path]], crops: _Crops, detect: Callable[[np.ndarray], Faces], *,
        all_faces: bool, min_face_px: int, quiet: bool) -> None:
    """Detect and cut the faces of SRC's ``files`` (``photos``) into ``crops``."""
    for class_name, path in tqdm(files, desc="photos", unit="photo", disable=quiet):
        rel = path.relative_to(src).as_posix()
        if not is_image(path):
            crops.skip(rel, f"not an image file (extensions: {' '.join(IMAGE_EXTS)})", "not images")
            continue
        frame, why = read_image(path)
        if frame is None:
            crops.skip(rel, why, "unreadable")
            continue
        faces = detect(frame)
        keep, small = kept_faces(faces, all_faces=all_faces, min_face_px=min_face_px)
        crops.more_faces += int(not all_faces and len(faces) - small > 1)
        if small:
            crops.skip(rel, f"{small} face(s) lower than {min_face_px} px", "small faces")
        if not len(keep):
            crops.skip(rel, "no face found" if not len(faces) else "no face large enough", "without a face")
            continue
        crops.add(class_name, rel, group_of(src / class_name, path), frame, faces, keep)


@contextmanager
def _staging(dst: Path) -> Iterator[Path]:
    """A new folder beside DST that becomes DST when the caller finishes without an error, else is removed."""
    stage = dst.parent / f".{dst.name}.partial-{os.getpid()}"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    old = dst.parent / f".{dst.name}.old-{os.getpid()}"
    with held():  # a Ctrl-C waits: DST is never missing
        if dst.exists():
            dst.rename(old)
        stage.rename(dst)
    shutil.rmtree(old, ignore_errors=True)


def summary(dst: Path, crops: _Crops, all_faces: bool) -> str:
    per_class = ", ".join(f"{name} {len(crops.by_class[name])}" for name in CLASS_FOLDERS if name in crops.by_class)
    line = f"wrote {dst}: {sum(map(len, crops.by_class.values()))} crops ({per_class})"
    if crops.skipped:
        line += "; skipped " + ", ".join(f"{n} {kind}" for kind, n in crops.skipped.items()) + " (skipped.csv)"
    if crops.more_faces and not all_faces:
        line += f"; {crops.more_faces} photo(s) showed more faces: kept the largest (--all-faces keeps each)"
    return line


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m train.crop_faces", description=__doc__,
                    formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("src", type=Path, help="folder with with_mask/, without_mask/ (incorrect_mask/) of photos")
    parser.add_argument("dst", type=Path, help="the new training set (python -m train --dataset DST)")
    parser.add_argument("--all-faces", action="store_true", help="keep every face of a photo, not only the largest")
    parser.add_argument("--min-face-px", type=int, default=0, help="skip faces lower than this (default 0: none)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing DST")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_config_args(parser)
    return parser


def _main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.min_face_px < 0:
        raise UserError(f"--min-face-px must be >= 0, got {args.min_face_px}")
    cfg = config_from_args(args)
    files = photos(args.src)  # SRC's errors before the detector loads
    check_folders(args.src, args.dst, args.overwrite)
    from face_detector import build_face_detector

    detect = build_face_detector(cfg)
    with _staging(args.dst) as stage:
        crops = _Crops(stage)
        cut(args.src, files, crops, detect, all_faces=args.all_faces, min_face_px=args.min_face_px,
            quiet=args.quiet)
        if not crops.by_class:
            raise UserError(f"no face found in the photos of {args.src}: nothing written")
        crops.finish()
    print(summary(args.dst, crops, args.all_faces))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
