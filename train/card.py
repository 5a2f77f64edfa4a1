"""The model card ``<stem>.json`` beside a classifier: build it and read it back, without TensorFlow.

The card says how to feed the model (input size, colour order, value range) and what its output means, so the
detector needs no conversion step. Format: docs/DESIGN.md ("The classifier model files").
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import platform
from pathlib import Path
from typing import Any

import numpy as np

from maskwatch.errors import UserError

FORMAT_VERSION = 1
CLASS_NAMES = ("mask", "no_mask")
POSITIVE_CLASS = "mask"
OUTPUT = "sigmoid P(mask)"
FILE_SUFFIXES = {"tflite": ".tflite", "keras": ".keras", "h5": ".h5"}
_VERSION_PACKAGES = (
    "tensorflow", "tensorflow-cpu", "keras", "numpy", "opencv-python", "ai-edge-litert", "scikit-learn",
)


def card_path(stem: str | Path) -> Path:
    """``models/mask_classifier`` -> ``models/mask_classifier.json``."""
    stem = Path(stem)
    return stem.with_name(stem.name + ".json")


def model_path(stem: str | Path, kind: str) -> Path:
    """Path of the ``kind`` file (``tflite``, ``keras``, ``h5``) of a model stem."""
    stem = Path(stem)
    return stem.with_name(stem.name + FILE_SUFFIXES[kind])


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that made the model (read from metadata, no imports)."""
    versions = {"python": platform.python_version()}
    for name in _VERSION_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def base_card(input_size_wh: tuple[int, int], threshold: float) -> dict[str, Any]:
    """The fixed part of every card: classes, input and output contract, versions, creation time."""
    return {
        "format_version": FORMAT_VERSION,
        "class_names": list(CLASS_NAMES),
        "positive_class": POSITIVE_CLASS,
        "output": OUTPUT,
        "input_size_wh": [int(input_size_wh[0]), int(input_size_wh[1])],
        "input_color": "RGB",
        "input_range": [0, 255],
        "preprocessing": "inside the model (Rescaling 1/127.5, offset -1 = MobileNetV2 preprocess_input)",
        "threshold": float(threshold),
        "versions": library_versions(),
        "created_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def jsonable(value: Any) -> Any:
    """Numpy scalars and arrays, tuples and paths turned into plain JSON values (recursively)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and value != value:  # NaN is not valid JSON
        return None
    return value


def read_card(stem: str | Path) -> dict[str, Any]:
    """Read and check ``<stem>.json``; a missing, unreadable or foreign card is a one-line ``UserError``."""
    path = card_path(stem)
    if not path.is_file():
        raise UserError(f"no model card {path}: train a model first (python -m train --dataset DIR)")
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"model card {path} is not readable JSON ({exc})") from None
    if not isinstance(card, dict) or card.get("format_version") != FORMAT_VERSION:
        raise UserError(f"model card {path}: expected format_version {FORMAT_VERSION}")
    for key in ("input_size_wh", "threshold", "files", "positive_class"):
        if key not in card:
            raise UserError(f"model card {path}: missing key {key!r}")
    return card
