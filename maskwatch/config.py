"""One typed configuration: frozen dataclasses loaded from ``config.yaml`` plus ``--set`` overrides.

Every section is a frozen dataclass; every field carries its allowed range or choices in ``metadata``.
Unknown keys are rejected with a close-match suggestion, removed keys (``REMOVED_KEYS``) with what became of them;
types and ranges are checked.

    cfg = load_config("config.yaml", overrides=["train.epochs=5"])
    cfg.train.epochs  # 5
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import glob
import math
import types
import typing
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from maskwatch.errors import ConfigError

SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's loader if built (config.yaml: 15 -> 1 ms)

# The folder holding the project's packages: the checkout (editable install) or site-packages. Shipped files
# (models/*.tflite, demo/demo.mp4, ...) are package data under it; path rules: docs/configuration.md ("Paths").
PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The shipped default config: package data (maskwatch/config.yaml links to the checkout's config.yaml).
DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent / "config.yaml"
USER_CONFIG_NAME = "config.yaml"  # found in the current folder when --config is not given


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
    pip_fallback: bool = True
    verify_checksums: bool = True


@dataclass(frozen=True)
class SSDConfig:
    long_sides_px: tuple[int, ...] = _range(32, 4096, default=())


@dataclass(frozen=True)
class FaceDetectorConfig:
    model: str = _choice("centerface", "ssd", default="centerface")
    backend: str = _choice("onnxruntime", "opencv", default="onnxruntime")
    onnx: str = "models/centerface.onnx"
    long_sides_px: tuple[int, ...] = _range(32, 4096, default=(640, 320))
    min_confidence: float = _range(0.0, 1.0, default=0.5)
    min_size_px: int = _range(0, 10000, default=20)
    threads: int = _range(0, 64, default=2)
    ssd: SSDConfig = field(default_factory=SSDConfig)


@dataclass(frozen=True)
class TrackingConfig:
    detect_every: int = _range(1, 100, default=4)
    max_missed: int = _range(0, 100, default=2)
    relabel_every: int = _range(1, 100, default=2)
    live: str = _choice("auto", "on", "off", default="auto")
    reid_keyframes: int = _range(0, 10000, default=40)


_SSD_RESEARCH = "removed with the SSD research path (in the git history: tag ssd-research)"
_CACHE = "removed: put your copy of {} in paths.cache_dir (python -m models fetch puts it there)"
_RECEIVER = "now one entry of alerts.receivers: {}"
_SSD_INPUT = "removed: the SSD runs at its 300x300 input (or face_detector.ssd.long_sides_px)"
_DEGRADE = "merged into augment.degrade_share (one share for every camera fault)"
# Keys that once existed: a config that still sets one gets this line instead of "unknown key".
REMOVED_KEYS: dict[str, str] = {
    "assets.prototxt": _CACHE.format("deploy.prototxt"),
    "assets.caffemodel": _CACHE.format("res10_300x300_ssd_iter_140000.caffemodel"),
    "assets.mobilenetv2_weights": _CACHE.format("mobilenet_v2_1.0_224_no_top.weights.h5"),
    "assets.download_timeout_s": "removed: each URL gets 10 s (models/assets.py DOWNLOAD_TIMEOUT_S)",
    "face_detector.centerface_model": "renamed face_detector.onnx",
    "face_detector.centerface_long_sides_px": "renamed face_detector.long_sides_px",
    "face_detector.centerface_min_confidence": "renamed face_detector.min_confidence",
    "face_detector.centerface_nms_iou": "removed: CenterFace's NMS IoU is fixed at 0.3",
    "face_detector.nms_iou": "removed: CenterFace's NMS IoU is fixed at 0.3",
    "face_detector.opencv_threads": "merged into face_detector.threads (the face detector's runtime and OpenCV)",
    "face_detector.input_size_wh": _SSD_INPUT,
    "face_detector.input_long_sides_px": "moved to face_detector.ssd.long_sides_px",
    "face_detector.ssd.input_size_wh": _SSD_INPUT,
    "face_detector.ssd.min_confidence": "merged into face_detector.min_confidence (both detectors)",
    "face_detector.ssd.nms_iou": "removed: the SSD's NMS IoU is fixed at 0.4",
    "face_detector.ssd.min_size_px": "merged into face_detector.min_size_px (both detectors)",
    "face_detector.detect_every": "moved to tracking.detect_every",
    "face_detector.track_max_missed": "moved to tracking.max_missed",
    "face_detector.relabel_every": "moved to tracking.relabel_every",
    "face_detector.crop_margin": "removed: the classifier gets the detector's boxes as they are",
    "tracking.memory_keyframes": "removed: an unseen face's id is kept 8 key frames (detector/tracking.py)",
    "tracking.vote_keyframes": "removed: a label is the mean of the last 5 classifications (detector/tracking.py)",
    "tracking.vote_min_keyframes": "removed: a label needs 2 classifications (detector/tracking.py)",
    "tracking.vote_hysteresis": "removed: a set label changes 0.1 past the threshold (detector/tracking.py)",
    "classifier.crop_margin": "removed: the classifier gets the detector's boxes as they are",
    "draw.text_color_bgr": "removed: label text is white",
    "draw.font_scale": "removed: labels use a fixed font scale of 0.5",
    "draw.fps_window": "removed: the FPS overlay is smoothed over 30 frames",
    "stream.reconnect_backoff_s": "removed: the first reconnect waits 1 s, doubling each attempt",
    "stream.image_exts": "removed: image files are .jpg .jpeg .png .bmp .webp, any case (maskwatch/files.py)",
    "alerts.gap_s": "removed: a person out of view over 1 s starts the no_mask count over",
    "alerts.bell": _RECEIVER.format("bell"),
    "alerts.desktop": _RECEIVER.format("desktop"),
    "alerts.command": _RECEIVER.format('"exec:CMD"'),
    "alerts.webhook_url": _RECEIVER.format("the http(s):// URL itself"),
    "alerts.mqtt_host": _RECEIVER.format("mqtt://HOST[:PORT]/TOPIC"),
    "alerts.mqtt_port": _RECEIVER.format("mqtt://HOST[:PORT]/TOPIC"),
    "alerts.mqtt_topic": _RECEIVER.format("mqtt://HOST[:PORT]/TOPIC"),
    "alerts.timeout_s": "removed: each receiver gets 5 s per event",
    "alerts.queue_size": "removed: each receiver queues up to 32 events",
    "web.host": "now part of web.serve: HOST:PORT",
    "web.port": "now web.serve: [HOST:]PORT",
    "web.jpeg_quality": "removed: streamed frames are JPEG quality 80",
    "augment.width_shift": "merged into augment.shift (width and height)",
    "augment.height_shift": "merged into augment.shift (width and height)",
    "augment.horizontal_flip": "removed: random left-right flips are always on",
    "augment.fill_mode": "removed: pixels outside the image are always filled nearest",
    "augment.low_res_share": _DEGRADE,
    "augment.low_res_min_px": _DEGRADE,
    "augment.blur_share": _DEGRADE,
    "augment.jpeg_share": _DEGRADE,
    "augment.noise_std": _DEGRADE,
    "train.lr_decay": "removed: the classic decay lr / (1 + lr / EPOCHS * step) is always on",
    "train.min_images_per_class": "removed: a class needs at least 2 usable images",
    "train.fine_tune_learning_rate": "removed: fine-tuning runs at train.learning_rate / 10",
    "train.tflite": "removed: the .tflite the detector runs is always exported",
    "train.install": "removed: use python -m train --install",
    **{
        f"face_detector.{key}": _SSD_RESEARCH
        for key in (
            "large_frame_pass_px", "large_frame_pass_in_video", "large_frame_pass_max_px", "min_inside_share",
            "min_aspect_hw", "max_aspect_hw", "recheck_size_px", "recheck_min_confidence", "recheck_contexts",
            "recheck_max", "recheck_max_confidence", "recheck_at_border", "recheck_below_aspect_hw",
            "recheck_skip_nested", "fine_pass_max_box_px", "verifier", "verifier_min_p_face", "verifier_gate",
            "verifier_min_mean", "verifier_threads", "blazeface_passes_px", "blazeface_min_confidence",
            "blazeface_min_look", "blazeface_tile_grid", "blazeface_sure", "blazeface_check_all",
            "blazeface_check_tiles", "blazeface_model", "nested_share",
        )
    },
}  # fmt: skip


@dataclass(frozen=True)
class ClassifierConfig:
    model: str = "mask_classifier"
    backend: str = _choice("tflite", "keras", default="tflite")
    threshold: float = _range(0.0, 1.0, default=0.5)
    threads: int = _range(1, 64, default=2)
    unsure_band: tuple[float, float] = _range(0.0, 1.0, default=(0.5, 0.5))
    min_face_px: int = _range(0, 10000, default=0)

    def __post_init__(self) -> None:
        low, high = self.unsure_band
        if low > high:  # swapped, the band would hold nothing: no face would ever be unsure
            raise ConfigError(f"classifier.unsure_band: low {low:g} is above high {high:g}; give [low, high]")


@dataclass(frozen=True)
class DrawConfig:
    mask_color_bgr: tuple[int, int, int] = _color((0, 200, 0))
    no_mask_color_bgr: tuple[int, int, int] = _color((0, 0, 230))
    incorrect_color_bgr: tuple[int, int, int] = _color((0, 140, 255))
    unknown_color_bgr: tuple[int, int, int] = _color((160, 160, 160))
    thickness_px: int = _range(1, 20, default=2)


@dataclass(frozen=True)
class PrivacyConfig:
    blur: str = _choice("none", "all", "masked", default="none")


@dataclass(frozen=True)
class StreamConfig:
    source: str = "0"
    display: bool = True
    reconnect_attempts: int = _range(0, 1000, default=5)
    read_timeout_s: float = _range(0.1, 600.0, default=5.0)


@dataclass(frozen=True)
class AlertsConfig:
    enabled: bool = False
    no_mask_s: float = _range(0.0, 3600.0, default=2.0)
    cooldown_s: float = _range(0.0, 86400.0, default=60.0)
    incorrect_is_violation: bool = True
    snapshots: bool = True
    snapshots_dir: str = ""
    banner_s: float = _range(0.0, 3600.0, default=3.0)
    receivers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.receiver_specs()  # a bad receiver is a config error at load time

    def receiver_specs(self) -> list[ReceiverSpec]:
        """``receivers`` parsed (``parse_receiver``), in order."""
        return [parse_receiver(spec, f"alerts.receivers[{i}]") for i, spec in enumerate(self.receivers)]


MQTT_PORT = 1883  # an mqtt:// receiver without a port
MQTT_TOPIC = "maskwatch/alerts"  # an mqtt:// receiver without a topic
RECEIVER_FORMS = "bell, desktop, exec:CMD, http(s)://URL, mqtt://HOST[:PORT]/TOPIC"


@dataclass(frozen=True)
class ReceiverSpec:
    """One alert receiver: ``kind`` bell | desktop | exec | webhook | mqtt; ``target`` the command, the URL or the
    MQTT topic; ``host``/``port`` of an MQTT broker."""

    kind: str
    target: str = ""
    host: str = ""
    port: int = 0


def parse_receiver(spec: str, key: str = "alerts.receivers") -> ReceiverSpec:
    """``bell``, ``desktop``, ``exec:CMD`` (the event JSON on CMD's stdin), ``http(s)://URL`` (JSON POST) or
    ``mqtt://HOST[:PORT][/TOPIC]`` (JSON publish, QoS 1) as a ``ReceiverSpec``; anything else: ``ConfigError``."""
    text = spec.strip()
    lower = text.lower()
    if lower in ("bell", "desktop"):
        return ReceiverSpec(lower)
    if lower.startswith("exec:") and text[5:].strip():
        return ReceiverSpec("exec", text[5:].strip())
    if lower.startswith(("http://", "https://")) and urllib.parse.urlsplit(text).hostname:
        return ReceiverSpec("webhook", text)
    if lower.startswith("mqtt://"):
        url = urllib.parse.urlsplit(text)
        try:
            port = url.port or MQTT_PORT
        except ValueError:
            port = 0
        if url.hostname and 0 < port < 65536:
            return ReceiverSpec("mqtt", url.path.strip("/") or MQTT_TOPIC, url.hostname, port)
    raise ConfigError(f"{key}: {spec!r} is not a receiver; expected one of {RECEIVER_FORMS}")


@dataclass(frozen=True)
class WebConfig:
    serve: str = ""


@dataclass(frozen=True)
class AugmentConfig:
    rotation_deg: float = _range(0.0, 180.0, default=20.0)
    zoom: float = _range(0.0, 0.9, default=0.15)
    shift: float = _range(0.0, 0.9, default=0.2)
    shear: float = _range(0.0, 0.9, default=0.15)
    degrade_share: float = _range(0.0, 1.0, default=0.0)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = _range(1, 10000, default=20)
    batch_size: int = _range(1, 4096, default=32)
    learning_rate: float = _range(0.0, 1.0, default=1e-4)
    test_split: float = _range(0.05, 0.95, default=0.2)
    seed: int = _range(0, 2**31 - 1, default=42)
    image_size: int = _range(32, 1024, default=224)
    early_stopping_patience: int = _range(0, 10000, default=0)
    fine_tune_layers: int = _range(0, 1000, default=0)
    fine_tune_epochs: int = _range(0, 10000, default=0)
    strategy: str = _choice("none", "mirrored", "multi_worker", default="none")
    val_split: float = _range(0.0, 0.5, default=0.0)
    class_weight: str = _choice("balanced", "none", default="balanced")


@dataclass(frozen=True)
class Config:
    paths: PathsConfig = field(default_factory=PathsConfig)
    assets: AssetsConfig = field(default_factory=AssetsConfig)
    face_detector: FaceDetectorConfig = field(default_factory=FaceDetectorConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    draw: DrawConfig = field(default_factory=DrawConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    stream: StreamConfig = field(default_factory=StreamConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    web: WebConfig = field(default_factory=WebConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (tuples as lists), e.g. for a model card or a run directory."""
        return _plain(dataclasses.asdict(self))

    def resolve_path(self, path: str | Path) -> Path:
        """An input (model, asset): a relative path is the user's file in the current folder if there is one
        (``path`` itself or ``path.*``, e.g. a model stem), else the shipped file under ``PROJECT_ROOT``."""
        p = Path(path).expanduser()
        if p.is_absolute():
            return p
        user = Path.cwd() / p
        shipped = PROJECT_ROOT / p
        return shipped if not _exists(user) and _exists(shipped) else user

    def output_path(self, path: str | Path) -> Path:
        """An output (runs, caches, a trained model): a relative path is under the current folder."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else Path.cwd() / p

    def classifier_stem(self, *, output: bool = False) -> Path:
        """``classifier.model`` as a path: a bare name lives in ``paths.models_dir``, a path is resolved as usual
        (as an input, or with ``output`` as the place a trained model is installed to)."""
        resolve = self.output_path if output else self.resolve_path
        model = Path(self.classifier.model).expanduser()
        if not model.is_absolute() and len(model.parts) == 1:
            model = Path(self.paths.models_dir).expanduser() / model
        return resolve(model)


def _exists(path: Path) -> bool:
    """``path`` or a file ``path.<suffix>`` (model stems name several files)."""
    return path.exists() or (path.parent.is_dir() and any(path.parent.glob(f"{glob.escape(path.name)}.*")))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def default_config_path() -> Path:
    """``config.yaml`` in the current folder if there is one, else the shipped default."""
    user = Path.cwd() / USER_CONFIG_NAME
    return user if user.is_file() else DEFAULT_CONFIG_PATH


def load_config(path: str | Path | None = None, overrides: typing.Sequence[str] = ()) -> Config:
    """Load ``path`` (default: ./config.yaml, else the shipped one), apply ``key=value`` overrides, check all."""
    path = Path(path) if path is not None else default_config_path()
    data: dict[str, Any] = {}
    if path.is_dir():
        raise ConfigError(f"config {path} is a directory, not a YAML file")
    if path.exists():
        try:
            loaded = yaml.load(path.read_text(encoding="utf-8"), Loader=SAFE_LOADER)
        except OSError as exc:
            raise ConfigError(f"config {path}: cannot read it ({exc.strerror or exc})") from None
        except UnicodeDecodeError:
            raise ConfigError(f"config {path}: not a text (UTF-8 YAML) file") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"config {path}: not valid YAML ({_one_line(exc)})") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"config {path}: expected a mapping of sections at the top level")
        data = loaded or {}
    elif path != DEFAULT_CONFIG_PATH:
        raise ConfigError(f"config file not found: {path}")
    from_file = copy.deepcopy(data)
    for item in overrides:
        _apply_override(data, item)
    try:
        return _build(Config, data, prefix="")
    except ConfigError as exc:
        if from_file and _fails_alone(from_file, str(exc)):  # the file's own error: name it (maybe ./config.yaml)
            raise ConfigError(f"{exc} (in {path})") from None
        raise


def _fails_alone(data: dict[str, Any], message: str) -> bool:
    try:
        _build(Config, data, prefix="")
    except ConfigError as exc:
        return str(exc) == message
    return False


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
            removed = REMOVED_KEYS.get(prefix + str(key))
            if removed:
                raise ConfigError(f"{prefix}{key}: {removed}")
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
        if not math.isfinite(value):
            raise ConfigError(f"{key}: expected a finite number, got {value!r}")
    elif hint is str:
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)  # e.g. stream.source=0
        elif isinstance(value, bool) and {"on", "off"} <= set(meta.get("choices", ())):
            value = "on" if value else "off"  # YAML 1.1 reads a bare on / off as true / false (tracking.live)
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
