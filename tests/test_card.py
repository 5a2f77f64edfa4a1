"""The model card as the detector reads it (maskwatch/card.py): bad values and files that do not match it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from detector.classifier import MaskClassifier
from maskwatch.card import card_file, read_card
from maskwatch.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "models" / "mask_classifier"


def _copy_shipped(tmp_path: Path, **changes) -> Path:
    stem = tmp_path / "mask_classifier"
    shutil.copyfile(SHIPPED.with_suffix(".tflite"), stem.with_suffix(".tflite"))
    card = json.loads(SHIPPED.with_suffix(".json").read_text())
    card.update(changes)
    stem.with_suffix(".json").write_text(json.dumps(card))
    return stem


def _one_line_error(stem: Path, match: str, **kwargs) -> None:
    with pytest.raises(UserError) as info:
        MaskClassifier(stem, **kwargs)
    assert match in str(info.value) and "\n" not in str(info.value), str(info.value)
    assert str(stem.with_suffix(".json")) in str(info.value) or str(stem.with_suffix(".tflite")) in str(info.value)


def test_shipped_card_pins_its_tflite_and_loads():
    card = read_card(SHIPPED)
    assert len(card["sha256"]["tflite"]) == 64
    assert MaskClassifier(SHIPPED).threshold == card["threshold"]


@pytest.mark.parametrize("threshold", ["0.5", None, True, 1.5, -0.1])
def test_card_threshold_must_be_a_number_in_0_1(tmp_path, threshold):
    _one_line_error(_copy_shipped(tmp_path, threshold=threshold), "threshold must be a number in [0, 1]")


def test_card_input_size_must_match_the_tflite(tmp_path):
    _one_line_error(_copy_shipped(tmp_path, input_size_wh=[160, 160]), "does not match mask_classifier.tflite's input")


def test_a_bit_flipped_tflite_is_refused_unless_accepted(tmp_path, caplog):
    stem = _copy_shipped(tmp_path)
    data = bytearray(stem.with_suffix(".tflite").read_bytes())
    data[len(data) // 2] ^= 0x01
    stem.with_suffix(".tflite").write_bytes(bytes(data))
    _one_line_error(stem, "does not match the SHA-256 in its card")
    assert MaskClassifier(stem, verify_checksums=False).input_size_wh == (224, 224)
    assert "verify_checksums is false" in caplog.text


def test_the_hash_is_cached_by_path_size_and_mtime(tmp_path, monkeypatch):
    from maskwatch import checksums

    stem = _copy_shipped(tmp_path)
    calls = []
    real = checksums.file_sha256
    monkeypatch.setattr(checksums, "file_sha256", lambda p: calls.append(p) or real(p))
    cache = tmp_path / "runs" / "cache" / "sha256.json"
    MaskClassifier(stem, hash_cache=cache)
    MaskClassifier(stem, hash_cache=cache)
    assert len(calls) == 1


def test_the_hash_cache_forgets_files_that_are_gone(tmp_path):
    """It kept an entry for every path ever hashed: every test's and every Ray worker's temporary copy."""
    from maskwatch.checksums import cached_sha256

    cache = tmp_path / "sha256.json"
    for name in ("a.bin", "b.bin"):
        (tmp_path / name).write_bytes(name.encode())
        cached_sha256(tmp_path / name, cache, method="file" if name == "a.bin" else "content")
    (tmp_path / "a.bin").unlink()
    (tmp_path / "b.bin").unlink()
    (tmp_path / "c.bin").write_bytes(b"c")
    cached_sha256(tmp_path / "c.bin", cache)
    assert list(json.loads(cache.read_text())) == [str((tmp_path / "c.bin").resolve())]


def test_card_file_names_stay_in_the_cards_folder(tmp_path):
    stem = _copy_shipped(tmp_path, files={"tflite": "../elsewhere.tflite"})
    with pytest.raises(UserError, match="must be a file name in its folder"):
        card_file(stem, read_card(stem), "tflite")


def test_runtime_imports_no_training_code():
    code = "import detector.classifier, sys; print(any(m == 'train' or m.startswith('train.') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert out.strip() == "False"
