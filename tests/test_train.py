"""Training: data loading and bad input, the group-aware split, augmentation, the model, evaluation, end to end."""

from __future__ import annotations

import csv
import errno
import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from maskwatch.card import card_file
from maskwatch.checksums import file_sha256
from maskwatch.config import AugmentConfig
from maskwatch.errors import UserError
from train import dataset
from train import run as train_run_module
from train.__main__ import main
from train.evaluate import evaluate, summary_metrics

ROOT = Path(__file__).resolve().parents[1]
EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def _photos() -> list[np.ndarray]:
    """Real RGB photos from installed packages (two faces, a cup, a cat)."""
    import matplotlib.cbook
    from skimage import data

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as fh:
        hopper = np.asarray(Image.open(fh).convert("RGB"))
    return [data.astronaut(), hopper, data.coffee(), data.chelsea()]


def _make_dataset(root: Path, per_class: int, size: int = 64, groups: int = 0) -> Path:
    """Crops of real photos; with_mask ones carry a skin-coloured "mask" over the lower half."""
    rng = np.random.default_rng(0)
    photos = _photos()
    for cls in ("with_mask", "without_mask"):
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            photo = photos[i % len(photos)]
            h, w = photo.shape[:2]
            side = min(h, w) * 2 // 3
            y, x = rng.integers(0, h - side), rng.integers(0, w - side)
            img = np.ascontiguousarray(cv2.resize(photo[y : y + side, x : x + side], (size, size)))
            if cls == "with_mask":
                cv2.rectangle(img, (size // 5, size // 2), (4 * size // 5, 9 * size // 10), (160, 200, 230), -1)
            name = f"g{i % groups}__{i}.png" if groups else f"img{i}.png"
            Image.fromarray(img).save(root / cls / name)
    return root


# --- step 1: loading and bad input ---------------------------------------------------------------------------


def test_a_file_name_that_is_not_utf8_loads(tmp_path):
    """The dataset digest encoded the names as UTF-8: a Latin-1 name (b"\\xe9") was a UnicodeEncodeError."""
    root = _make_dataset(tmp_path / "ds", per_class=2)
    before = dataset.load_dataset(root, image_size=32, image_exts=EXTS, progress=False).content_sha256
    img = root / "with_mask" / "img0.png"
    img.rename(img.with_name(os.fsdecode(b"caf\xe9.png")))
    data = dataset.load_dataset(root, image_size=32, image_exts=EXTS, progress=False)
    assert data.summary()["counts"] == {"mask": 2, "no_mask": 2} and data.content_sha256 != before


def test_load_dataset_converts_skips_and_counts(tmp_path, monkeypatch, caplog):
    root = _make_dataset(tmp_path / "ds", per_class=2)
    wm, nm = root / "with_mask", root / "without_mask"
    rgb = np.full((40, 30, 3), 120, np.uint8)
    Image.fromarray(rgb[..., 0]).save(wm / "gray.PNG")  # grayscale, upper-case extension
    rgba = np.zeros((20, 20, 4), np.uint8)  # fully transparent -> composited over white
    Image.fromarray(rgba, "RGBA").save(nm / "alpha.png")
    Image.fromarray(rgb).save(nm / "photo.JPEG")
    Image.fromarray(rgb).save(nm / "photo.bmp")
    Image.fromarray(rgb).save(nm / "photo.webp")
    (nm / "notes.txt").write_text("not an image")
    (wm / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    good = (wm / "img0.png").read_bytes()
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64, 3), np.uint8)).save(wm / "full.jpg")
    (wm / "truncated.jpg").write_bytes((wm / "full.jpg").read_bytes()[:300])
    (wm / "full.jpg").unlink()
    Image.fromarray(np.zeros((200, 200, 3), np.uint8)).save(wm / "huge.png")
    monkeypatch.setattr(dataset, "MAX_IMAGE_PIXELS", 100 * 100)

    data = dataset.load_dataset(root, image_size=32, image_exts=EXTS, min_images_per_class=2, progress=False)

    assert data.images_rgb.shape == (3 + 6, 32, 32, 3) and data.images_rgb.dtype == np.uint8
    assert data.summary()["counts"] == {"mask": 3, "no_mask": 6}
    assert set(data.skipped) == {
        "without_mask/notes.txt",
        "with_mask/corrupt.jpg",
        "with_mask/truncated.jpg",
        "with_mask/huge.png",
    }
    assert "not an image file" in data.skipped["without_mask/notes.txt"]
    assert "too large" in data.skipped["with_mask/huge.png"]
    assert "skipped 4 file(s)" in caplog.text and "truncated.jpg" in caplog.text
    names = [p.name for p in data.files]
    assert np.all(data.images_rgb[names.index("alpha.png")] == 255)
    gray = data.images_rgb[names.index("gray.PNG")]
    assert np.all(gray == 120)
    assert dataset.decode_image(good, 64).shape == (64, 64, 3)
    again = dataset.load_dataset(root, image_size=32, image_exts=EXTS, min_images_per_class=2, progress=False)
    assert again.content_sha256 == data.content_sha256 and len(data.content_sha256) == 64


