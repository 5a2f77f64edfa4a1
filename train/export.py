"""Save a trained classifier as ``<stem>.keras``, ``<stem>.h5``, ``<stem>.tflite`` and the card ``<stem>.json``.

Every file is written atomically; the old card is removed first and the new one written last, so a reader that
finds a card always finds the model files it lists complete and from the same training; the card records each
file's SHA-256, which the detector checks. Training writes into its run folder; ``--install`` puts a model where
the detector looks.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

from maskwatch.checksums import file_sha256
from maskwatch.files import atomic_path, write_json_atomic
from train.card import base_card, card_path, jsonable, model_path


def check_contract(model: Any) -> tuple[int, int]:
    """Input (None, H, W, 3) float, output (None, 1) or (None, 3): return the input size (W, H) or raise
    ``ValueError``."""
    in_shape = tuple(model.input_shape)
    out_shape = tuple(model.output_shape)
    if len(in_shape) != 4 or in_shape[0] is not None or in_shape[3] != 3 or None in in_shape[1:]:
        raise ValueError(f"classifier input must be (None, H, W, 3), got {in_shape}")
    if out_shape not in ((None, 1), (None, 3)):
        raise ValueError(f"classifier output must be (None, 1) sigmoid P(mask) or (None, 3) softmax, got {out_shape}")
    return int(in_shape[2]), int(in_shape[1])


def tflite_bytes(model: Any) -> bytes:
    """Float32 TFLite flatbuffer with a dynamic batch dimension (the runtime resizes it)."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    with contextlib.redirect_stdout(io.StringIO()):  # the converter prints its temporary SavedModel signature
        return converter.convert()


def save_classifier(model: Any, stem: str | Path, card: dict[str, Any], *, tflite: bool = True) -> dict[str, Path]:
    """Write the model files and the card; return ``{"keras": path, "h5": path, ["tflite": path,] "card": path}``.

    ``card`` adds to (and may override) the fixed card fields; ``files`` and ``input_size_wh`` are set here.
    """
    input_size_wh = check_contract(model)
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    json_path = card_path(stem)
    json_path.unlink(missing_ok=True)  # from here on no card points at half-replaced files
    paths: dict[str, Path] = {}
    for kind in ("keras", "h5"):
        paths[kind] = model_path(stem, kind)
        with atomic_path(paths[kind]) as tmp:
            model.save(tmp)
    tflite_path = model_path(stem, "tflite")
    if tflite:
        data = tflite_bytes(model)
        with atomic_path(tflite_path) as tmp:
            tmp.write_bytes(data)
        paths["tflite"] = tflite_path
    else:
        tflite_path.unlink(missing_ok=True)  # a stale .tflite from an older model must not be picked up
    n_classes = 2 if model.output_shape[-1] == 1 else int(model.output_shape[-1])
    full_card = base_card(input_size_wh, card.get("threshold", 0.5), n_classes)
    full_card.update(card)
    full_card["input_size_wh"] = list(input_size_wh)
    full_card["files"] = {kind: p.name for kind, p in sorted(paths.items())}
    full_card["sha256"] = {kind: file_sha256(p) for kind, p in sorted(paths.items())}
    write_json_atomic(json_path, jsonable(full_card))
    paths["card"] = json_path
    return paths


def load_card(stem: str | Path) -> dict[str, Any]:
    """The card of a saved model (same as ``train.card.read_card``)."""
    from train.card import read_card

    return read_card(stem)
