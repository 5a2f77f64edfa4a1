"""tools/wrong_mask_head.py: the three-class model that keeps a binary model's P(mask) and adds P(incorrect)."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

_spec = importlib.util.spec_from_file_location("wrong_mask_head", Path(__file__).resolve().parents[1] / "tools" /
                                               "wrong_mask_head.py")  # fmt: skip
wmh = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(wmh)


def test_composed_columns_sum_to_one_and_keep_the_binary_answer_below_the_incorrect_share():
    p_mask = np.array([[0.9], [0.2], [0.6], [0.5]])
    q = np.array([[0.1], [0.7], [0.0], [1.0]])
    probs = wmh.composed_probs(p_mask, q)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    np.testing.assert_allclose(probs[:, 2], q[:, 0])
    np.testing.assert_allclose(probs[:3, 1] / (probs[:3, 0] + probs[:3, 1]), p_mask[:3, 0])  # P(mask) among the two
    assert list(np.argmax(probs, axis=1)) == [1, 2, 1, 2]  # (no_mask, mask, incorrect) columns


def test_composed_model_keeps_p_mask_and_moves_the_incorrect_logit():
    import keras

    from train.model import build_classifier

    binary = build_classifier(32, None)
    shape = tuple(binary.get_layer("head_pool").input.shape[1:])
    heads = [wmh.build_head([shape], seed=0), wmh.build_head([shape], seed=1)]
    images = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)
    p_mask = np.asarray(binary(images, training=False))[:, 0]
    plain, shifted = (np.asarray(wmh.compose(binary, heads, shift)(images, training=False)) for shift in (0.0, -2.0))
    for probs in (plain, shifted):
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
        np.testing.assert_allclose(probs[:, 1] / (probs[:, 0] + probs[:, 1]), p_mask, atol=1e-5)

    def logit(p: np.ndarray) -> np.ndarray:
        return np.log(p / (1 - p))

    np.testing.assert_allclose(logit(shifted[:, 2]), logit(plain[:, 2]) - 2.0, atol=1e-3)
    feature_map = np.asarray(keras.Model(binary.input, binary.get_layer("head_pool").input)(images, training=False))
    mean_logit = np.mean([np.asarray(h(feature_map, training=False))[:, 0] for h in heads], axis=0)
    np.testing.assert_allclose(plain[:, 2], 1 / (1 + np.exp(-mean_logit)), atol=1e-5)  # the heads' mean logit
    assert math.isclose(float(np.mean(plain[:, 2] > shifted[:, 2])), 1.0)


def test_a_binary_model_without_a_keras_file_is_a_one_line_error(tmp_path, capsys):
    assert wmh.main([str(tmp_path / "missing"), str(tmp_path), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert "no Keras file of the binary model" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("threshold", ["0", "1.5"])
def test_an_incorrect_threshold_outside_0_1_is_rejected(tmp_path, capsys, threshold):
    (tmp_path / "b.keras").write_bytes(b"")
    (tmp_path / "ds" / "incorrect_mask").mkdir(parents=True)
    args = [str(tmp_path / "b"), str(tmp_path / "ds"), str(tmp_path / "o"), "--incorrect-threshold", threshold]
    assert wmh.main(args) == 2
    assert "--incorrect-threshold must be between 0 and 1" in capsys.readouterr().err


def test_several_thresholds_name_one_model_each(tmp_path, capsys):
    assert wmh.out_stem_for(Path("runs/m3"), 0.7) == Path("runs/m3_t0.7")
    (tmp_path / "b.keras").write_bytes(b"")
    (tmp_path / "ds" / "incorrect_mask").mkdir(parents=True)
    args = [str(tmp_path / "b"), str(tmp_path / "ds"), str(tmp_path / "o"), "--incorrect-threshold", "0.6", "1"]
    assert wmh.main(args) == 2  # every value is checked
    assert "--incorrect-threshold must be between 0 and 1" in capsys.readouterr().err


def test_heads_on_two_feature_maps_compose_with_the_binary_model_and_keep_p_mask():
    """``--features head_pool block_12_add``-style heads: one input per map, the binary's P(mask) unchanged."""
    import keras

    from train.model import build_classifier

    binary = build_classifier(32, None)
    layers = ["head_pool", "mobilenet_v2_preprocess"]  # a flat rebuilt model: e.g. block_12_add
    shapes = [tuple(t.shape[1:]) for t in wmh.feature_tensors(binary, layers)]
    assert shapes[0] == tuple(binary.get_layer("head_pool").input.shape[1:]) and len(shapes[1]) == 3
    heads = [wmh.build_head(shapes, seed=0), wmh.build_head(shapes, seed=1)]
    images = np.random.default_rng(1).uniform(0, 255, (3, 32, 32, 3)).astype(np.float32)
    probs = np.asarray(wmh.compose(binary, heads, 0.0, layers)(images, training=False))
    p_mask = np.asarray(binary(images, training=False))[:, 0]
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(probs[:, 1] / (probs[:, 0] + probs[:, 1]), p_mask, atol=1e-5)
    maps = wmh.features_of(keras.Model(binary.input, wmh.feature_tensors(binary, layers)), images, None, batch=2)
    assert [m.shape[1:] for m in maps] == shapes and all(m.dtype == np.float16 for m in maps)
    mean_logit = np.mean([np.asarray(h([m.astype(np.float32) for m in maps]))[:, 0] for h in heads], axis=0)
    np.testing.assert_allclose(probs[:, 2], 1 / (1 + np.exp(-mean_logit)), atol=2e-3)  # float16 maps


