"""Training and serving feed the mask classifier the same pixels (``maskwatch.preprocess``)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from maskwatch.preprocess import face_input, prepare_batch, resize_interpolation, to_rgb

SIZE = 224  # the training image size (train.image_size) and the shipped model's input


def _texture(h: int, w: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    """A face-sized crop with gradients and fine noise: INTER_AREA and INTER_LINEAR enlargements differ on it."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = (xx * 200 / max(w - 1, 1) + yy * 50 / max(h - 1, 1))[..., None]
    img = base + rng.normal(0, 30, (h, w, channels))
    return np.clip(img, 0, 255).astype(np.uint8)


def _crops() -> dict[str, np.ndarray]:
    bgra = _texture(50, 44, 4, seed=5)
    bgra[..., 3] = np.linspace(0, 255, 44, dtype=np.uint8)[None, :]  # transparent to opaque
    return {
        "20px": _texture(20, 20, seed=1),
        "60px": _texture(60, 60, seed=2),
        "400px": _texture(400, 400, seed=3),
        "non-square": _texture(90, 31, seed=4),
        "grey": _texture(37, 41, 1, seed=6)[..., 0],
        "bgra": bgra,
    }


@pytest.fixture(scope="module")
def model_224(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny contract-honouring model with the training input size, exported like ``train`` exports."""
    import keras

    from train.export import save_classifier

    inp = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inp)
    x = keras.layers.Conv2D(2, 3, strides=4, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inp, keras.layers.Dense(1, activation="sigmoid")(x))
    stem = tmp_path_factory.mktemp("model") / "tiny224"
    save_classifier(model, stem, {"threshold": 0.5})
    return stem


def _training_pixels(crop_bgr: np.ndarray) -> np.ndarray:
    """The crop saved as a PNG and decoded by the training loader."""
    from train.dataset import decode_image

    ok, png = cv2.imencode(".png", crop_bgr)
    assert ok
    return decode_image(png.tobytes(), SIZE)


def test_training_loader_and_runtime_tensors_agree(model_224: Path) -> None:
    from detector.classifier import MaskClassifier

    crops = _crops()
    clf = MaskClassifier(model_224, backend="tflite")
    seen: list[np.ndarray] = []
    predict = clf._predict
    clf._predict = lambda batch: (seen.append(batch.copy()), predict(batch))[1]
    clf(list(crops.values()))
    (runtime,) = seen
    assert runtime.shape == (len(crops), SIZE, SIZE, 3) and runtime.dtype == np.float32
    for i, (name, crop) in enumerate(crops.items()):
        train = _training_pixels(crop).astype(np.float32)
        diff = np.abs(train - runtime[i]).max()
        assert diff <= 1.0, f"{name}: training and runtime pixels differ by {diff} grey levels"


def test_old_runtime_rule_would_fail_the_check() -> None:
    """The guard has teeth: enlarging with INTER_AREA (the old runtime) differs from the training pixels."""
    crop = _texture(20, 20, seed=1)
    blocky = cv2.cvtColor(cv2.resize(crop, (SIZE, SIZE), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
    assert np.abs(_training_pixels(crop).astype(int) - blocky.astype(int)).max() > 10


def test_tflite_and_keras_give_the_same_probability(model_224: Path) -> None:
    from detector.classifier import MaskClassifier

    crops = list(_crops().values())
    p_lite = MaskClassifier(model_224, backend="tflite")(crops)
    p_keras = MaskClassifier(model_224, backend="keras")(crops)
    np.testing.assert_allclose(p_lite, p_keras, atol=1e-5)


def test_resize_rule_and_colour_conversions() -> None:
    assert resize_interpolation((20, 20), (SIZE, SIZE)) == cv2.INTER_LINEAR
    assert resize_interpolation((400, 100), (SIZE, SIZE)) == cv2.INTER_AREA  # one side shrinks
    bgr = np.zeros((4, 6, 3), np.uint8)
    bgr[..., 0] = 255
    assert (to_rgb(bgr)[..., 2] == 255).all() and (to_rgb(bgr, order="rgb")[..., 0] == 255).all()
    bgra = np.zeros((2, 2, 4), np.uint8)  # fully transparent -> white, as the training loader composites
    assert (to_rgb(bgra) == 255).all()
    assert to_rgb(np.full((3, 3, 1), 7, np.uint8)).shape == (3, 3, 3)
    assert face_input(np.zeros((5, 9, 3), np.uint8), (8, 6)).shape == (6, 8, 3)
    batch = prepare_batch([bgr, bgr[:2]], (8, 6))
    assert batch.shape == (2, 6, 8, 3) and batch.dtype == np.float32
    with pytest.raises(ValueError, match="crop 1"):
        prepare_batch([bgr, bgr[:0]], (8, 6))
