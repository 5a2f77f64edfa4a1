"""tools/keras_from_tflite.py: the shipped binary model rebuilt in Keras gives the TFLite model's P(mask)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from detector.pipeline import Pipeline
from maskwatch.config import load_config
from maskwatch.litert import tflite_predictor
from maskwatch.preprocess import prepare_batch

ROOT = Path(__file__).resolve().parents[1]
TFLITE = ROOT / "models" / "mask_classifier.tflite"
HELD_OUT_PHOTO = Path(__file__).resolve().parent / "fixtures" / "insightface_t1.jpg"

_spec = importlib.util.spec_from_file_location("keras_from_tflite", ROOT / "tools" / "keras_from_tflite.py")
kft = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(kft)


def _real_face_crops(astronaut: tuple[np.ndarray, np.ndarray, np.ndarray]) -> tuple[list[np.ndarray], list[bool]]:
    """CenterFace's crops of the held-out group photo (six unmasked people) and the astronaut with and without a
    drawn mask; whether each face wears a mask."""
    photo = cv2.imread(str(HELD_OUT_PHOTO))
    faces = Pipeline.from_config(load_config(), video=False)(photo)
    crops = faces.crops(photo)
    frame, masked, (x1, y1, x2, y2) = astronaut[0], astronaut[1], astronaut[2][0]
    crops += [frame[y1:y2, x1:x2], masked[y1:y2, x1:x2]]
    return crops, [False] * len(faces) + [False, True]


def _tflite_tensor(batch: np.ndarray, consumer: str) -> np.ndarray:
    """The TFLite model's input tensor of the operator whose output is named after ``consumer``."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interp = Interpreter(model_path=str(TFLITE), experimental_preserve_all_tensors=True,
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)  # fmt: skip
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], batch)
    interp.invoke()
    names = {t["index"]: t["name"] for t in interp.get_tensor_details()}
    (op,) = [op for op in interp._get_ops_details() if f"/{consumer}_1/" in names[op["outputs"][0]]]
    return interp.get_tensor(op["inputs"][0])


@pytest.mark.slow
def test_rebuilt_keras_model_gives_the_tflite_p_mask_on_real_faces(tmp_path, astronaut) -> None:
    assert kft.main([str(TFLITE), str(tmp_path / "rebuilt")]) == 0
    import keras

    model = keras.models.load_model(tmp_path / "rebuilt.keras", compile=False)
    assert tuple(model.get_layer("head_pool").input.shape) == (None, 7, 7, 1280)  # tools/wrong_mask_head.py's map
    assert model.get_layer("mobilenet_v2_preprocess").get_config()["scale"] == pytest.approx(1 / 127.5)
    crops, masked = _real_face_crops(astronaut)
    assert len(crops) == 8
    batch = prepare_batch(crops, (224, 224))
    p_tflite = tflite_predictor(TFLITE, threads=2)(batch)[:, 0]
    p_keras = np.asarray(model.predict(batch, verbose=0))[:, 0]
    assert np.max(np.abs(p_keras - p_tflite)) < 1e-4
    assert list(p_keras >= 0.5) == masked  # real answers, not a constant
    feature_map = keras.Model(model.input, model.get_layer("head_pool").input)(batch[:1], training=False)
    np.testing.assert_allclose(np.asarray(feature_map), _tflite_tensor(batch[:1], "head_pool"), atol=1e-3)
    from detector.classifier import MaskClassifier  # the classifier's two backends on the shipped model's weights

    p_lite = MaskClassifier(TFLITE.with_suffix(""), backend="tflite")(crops)
    np.testing.assert_allclose(p_lite, MaskClassifier(tmp_path / "rebuilt", backend="keras")(crops), atol=1e-4)
    card = json.loads((tmp_path / "rebuilt.json").read_text())
    assert card["class_names"] == ["mask", "no_mask"] and card["files"] == {"keras": "rebuilt.keras"}
    assert card["rebuilt_from_tflite"]["file"] == str(TFLITE)
    assert not list(tmp_path.glob(".*tmp*"))  # the atomic write left no temporary file


def test_layer_names_come_from_the_tflite_tensor_names() -> None:
    assert kft.layer_name("mask_classifier_1/head_pool_1/AvgPool") == "head_pool"
    fused = "m_1/base_1/Conv1_relu_1/Relu6;m_1/base_1/bn_Conv1_1/batchnorm/add_1;m_1/base_1/Conv1_1/convolution"
    assert kft.layer_name(fused) == "Conv1"
    assert kft.layer_name("StatefulPartitionedCall_1:0") == ""


@pytest.mark.parametrize("content", [None, b"not a flatbuffer"])
def test_a_missing_or_broken_tflite_is_a_one_line_error(tmp_path, capsys, content) -> None:
    path = tmp_path / "m.tflite"
    if content is not None:
        path.write_bytes(content)
    assert kft.main([str(path), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and len(err.splitlines()) == 1
    assert not (tmp_path / "out.keras").exists()


def test_the_tflite_models_own_card_is_not_overwritten(tmp_path, capsys) -> None:
    (tmp_path / "m.tflite").write_bytes(TFLITE.read_bytes())
    (tmp_path / "m.json").write_text("{}")
    assert kft.main([str(tmp_path / "m.tflite"), str(tmp_path / "m")]) == 2
    assert "would replace the card" in capsys.readouterr().err
    assert (tmp_path / "m.json").read_text() == "{}" and not (tmp_path / "m.keras").exists()
