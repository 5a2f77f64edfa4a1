"""A third class (incorrect_mask/): the dataset, evaluation, a tiny three-class training run end to end, and the
detector's classifier reading the three-class card."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from train import dataset
from train.__main__ import main
from train.evaluate import evaluate, summary_metrics

EXTS = (".jpg", ".png")
FOLDERS = {"with_mask": (60, 160, 230), "without_mask": None, "incorrect_mask": (60, 160, 230)}


def _make_three_class(root: Path, per_class: int, size: int = 32, counts: dict[str, int] | None = None) -> Path:
    """Tiny images: a "mask" band low on the face (with_mask), none, or a band at the very bottom (incorrect);
    ``counts`` (folder -> images) instead of ``per_class`` in every folder."""
    rng = np.random.default_rng(0)
    for folder, colour in FOLDERS.items():
        if counts is not None and folder not in counts:
            continue
        (root / folder).mkdir(parents=True)
        for i in range(per_class if counts is None else counts[folder]):
            img = np.full((size, size, 3), (200, 170, 140), np.uint8) + rng.integers(0, 30, (size, size, 3), np.uint8)
            if folder == "with_mask":
                cv2.rectangle(img, (4, size // 2), (size - 5, size - 5), colour, -1)
            elif folder == "incorrect_mask":
                cv2.rectangle(img, (4, 7 * size // 8), (size - 5, size - 1), colour, -1)
            Image.fromarray(img).save(root / folder / f"g{i % 6}__{i}.png")
    return root


def test_third_folder_makes_a_three_class_dataset_and_split(tmp_path):
    root = _make_three_class(tmp_path / "ds", per_class=12)
    data = dataset.load_dataset(root, image_size=32, image_exts=EXTS, min_images_per_class=2, progress=False)
    assert data.n_classes == 3 and data.class_names == ("no_mask", "mask", "incorrect")
    assert data.summary()["counts"] == {"mask": 12, "no_mask": 12, "incorrect": 12}
    split = dataset.split_dataset(data.labels, data.groups, test_fraction=0.25, seed=0)
    assert set(data.labels[split.test]) == {0, 1, 2}
    assert not {data.groups[i] for i in split.train} & {data.groups[i] for i in split.test}
    for path in (root / "incorrect_mask").iterdir():
        path.unlink()
    with pytest.raises(Exception, match=r"no usable images in .*incorrect_mask"):
        dataset.load_dataset(root, image_size=32, image_exts=EXTS, min_images_per_class=2, progress=False)
    (root / "incorrect_mask").rmdir()
    two = dataset.load_dataset(root, image_size=32, image_exts=EXTS, min_images_per_class=2, progress=False)
    assert two.n_classes == 2 and two.summary()["counts"] == {"mask": 12, "no_mask": 12}


def test_balanced_class_weights_are_n_over_classes_times_class_count():
    three = dataset.class_weights(np.array([0, 0, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2]), "balanced")
    assert three == pytest.approx({0: 12 / (3 * 2), 1: 12 / (3 * 2), 2: 12 / (3 * 8)})  # 2, 2, 0.5
    assert dataset.class_weights(np.array([1, 0, 0, 0]), "balanced") == pytest.approx({0: 4 / 6, 1: 4 / 2})
    assert dataset.class_weights(np.array([1, 0, 1, 0]), "balanced") == pytest.approx({0: 1.0, 1: 1.0})
    assert dataset.class_weights(np.array([0, 0, 1, 2]), "none") is None


def _fit_weights_from_split(run_dir: Path) -> dict[str, float]:
    """n / (n_classes * n_class) recomputed from the run's split.json: its fitted images, by folder."""
    names = {"with_mask": "mask", "without_mask": "no_mask", "incorrect_mask": "incorrect"}
    fitted = json.loads((run_dir / "split.json").read_text())["train"]
    counts = {name: sum(f.split("/")[0] == folder for f in fitted) for folder, name in names.items()}
    counts = {name: n for name, n in counts.items() if n}
    return {name: len(fitted) / (len(counts) * n) for name, n in counts.items()}


