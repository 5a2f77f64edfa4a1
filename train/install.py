"""Install a trained model where the detector looks (``classifier.model``), never destroying a working one.

Training writes its model into its run folder (``runs/<timestamp>/model/mask_classifier.*``). ``install_model``
copies it next to the installed card under versioned names (``<stem>.<sha256[:12]>.<ext>``), then switches by one
atomic rename of the card, which names its files and their SHA-256. An interrupt before that rename leaves the old
card and its files untouched (new files are unreferenced, and ``.tmp`` files never carry a final name); after it the
new card and all its files are complete. Only then do the old model's files move to the run's ``replaced_model/``
folder (nothing is deleted). ``decide`` compares the old and new model on the new run's test split.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from maskwatch.card import FILE_SUFFIXES, card_file, card_path, read_card
from maskwatch.checksums import file_sha256
from maskwatch.errors import UserError
from maskwatch.files import atomic_path

log = logging.getLogger(__name__)
MODEL_DIR = "model"
REPLACED_DIR = "replaced_model"


def run_model_stem(run_dir: Path, name: str) -> Path:
    """Where a run keeps its own model: ``<run_dir>/model/<name>``."""
    return Path(run_dir) / MODEL_DIR / name


def _checkpoint(step: str) -> None:
    """Called between the install's file operations (tests interrupt here)."""


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _copy_durable(src: Path, dest: Path) -> None:
    """Copy to a temporary name, fsync, rename: ``dest`` is either absent/old or the complete copy."""
    with atomic_path(dest) as tmp:
        shutil.copyfile(src, tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        _checkpoint(f"copied {dest.name}")
    _fsync_dir(dest.parent)


def install_model(src_stem: Path, dest_stem: Path, backup_dir: Path) -> dict[str, Path]:
    """Install the model at ``src_stem`` as ``dest_stem`` (card last, one rename); return the new files by kind."""
    src_stem, dest_stem = Path(src_stem), Path(dest_stem)
    card = read_card(src_stem)
    hashes = card.get("sha256") or {}
    dest_stem.parent.mkdir(parents=True, exist_ok=True)
    new_files: dict[str, str] = {}
    installed: dict[str, Path] = {}
    for kind in sorted(card["files"]):
        src = card_file(src_stem, card, kind)
        digest = hashes.get(kind) or file_sha256(src)
        if file_sha256(src) != digest:
            raise UserError(f"model file {src} does not match the SHA-256 in its card: the run's model is damaged")
        name = f"{dest_stem.name}.{digest[:12]}{FILE_SUFFIXES[kind]}"
        dest = dest_stem.parent / name
        if not (dest.is_file() and file_sha256(dest) == digest):
            _copy_durable(src, dest)
        new_files[kind] = name
        installed[kind] = dest
        hashes[kind] = digest
    old = _current_files(dest_stem)
    new_card = {**card, "files": new_files, "sha256": hashes, "installed_from": str(src_stem.parent)}
    dest_card = card_path(dest_stem)
    if dest_card.is_file():
        backup_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(dest_card, backup_dir / dest_card.name)  # a copy: the old card stays in place until the switch
        _checkpoint("backed up the old card")
    with atomic_path(dest_card) as tmp:
        tmp.write_text(json.dumps(new_card, indent=2) + "\n", encoding="utf-8")
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        _checkpoint("wrote the new card")
    _fsync_dir(dest_card.parent)  # the switch: from here on the detector reads the new model
    _checkpoint("switched")
    for path in old:
        if path not in installed.values() and path.is_file():
            backup_dir.mkdir(parents=True, exist_ok=True)
            shutil.move(path, backup_dir / path.name)
            _checkpoint(f"moved away {path.name}")
    return {**installed, "card": dest_card}


def _current_files(stem: Path) -> list[Path]:
    """The files the installed card names (none if there is no readable card)."""
    try:
        card = read_card(stem)
        return [card_file(stem, card, kind) for kind in card["files"]]
    except UserError:
        return []


@dataclass(frozen=True)
class Decision:
    install: bool
    reason: str
    new_accuracy: float | None = None
    current_accuracy: float | None = None
    compared: int | None = None  # test images both models were judged on (those of the classes both know)


def predicted_classes(stem: Path, images_rgb: np.ndarray) -> tuple[list[str], tuple[str, ...]]:
    """The class name the model at ``stem`` gives each image through the detector's own classifier (its card's
    threshold), and the classes it knows."""
    from detector.classifier import MaskClassifier

    card = read_card(stem)
    backend = "tflite" if "tflite" in card["files"] else "keras"
    clf = MaskClassifier(stem, backend=backend, threads=2)
    crops_bgr = [np.ascontiguousarray(img[..., ::-1]) for img in images_rgb]
    probs = np.concatenate([clf.probabilities(crops_bgr[i : i + 32]) for i in range(0, len(crops_bgr), 32)])
    return [clf.class_names[k] for k in clf.predict(probs)], tuple(clf.class_names)


def decide(new_stem: Path, current_stem: Path, images_rgb: np.ndarray, labels: Sequence[int], *,
           force: bool = False) -> Decision:  # fmt: skip
    """Install if forced, if there is no working current model, or if the new one is at least as accurate on the
    test images of the classes the current model knows (a binary model cannot answer ``incorrect``: a three-class
    model is judged against it on the mask / no-mask images, the rule the shipped default is chosen by)."""
    from train.dataset import LABEL_NAMES

    truth = np.array([LABEL_NAMES[t] for t in np.asarray(labels)])
    new_pred, _ = predicted_classes(new_stem, images_rgb)
    new_acc = float(np.mean(np.array(new_pred) == truth))
    if force:
        return Decision(True, "forced (--force)", new_acc)
    if not card_path(current_stem).is_file():
        return Decision(True, "no current model", new_acc)
    try:
        cur_pred, cur_classes = predicted_classes(current_stem, images_rgb)
    except UserError as exc:
        return Decision(True, f"the current model does not load ({exc})", new_acc)
    known = np.isin(truth, cur_classes)
    new_acc, cur_acc = (float(np.mean((np.array(pred) == truth)[known])) for pred in (new_pred, cur_pred))
    judged = f"this run's {int(known.sum())} test images"
    if not known.all():
        left = sorted(set(truth[~known].tolist()))
        judged += (f" of the classes the current model knows ({', '.join(cur_classes)}; "
                   f"{int((~known).sum())} {'/'.join(left)} images not compared)")  # fmt: skip
    better = new_acc >= cur_acc
    verdict = f">= current {cur_acc:.3f}" if better else f"is below the current model's {cur_acc:.3f}"
    return Decision(better, f"test accuracy {new_acc:.3f} {verdict} on {judged}", new_acc, cur_acc, int(known.sum()))


def describe(decision: Decision, new_stem: Path, current_stem: Path) -> str:
    """The one line the user reads about installing."""
    if decision.install:
        return f"installed the new model as {card_path(current_stem)}: {decision.reason}"
    return (
        f"not installed: {decision.reason}; the new model is in {new_stem.parent} "
        f"(install it anyway: --install --force)"
    )


def result_summary(decision: Decision) -> dict[str, Any]:
    return {"installed": decision.install, "reason": decision.reason, "new_accuracy": decision.new_accuracy,
            "current_accuracy": decision.current_accuracy, "compared_images": decision.compared}  # fmt: skip
