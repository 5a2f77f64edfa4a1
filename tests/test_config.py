from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from maskwatch.config import DEFAULT_CONFIG_PATH, PROJECT_ROOT, Config, load_config
from maskwatch.errors import ConfigError


def test_shipped_config_equals_dataclass_defaults():
    assert load_config() == Config()


def test_every_shipped_key_has_a_comment():
    for line in DEFAULT_CONFIG_PATH.read_text().splitlines():
        if ":" in line and not line.lstrip().startswith("#") and not line.rstrip().endswith(":"):
            assert "#" in line, f"key without a comment: {line!r}"


def test_every_comment_is_one_line_of_at_most_120_characters():
    lines = DEFAULT_CONFIG_PATH.read_text().splitlines()
    body = lines[next(i for i, line in enumerate(lines) if not line.startswith("#")):]  # after the header
    assert [line for line in body if line.lstrip().startswith("#")] == [], "a comment continues on its own line"
    assert [line for line in lines if len(line) > 120] == []


def test_every_dataclass_field_is_in_the_shipped_yaml():
    shipped = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    for section, values in Config().to_dict().items():
        assert set(shipped[section]) == set(values), f"config.yaml [{section}] differs from the dataclass"


def test_override_sets_typed_value():
    cfg = load_config(overrides=["train.epochs=5", "draw.mask_color_bgr=[1, 2, 3]", "stream.source=1"])
    assert cfg.train.epochs == 5
    assert cfg.draw.mask_color_bgr == (1, 2, 3)
    assert cfg.stream.source == "1"
    assert cfg.face_detector.min_confidence == Config().face_detector.min_confidence


def test_config_file_and_override(tmp_path: Path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  epochs: 3\n  batch_size: 8\n")
    cfg = load_config(path, ["train.epochs=4"])
    assert (cfg.train.epochs, cfg.train.batch_size) == (4, 8)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.epoch=5", "unknown key train.epoch, did you mean train.epochs?"),
        ("trian.epochs=5", "unknown key trian, did you mean train?"),
        ("train.epochs=abc", "train.epochs: expected an integer"),
        ("train.epochs=0", "out of range"),
        ("face_detector.min_confidence=1.5", "out of range"),
        ("classifier.backend=tflit", "did you mean 'tflite'"),
        ("draw.mask_color_bgr=[0, 300, 0]", "out of range"),
        ("draw.mask_color_bgr=[0, 0]", "expected 3 values"),
        ("stream.display=maybe", "expected true or false"),
        ("noequals", "expected section.key=value"),
        ("classifier.unsure_band=[0.7, 0.3]", "classifier.unsure_band: low 0.7 is above high 0.3"),
    ],
)
def test_bad_values_are_rejected(override: str, message: str):
    with pytest.raises(ConfigError, match=message.replace("?", r"\?").replace("[", r"\[")):
        load_config(overrides=[override])


def test_on_and_off_choices_survive_yaml_booleans(tmp_path: Path):
    """YAML reads a bare on / off as a boolean: tracking.live: on / off must still mean "on" / "off"."""
    assert load_config(overrides=["tracking.live=on"]).tracking.live == "on"
    assert load_config(overrides=["tracking.live=off"]).tracking.live == "off"
    (tmp_path / "c.yaml").write_text("tracking:\n  live: off\n")
    assert load_config(tmp_path / "c.yaml").tracking.live == "off"
    with pytest.raises(ConfigError, match="expected a string"):
        load_config(overrides=["face_detector.model=true"])  # a choice without on / off: still refused


