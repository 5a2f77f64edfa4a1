"""Export of a classifier: .keras, .h5, .tflite and the card agree; the card reader needs no TensorFlow."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from maskwatch.errors import UserError
from train.card import FORMAT_VERSION, card_path, jsonable, read_card
from train.export import save_classifier

ROOT = Path(__file__).resolve().parents[1]


def _tiny_model(size: int = 32):
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inp)
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, keras.layers.Dense(1, activation="sigmoid")(x))


def _tflite_predict(path: Path, x: np.ndarray) -> np.ndarray:
    """The detector's own LiteRT runtime on the exported file."""
    from maskwatch.litert import tflite_predictor

    return tflite_predictor(path, threads=1)(x)


@pytest.mark.slow
def test_save_classifier_files_load_and_agree(tmp_path):
    import keras

    model = _tiny_model()
    stem = tmp_path / "out" / "clf"
    paths = save_classifier(model, stem, {"threshold": 0.6, "metrics": {"accuracy": np.float32(0.75)}})
    assert set(paths) == {"keras", "h5", "tflite", "card"}
    assert all(p.is_file() for p in paths.values())
    x = np.random.default_rng(1).uniform(0, 255, (3, 32, 32, 3)).astype(np.float32)
    ref = model.predict(x, verbose=0)
    assert ref.shape == (3, 1)
    for kind in ("keras", "h5"):
        np.testing.assert_allclose(keras.models.load_model(paths[kind]).predict(x, verbose=0), ref, atol=1e-4)
    np.testing.assert_allclose(_tflite_predict(paths["tflite"], x), ref, atol=1e-4)
    card = read_card(stem)
    assert card["format_version"] == FORMAT_VERSION
    assert card["files"] == {"h5": "clf.h5", "keras": "clf.keras", "tflite": "clf.tflite"}
    assert card["input_size_wh"] == [32, 32] and card["input_color"] == "RGB" and card["input_range"] == [0, 255]
    assert card["positive_class"] == "mask" and card["class_names"] == ["mask", "no_mask"]
    assert card["threshold"] == 0.6 and card["metrics"]["accuracy"] == pytest.approx(0.75)
    assert "keras" in card["versions"] and card["created_utc"].endswith("Z")
    assert not list(stem.parent.glob(".*tmp*")), "no temporary files left behind"

    # Re-export without TFLite: the stale .tflite of the older model goes, the card lists only what exists.
    paths = save_classifier(model, stem, {}, tflite=False)
    assert "tflite" not in paths and not (tmp_path / "out" / "clf.tflite").exists()
    assert read_card(stem)["files"] == {"h5": "clf.h5", "keras": "clf.keras"}


@pytest.mark.slow
def test_save_classifier_rejects_models_off_contract(tmp_path):
    import keras

    inp = keras.Input((8, 8, 3))
    two_class = keras.Model(inp, keras.layers.Dense(2)(keras.layers.Flatten()(inp)))
    with pytest.raises(ValueError, match=r"output must be \(None, 1\)"):
        save_classifier(two_class, tmp_path / "m", {})
    assert not list(tmp_path.iterdir())


def test_read_card_errors_are_one_line(tmp_path):
    with pytest.raises(UserError, match="no model card"):
        read_card(tmp_path / "missing")
    card_path(tmp_path / "bad").write_text("{not json", encoding="utf-8")
    with pytest.raises(UserError, match="not readable JSON"):
        read_card(tmp_path / "bad")
    card_path(tmp_path / "old").write_text(json.dumps({"format_version": 99}), encoding="utf-8")
    with pytest.raises(UserError, match="format_version"):
        read_card(tmp_path / "old")


def test_jsonable_turns_numpy_into_plain_values():
    out = jsonable({"a": np.float32(0.5), "b": np.arange(2), "c": (1, float("nan"))})
    assert json.loads(json.dumps(out)) == {"a": 0.5, "b": [0, 1], "c": [1, None]}


def test_card_module_does_not_import_tensorflow():
    code = "import sys, train.card, train.export; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"
