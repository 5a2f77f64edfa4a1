"""Build the model card ``<stem>.json`` of a trained classifier, without TensorFlow (reading it: maskwatch/card.py).

The card says how to feed the model (input size, colour order, value range) and what its output means, so the
detector needs no conversion step. Format: docs/architecture.md ("The classifier model files").
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import platform
from pathlib import Path
from typing import Any

import numpy as np

from maskwatch.card import (  # noqa: F401 - re-exported for training code
    CLASS_NAMES,
    CLASS_NAMES_3,
    FILE_SUFFIXES,
    FORMAT_VERSION,
    OUTPUT,
    OUTPUT_SOFTMAX,
    POSITIVE_CLASS,
    card_file,
    card_path,
    model_path,
    read_card,
)

_VERSION_PACKAGES = (
    "tensorflow", "tensorflow-cpu", "keras", "numpy", "opencv-python", "ai-edge-litert", "scikit-learn",
)


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that made the model (read from metadata, no imports)."""
    versions = {"python": platform.python_version()}
    for name in _VERSION_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def base_card(input_size_wh: tuple[int, int], threshold: float, n_classes: int = 2) -> dict[str, Any]:
    """The fixed part of every card: classes, input and output contract, versions, creation time.

    Two classes: ``output`` "sigmoid P(mask)", ``class_names`` mask, no_mask. Three: ``output`` "softmax" and
    ``class_names`` in the order of the softmax columns (no_mask, mask, incorrect); ``threshold`` is then unused.
    """
    return {
        "format_version": FORMAT_VERSION,
        "class_names": list(CLASS_NAMES if n_classes == 2 else CLASS_NAMES_3),
        "positive_class": POSITIVE_CLASS,
        "output": OUTPUT if n_classes == 2 else OUTPUT_SOFTMAX,
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