def test_unreadable_reasons_are_plain_words():
    assert str(_decode_error(b"")) == "empty file (0 bytes)"
    reason = str(_decode_error(b"hello, I am a text file renamed .jpg"))
    assert reason.startswith("not a readable image") and "0x" not in reason and "BytesIO" not in reason


def _decode_error(data: bytes) -> ValueError:
    with pytest.raises(ValueError) as info:
        dataset.decode_image(data, 32)
    return info.value


def _run_main(tmp_path, dataset_dir, *extra):
    return main(
        [
            "--dataset",
            str(dataset_dir),
            "--quiet",
            "--set",
            f"paths.runs_dir={tmp_path / 'runs'}",
            "--set",
            f"classifier.model={tmp_path / 'out' / 'clf'}",
            *extra,
        ]
    )


@pytest.mark.parametrize(
    ("prepare", "message"),
    [
        (lambda root: None, "dataset folder not found"),
        (lambda root: (root / "with_mask").mkdir(parents=True), "class folder missing"),
        (lambda root: _make_dataset(root, 3) and _empty(root / "without_mask"), "no usable images"),
        (lambda root: _make_dataset(root, 1), "only 1 usable image(s)"),
        (lambda root: _make_dataset(root, 3) and _corrupt_all(root / "with_mask"), "no usable images"),
    ],
    ids=["missing-dir", "missing-class", "one-class", "too-few", "all-corrupt"],
)
def test_bad_dataset_is_one_error_line(tmp_path, capsys, prepare, message):
    root = tmp_path / "ds"
    prepare(root)
    assert _run_main(tmp_path, root) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err
    assert not (tmp_path / "runs").exists(), "no run directory for a run that never started"


def _empty(folder: Path) -> bool:
    for p in folder.iterdir():
        p.unlink()
    return True


def _corrupt_all(folder: Path) -> bool:
    for p in folder.iterdir():
        p.write_bytes(b"garbage")
    return True


def test_bad_groups_csv_and_bad_config_are_one_line(tmp_path, capsys):
    root = _make_dataset(tmp_path / "ds", 3)
    (root / "groups.csv").write_text("name,person\na,b\n")
    assert _run_main(tmp_path, root) == 2
    assert "expected the columns file,group" in capsys.readouterr().err
    assert _run_main(tmp_path, root, "--set", "train.strategy=mirored") == 2
    assert "did you mean 'mirrored'" in capsys.readouterr().err


@pytest.mark.parametrize("key", ["paths.runs_dir", "classifier.model"])
def test_unwritable_run_or_model_folder_is_one_line_before_training(tmp_path, capsys, key):
    root = _make_dataset(tmp_path / "ds", 3)
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    value = blocker if key == "paths.runs_dir" else blocker / "clf"
    assert _run_main(tmp_path, root, "--install", "--set", f"{key}={value}") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {key}: cannot create the folder") and "is a file" in err and "\n" not in err
    assert not (tmp_path / "runs").exists(), "checked before the run directory is made"


# --- step 2: the split ----------------------------------------------------------------------------------------


