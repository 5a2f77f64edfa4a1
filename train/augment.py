"""Step 3: training-only augmentation with Keras preprocessing layers, inside the tf.data pipeline.

The classic ImageDataGenerator parameters map to: RandomRotation (degrees / 360 of a turn), RandomZoom (x and y
independently, +-zoom), RandomTranslation (+-shift of height / width), RandomShear (x, up to ``shear`` of the image
width, either sign), RandomFlip("horizontal"), all with the same fill mode. ``Degrade`` then applies the faults of
small, far or compressed faces to both classes alike: low resolution (shrunk with ``INTER_AREA``-like area averaging,
enlarged back bilinearly, as ``maskwatch.preprocess`` enlarges a small crop), blur, JPEG and noise; RandomGrayscale
last (``grayscale_share``, ``tools/wrong_mask_head.py --grayscale-share``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from maskwatch.config import AugmentConfig

FILL_MODE = "nearest"  # pixels moved in from outside the image copy the nearest edge (classic ImageDataGenerator)
LOW_RES_MIN_PX = 16  # smallest side a degraded image is shrunk to (the smallest face the detector crops)
NOISE_STD = 8.0  # Gaussian noise of a degraded image: up to this many grey levels
FAULTS = ("low_res", "blur", "jpeg", "noise")


def build_augmenter(cfg: AugmentConfig, seed: int, *, grayscale_share: float = 0.0) -> Any:
    """A ``keras.Sequential`` of random geometric layers, then ``grayscale_share`` of the images turned grey (the luma
    in all three channels, as an infrared night camera sees); values stay raw RGB 0-255 (float32)."""
    import keras

    fill = FILL_MODE
    layers: list[Any] = []
    if cfg.rotation_deg > 0:
        layers.append(keras.layers.RandomRotation(cfg.rotation_deg / 360.0, fill_mode=fill, seed=seed))
    if cfg.zoom > 0:
        z = (-cfg.zoom, cfg.zoom)
        layers.append(keras.layers.RandomZoom(z, z, fill_mode=fill, seed=seed + 1))
    if cfg.shift > 0:
        layers.append(keras.layers.RandomTranslation(cfg.shift, cfg.shift, fill_mode=fill, seed=seed + 2))
    if cfg.shear > 0:
        layers.append(keras.layers.RandomShear(x_factor=cfg.shear, fill_mode=fill, seed=seed + 3))
    layers.append(keras.layers.RandomFlip("horizontal", seed=seed + 4))  # faces are left-right symmetric
    if cfg.degrade_share > 0:
        layers.append(degrade_layer(cfg.degrade_share, seed=seed + 5))
    if grayscale_share > 0:
        layers.append(keras.layers.RandomGrayscale(grayscale_share, seed=seed + 6))
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


def degrade_layer(share: float, seed: int, *, faults: tuple[str, ...] = FAULTS,
                  low_res_min_px: int = LOW_RES_MIN_PX) -> Any:
    """A Keras layer that, in training only, degrades each image of a batch like a small or poor face crop: each
    of ``faults`` (shrunk and enlarged back, Gaussian blur, JPEG re-encoding, noise) hits an image with ``share``."""
    import keras
    import tensorflow as tf

    class Degrade(keras.layers.Layer):
        def __init__(self) -> None:
            super().__init__(name="degrade")
            self.seed = seed

        def _one(self, x: Any) -> Any:
            size = tf.shape(x)[:2]
            u = tf.random.uniform([7], seed=self.seed)
            if "low_res" in faults:
                side = tf.cast(low_res_min_px + u[1] * tf.cast(size[0] - low_res_min_px, tf.float32), tf.int32)
                low = tf.image.resize(tf.image.resize(x, [side, side], method="area"), size, method="bilinear")
                x = tf.where(u[0] < share, low, x)
            if "blur" in faults:
                sigma = 0.5 + u[3]
                k = tf.range(-3, 4, dtype=tf.float32)
                g = tf.exp(-(k**2) / (2 * sigma**2))
                g = g / tf.reduce_sum(g)
                kernel = tf.tile(tf.reshape(g[:, None] * g[None, :], [7, 7, 1, 1]), [1, 1, 3, 1])
                padded = tf.pad(x[None], [[0, 0], [3, 3], [3, 3], [0, 0]], mode="SYMMETRIC")
                blurred = tf.nn.depthwise_conv2d(padded, kernel, [1, 1, 1, 1], "VALID")[0]
                x = tf.where(u[2] < share, blurred, x)
            if "jpeg" in faults:
                quality = tf.cast(30 + u[5] * 60, tf.int32)
                jpeg = tf.image.adjust_jpeg_quality(tf.clip_by_value(x, 0, 255) / 255.0, quality) * 255.0
                x = tf.where(u[4] < share, jpeg, x)
            if "noise" in faults:
                noisy = x + tf.random.normal(tf.shape(x), seed=self.seed + 1) * (u[5] * NOISE_STD)
                x = tf.where(u[6] < share, noisy, x)
            return tf.clip_by_value(x, 0.0, 255.0)

        def call(self, x: Any, training: bool = False) -> Any:
            if not training:
                return x
            out = tf.map_fn(self._one, x, fn_output_signature=tf.TensorSpec(x.shape[1:], tf.float32))
            return tf.ensure_shape(out, x.shape)  # keep the static shape (the distributed input split needs it)

    return Degrade()
