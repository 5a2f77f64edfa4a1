"""Steps 1-2: load a folder dataset (``with_mask/``, ``without_mask/``, optionally ``incorrect_mask/``) as RGB arrays
and split it. Labels: 0 = without_mask, 1 = with_mask, 2 = incorrect_mask (a third folder makes a three-class set).

Groups (photos of the same person or crops of the same photo) come from ``DIR/groups.csv`` (columns ``file,group``;
``file`` relative to DIR, e.g. ``with_mask/a.jpg``) or, without that file, from the filename convention
``<group>__<anything>.<ext>`` (the part before the first double underscore). A file without a group is its own group.
The split keeps every group on one side.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import logging
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from maskwatch.errors import UserError
from maskwatch.preprocess import resize_face

log = logging.getLogger(__name__)

CLASS_DIRS = ("with_mask", "without_mask")  # label 1 = with_mask = the positive class "mask"
INCORRECT_DIR = "incorrect_mask"  # label 2, optional: a mask worn wrong
LABEL_NAMES = ("no_mask", "mask", "incorrect")  # class name of label 0, 1, 2
GROUPS_FILE = "groups.csv"
GROUP_SEPARATOR = "__"
MAX_IMAGE_PIXELS = 100_000_000  # larger images are skipped (decoding one would take gigabytes)


@dataclass(frozen=True)
class ImageFile:
    path: Path
    label: int  # 1 = with_mask, 0 = without_mask, 2 = incorrect_mask
    group: str


@dataclass
class Dataset:
    """Decoded images ``images_rgb`` uint8 (n, size, size, 3), ``labels`` int (n,), one group name per image."""

    images_rgb: np.ndarray
    labels: np.ndarray
    groups: list[str]
    files: list[Path]
    skipped: dict[str, str] = field(default_factory=dict)  # file -> reason
    content_sha256: str = ""

    def summary(self) -> dict:
        """Counts per class, groups, skipped files and the content hash (for the model card)."""
        names = (("mask", 1), ("no_mask", 0), ("incorrect", 2))[: self.n_classes]
        return {
            "counts": {name: int((self.labels == label).sum()) for name, label in names},
            "groups": len(set(self.groups)),
            "skipped": len(self.skipped),
            "skipped_files": dict(sorted(self.skipped.items())),
            "content_sha256": self.content_sha256,
        }

    @property
    def n_classes(self) -> int:
        """2 (mask / no mask) or 3 (with the incorrect_mask folder)."""
        return 3 if (self.labels == 2).any() else 2

    @property
    def class_names(self) -> tuple[str, ...]:
        """Class name of label 0, 1 (and 2)."""
        return LABEL_NAMES[: self.n_classes]


@dataclass(frozen=True)
class Split:
    """Indices into a ``Dataset``."""

    train: np.ndarray
    test: np.ndarray


def scan(root: str | Path, image_exts: Sequence[str]) -> tuple[list[ImageFile], dict[str, str]]:
    """List the image files of both classes; return them and the ignored non-image files (file -> reason)."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"dataset folder not found: {root}")
    exts = {e.lower() for e in image_exts}
    groups = _read_groups_csv(root)
    files: list[ImageFile] = []
    ignored: dict[str, str] = {}
    for label, name in _class_folders(root):
        class_dir = root / name
        if not class_dir.is_dir():
            raise UserError(f"class folder missing: {class_dir} (expected {root}/with_mask and {root}/without_mask)")
        for path in sorted(p for p in class_dir.rglob("*") if p.is_file()):
            rel = path.relative_to(root).as_posix()
            if path.suffix.lower() not in exts:
                ignored[rel] = f"not an image file (extensions: {' '.join(sorted(exts))})"
                continue
            files.append(ImageFile(path, label, groups.get(rel) or group_from_name(path, rel)))
    _warn_unknown_folders(root, exts)
    return files, ignored


def _warn_unknown_folders(root: Path, exts: set[str]) -> None:
    """One warning per other folder holding images (e.g. a misspelt ``incorrect_masks/``): they are not used."""
    classes = (*CLASS_DIRS, INCORRECT_DIR)
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and p.name not in classes):
        n_images = sum(1 for p in folder.rglob("*") if p.suffix.lower() in exts and p.is_file())
        if n_images:
            close = difflib.get_close_matches(folder.name, classes, n=1, cutoff=0.7)
            log.warning("%s: %d image(s) not used: not a class folder (%s)%s", folder, n_images, ", ".join(classes),
                        f", did you mean {close[0]}?" if close else "")


def _class_folders(root: Path) -> list[tuple[int, str]]:
    """(label, folder) of the classes: both binary ones, plus ``incorrect_mask`` when that folder exists."""
    folders = [(1, "with_mask"), (0, "without_mask")]
    return [*folders, (2, INCORRECT_DIR)] if (root / INCORRECT_DIR).is_dir() else folders


