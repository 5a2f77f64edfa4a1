"""The model card ``<stem>.json`` beside a classifier: paths, reading and checking it, its files' SHA-256.

Shared by training (which writes cards, ``train/card.py``) and the detector (which reads them); imports no training
code. The card names its files (``files``: kind -> file name in the card's folder) and their SHA-256 (``sha256``:
kind -> hex), so a model is complete only when the card and every file it names agree. Format: docs/architecture.md
("The classifier model files"), installing: docs/TRAINING.md.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from maskwatch.checksums import ChecksumMismatch, cached_sha256
from maskwatch.errors import UserError

FORMAT_VERSION = 1
CLASS_NAMES = ("mask", "no_mask")
POSITIVE_CLASS = "mask"
OUTPUT = "sigmoid P(mask)"
OUTPUT_SOFTMAX = "softmax"  # one probability per class, in the card's class_names order
CLASS_NAMES_3 = ("no_mask", "mask", "incorrect")  # a three-class model's softmax columns
FILE_SUFFIXES = {"tflite": ".tflite", "keras": ".keras", "h5": ".h5"}
TRAIN_HINT = "python -m train --dataset DIR"


def card_path(stem: str | Path) -> Path:
    """``models/mask_classifier`` -> ``models/mask_classifier.json``."""
    stem = Path(stem)
    return stem.with_name(stem.name + ".json")


def model_path(stem: str | Path, kind: str) -> Path:
    """Default path of the ``kind`` file (``tflite``, ``keras``, ``h5``) of a model stem."""
    stem = Path(stem)
    return stem.with_name(stem.name + FILE_SUFFIXES[kind])


def card_file(stem: str | Path, card: dict[str, Any], kind: str) -> Path:
    """The ``kind`` file the card names (a plain file name in the card's folder), else ``model_path``."""
    name = (card.get("files") or {}).get(kind) if isinstance(card.get("files"), dict) else None
    if name is None:
        return model_path(stem, kind)
    if not isinstance(name, str) or Path(name).name != name or name in ("", ".", ".."):
        raise UserError(f"model card {card_path(stem)}: files.{kind} must be a file name in its folder, got {name!r}")
    return Path(stem).parent / name


def read_card(stem: str | Path) -> dict[str, Any]:
    """Read and check ``<stem>.json``; a missing, unreadable or foreign card is a one-line ``UserError``."""
    path = card_path(stem)
    if not path.is_file():
        raise UserError(f"no model card {path}: train a model first ({TRAIN_HINT})")
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"model card {path} is not readable JSON ({' '.join(str(exc).split())})") from None
    if not isinstance(card, dict) or card.get("format_version") != FORMAT_VERSION:
        raise UserError(f"model card {path}: expected format_version {FORMAT_VERSION}")
    for key in ("input_size_wh", "threshold", "files", "positive_class"):
        if key not in card:
            raise UserError(f"model card {path}: missing key {key!r}")
    threshold = card["threshold"]
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0.0 <= threshold <= 1.0:
        raise UserError(f"model card {path}: threshold must be a number in [0, 1], got {threshold!r}")
    if not math.isfinite(threshold):  # pragma: no cover - JSON NaN fails the range check above
        raise UserError(f"model card {path}: threshold must be finite, got {threshold!r}")
    if "sha256" in card and not isinstance(card["sha256"], dict):
        raise UserError(f"model card {path}: sha256 must map file kinds to hex digests")
    return card


def verify_card_file(stem: str | Path, card: dict[str, Any], kind: str, *, cache: Path | None = None,
                     enabled: bool = True) -> Path:  # fmt: skip
    """The ``kind`` file of the card, checked against the card's SHA-256 for it (when the card records one)."""
    path = card_file(stem, card, kind)
    expected = (card.get("sha256") or {}).get(kind)
    if expected is None or not path.is_file():
        return path
    if cached_sha256(path, cache) != expected:
        message = (
            f"model file {path} does not match the SHA-256 in its card {card_path(stem)} (damaged, or replaced "
            f"without its card): retrain or reinstall it ({TRAIN_HINT} --install)"
        )
        if enabled:
            raise ChecksumMismatch(message)
        import logging

        logging.getLogger(__name__).warning("%s; accepted: assets.verify_checksums is false", message)
    return path


def stem_file(stem: str | Path, kind: str) -> Path:
    """The ``kind`` file of the model at ``stem``: the one its card names, or ``model_path`` without a usable card."""
    try:
        return card_file(stem, read_card(stem), kind)
    except UserError:
        return model_path(stem, kind)
