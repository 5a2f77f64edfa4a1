"""Build an int8 or fp16 CenterFace for ONNX Runtime (a tool, not runtime code).

    python -m tools.quantize_centerface int8 DST.onnx --photos data/h20/starter [--frames 64]
    python -m tools.quantize_centerface fp16 DST.onnx

int8: ``onnxruntime.quantization.quantize_static`` (QDQ, per-channel int8 weights, uint8 activations, MinMax ranges)
calibrated on ``--frames`` 640x480 frames made of development photos: mosaics of the face crops of a training set
(``python -m train.starter_data DIR``; every image under ``--photos``), 1 to 6 crops a frame at random sizes on a
blurred crop as background. Never calibrate on held-out photos. fp16: ONNX Runtime's
``convert_float_to_float16`` (inputs and outputs stay float32). Both start from ``face_detector.onnx`` with the
initializers removed from the graph inputs; the runtime sets the input dims per size as for the float32 file.
Measure before shipping: ``python -m tools.time_centerface --model DST.onnx`` and
``python -m evaluation.faces SETS... --set face_detector.onnx=DST.onnx``.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # python tools/x.py from a checkout

from detector.outputs import check_outputs
from evaluation.sets import skipped_line
from face_detector.onnx_backend import INPUT_NAME, graph_for_size
from maskwatch.cli import Parser, add_config_args, config_from_args, run
from maskwatch.config import Config
from maskwatch.errors import UserError
from maskwatch.files import atomic_path

FRAME_WH = (640, 480)
PHOTO_EXTS = (".jpg", ".jpeg", ".png")
OPSET = 13  # per-channel quantization needs 13 or later


def calibration_frames(photos: list[Path], count: int, seed: int = 0) -> Iterator[np.ndarray]:
    """``count`` BGR frames of FRAME_WH: a blurred crop as background, 1-6 crops pasted at random sizes."""
    rng = np.random.default_rng(seed)
    width, height = FRAME_WH
    for _ in range(count):
        background = cv2.imread(str(photos[rng.integers(len(photos))]))
        frame = cv2.GaussianBlur(cv2.resize(background, FRAME_WH), (0, 0), 8)
        for _ in range(rng.integers(1, 7)):
            crop = cv2.imread(str(photos[rng.integers(len(photos))]))
            side = int(rng.integers(24, 320))
            crop = cv2.resize(crop, (side, max(1, side * crop.shape[0] // crop.shape[1])))
            ch, cw = min(crop.shape[0], height), min(crop.shape[1], width)
            y, x = int(rng.integers(0, height - ch + 1)), int(rng.integers(0, width - cw + 1))
            frame[y : y + ch, x : x + cw] = crop[:ch, :cw]
        yield frame


def upgraded(model_bytes: bytes, opset: int = OPSET) -> bytes:
    """The graph at ``opset`` (the file's 9 has no per-channel DequantizeLinear)."""
    import onnx
    from onnx import version_converter

    return version_converter.convert_version(onnx.load_model_from_string(model_bytes), opset).SerializeToString()


def quantize_int8(model_bytes: bytes, dst: Path, photos: list[Path], frames: int) -> None:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._frames = calibration_frames(photos, frames)

        def get_next(self) -> dict[str, np.ndarray] | None:
            frame = next(self._frames, None)
            if frame is None:
                return None
            return {INPUT_NAME: cv2.dnn.blobFromImage(frame, 1.0, FRAME_WH, (0, 0, 0), swapRB=True)}

    with tempfile.TemporaryDirectory() as tmp:
        fp32, prepared = Path(tmp) / "fp32.onnx", Path(tmp) / "prepared.onnx"
        fp32.write_bytes(upgraded(graph_for_size(model_bytes, FRAME_WH)))
        quant_pre_process(str(fp32), str(prepared))
        quantize_static(str(prepared), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)  # fmt: skip


def convert_fp16(model_bytes: bytes, dst: Path) -> None:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load_model_from_string(graph_for_size(model_bytes, FRAME_WH))
    onnx.save(convert_float_to_float16(model, keep_io_types=True), str(dst))


def readable_photos(photos: list[Path]) -> tuple[list[Path], list[str]]:
    """The photos OpenCV can read, and the paths of those it cannot (skipped: one bad file does not end a run)."""
    good: list[Path] = []
    bad: list[str] = []
    for path in photos:
        if cv2.imread(str(path)) is None:
            bad.append(str(path))
        else:
            good.append(path)
    return good, bad


def _source_model(cfg: Config) -> tuple[Path, bytes]:
    """The configured CenterFace file and its graph (``UserError`` when it is missing or not ONNX)."""
    from google.protobuf.message import DecodeError

    path = cfg.resolve_path(cfg.face_detector.onnx)
    if not path.is_file():
        raise UserError(f"face detector file not found: {path}")
    data = path.read_bytes()
    try:
        graph_for_size(data, FRAME_WH)
    except DecodeError as exc:
        raise UserError(f"cannot read {path} as an ONNX model ({exc})") from None
    return path, data


def main(argv: list[str] | None = None) -> int:
    return run(_main, argv)


def _main(argv: list[str] | None) -> int:
    parser = Parser(description=__doc__.splitlines()[0])
    add_config_args(parser)
    parser.add_argument("kind", choices=("int8", "fp16"))
    parser.add_argument("dst", type=Path)
    parser.add_argument("--photos", type=Path, help="int8: folder of development photos (a training set)")
    parser.add_argument("--frames", type=int, default=64, help="int8: calibration frames")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing DST")
    args = parser.parse_args(argv)
    if args.frames < 1:
        raise UserError(f"--frames must be at least 1, got {args.frames}")
    cfg = config_from_args(args)
    source, model_bytes = _source_model(cfg)
    check_outputs([source], {"DST": args.dst}, overwrite=args.overwrite)  # never over the source, a folder, ...
    if args.kind == "fp16":
        with atomic_path(args.dst) as tmp:
            convert_fp16(model_bytes, tmp)
    else:
        photos = sorted(p for p in args.photos.rglob("*") if p.suffix.lower() in PHOTO_EXTS) if args.photos else []
        photos, unreadable = readable_photos(photos)
        if unreadable:
            print(skipped_line(unreadable), file=sys.stderr)
        if not photos:
            raise UserError("int8 needs --photos DIR with development photos, e.g. python -m train.starter_data DIR")
        with atomic_path(args.dst) as tmp:
            quantize_int8(model_bytes, tmp, photos, args.frames)
    print(f"wrote {args.dst}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