@pytest.mark.slow
def test_binary_dataset_trains_the_seed_binary_head_with_balanced_weights(tmp_path, monkeypatch):
    import keras

    from train.__main__ import main as train_main

    fit_weights = []
    fit = keras.Model.fit

    def recording_fit(self, *args, **kwargs):
        fit_weights.append(kwargs.get("class_weight"))
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", recording_fit)
    monkeypatch.setattr("train.run.EXPORT_TFLITE", False)
    root = _make_three_class(tmp_path / "ds", per_class=0, counts={"with_mask": 18, "without_mask": 6})
    stem = tmp_path / "out" / "clf"
    args = ["--dataset", str(root), "--quiet", "--set", f"paths.runs_dir={tmp_path / 'runs'}",
            "--set", f"classifier.model={stem}", "--set", "train.epochs=1", "--set", "train.image_size=32",
            "--set", "train.batch_size=8",
            "--set", "train.fine_tune_layers=2", "--set", "train.fine_tune_epochs=1"]  # fmt: skip
    assert train_main(args) == 0
    (run_dir,) = (d for d in (tmp_path / "runs").iterdir() if (d / "train.log").is_file())
    card = json.loads((run_dir / "model" / "clf.json").read_text())
    expected = _fit_weights_from_split(run_dir)
    assert expected["mask"] < 1 < expected["no_mask"], "18 vs 6 images: the minority class weighs more"
    assert card["class_weight"] == pytest.approx(expected, abs=1e-5)
    assert json.loads((run_dir / "report.json").read_text())["class_weight"] == card["class_weight"]
    assert len(fit_weights) == 2, "the frozen and the fine-tuning phase"
    for weights in fit_weights:  # label 0 = no_mask, 1 = mask
        assert weights == pytest.approx({0: expected["no_mask"], 1: expected["mask"]}, abs=1e-5)
    assert "class weights (train.class_weight=balanced)" in (run_dir / "train.log").read_text()
    assert card["output"] == "sigmoid P(mask)" and card["class_names"] == ["mask", "no_mask"]
    clf = keras.models.load_model(run_dir / "model" / card["files"]["keras"])
    head = clf.layers[-1].get_config()
    assert clf.output_shape == (None, 1) and head["activation"] == "sigmoid" and head["units"] == 1
    assert [layer.name for layer in clf.layers[-5:]] == [
        "head_pool", "head_flatten", "head_dense", "head_dropout", "p_mask"
    ]
    assert clf.loss == "binary_crossentropy"


def test_evaluate_three_classes_report_confusion_and_one_vs_rest_roc():
    labels = np.array([1, 1, 0, 0, 2, 2])  # mask, mask, no_mask, no_mask, incorrect, incorrect
    probs = np.array([  # softmax columns: no_mask, mask, incorrect
        [0.1, 0.8, 0.1], [0.2, 0.3, 0.5], [0.9, 0.05, 0.05], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8], [0.2, 0.2, 0.6],
    ])  # fmt: skip
    result = evaluate(labels, probs, threshold=0.5)
    assert result["class_names"] == ["mask", "no_mask", "incorrect"] and result["output"] == "softmax"
    # rows true, columns predicted, in class_names order: one mask face called incorrect
    assert result["confusion_matrix"]["matrix"] == [[1, 0, 1], [0, 2, 0], [0, 0, 2]]
    assert result["report"]["incorrect"]["precision"] == pytest.approx(2 / 3)
    assert result["report"]["incorrect"]["recall"] == 1.0
    assert result["mask_no_mask_accuracy"] == pytest.approx(3 / 4)
    assert set(result["roc_curves"]) == {"mask", "no_mask", "incorrect"}
    assert result["roc_auc_per_class"]["no_mask"] == 1.0
    assert result["roc_auc"] == pytest.approx(np.mean(list(result["roc_auc_per_class"].values())))
    summary = summary_metrics(result)
    assert set(summary["per_class"]) == {"mask", "no_mask", "incorrect"} and summary["class_names"][2] == "incorrect"
    binary = evaluate(np.array([1, 0]), np.array([0.9, 0.2]), threshold=0.5)
    assert binary["class_names"] == ["mask", "no_mask"] and "mask_no_mask_accuracy" not in summary_metrics(binary)