def test_split_is_stratified_and_seeded():
    labels = np.array([1] * 20 + [0] * 30)
    groups = [str(i) for i in range(50)]
    a = dataset.split_dataset(labels, groups, test_fraction=0.2, seed=7)
    b = dataset.split_dataset(labels, groups, test_fraction=0.2, seed=7)
    c = dataset.split_dataset(labels, groups, test_fraction=0.2, seed=8)
    assert np.array_equal(a.test, b.test) and not np.array_equal(a.test, c.test)
    assert len(a.test) == 10 and (labels[a.test] == 1).sum() == 4
    assert set(a.train).isdisjoint(a.test) and len(a.train) + len(a.test) == 50


def test_tiny_three_class_split_holds_one_of_each_class_out():
    labels = np.array([0, 0, 1, 1, 2, 2])
    split = dataset.split_dataset(labels, [str(i) for i in range(6)], test_fraction=0.2, seed=42)
    assert sorted(labels[split.test]) == [0, 1, 2] and sorted(labels[split.train]) == [0, 1, 2]


def test_a_stratified_split_without_a_class_on_one_side_is_a_user_error():
    labels = np.array([1] * 2 + [0] * 10)  # at seed 42 both mask images land in training
    with pytest.raises(UserError, match="stratified split left the test set without a class"):
        dataset.split_dataset(labels, [str(i) for i in range(12)], test_fraction=0.2, seed=42)


def test_validation_split_too_small_is_one_line(tmp_path, capsys):
    root = _make_dataset(tmp_path / "ds", 2)
    assert _run_main(tmp_path, root, "--set", "train.val_split=0.2") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: train.val_split=0.2: no validation set can be carved from the 2 training images")
    assert "\n" not in err and not (tmp_path / "runs").exists()


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 42])
def test_group_aware_split_never_splits_a_group(seed):
    rng = np.random.default_rng(seed)
    groups = [f"person{rng.integers(0, 15)}" for _ in range(80)]
    labels = rng.integers(0, 2, 80)
    split = dataset.split_dataset(labels, groups, test_fraction=0.2, seed=seed)
    train_groups = {groups[i] for i in split.train}
    test_groups = {groups[i] for i in split.test}
    assert train_groups.isdisjoint(test_groups)
    assert len(split.train) + len(split.test) == 80 and 0.08 < len(split.test) / 80 < 0.4
    assert set(labels[split.test]) == {0, 1} and set(labels[split.train]) == {0, 1}


