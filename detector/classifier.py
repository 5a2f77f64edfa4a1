"""``MaskClassifier``: P(mask) and the per-class probabilities of a batch of BGR face crops, from the model that
``train`` saved.

Backends: ``tflite`` (default) runs ``<stem>.tflite`` with LiteRT and never imports TensorFlow; ``keras`` loads
``<stem>.keras`` and imports TensorFlow only when selected. The card ``<stem>.json`` gives the input size, the output
(``sigmoid P(mask)``, or ``softmax`` over its ``class_names``, e.g. no_mask, mask, incorrect) and the class names.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from maskwatch.card import CLASS_NAMES, OUTPUT, OUTPUT_SOFTMAX, TRAIN_HINT, card_path, read_card, verify_card_file
from maskwatch.checksums import cache_path
from maskwatch.config import Config
from maskwatch.errors import UserError
from maskwatch.litert import tflite_predictor
from maskwatch.preprocess import prepare_batch
from maskwatch.tf_quiet import import_tensorflow

BACKENDS = ("tflite", "keras")


def check_card(card: dict[str, Any], where: Path) -> tuple[int, int]:
    """The card's input size (W, H); raise ``UserError`` if the card describes a model we cannot feed."""
    expected = {"positive_class": "mask", "input_color": "RGB", "input_range": [0, 255]}
    for key, value in expected.items():
        if card.get(key, value) != value:
            raise UserError(f"model card {where}: {key} is {card.get(key)!r}, the detector needs {value!r}")
    size = card["input_size_wh"]
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
        raise UserError(f"model card {where}: input_size_wh must be [width, height], got {size!r}")
    return int(size[0]), int(size[1])


def card_classes(card: dict[str, Any], where: Path) -> tuple[str, ...]:
    """The class names of the model's output columns: ``mask, no_mask`` for a sigmoid P(mask) model (column 0 is
    P(mask), column 1 of ``probabilities`` its complement), the card's ``class_names`` for a softmax model."""
    output = card.get("output", OUTPUT)
    if output == OUTPUT:
        return CLASS_NAMES
    names = card.get("class_names")
    if output != OUTPUT_SOFTMAX:
        raise UserError(f"model card {where}: output is {output!r}, the detector reads {OUTPUT!r} or "
                        f"{OUTPUT_SOFTMAX!r}")
    if not (isinstance(names, list) and len(names) >= 2 and len(set(names)) == len(names)
            and all(isinstance(n, str) for n in names) and {"mask", "no_mask"} <= set(names)):  # fmt: skip
        raise UserError(f"model card {where}: a softmax model needs distinct class_names with mask and no_mask, "
                        f"got {names!r}")  # fmt: skip
    return tuple(names)


class MaskClassifier:
    """Callable: ``classifier(crops_bgr) -> P(mask)`` float32 (n,), all crops in one batch call.

    ``probabilities(crops_bgr)`` float32 (n, k): one column per ``class_names`` entry (a binary model: P(mask),
    1 - P(mask)); ``predict(probs)`` turns those into class indices (binary: P(mask) >= ``threshold``; softmax:
    the most probable class).
    """

    def __init__(
        self, stem: str | Path, backend: str = "tflite", threads: int = 1, *, hash_cache: Path | None = None,
        verify_checksums: bool = True,
    ) -> None:
        if backend not in BACKENDS:
            raise UserError(f"unknown classifier backend {backend!r} (use {' or '.join(BACKENDS)})")
        self.stem = Path(stem)
        card = card_path(self.stem)
        if not card.is_file():
            raise UserError(f"no trained model at {card}: create one with {TRAIN_HINT}")
        self.card = read_card(self.stem)
        self.input_size_wh = check_card(self.card, card)
        self.class_names = card_classes(self.card, card)
        self.softmax = self.card.get("output", OUTPUT) == OUTPUT_SOFTMAX
        self.threshold = float(self.card["threshold"])
        self.backend = backend
        path = verify_card_file(self.stem, self.card, backend, cache=hash_cache, enabled=verify_checksums)
        if not path.is_file():
            other = "keras" if backend == "tflite" else "tflite"
            raise UserError(f"model file {path} is missing: re-export with {TRAIN_HINT}, or use --set "
                            f"classifier.backend={other}")
        self._predict = tflite_predictor(path, threads) if backend == "tflite" else _keras_predictor(path)
        if backend == "tflite":
            _check_tflite_input(self._predict.input_shape, path, self.input_size_wh, card)

    @classmethod
    def from_config(cls, cfg: Config) -> MaskClassifier:
        c = cfg.classifier
        return cls(cfg.classifier_stem(), backend=c.backend, threads=c.threads, hash_cache=cache_path(cfg),
                   verify_checksums=cfg.assets.verify_checksums)

    def __call__(self, crops_bgr: Sequence[np.ndarray]) -> np.ndarray:
        return self.probabilities(crops_bgr)[:, self.class_names.index("mask")]

    def probabilities(self, crops_bgr: Sequence[np.ndarray]) -> np.ndarray:
        """float32 (n, len(class_names)): the probability of each class for each crop, one batch call."""
        k = len(self.class_names)
        if len(crops_bgr) == 0:
            return np.zeros((0, k), np.float32)
        batch = prepare_batch(crops_bgr, self.input_size_wh)
        probs = np.asarray(self._predict(batch), np.float32).reshape(len(crops_bgr), -1)
        expected = k if self.softmax else 1
        if probs.shape[1] != expected:
            raise UserError(f"model {self.stem} returns {probs.shape[1]} values per face; its card says {expected} "
                            f"({self.card.get('output', OUTPUT)})")  # fmt: skip
        return probs if self.softmax else np.concatenate([probs, 1 - probs], axis=1)

    def predict(self, probs: np.ndarray) -> np.ndarray:
        """int (n,) indices into ``class_names`` of ``probabilities``' rows."""
        probs = np.asarray(probs).reshape(-1, len(self.class_names))
        if self.softmax:
            return np.argmax(probs, axis=1)
        return np.where(probs[:, 0] >= self.threshold, 0, 1)


def _check_tflite_input(shape: tuple[int, ...], path: Path, size_wh: tuple[int, int], card: Path) -> None:
    """The .tflite's input ``shape`` (N, H, W, 3) must match the card's ``input_size_wh`` (else labels silently
    change)."""
    if len(shape) != 4 or (shape[2], shape[1]) != tuple(size_wh) or shape[3] != 3:
        raise UserError(f"model card {card}: input_size_wh {list(size_wh)} does not match {path.name}'s input "
                        f"{shape[2]}x{shape[1]}x{shape[3]} (card and model from different trainings?)")


def _keras_predictor(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    """The ``.keras`` model (imports TensorFlow: ~3 s and ~1 GB), called directly (faster than ``predict``)."""
    import_tensorflow()
    import keras

    try:
        model = keras.models.load_model(path, compile=False)
    except (ValueError, OSError) as exc:
        raise UserError(f"cannot load {path} ({' '.join(str(exc).split())[:200]})") from None

    def predict(batch: np.ndarray) -> np.ndarray:
        return keras.ops.convert_to_numpy(model(batch, training=False))

    return predict