def test_missing_and_broken_files(tmp_path: Path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


@pytest.mark.parametrize("module", ["detector.webcam", "train"])
def test_cli_bad_config_key_is_one_line_exit_2(module: str):
    cmd = [sys.executable, "-m", module, "--set", "train.epoch=5"]
    if module == "train":
        cmd += ["--dataset", "x"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: unknown key train.epoch, did you mean train.epochs?"
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("module", ["detector.webcam", "train", "models"])
def test_cli_help(module: str):
    proc = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True,
                          cwd=PROJECT_ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "usage:" in proc.stdout


def _leaf_keys(node: dict, prefix: str = "") -> list[str]:
    return [k for key, value in node.items()
            for k in (_leaf_keys(value, f"{prefix}{key}.") if isinstance(value, dict) else [f"{prefix}{key}"])]


def test_the_shipped_config_has_at_most_60_keys():
    keys = _leaf_keys(yaml.safe_load(DEFAULT_CONFIG_PATH.read_text()))
    assert len(keys) == len(_leaf_keys(Config().to_dict()))
    assert len(keys) <= 60, f"{len(keys)} keys: a new one must replace another or become a constant"


def test_nested_ssd_section_matches_the_yaml_and_takes_overrides():
    shipped = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    assert set(shipped["face_detector"]["ssd"]) == set(Config().to_dict()["face_detector"]["ssd"])
    cfg = load_config(overrides=["face_detector.ssd.long_sides_px=[300, 600]", "face_detector.min_confidence=0.6"])
    assert (cfg.face_detector.ssd.long_sides_px, cfg.face_detector.min_confidence) == ((300, 600), 0.6)
    with pytest.raises(ConfigError, match=r"unknown key face_detector\.ssd\.long_side_px, did you mean "
                                          r"face_detector\.ssd\.long_sides_px\?"):
        load_config(overrides=["face_detector.ssd.long_side_px=[300]"])


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("face_detector.verifier=x",
         "face_detector.verifier: removed with the SSD research path (in the git history: tag ssd-research)"),
        ("face_detector.recheck_size_px=300",
         "face_detector.recheck_size_px: removed with the SSD research path (in the git history: tag ssd-research)"),
        ("face_detector.centerface_min_confidence=0.4",
         "face_detector.centerface_min_confidence: renamed face_detector.min_confidence"),
        ("face_detector.input_long_sides_px=[600]",
         "face_detector.input_long_sides_px: moved to face_detector.ssd.long_sides_px"),
    ],
)
def test_removed_keys_say_what_became_of_them(key: str, message: str):
    with pytest.raises(ConfigError) as info:
        load_config(overrides=[key])
    assert str(info.value) == message


