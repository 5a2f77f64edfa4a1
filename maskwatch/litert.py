"""LiteRT (TFLite) inference without TensorFlow, for the mask classifier."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from maskwatch.errors import UserError


def tflite_predictor(path: Path, threads: int, *, all_outputs: bool = False) -> Callable[[np.ndarray], Any]:
    """LiteRT interpreter; the input tensor is resized (and tensors reallocated) only when the batch size changes.

    The predictor returns the first output, or with ``all_outputs`` a list of every output; its ``input_shape`` is
    the model's input shape (N, H, W, C).
    """
    from ai_edge_litert.interpreter import Interpreter

    try:
        interp = Interpreter(model_path=str(path), num_threads=threads)
        with _native_stderr_to_devnull():  # once per process LiteRT prints "INFO: Created TensorFlow Lite XNNPACK"
            interp.allocate_tensors()  # here (no API turns it off): a second line beside our one-line errors
    except (ValueError, RuntimeError) as exc:
        raise UserError(f"cannot load {path} ({' '.join(str(exc).split())[:200]})") from None
    inp = interp.get_input_details()[0]
    out_indices = [d["index"] for d in interp.get_output_details()]
    shape = [0]

    def predict(batch: np.ndarray) -> np.ndarray:
        if shape[0] != len(batch):
            interp.resize_tensor_input(inp["index"], list(batch.shape))
            interp.allocate_tensors()
            shape[0] = len(batch)
        interp.set_tensor(inp["index"], batch)
        interp.invoke()
        if all_outputs:
            return [interp.get_tensor(i).copy() for i in out_indices]
        return interp.get_tensor(out_indices[0]).copy()

    predict.input_shape = tuple(int(v) for v in inp["shape"])  # type: ignore[attr-defined]
    return predict


@contextlib.contextmanager
def _native_stderr_to_devnull() -> Iterator[None]:
    """File descriptor 2 points to /dev/null until the block ends (for C++ libraries that print on their own)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