def group_from_name(path: Path, rel: str) -> str:
    """The group a file name gives (``<group>__<rest>``, maskify's names), else ``rel``."""
    head, sep, _ = path.name.partition(GROUP_SEPARATOR)
    return head if sep and head else rel


def _read_groups_csv(root: Path) -> dict[str, str]:
    path = root / GROUPS_FILE
    if not path.is_file():
        return {}
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:  # utf-8-sig: Excel's byte-order mark
            reader = csv.DictReader(fh)
            rows = list(reader)
            columns = reader.fieldnames or []
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"{path}: not a readable CSV ({exc})") from None
    if rows and not {"file", "group"} <= {c.strip() for c in columns}:
        raise UserError(f"{path}: expected the columns file,group, found {','.join(columns)}")
    groups: dict[str, str] = {}
    malformed: list[str] = []
    missing: list[str] = []
    for line, row in enumerate(rows, start=2):
        row = {(k or "").strip(): v for k, v in row.items()}
        file, group = (row.get("file") or "").strip(), (row.get("group") or "").strip()
        if not file or not group or None in row.values() or row.get(""):
            malformed.append(f"line {line}")
        elif not (root / file).is_file():
            missing.append(file)
        else:
            groups[Path(file).as_posix()] = group
    for what, items in (("malformed (need file,group)", malformed), ("naming files that do not exist", missing)):
        if items:
            first = ", ".join(items[:3]) + (", ..." if len(items) > 3 else "")
            log.warning("%s: %d row(s) %s ignored: %s", path, len(items), what, first)
    return groups


def decode_image(data: bytes, size: int) -> np.ndarray:
    """Bytes of any common image file -> RGB uint8 (size, size, 3); raise ``ValueError`` if it is not usable.

    Grayscale, palette and CMYK images are converted; RGBA is composited over white; EXIF rotation is applied.
    """
    if not data:
        raise ValueError("empty file (0 bytes)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data))
            w, h = img.size
            if w * h > MAX_IMAGE_PIXELS:
                raise ValueError(f"too large ({w}x{h} pixels, limit {MAX_IMAGE_PIXELS})")
            img.draft("RGB", (size, size))  # JPEG: decode at a reduced scale, cheap for huge photos
            img.load()  # raises on truncated or corrupt data
            img = ImageOps.exif_transpose(img)
        except UnidentifiedImageError:  # its message names a memory address, not the file
            raise ValueError("not a readable image (not an image format Pillow knows)") from None
        except (OSError, SyntaxError, Image.DecompressionBombError) as exc:
            raise ValueError(f"not a readable image ({' '.join(str(exc).split()) or type(exc).__name__})") from None
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    rgb = np.asarray(_to_8bit(img).convert("RGB"))
    if rgb.shape[0] < 2 or rgb.shape[1] < 2:
        raise ValueError(f"too small ({rgb.shape[1]}x{rgb.shape[0]} pixels)")
    return resize_face(rgb, (size, size))


def _to_8bit(img: Image.Image) -> Image.Image:
    """16-bit (and 32-bit integer) grayscale scaled to 8 bit; Pillow's convert would clip it to near white."""
    if not (img.mode.startswith("I;16") or img.mode == "I"):
        return img
    values = np.asarray(img, dtype=np.float64)
    if img.mode.startswith("I;16") or values.max(initial=0) > 255:
        values = values / 257.0  # 65535 -> 255
    return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), mode="L")


def load_dataset(
    root: str | Path, *, image_size: int, image_exts: Sequence[str], min_images_per_class: int = 2,
    progress: bool = True,
) -> Dataset:
    """Step 1: decode every image to RGB ``image_size`` square; skip and count unusable files; check the counts."""
    from tqdm import tqdm

    files, skipped = scan(root, image_exts)
    root = Path(root)
    images, labels, groups, kept, hashes = [], [], [], [], []
    for item in tqdm(files, desc="loading images", unit="img", disable=not progress):
        rel = item.path.relative_to(root).as_posix()
        try:
            data = item.path.read_bytes()
            images.append(decode_image(data, image_size))
        except (OSError, ValueError) as exc:
            skipped[rel] = str(exc)
            continue
        labels.append(item.label)
        groups.append(item.group)
        kept.append(item.path)
        hashes.append(hashlib.sha256(data).hexdigest())
    keep = _drop_cross_class_duplicates(root, kept, labels, hashes, skipped)
    images, labels, groups, kept, hashes = ([seq[i] for i in keep] for seq in (images, labels, groups, kept, hashes))
    groups = _group_copies(groups, hashes)
    digest = hashlib.sha256()
    for label, path, sha in zip(labels, kept, hashes, strict=True):
        digest.update(os.fsencode(f"{label}\0{path.relative_to(root).as_posix()}\0{sha}\n"))  # any file name
    if skipped:
        listing = "; ".join(f"{f}: {why}" for f, why in sorted(skipped.items()))
        log.warning("skipped %d file(s): %s", len(skipped), listing)
    labels_arr = np.asarray(labels, dtype=np.int64)
    _check_counts(root, labels_arr, min_images_per_class)
    return Dataset(
        images_rgb=np.stack(images),
        labels=labels_arr,
        groups=groups,
        files=kept,
        skipped=skipped,
        content_sha256=digest.hexdigest(),
    )