def test_an_unknown_feature_layer_is_a_one_line_error():
    from maskwatch.errors import UserError
    from train.model import build_classifier

    with pytest.raises(UserError, match="no layer nope"):
        wmh.feature_tensors(build_classifier(32, None), ["head_pool", "nope"])


def test_the_feature_cache_is_keyed_by_the_augmentation_and_keeps_the_default_name():
    import dataclasses

    from maskwatch.config import AugmentConfig

    default = AugmentConfig()
    assert wmh.cache_key("b", [wmh.FEATURES_LAYER], default, 0.0) == "b"  # caches of earlier runs still match
    assert wmh.cache_key("b", ["block_12_add"], default, 0.0) == "b-block_12_add"
    keys = {
        wmh.cache_key("b", ["block_12_add"], default, 0.3),
        wmh.cache_key("b", ["block_12_add"], default, 0.5),
        wmh.cache_key("b", ["block_12_add"], dataclasses.replace(default, degrade_share=0.5), 0.0),
    }
    assert len(keys) == 3 and all(k.startswith("b-block_12_add-") for k in keys)


def test_a_grayscale_share_outside_0_1_is_rejected(tmp_path, capsys):
    (tmp_path / "b.keras").write_bytes(b"")
    (tmp_path / "ds" / "incorrect_mask").mkdir(parents=True)
    assert wmh.main([str(tmp_path / "b"), str(tmp_path / "ds"), str(tmp_path / "o"), "--grayscale-share", "2"]) == 2
    assert "--grayscale-share must be between 0 and 1" in capsys.readouterr().err


def _flat_binary():
    """A flat binary model like tools/keras_from_tflite.py's rebuilt one (named layers, no nested base)."""
    import keras

    keras.utils.set_random_seed(0)
    x = keras.Input((16, 16, 3))
    a = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="block_11_add")(x)
    b = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="block_12_add")(a)
    pooled = keras.layers.Flatten()(keras.layers.AveragePooling2D(4, name="head_pool")(b))
    return keras.Model(x, keras.layers.Dense(1, activation="sigmoid", name="p_mask")(pooled))


def test_a_tuned_head_starts_as_the_plain_one_and_training_it_leaves_the_binary_model_alone():
    """``--tune-from``: the head's copy of the binary's layers starts with their weights (the same logits as a
    plain head on the binary's map); fitting it moves the copy, not the binary model, whose P(mask) stays."""
    import keras

    binary = _flat_binary()
    start, layers = "block_11_add", ["block_12_add"]
    images = np.random.default_rng(2).uniform(0, 1, (6, 16, 16, 3)).astype(np.float32)
    tuned = wmh.tuned_head(binary, start, layers, seed=3, channels=8)
    plain = wmh.build_head([tuple(binary.get_layer("block_12_add").output.shape[1:])], seed=3, channels=8)
    start_map, end_map = (np.asarray(keras.Model(binary.input, t)(images))
                          for t in wmh.feature_tensors(binary, [start, *layers]))  # fmt: skip
    np.testing.assert_allclose(tuned(start_map), plain(end_map), rtol=1e-4, atol=1e-4)
    before = [w.copy() for w in binary.get_weights()]
    p_mask = np.asarray(binary(images))[:, 0]
    tuned.compile(optimizer=keras.optimizers.Adam(1e-2), loss=keras.losses.BinaryCrossentropy(from_logits=True))
    tuned.fit(start_map, np.array([0, 1] * 3, np.float32), epochs=3, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, binary.get_weights(), strict=True))
    tuned_kernel = tuned.get_layer("tuned_3").get_layer("block_12_add").kernel
    assert not np.allclose(tuned_kernel, binary.get_layer("block_12_add").kernel)
    probs = np.asarray(wmh.compose(binary, [tuned], 0.0, [start])(images))
    np.testing.assert_allclose(probs[:, 1], p_mask * (1 - probs[:, 2]), atol=1e-5)  # the binary's P(mask), kept
    np.testing.assert_allclose(probs[:, 2], 1 / (1 + np.exp(-np.asarray(tuned(start_map))[:, 0])), atol=1e-5)
