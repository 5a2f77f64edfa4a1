"""``train.augment``'s degradations (low resolution, blur, JPEG, noise) and grey copies: training only, label-blind."""

from __future__ import annotations

import dataclasses

import numpy as np

from maskwatch.config import AugmentConfig


def _noise(n: int = 4, size: int = 64) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, size, size, 3)).astype(np.float32)


def _roughness(x: np.ndarray) -> float:
    return float(np.abs(np.diff(x, axis=2)).mean())


def test_low_resolution_and_blur_smooth_images_only_in_training() -> None:
    from train.augment import degrade_layer

    layer = degrade_layer(1.0, seed=3, faults=("low_res", "blur"), low_res_min_px=8)
    x = _noise()
    out = np.asarray(layer(x, training=True))
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 255
    assert _roughness(out) < 0.5 * _roughness(x)
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x)


def test_jpeg_and_noise_change_pixels_and_off_means_absent() -> None:
    from train.augment import build_augmenter, degrade_layer

    x = np.full((2, 32, 32, 3), 128.0, np.float32)
    x[:, :, :16] = 40.0
    out = np.asarray(degrade_layer(1.0, seed=1, faults=("jpeg", "noise"))(x, training=True))
    assert 0.5 < np.abs(out - x).mean() < 20
    assert "degrade" not in [layer.name for layer in build_augmenter(AugmentConfig(), seed=0).layers]
    on = dataclasses.replace(AugmentConfig(), degrade_share=0.5)
    assert "degrade" in [layer.name for layer in build_augmenter(on, seed=0).layers]


def test_grayscale_share_turns_augmented_copies_grey_and_zero_leaves_colour():
    from train.augment import build_augmenter

    images = np.random.default_rng(2).uniform(0, 255, (6, 16, 16, 3)).astype(np.float32)
    grey = np.asarray(build_augmenter(AugmentConfig(), 42, grayscale_share=1.0)(images, training=True))
    np.testing.assert_allclose(grey[..., 0], grey[..., 1], atol=1e-3)
    np.testing.assert_allclose(grey[..., 1], grey[..., 2], atol=1e-3)
    colour = np.asarray(build_augmenter(AugmentConfig(), 42)(images, training=True))
    assert all(np.abs(c[..., 0] - c[..., 1]).max() > 1 for c in colour)