def test_roc_one_vs_rest_plot_is_png(tmp_path):
    from train import plots

    curves = {n: {"fpr": [0, 0.2, 1], "tpr": [0, 0.8, 1]} for n in ("mask", "no_mask", "incorrect")}
    path = plots.plot_roc_one_vs_rest(curves, dict.fromkeys(curves, 0.8), tmp_path / "roc.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_three_class_training_end_to_end_and_the_detector_reads_its_card(tmp_path, capsys):
    import keras

    from detector.classifier import MaskClassifier

    root = _make_three_class(tmp_path / "ds", per_class=12)
    stem = tmp_path / "out" / "clf3"
    args = ["--dataset", str(root), "--quiet", "--set", f"paths.runs_dir={tmp_path / 'runs'}",
            "--set", f"classifier.model={stem}", "--set", "train.epochs=1", "--set", "train.image_size=32",
            "--set", "train.batch_size=8", "--install"]  # fmt: skip
    assert main(args) == 0
    assert "installed the new model" in capsys.readouterr().out
    (run_dir,) = (d for d in (tmp_path / "runs").iterdir() if (d / "train.log").is_file())
    report = json.loads((run_dir / "report.json").read_text())
    assert report["class_names"] == ["mask", "no_mask", "incorrect"]
    assert np.asarray(report["confusion_matrix"]["matrix"]).shape == (3, 3)
    assert set(report["roc_auc_per_class"]) == {"mask", "no_mask", "incorrect"}
    assert "incorrect" in (run_dir / "report.txt").read_text()
    for name in ("confusion.png", "roc.png", "history.png"):
        assert (run_dir / name).read_bytes()[:4] == b"\x89PNG"

    card = json.loads(stem.with_suffix(".json").read_text())
    assert card["output"] == "softmax" and card["class_names"] == ["no_mask", "mask", "incorrect"]
    assert card["dataset"]["counts"] == {"mask": 12, "no_mask": 12, "incorrect": 12}
    assert set(card["metrics"]["per_class"]) == {"mask", "no_mask", "incorrect"}
    assert card["class_weight"] == pytest.approx(_fit_weights_from_split(run_dir), abs=1e-5)  # balanced: default
    keras_model = keras.models.load_model(stem.parent / card["files"]["keras"])
    assert keras_model.output_shape == (None, 3) and keras_model.layers[-1].get_config()["activation"] == "softmax"

    crops_bgr = [cv2.imread(str(p)) for p in sorted((root / "incorrect_mask").iterdir())[:3]]
    crops_bgr += [cv2.imread(str(p)) for p in sorted((root / "without_mask").iterdir())[:2]]
    classifier = MaskClassifier(stem)
    assert classifier.class_names == ("no_mask", "mask", "incorrect")
    probs = classifier.probabilities(crops_bgr)
    assert probs.shape == (5, 3) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    assert probs.std() > 1e-4, "a constant model proves nothing"
    np.testing.assert_allclose(classifier(crops_bgr), probs[:, 1])  # P(mask) = the mask column
    np.testing.assert_array_equal(classifier.predict(probs), probs.argmax(axis=1))
    rgb = np.stack([cv2.resize(c, (32, 32), interpolation=cv2.INTER_AREA)[..., ::-1] for c in crops_bgr])
    np.testing.assert_allclose(probs, keras_model.predict(rgb.astype(np.float32), verbose=0), atol=1e-4)
    assert classifier.probabilities([]).shape == (0, 3)
