"""``python tools/keras_from_tflite.py TFLITE OUT_STEM``: a Keras model rebuilt from a float32 TFLite classifier.

The Keras files of a trained model are not shipped (only the ``.tflite`` is), yet tools such as
``tools/wrong_mask_head.py`` need a Keras graph. This walks the LiteRT interpreter's operators in order
(``_get_ops_details``; strides, padding and fused activations from the flatbuffer's options) and builds one Keras
layer per operator with the weights copied from the constant tensors: CONV_2D and DEPTHWISE_CONV_2D with bias
(batch-norm is folded into them), ADD, MUL / ADD by a scalar (``Rescaling``), PAD, AVERAGE / MAX_POOL_2D,
RESHAPE (``Flatten``), FULLY_CONNECTED, RELU, RELU6, LOGISTIC. Layers take the names of the TFLite tensors
(``head_pool``, ``head_dense``, ``Conv_1``, ...), so the seed's ``head_pool`` keeps its 7 x 7 x 1280 input.
Dropout, a no-op at inference, is not in the TFLite graph and not in the rebuilt model.

Writes ``OUT_STEM.keras`` and ``OUT_STEM.json``: the TFLite model's card (beside it) with a note of the rebuild.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from maskwatch.card import card_path, model_path
from maskwatch.checksums import file_sha256
from maskwatch.cli import Parser, run
from maskwatch.errors import UserError
from maskwatch.files import atomic_path, check_writable, write_json_atomic
from maskwatch.tf_quiet import import_tensorflow

ACTIVATIONS = {0: None, 1: "relu", 3: "relu6"}  # TFLite ActivationFunctionType -> Keras activation
PADDING = {0: "same", 1: "valid"}  # TFLite Padding
SHAPE_OPS = {"SHAPE", "STRIDED_SLICE", "PACK"}  # they only compute a RESHAPE's target shape
NAME_ENDS = ("convolution", "depthwise", "MatMul", "AvgPool", "MaxPool", "Reshape", "Add", "add", "mul", "Relu6",
             "Relu", "Pad")  # fmt: skip


def layer_name(tensor_name: str) -> str:
    """Keras layer name from a TFLite tensor name: ``model_1/head_pool_1/AvgPool`` -> ``head_pool`` (of a fused name,
    the part that names the main operation, without Keras' ``_1`` call suffix); "" when it names none."""
    parts = [p.split("/") for p in tensor_name.split(";")]
    for end in NAME_ENDS:
        for path in parts:
            if len(path) >= 2 and path[-1] == end:
                return re.sub(r"_1$", "", path[-2])
    return ""


class _Options:
    """Builtin options of each operator of subgraph 0, read from the flatbuffer."""

    def __init__(self, flatbuffer: bytes) -> None:
        from ai_edge_litert import schema_py_generated as schema

        self._schema = schema
        self._ops = schema.Model.GetRootAs(flatbuffer, 0).Subgraphs(0)

    def get(self, op_index: int, kind: str) -> Any:
        table = self._ops.Operators(op_index).BuiltinOptions()
        options = getattr(self._schema, kind)()
        if table is not None:
            options.Init(table.Bytes, table.Pos)
        return options


class _Builder:
    """Keras tensors for the TFLite tensors, one layer per operator."""

    def __init__(self, interp: Any, options: _Options) -> None:
        self.interp, self.options = interp, options
        self.details = {t["index"]: t for t in interp.get_tensor_details()}
        self.values: dict[int, Any] = {}
        self.deferred: dict[int, tuple[int, float]] = {}  # MUL by a scalar, waiting for an ADD of a scalar
        self.names: Counter[str] = Counter()
        ops = interp._get_ops_details()
        self.consumers = Counter(int(i) for op in ops for i in op["inputs"])
        self.computed = {int(i) for op in ops for i in op["outputs"]} | {int(interp.get_input_details()[0]["index"])}

    def const(self, index: int) -> np.ndarray | None:
        """The constant value of tensor ``index``, or None for a tensor computed at run time."""
        return None if index in self.computed else np.array(self.interp.get_tensor(index))

    def value(self, index: int) -> Any:
        if index in self.deferred:
            src, scale = self.deferred.pop(index)
            self.values[index] = self.layer("Rescaling", index, scale=scale)(self.value(src))
        if index not in self.values:
            raise UserError(f"TFLite tensor {self.details[index]['name']} is used before it is computed")
        return self.values[index]

    def layer(self, cls: str, out_index: int, suffix: str = "", **kwargs: Any) -> Any:
        import keras

        base = (layer_name(self.details[out_index]["name"]) or f"tflite_{cls.lower()}") + suffix
        self.names[base] += 1
        name = base if self.names[base] == 1 else f"{base}_{self.names[base]}"
        return getattr(keras.layers, cls)(name=name, **kwargs)

    def op(self, op: dict[str, Any]) -> None:
        kind, idx = op["op_name"], int(op["index"])
        ins = [int(i) for i in op["inputs"] if i >= 0]
        out = int(op["outputs"][0])
        handler = getattr(self, f"_{kind.lower()}", None)
        if kind in SHAPE_OPS:
            return
        if handler is None:
            raise UserError(f"TFLite operator {kind} is not supported by the rebuild")
        handler(idx, ins, out)

    def _set(self, out: int, layer: Any, x: Any, weights: list[np.ndarray] | None = None) -> None:
        y = layer(x)
        if weights is not None:
            layer.set_weights(weights)
        self.values[out] = y

    def _conv_2d(self, idx: int, ins: list[int], out: int) -> None:
        o = self.options.get(idx, "Conv2DOptions")
        kernel = self.const(ins[1]).transpose(1, 2, 3, 0)  # (out, kh, kw, in) -> (kh, kw, in, out)
        bias = self.const(ins[2]) if len(ins) > 2 else np.zeros(kernel.shape[-1], np.float32)
        layer = self.layer("Conv2D", out, filters=kernel.shape[-1], kernel_size=kernel.shape[:2],
                           strides=(o.StrideH(), o.StrideW()), padding=PADDING[o.Padding()],
                           dilation_rate=(o.DilationHFactor(), o.DilationWFactor()),
                           activation=self._activation(o))  # fmt: skip
        self._set(out, layer, self.value(ins[0]), [kernel, bias])

    def _depthwise_conv_2d(self, idx: int, ins: list[int], out: int) -> None:
        o = self.options.get(idx, "DepthwiseConv2DOptions")
        channels = int(self.details[ins[0]]["shape"][-1])
        kernel = self.const(ins[1])  # (1, kh, kw, in * multiplier)
        kernel = kernel.reshape(kernel.shape[1], kernel.shape[2], channels, -1)
        bias = self.const(ins[2]) if len(ins) > 2 else np.zeros(kernel.shape[2] * kernel.shape[3], np.float32)
        layer = self.layer("DepthwiseConv2D", out, kernel_size=kernel.shape[:2], depth_multiplier=kernel.shape[3],
                           strides=(o.StrideH(), o.StrideW()), padding=PADDING[o.Padding()],
                           dilation_rate=(o.DilationHFactor(), o.DilationWFactor()),
                           activation=self._activation(o))  # fmt: skip
        self._set(out, layer, self.value(ins[0]), [kernel, bias])

    def _fully_connected(self, idx: int, ins: list[int], out: int) -> None:
        o = self.options.get(idx, "FullyConnectedOptions")
        kernel = self.const(ins[1]).T  # (out, in) -> (in, out)
        bias = self.const(ins[2]) if len(ins) > 2 else np.zeros(kernel.shape[1], np.float32)
        layer = self.layer("Dense", out, units=kernel.shape[1], activation=self._activation(o))
        self._set(out, layer, self.value(ins[0]), [kernel, bias])

    def _pool(self, idx: int, ins: list[int], out: int, cls: str) -> None:
        o = self.options.get(idx, "Pool2DOptions")
        layer = self.layer(cls, out, pool_size=(o.FilterHeight(), o.FilterWidth()),
                           strides=(o.StrideH(), o.StrideW()), padding=PADDING[o.Padding()])  # fmt: skip
        self._set(out, layer, self.value(ins[0]))
        self._fused(out, self._activation(o))

    def _average_pool_2d(self, idx: int, ins: list[int], out: int) -> None:
        self._pool(idx, ins, out, "AveragePooling2D")

    def _max_pool_2d(self, idx: int, ins: list[int], out: int) -> None:
        self._pool(idx, ins, out, "MaxPooling2D")

    def _scalar_and_input(self, ins: list[int]) -> tuple[float | None, int]:
        for a, b in ((ins[1], ins[0]), (ins[0], ins[1])):
            c = self.const(a)
            if c is not None and c.size == 1:
                return float(c.reshape(())), b
        return None, ins[0]

    def _mul(self, idx: int, ins: list[int], out: int) -> None:
        scale, src = self._scalar_and_input(ins)
        if scale is None or self.options.get(idx, "MulOptions").FusedActivationFunction():
            raise UserError("TFLite MUL of two tensors (or with an activation) is not supported by the rebuild")
        self.deferred[out] = (src, scale)

    def _add(self, idx: int, ins: list[int], out: int) -> None:
        activation = self._activation(self.options.get(idx, "AddOptions"))
        offset, src = self._scalar_and_input(ins)
        if offset is None:
            layer = self.layer("Add", out)
            self.values[out] = layer([self.value(ins[0]), self.value(ins[1])])
        elif src in self.deferred and self.consumers[src] == 1:  # x * scale + offset: one Rescaling
            base, scale = self.deferred.pop(src)
            self._set(out, self.layer("Rescaling", out, scale=scale, offset=offset), self.value(base))
        else:
            self._set(out, self.layer("Rescaling", out, scale=1.0, offset=offset), self.value(src))
        self._fused(out, activation)

    def _pad(self, idx: int, ins: list[int], out: int) -> None:
        pads = self.const(ins[1])
        if pads is None or pads.shape != (4, 2) or pads[0].any() or pads[3].any():
            raise UserError("TFLite PAD other than of height and width is not supported by the rebuild")
        layer = self.layer("ZeroPadding2D", out, padding=tuple(tuple(int(v) for v in p) for p in pads[1:3]))
        self._set(out, layer, self.value(ins[0]))

    def _reshape(self, idx: int, ins: list[int], out: int) -> None:
        shape = [int(v) for v in self.details[out]["shape"][1:]]
        cls, kwargs = ("Flatten", {}) if len(shape) == 1 else ("Reshape", {"target_shape": tuple(shape)})
        self._set(out, self.layer(cls, out, **kwargs), self.value(ins[0]))

    def _unary(self, out: int, ins: list[int], activation: str) -> None:
        self.values[out] = self.value(ins[0])
        self._fused(out, activation, name_from=ins[0])

    def _relu(self, idx: int, ins: list[int], out: int) -> None:
        self._unary(out, ins, "relu")

    def _relu6(self, idx: int, ins: list[int], out: int) -> None:
        self._unary(out, ins, "relu6")

    def _logistic(self, idx: int, ins: list[int], out: int) -> None:
        self._unary(out, ins, "sigmoid")

    def _activation(self, options: Any) -> str | None:
        code = options.FusedActivationFunction()
        if code not in ACTIVATIONS:
            raise UserError(f"TFLite fused activation {code} is not supported by the rebuild")
        return ACTIVATIONS[code]

    def _fused(self, out: int, activation: str | None, name_from: int | None = None) -> None:
        if activation is not None:
            source = out if name_from is None else name_from
            layer = self.layer("Activation", source, suffix=f"_{activation}", activation=activation)
            self.values[out] = layer(self.values[out])


def rebuild(tflite: Path) -> Any:
    """The Keras model of the float32 TFLite model at ``tflite`` (one input, one output)."""
    import keras
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    own_ops = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES  # no XNNPACK delegate: the operators are the model's
    try:
        interp = Interpreter(model_path=str(tflite), experimental_op_resolver_type=own_ops)
        interp.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise UserError(f"cannot load {tflite} ({' '.join(str(exc).split())[:200]})") from None
    (inp,), (outp,) = interp.get_input_details(), interp.get_output_details()
    if any(t["dtype"] != np.float32 for t in (inp, outp)):
        raise UserError(f"{tflite} is not a float32 model (a quantized model cannot be rebuilt)")
    builder = _Builder(interp, _Options(tflite.read_bytes()))
    name = re.sub(r"^serving_default_|:\d+$", "", inp["name"]) or "input"
    inputs = keras.Input(tuple(int(v) for v in inp["shape"][1:]), name=name)
    builder.values[int(inp["index"])] = inputs
    for op in interp._get_ops_details():
        builder.op(op)
    return keras.Model(inputs, builder.value(int(outp["index"])), name=tflite.stem)


def _main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.tflite.is_file():
        raise UserError(f"{args.tflite} not found")
    source_card = card_path(args.tflite.with_suffix(""))
    if card_path(args.out_stem).resolve() == source_card.resolve():
        raise UserError(f"{args.out_stem} would replace the card of {args.tflite}; choose another OUT_STEM")
    keras_path = model_path(args.out_stem, "keras")
    existing = [p for p in (keras_path, card_path(args.out_stem)) if p.exists()]
    if existing and not args.overwrite:
        raise UserError(f"{existing[0]} exists: add --overwrite to replace it, or choose another OUT_STEM")
    check_writable("OUT_STEM", keras_path.parent)  # before the rebuild, not after it
    import_tensorflow()
    model = rebuild(args.tflite)
    with atomic_path(keras_path) as tmp:
        model.save(tmp)
    card = json.loads(source_card.read_text(encoding="utf-8")) if source_card.is_file() else {}
    card["rebuilt_from_tflite"] = {
        "file": str(args.tflite),
        "sha256": file_sha256(args.tflite),
        "by": "python tools/keras_from_tflite.py (batch-norm folded, no dropout layer)",
    }
    card["files"] = {"keras": keras_path.name}
    card["sha256"] = {"keras": file_sha256(keras_path)}
    write_json_atomic(card_path(args.out_stem), card)
    print(f"wrote {keras_path} ({len(model.layers)} layers) and {card_path(args.out_stem)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python tools/keras_from_tflite.py", description=__doc__,
                    formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("tflite", type=Path, help="float32 TFLite classifier (e.g. models/mask_classifier.tflite)")
    parser.add_argument("out_stem", type=Path, help="where to write OUT_STEM.keras and OUT_STEM.json")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing OUT_STEM.keras / .json")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