def _drop_cross_class_duplicates(
    root: Path, files: list[Path], labels: list[int], hashes: list[str], skipped: dict[str, str]
) -> list[int]:
    """Indices to keep: a file whose exact bytes are also in the other class folder is skipped in both (its label
    contradicts itself), with a warning naming both files."""
    by_hash: dict[str, list[int]] = {}
    for i, sha in enumerate(hashes):
        by_hash.setdefault(sha, []).append(i)
    drop: set[int] = set()
    for idx in by_hash.values():
        if len({labels[i] for i in idx}) > 1:
            names = [files[i].relative_to(root).as_posix() for i in idx]
            log.warning("the same image is in both class folders, skipped from both: %s", " and ".join(names))
            for name in names:
                skipped[name] = f"same image in both class folders ({', '.join(n for n in names if n != name)})"
            drop.update(idx)
    return [i for i in range(len(files)) if i not in drop]


def _group_copies(groups: list[str], hashes: list[str]) -> list[str]:
    """Each copy of a file (the same bytes under another name) in its first copy's group, so the split cannot put
    one copy in training and another in the test images (an inflated test accuracy)."""
    first: dict[str, str] = {}
    out = [first.setdefault(sha, group) for group, sha in zip(groups, hashes, strict=True)]
    if moved := sum(a != b for a, b in zip(groups, out, strict=True)):
        log.info("%d file(s) with the same bytes as an earlier one put in its group (one side of the split)", moved)
    return out


def _check_counts(root: Path, labels: np.ndarray, minimum: int) -> None:
    need = max(minimum, 2)  # at least one image per class on each side of the split
    for label, name in _class_folders(root):
        count = int((labels == label).sum())
        if count == 0:
            raise UserError(f"no usable images in {root / name}: every class folder needs images")
        if count < need:
            raise UserError(
                f"only {count} usable image(s) in {root / name}, need at least {need} (one on each side of the split)"
            )


def split_dataset(labels: np.ndarray, groups: Sequence[str], *, test_fraction: float, seed: int) -> Split:
    """Step 2: stratified split with a fixed seed; with groups, every group lands on one side only.

    Without groups (every image its own group) the test share is exact; with groups it is approximate
    (StratifiedGroupKFold with round(1 / test_fraction) folds, first fold held out).
    """
    from sklearn.model_selection import StratifiedGroupKFold, train_test_split

    labels = np.asarray(labels)
    idx = np.arange(len(labels))
    if len(set(groups)) == len(groups):
        n_classes, fewest = len(np.unique(labels)), int(np.unique(labels, return_counts=True)[1].min())
        if fewest < 2:
            raise UserError(f"a class has only {fewest} of the {len(labels)} images: need 2 per class to split")
        n_test = min(max(n_classes, math.ceil(test_fraction * len(labels))), len(labels) - n_classes)
        train, test = train_test_split(idx, test_size=n_test, stratify=labels, random_state=seed)
        return _checked_split(labels, train, test, "stratified")
    n_splits = max(2, round(1 / test_fraction))
    group_ids = np.unique(np.asarray(groups), return_inverse=True)[1]
    if len(np.unique(group_ids)) < n_splits:
        raise UserError(f"groups.csv names {len(set(groups))} group(s) of people: need at least {n_splits} to hold "
                        f"out {test_fraction:.0%} of them")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "least populated class has fewer members than n_splits"
        folds = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        train, test = next(folds.split(idx, labels, group_ids))
    return _checked_split(labels, train, test, "group-aware")


def _checked_split(labels: np.ndarray, train: np.ndarray, test: np.ndarray, kind: str) -> Split:
    """The split, if both sides hold every class (a rare class can land on one side only)."""
    for side, name in ((train, "training"), (test, "test")):
        if len(np.unique(labels[side])) < len(np.unique(labels)):
            raise UserError(f"the {kind} split left the {name} set without a class: add images or groups")
    return Split(np.sort(train), np.sort(test))


def class_weights(labels: np.ndarray, mode: str) -> dict[int, float] | None:
    """Keras ``class_weight`` for ``train.class_weight``: ``balanced`` gives label k the weight
    n_total / (n_classes * n_k) (scikit-learn's "balanced"), so every class weighs the same in the loss; ``none``: None.
    """
    if mode == "none":
        return None
    from sklearn.utils.class_weight import compute_class_weight

    classes = np.unique(labels)
    weights = compute_class_weight("balanced", classes=classes, y=np.asarray(labels))
    return {int(c): float(w) for c, w in zip(classes, weights, strict=True)}