def test_groups_from_csv_and_filename_convention(tmp_path):
    root = _make_dataset(tmp_path / "ds", 4, groups=2)
    files, _ = dataset.scan(root, EXTS)
    assert {f.group for f in files} == {"g0", "g1"}
    with (root / "groups.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "group"])
        writer.writerow(["with_mask/g0__0.png", "alice"])
    by_name = {f.path.name: f.group for f in dataset.scan(root, EXTS)[0] if f.label == 1}
    assert by_name["g0__0.png"] == "alice" and by_name["g1__1.png"] == "g1"


def test_groups_csv_with_bom_missing_files_and_malformed_rows_warns_with_counts(tmp_path, caplog):
    root = _make_dataset(tmp_path / "ds", 4)
    rows = ["file,group", "with_mask/img0.png,alice", "with_mask/gone.png,bob", "without_mask/nope.png,carl",
            "with_mask/img1.png", ",dave", "without_mask/img0.png,erin,extra"]  # fmt: skip
    (root / "groups.csv").write_bytes(b"\xef\xbb\xbf" + "\r\n".join(rows).encode() + b"\r\n")  # as Excel writes
    with caplog.at_level("WARNING"):
        files, _ = dataset.scan(root, EXTS)
    groups = {f.path.relative_to(root).as_posix(): f.group for f in files}
    assert groups["with_mask/img0.png"] == "alice" and groups["without_mask/img0.png"] != "erin"
    assert "3 row(s) malformed (need file,group) ignored: line 5, line 6, line 7" in caplog.text
    assert "2 row(s) naming files that do not exist ignored: with_mask/gone.png, without_mask/nope.png" in caplog.text


def test_16_bit_grayscale_png_is_scaled_not_white(tmp_path):
    ramp = (np.linspace(0, 65535, 64 * 64).reshape(64, 64)).astype(np.uint16)
    path = tmp_path / "ramp16.png"
    assert cv2.imwrite(str(path), ramp)
    assert Image.open(path).mode.startswith("I")  # really a 16-bit file
    rgb = dataset.decode_image(path.read_bytes(), 64)
    expected = np.rint(ramp / 257.0)
    assert np.abs(rgb[..., 0].astype(float) - expected).max() <= 1.0
    assert 120 < rgb.mean() < 135  # a ramp, not near white (Pillow's own convert gives a mean of ~250)


def test_same_image_in_both_class_folders_is_skipped_from_both_with_a_warning(tmp_path, caplog):
    root = _make_dataset(tmp_path / "ds", 4)
    (root / "without_mask" / "copy.png").write_bytes((root / "with_mask" / "img2.png").read_bytes())
    with caplog.at_level("WARNING"):
        data = dataset.load_dataset(root, image_size=32, image_exts=EXTS, min_images_per_class=2, progress=False)
    assert "same image is in both class folders, skipped from both: with_mask/img2.png and without_mask/copy.png" \
        in caplog.text
    names = {p.relative_to(root).as_posix() for p in data.files}
    assert "with_mask/img2.png" not in names and "without_mask/copy.png" not in names
    assert len(data.labels) == 7 and set(data.skipped) == {"with_mask/img2.png", "without_mask/copy.png"}


def test_copies_of_a_file_stay_on_one_side_of_the_split(tmp_path):
    """Copies in one class folder (photo.jpg, photo (1).jpg) were separate groups: one could be trained on and
    its copy tested, inflating the test accuracy and the install decision made on it."""
    root = _make_dataset(tmp_path / "ds", 6)
    for k in range(3):
        (root / "with_mask" / f"img0 ({k}).png").write_bytes((root / "with_mask" / "img0.png").read_bytes())
    data = dataset.load_dataset(root, image_size=32, image_exts=EXTS, min_images_per_class=2, progress=False)
    copies = [i for i, f in enumerate(data.files) if f.parent.name == "with_mask" and f.name.startswith("img0")]
    assert len(copies) == 4 and len({data.groups[i] for i in copies}) == 1
    for seed in range(20):
        split = dataset.split_dataset(data.labels, data.groups, test_fraction=0.2, seed=seed)
        assert len({bool(np.isin(i, split.test)) for i in copies}) == 1, seed


def test_a_misspelt_class_folder_is_not_silently_ignored(tmp_path, caplog):
    root = _make_dataset(tmp_path / "ds", 2)
    (root / "incorrect_masks").mkdir()
    (root / "incorrect_masks" / "a.png").write_bytes((root / "with_mask" / "img0.png").read_bytes())
    (root / "notes").mkdir()  # a folder without images stays quiet
    with caplog.at_level("WARNING"):
        files, _ = dataset.scan(root, EXTS)
    assert "incorrect_masks: 1 image(s) not used" in caplog.text and "did you mean incorrect_mask?" in caplog.text
    assert "notes" not in caplog.text and len(files) == 4


def test_too_few_groups_is_a_user_error():
    with pytest.raises(UserError, match=r"names 3 group\(s\) of people: need at least 5"):
        dataset.split_dataset(np.array([0, 1] * 6), ["a", "b", "c"] * 4, test_fraction=0.2, seed=0)


# --- steps 9-11: evaluation and plots --------------------------------------------------------------------------


def test_evaluate_reports_both_classes():
    labels = np.array([1, 1, 1, 0, 0, 0])
    p_mask = np.array([0.9, 0.8, 0.3, 0.2, 0.6, 0.1])
    result = evaluate(labels, p_mask, threshold=0.5)
    assert result["confusion_matrix"]["matrix"] == [[2, 1], [1, 2]]
    assert result["report"]["mask"]["precision"] == pytest.approx(2 / 3)
    assert result["report"]["no_mask"]["recall"] == pytest.approx(2 / 3)
    assert result["roc_auc"] == pytest.approx(8 / 9)
    assert result["accuracy"] == pytest.approx(4 / 6)
    assert "mask" in result["report_text"] and "no_mask" in result["report_text"]
    assert summary_metrics(result)["per_class"]["mask"]["f1-score"] == pytest.approx(2 / 3)
    assert evaluate(labels, p_mask, threshold=0.95)["confusion_matrix"]["matrix"] == [[0, 3], [0, 3]]


def test_plots_are_png(tmp_path):
    from train import plots

    hist = {"loss": [0.7, 0.5], "val_loss": [0.6, 0.55], "accuracy": [0.5, 0.7], "val_accuracy": [0.5, 0.6]}
    paths = [
        plots.plot_history(hist, tmp_path / "h.png"),
        plots.plot_confusion([[2, 1], [0, 3]], ["mask", "no_mask"], tmp_path / "c.png"),
        plots.plot_roc([0, 0.5, 1], [0, 0.9, 1], 0.8, tmp_path / "r.png"),
    ]
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert Image.open(p).size == (700, 500)


# --- steps 3-7: augmentation and the model (TensorFlow) --------------------------------------------------------


@pytest.mark.slow
def test_augmentation_changes_training_images_only():
    from train.augment import build_augmenter, eval_pipeline, train_pipeline

    images = np.stack([cv2.resize(p, (48, 48)) for p in _photos()])
    labels = np.array([1, 0, 1, 0])
    idx = np.arange(4)
    aug = build_augmenter(AugmentConfig(), seed=1)
    assert [type(layer).__name__ for layer in aug.layers] == [
        "RandomRotation",
        "RandomZoom",
        "RandomTranslation",
        "RandomShear",
        "RandomFlip",
    ]
    (x_train, _), = train_pipeline(images, labels, idx, batch_size=4, augmenter=aug, seed=1).take(1)
    (x_test, y_test), = eval_pipeline(images, labels, idx, batch_size=4).take(1)
    x_train, x_test = x_train.numpy(), x_test.numpy()
    assert x_test.dtype == np.float32 and np.array_equal(x_test, images.astype(np.float32))
    assert np.array_equal(y_test.numpy().ravel(), labels)
    assert x_train.shape == x_test.shape
    # Every training image differs from every original (shuffling aside), and values stay within 0-255.
    diffs = np.abs(x_train[:, None] - images[None].astype(np.float32)).mean(axis=(2, 3, 4))
    assert diffs.min() > 1.0
    assert x_train.min() >= 0 and x_train.max() <= 255.5
    # geometry off: only the (always on) left-right flip is left, so each image is an original or its mirror
    flip_only = build_augmenter(AugmentConfig(0, 0, 0, 0, 0), seed=1)
    (x_same, _), = train_pipeline(images, labels, idx, batch_size=4, augmenter=flip_only, seed=1).take(1)
    both = np.concatenate([images, images[:, :, ::-1]]).astype(np.float32)
    assert np.isclose(np.abs(x_same.numpy()[:, None] - both[None]).mean(axis=(2, 3, 4)), 0).sum() == 4


@pytest.mark.slow
def test_model_head_pool_matches_feature_map_and_base_is_frozen():
    import keras

    from train.model import BASE_NAME, build_classifier, compile_classifier, unfreeze_top

    for size, pool in ((64, 2), (224, 7)):
        clf = build_classifier(size, None)
        assert clf.get_layer("head_pool").pool_size == (pool, pool)
        assert clf.input_shape == (None, size, size, 3) and clf.output_shape == (None, 1)
    base = clf.get_layer(BASE_NAME)
    assert not base.trainable and len(clf.trainable_weights) == 4  # Dense(128) and Dense(1) kernels and biases
    compile_classifier(clf, learning_rate=1e-4, decay_rate=1e-4 / 20)
    clf.optimizer.iterations.assign(100)
    assert float(clf.optimizer.learning_rate) == pytest.approx(1e-4 / (1 + 1e-4 / 20 * 100))
    n = unfreeze_top(clf, 10)
    assert n > 0
    trainable = [layer for layer in base.layers if layer.trainable]
    assert trainable and all(not isinstance(layer, keras.layers.BatchNormalization) for layer in trainable)
    assert all(layer in base.layers[-10:] for layer in trainable)


# --- end to end ------------------------------------------------------------------------------------------------


def _tflite_predict(path: Path, x: np.ndarray) -> np.ndarray:
    """The detector's own LiteRT runtime on the exported file."""
    from maskwatch.litert import tflite_predictor

    return tflite_predictor(path, threads=1)(x)


def _first_loss(run_dir: Path) -> float:
    with (run_dir / "history_frozen.csv").open() as fh:
        return float(next(csv.DictReader(fh))["loss"])


@pytest.mark.slow
def test_end_to_end_one_epoch_outputs_formats_and_reproducibility(tmp_path, capsys, monkeypatch):
    import keras

    root = _make_dataset(tmp_path / "ds", per_class=8)
    (root / "without_mask" / "readme.md").write_text("ignored, counted")
    args = ("--set", "train.epochs=1", "--set", "train.image_size=64", "--set", "train.batch_size=4")
    assert _run_main(tmp_path, root, *args, "--install") == 0
    out = capsys.readouterr().out
    assert "precision" in out and "run directory:" in out and "installed the new model" in out
    (run_dir,) = (d for d in (tmp_path / "runs").iterdir() if (d / "train.log").is_file())
    for name in ("report.txt", "report.json", "history.png", "confusion.png", "roc.png", "config.yaml",
                 "train.log", "split.json", "history_frozen.csv"):
        assert (run_dir / name).is_file(), name
    report = json.loads((run_dir / "report.json").read_text())
    for cls in ("mask", "no_mask"):
        assert {"precision", "recall", "f1-score"} <= set(report["report"][cls])
    assert "accuracy" in report["report"] and report["roc_auc"] is not None
    stem = tmp_path / "out" / "clf"
    card = json.loads(stem.with_suffix(".json").read_text())
    assert card["input_size_wh"] == [64, 64] and card["positive_class"] == "mask"
    assert card["dataset"]["counts"] == {"mask": 8, "no_mask": 8} and card["dataset"]["skipped"] == 1
    assert card["config"]["train"]["epochs"] == 1 and "tensorflow-cpu" in card["versions"]

    files = {kind: card_file(stem, card, kind) for kind in ("keras", "h5", "tflite")}
    assert all(file_sha256(p) == card["sha256"][k] for k, p in files.items())  # the card pins its files
    x = np.stack([cv2.resize(p, (64, 64)) for p in _photos()]).astype(np.float32)
    ref = keras.models.load_model(files["keras"]).predict(x, verbose=0)
    assert ref.std() > 1e-3, "the model must not be constant, or the comparison proves nothing"
    np.testing.assert_allclose(keras.models.load_model(files["h5"]).predict(x, verbose=0), ref, atol=1e-4)
    np.testing.assert_allclose(_tflite_predict(files["tflite"], x), ref, atol=1e-4)
    installed_card = stem.with_suffix(".json").read_bytes()

    # Same seed, data and config: the same split and the same first-epoch loss. This run also fine-tunes.
    fine_tune = ("--set", "train.fine_tune_layers=5", "--set", "train.fine_tune_epochs=1")
    monkeypatch.setattr("train.run.EXPORT_TFLITE", False)  # this run checks the split and the loss only
    assert _run_main(tmp_path, root, *args, *fine_tune) == 0
    first, second = sorted(d for d in (tmp_path / "runs").iterdir() if (d / "train.log").is_file())
    split_a, split_b = (json.loads((d / "split.json").read_text()) for d in (first, second))
    assert split_a == split_b
    assert _first_loss(first) == pytest.approx(_first_loss(second), rel=1e-5)
    assert "is unchanged (install: --install)" in capsys.readouterr().out
    assert stem.with_suffix(".json").read_bytes() == installed_card, "without --install the detector's model stays"
    assert (second / "model" / "clf.json").is_file() and not (second / "model" / "clf.tflite").exists()
    phases = json.loads((second / "report.json").read_text())["phases"]
    assert set(phases) == {"frozen", "fine_tune"} and phases["fine_tune"]["unfrozen_layers"] > 0
    assert "per_class" in phases["fine_tune"]["metrics"] and (second / "history_fine_tune.csv").is_file()
    assert "kept epoch 1" in (second / "train.log").read_text()


@pytest.mark.slow
def test_best_weights_are_written_whole_on_improvement_only(tmp_path, monkeypatch):
    import errno

    import keras

    from train.run import best_weights_callback

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    path = tmp_path / "best_frozen.weights.h5"
    callback = best_weights_callback(path)
    callback.set_model(model)
    callback.on_epoch_end(0, {"val_loss": 1.0})
    kept = [w.copy() for w in model.get_weights()]
    first = path.read_bytes()
    model.set_weights([w + 1 for w in kept])
    callback.on_epoch_end(1, {"val_loss": 2.0})
    assert path.read_bytes() == first, "a worse epoch is not saved"

    def full_disk(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full_disk)
    with pytest.raises(OSError):
        callback.on_epoch_end(2, {"val_loss": 0.5})
    monkeypatch.undo()
    assert path.read_bytes() == first and sorted(p.name for p in tmp_path.iterdir()) == [path.name]
    model.load_weights(path)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), kept, strict=True))


