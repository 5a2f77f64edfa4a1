"""Installing a trained model: card-last atomic switch (interrupted at every step), and the not-worse rule."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from maskwatch.card import FILE_SUFFIXES, card_file, card_path, read_card
from maskwatch.checksums import file_sha256
from train import install


def _fake_model(stem: Path, tag: str, kinds=("tflite", "keras", "h5")) -> dict[str, bytes]:
    """A card naming files with the given content and their SHA-256 (no TensorFlow needed)."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    contents = {kind: f"{tag} {kind} ".encode() * 1000 for kind in kinds}
    files, hashes = {}, {}
    for kind, data in contents.items():
        name = stem.name + FILE_SUFFIXES[kind]
        (stem.parent / name).write_bytes(data)
        files[kind], hashes[kind] = name, file_sha256(stem.parent / name)
    card = {"format_version": 1, "positive_class": "mask", "input_size_wh": [32, 32], "threshold": 0.5,
            "files": files, "sha256": hashes, "tag": tag}  # fmt: skip
    card_path(stem).write_text(json.dumps(card))
    return contents


def _what_the_detector_sees(stem: Path) -> dict[str, bytes]:
    """The card's files, each checked against its SHA-256; raises if the set is incomplete or mixed."""
    card = read_card(stem)
    seen = {}
    for kind in card["files"]:
        path = card_file(stem, card, kind)
        assert file_sha256(path) == card["sha256"][kind], f"{path} does not match its card"
        seen[kind] = path.read_bytes()
    return seen


class Interrupt(BaseException):
    pass


def test_install_switches_card_last_and_keeps_the_old_model(tmp_path):
    old = _fake_model(tmp_path / "models" / "mask_classifier", "old")
    new = _fake_model(tmp_path / "run" / "model" / "mask_classifier", "new")
    dest = tmp_path / "models" / "mask_classifier"
    install.install_model(tmp_path / "run" / "model" / "mask_classifier", dest, tmp_path / "run" / "replaced_model")
    assert _what_the_detector_sees(dest) == new
    backup = tmp_path / "run" / "replaced_model"
    assert {p.name for p in backup.iterdir()} == {"mask_classifier.json", "mask_classifier.tflite",
                                                  "mask_classifier.keras", "mask_classifier.h5"}  # fmt: skip
    assert (backup / "mask_classifier.tflite").read_bytes() == old["tflite"]
    leftovers = {p.name for p in dest.parent.iterdir()} - {dest.name + ".json"}
    assert all(n.startswith("mask_classifier.") and n.count(".") == 2 for n in leftovers), leftovers


def test_an_interrupt_at_any_step_leaves_the_old_or_the_new_model_complete(tmp_path, monkeypatch):
    steps = []
    monkeypatch.setattr(install, "_checkpoint", steps.append)
    probe = tmp_path / "probe"
    _fake_model(probe / "models" / "m", "old")
    _fake_model(probe / "run" / "m", "new")
    install.install_model(probe / "run" / "m", probe / "models" / "m", probe / "b")
    assert len(steps) >= 8  # 3 copies, backup, card written, switched, 3 moves
    outcomes = []
    for n in range(len(steps)):
        root = tmp_path / f"at{n}"
        old = _fake_model(root / "models" / "m", "old")
        new = _fake_model(root / "run" / "m", "new")
        calls = []

        def checkpoint(step, calls=calls, n=n):
            calls.append(step)
            if len(calls) == n + 1:
                raise Interrupt(step)

        monkeypatch.setattr(install, "_checkpoint", checkpoint)
        with pytest.raises(Interrupt):
            install.install_model(root / "run" / "m", root / "models" / "m", root / "b")
        seen = _what_the_detector_sees(root / "models" / "m")
        assert seen in (old, new), f"interrupted after {calls[-1]!r}: a mixed model"
        assert not [p for p in (root / "models").iterdir() if ".tmp" in p.name], "temporary files left behind"
        outcomes.append("new" if seen == new else "old")
    assert outcomes[0] == "old" and outcomes[-1] == "new"  # both sides of the switch were interrupted


def test_a_damaged_run_model_is_not_installed(tmp_path):
    old = _fake_model(tmp_path / "models" / "m", "old")
    _fake_model(tmp_path / "run" / "m", "new")
    (tmp_path / "run" / "m.tflite").write_bytes(b"flipped")
    with pytest.raises(install.UserError, match="does not match the SHA-256"):
        install.install_model(tmp_path / "run" / "m", tmp_path / "models" / "m", tmp_path / "b")
    assert _what_the_detector_sees(tmp_path / "models" / "m") == old


def _constant_model(stem: Path, bias: float | tuple[float, ...]) -> None:
    """A real 32x32 classifier whose output is sigmoid(bias) for every input (softmax(bias) for a tuple: one logit
    per class of ``train.dataset.LABEL_NAMES``), saved by the training exporter."""
    import keras

    from train.export import save_classifier

    biases = np.atleast_1d(np.asarray(bias, np.float32))
    inp = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D()(inp)
    dense = keras.layers.Dense(len(biases), activation="sigmoid" if len(biases) == 1 else "softmax")
    model = keras.Model(inp, dense(x))
    dense.set_weights([np.zeros((3, len(biases)), np.float32), biases])
    save_classifier(model, stem, {"threshold": 0.5})


@pytest.mark.slow
def test_a_worse_model_is_not_installed_unless_forced(tmp_path):
    good, bad = tmp_path / "models" / "m", tmp_path / "run" / "model" / "m"
    _constant_model(good, 5.0)  # always "mask"
    _constant_model(bad, -5.0)  # always "no mask"
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (6, 32, 32, 3)).astype(np.uint8)
    labels = np.array([1, 1, 1, 1, 1, 0])
    decision = install.decide(bad, good, images, labels)
    assert not decision.install and decision.new_accuracy == pytest.approx(1 / 6)
    assert decision.current_accuracy == pytest.approx(5 / 6) and decision.compared == 6
    line = install.describe(decision, bad, good)
    assert line.startswith("not installed: test accuracy 0.167 is below the current model's 0.833")
    assert str(bad.parent) in line and "--force" in line and "\n" not in line
    assert install.decide(bad, good, images, labels, force=True).install
    assert install.decide(good, bad, images, labels).install  # better: installed
    assert install.decide(good, tmp_path / "none" / "m", images, labels).reason == "no current model"


@pytest.mark.slow
def test_a_three_class_model_is_judged_against_a_binary_one_on_the_classes_both_know(tmp_path):
    binary, new = tmp_path / "models" / "m", tmp_path / "run" / "model" / "m"
    _constant_model(binary, 5.0)  # always "mask"
    images = np.random.default_rng(0).integers(0, 255, (9, 32, 32, 3)).astype(np.uint8)
    labels = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])  # no_mask, mask, incorrect
    _constant_model(new, (0.0, 0.0, 5.0))  # always "incorrect": 3/9 right, as many as the binary model
    decision = install.decide(new, binary, images, labels)
    assert not decision.install and decision.compared == 6
    assert (decision.new_accuracy, decision.current_accuracy) == (0.0, 0.5)
    assert "of the classes the current model knows (mask, no_mask; 3 incorrect images not compared)" in decision.reason
    _constant_model(new, (0.0, 5.0, 0.0))  # always "mask": as good as the binary model on its classes
    assert install.decide(new, binary, images, labels).install
