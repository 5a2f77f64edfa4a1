"""Step 3: training-only augmentation with Keras preprocessing layers, inside the tf.data pipeline.

The classic ImageDataGenerator parameters map to: RandomRotation (degrees / 360 of a turn), RandomZoom (x and y
independently, +-zoom), RandomTranslation (+-shift of height / width), RandomShear (x, up to ``shear`` of the image
width, either sign), RandomFlip("horizontal"), all with the same fill mode.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from maskwatch.config import AugmentConfig


def build_augmenter(cfg: AugmentConfig, seed: int) -> Any:
    """A ``keras.Sequential`` of random geometric layers; values stay raw RGB 0-255 (float32)."""
    import keras

    fill = cfg.fill_mode
    layers: list[Any] = []
    if cfg.rotation_deg > 0:
        layers.append(keras.layers.RandomRotation(cfg.rotation_deg / 360.0, fill_mode=fill, seed=seed))
    if cfg.zoom > 0:
        z = (-cfg.zoom, cfg.zoom)
        layers.append(keras.layers.RandomZoom(z, z, fill_mode=fill, seed=seed + 1))
    if cfg.width_shift > 0 or cfg.height_shift > 0:
        layers.append(
            keras.layers.RandomTranslation(cfg.height_shift, cfg.width_shift, fill_mode=fill, seed=seed + 2)
        )
    if cfg.shear > 0:
        layers.append(keras.layers.RandomShear(x_factor=cfg.shear, fill_mode=fill, seed=seed + 3))
    if cfg.horizontal_flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed + 4))
    return keras.Sequential(layers or [keras.layers.Identity()], name="augment")  # all off: unchanged images


def _slices(images_rgb: np.ndarray, labels: np.ndarray, idx: np.ndarray) -> Any:
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((images_rgb[idx], labels[idx].astype(np.float32)[:, None]))


def train_pipeline(
    images_rgb: np.ndarray, labels: np.ndarray, idx: np.ndarray, *, batch_size: int, augmenter: Any, seed: int,
    replicas: int = 1,
) -> Any:
    """Shuffled, augmented float32 RGB 0-255 batches of the training images ``idx`` (reshuffled every epoch).

    With several replicas a last partial batch is dropped (reshuffled, so no image is left out for good): a batch
    smaller than the replicas leaves one with no image, which Keras 3's distributed training step cannot take.
    """
    import tensorflow as tf

    def augment(x: Any, y: Any) -> tuple[Any, Any]:
        return augmenter(tf.cast(x, tf.float32), training=True), y

    return (
        _slices(images_rgb, labels, idx)
        .shuffle(len(idx), seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size, drop_remainder=replicas > 1 and len(idx) >= batch_size)
        .map(augment)  # sequential map: the same seed gives the same augmented batches
        .prefetch(tf.data.AUTOTUNE)
    )


def eval_pipeline(images_rgb: np.ndarray, labels: np.ndarray, idx: np.ndarray, *, batch_size: int) -> Any:
    """Untouched float32 RGB 0-255 batches of ``idx`` in order (validation and test)."""
    import tensorflow as tf

    def as_float(x: Any, y: Any) -> tuple[Any, Any]:
        return tf.cast(x, tf.float32), y

    return _slices(images_rgb, labels, idx).batch(batch_size).map(as_float).prefetch(tf.data.AUTOTUNE)