@pytest.mark.slow
def test_disk_full_during_the_checkpoint_is_one_error_line_not_a_crash(tmp_path):
    import resource

    root = _make_dataset(tmp_path / "ds", 3)
    limit = 40 * 1024  # bytes per file: the config and split fit, the first checkpoint does not

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    sets = ["train.epochs=1", "train.image_size=32", "train.batch_size=4", f"paths.runs_dir={tmp_path / 'runs'}",
            f"classifier.model={tmp_path / 'clf'}"]
    cmd = [sys.executable, "-m", "train", "--dataset", str(root), "--quiet", *(a for v in sets for a in ("--set", v))]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600, preexec_fn=small_files)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1].startswith("error: disk full") and "Traceback" not in proc.stderr
    (run_dir,) = (d for d in (tmp_path / "runs").iterdir() if (d / "train.log").is_file())
    assert not (run_dir / "best_frozen.weights.h5").exists(), "no torn checkpoint"
    assert "ERROR train.run: stopped: [Errno 27] File too large" in (run_dir / "train.log").read_text().splitlines()[-1]


MIRRORED_SCRIPT = """
import sys, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from maskwatch.config import load_config
import train.run
from train.run import make_strategy, train_run
train.run.EXPORT_TFLITE = False
cfg = load_config(overrides=sys.argv[2:])
print("replicas", make_strategy("mirrored").num_replicas_in_sync)
result = train_run(cfg, sys.argv[1], progress=False)
print("epochs", len(result.history["loss"]), "card", result.model_paths["card"].is_file())
print("val_loss", len(result.history["val_loss"]), (result.run_dir / "best_frozen.weights.h5").is_file())
"""


@pytest.mark.slow
def test_one_epoch_under_mirrored_strategy_on_two_cpus(tmp_path):
    root = _make_dataset(tmp_path / "ds", per_class=6)
    overrides = [
        "train.strategy=mirrored", "train.epochs=1", "train.image_size=32", "train.batch_size=4",
        f"paths.runs_dir={tmp_path / 'runs'}", f"classifier.model={tmp_path / 'clf'}",
    ]
    proc = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT, str(root), *overrides],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "replicas 2" in proc.stdout and "epochs 1 card True" in proc.stdout and "val_loss 1 True" in proc.stdout


def test_a_full_disk_under_the_run_log_is_kept_as_one_error_naming_it(tmp_path, capsys):
    """logging printed a traceback for every line it could not write to train.log, and its close at the end raised
    an error naming no file ("disk full writing a file")."""

    class Full(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    handler = train_run_module._log_to_file(tmp_path / "train.log")
    handler.stream = Full()
    try:
        logging.getLogger("train").info("a line")
        logging.getLogger("train").info("another line")
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    assert capsys.readouterr().err == ""
    assert handler.error.errno == errno.ENOSPC and handler.error.filename == str(tmp_path / "train.log")