def test_removed_keys_in_a_file_exit_2_with_one_line(tmp_path: Path, capsys):
    from evaluation.faces import main

    path = tmp_path / "old.yaml"
    path.write_text("face_detector:\n  centerface_long_sides_px: [640]\n")
    assert main([str(tmp_path), "--config", str(path)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: face_detector.centerface_long_sides_px: renamed face_detector.long_sides_px (in {path})")


def test_removed_keys_are_not_current_keys():
    from maskwatch.config import REMOVED_KEYS

    current = set(_leaf_keys(Config().to_dict()))
    assert REMOVED_KEYS and not set(REMOVED_KEYS) & current
    sections = set(Config().to_dict()) | {"face_detector.ssd"}
    assert all(key.rpartition(".")[0] in sections and why for key, why in REMOVED_KEYS.items())


def test_every_removed_key_gets_its_own_one_line_message():
    from maskwatch.config import REMOVED_KEYS

    for key, why in REMOVED_KEYS.items():
        with pytest.raises(ConfigError) as info:
            load_config(overrides=[f"{key}=1"])
        assert str(info.value) == f"{key}: {why}" and "\n" not in why


@pytest.mark.parametrize(("old", "new"), [
    ("face_detector.opencv_threads=1", "face_detector.threads"),
    ("face_detector.ssd.min_confidence=0.6", "face_detector.min_confidence"),
    ("alerts.webhook_url=http://hub/hook", "alerts.receivers"),
    ("alerts.mqtt_host=broker", "alerts.receivers"),
    ("web.port=8080", "web.serve"),
    ("augment.blur_share=0.2", "augment.degrade_share"),
    ("augment.width_shift=0.1", "augment.shift"),
    ("train.fine_tune_learning_rate=1e-5", "train.learning_rate"),
])
def test_merged_keys_name_the_key_that_replaces_them(old: str, new: str):
    with pytest.raises(ConfigError, match=f"^{old.split('=')[0]}: .*{new}"):
        load_config(overrides=[old])
    assert new.split(".")[1] in Config().to_dict()[new.split(".")[0]]


@pytest.mark.parametrize("raw", [".nan", ".inf", "-.inf", ".NaN"])
@pytest.mark.parametrize("key", ["classifier.threshold", "stream.read_timeout_s", "train.learning_rate"])
def test_every_float_key_must_be_finite(key: str, raw: str):
    with pytest.raises(ConfigError, match=f"{key}: expected a finite number"):
        load_config(overrides=[f"{key}={raw}"])


def test_config_naming_a_directory_or_a_binary_file_is_one_line(tmp_path: Path):
    with pytest.raises(ConfigError, match="is a directory, not a YAML file"):
        load_config(tmp_path)
    binary = tmp_path / "model.tflite"
    binary.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ConfigError, match=r"not a text \(UTF-8 YAML\) file"):
        load_config(binary)


@pytest.mark.parametrize("module", ["train", "detector.webcam"])
def test_cli_config_directory_is_one_line_exit_2(module: str, tmp_path: Path):
    cmd = [sys.executable, "-m", module, "--config", str(tmp_path), *(["--dataset", "x"] if module == "train" else [])]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: config {tmp_path} is a directory, not a YAML file"


def test_classifier_model_bare_name_lives_in_models_dir(tmp_path: Path):
    assert Config().classifier_stem() == PROJECT_ROOT / "models" / "mask_classifier"
    cfg = load_config(overrides=[f"paths.models_dir={tmp_path}"])
    assert cfg.classifier_stem() == tmp_path / "mask_classifier"
    cfg = load_config(overrides=["classifier.model=other/clf"])
    assert cfg.classifier_stem() == PROJECT_ROOT / "other" / "clf"


@pytest.mark.parametrize(("old", "new"), [
    ("face_detector.detect_every=3", "tracking.detect_every"),
    ("face_detector.track_max_missed=1", "tracking.max_missed"),
    ("face_detector.relabel_every=1", "tracking.relabel_every"),
])
def test_moved_keys_say_where_they_went(old: str, new: str):
    with pytest.raises(ConfigError, match=f"^{old.split('=')[0]}: moved to {new}$"):
        load_config(overrides=[old])
    cfg = load_config(overrides=[f"{new}=1"])
    assert cfg.to_dict()[new.split(".")[0]][new.split(".")[1]] == 1


def _yaml_comments() -> dict[str, str]:
    """``section.key`` (and ``section.sub.key``) -> the comment of its line in the shipped config.yaml."""
    comments, parents = {}, []
    for line in DEFAULT_CONFIG_PATH.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        depth = (len(line) - len(line.lstrip())) // 2
        key, _, rest = line.strip().partition(":")
        parents = [*parents[:depth], key]
        if "#" in rest:
            comments[".".join(parents)] = rest.split("#", 1)[1].strip()
    return comments


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def test_every_comment_gives_the_range_or_choices_the_loader_checks():
    import dataclasses

    comments, wrong = _yaml_comments(), []

    def walk(section: object, prefix: str) -> None:
        for f in dataclasses.fields(section):
            value = getattr(section, f.name)
            if dataclasses.is_dataclass(value):
                walk(value, f"{prefix}{f.name}.")
                continue
            comment = comments[prefix + f.name]
            if "choices" in f.metadata:
                expected = "(" + " | ".join(f.metadata["choices"]) + ")"
            elif "range" in f.metadata:
                lo, hi = f.metadata["range"]
                expected = f"({_number(lo)}-{_number(hi)}" if hi is not None else f"(>={_number(lo)}"
            else:
                continue
            if expected not in comment:
                wrong.append(f"{prefix}{f.name}: {expected} not in {comment!r}")

    walk(Config(), "")
    assert not wrong, wrong


def test_an_error_in_the_config_file_names_the_file(tmp_path: Path):
    path = tmp_path / "config.yaml"
    path.write_text("train:\n  epoch: 5\n")
    with pytest.raises(ConfigError, match=rf"^unknown key train.epoch, did you mean train.epochs\? \(in {path}\)$"):
        load_config(path)
    path.write_text("train:\n  epochs: 5\n")
    with pytest.raises(ConfigError, match=r"train\.epoch") as error:
        load_config(path, ["train.epoch=3"])  # the --set's error, not the file's
    assert "(in " not in str(error.value)
