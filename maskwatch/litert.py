"""LiteRT (TFLite) inference without TensorFlow, for the mask classifier."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from maskwatch.errors import UserError


def prepare_batch(crops_bgr: Sequence[np.ndarray], input_size_wh: tuple[int, int]) -> np.ndarray:
    """Crops resized (``INTER_AREA``) to ``input_size_wh`` and turned RGB: float32 (n, H, W, 3), raw 0-255.

    The face verifier's and BlazeFace's contract (their training shrinks with ``INTER_AREA`` too). The mask
    classifier's input is ``maskwatch.preprocess.prepare_batch`` (the training rule), not this.
    """
    w, h = input_size_wh
    batch = np.empty((len(crops_bgr), h, w, 3), np.float32)
    for i, crop in enumerate(crops_bgr):
        if crop.ndim != 3 or crop.shape[0] == 0 or crop.shape[1] == 0:
            raise ValueError(f"crop {i} is empty or not a colour image: shape {crop.shape}")
        resized = cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA)
        batch[i] = cv2.cvtColor(resized, cv2.COLOR_BGR2RGB)
    return batch


def tflite_predictor(path: Path, threads: int, *, all_outputs: bool = False) -> Callable[[np.ndarray], Any]:
    """LiteRT interpreter; the input tensor is resized (and tensors reallocated) only when the batch size changes.

    The predictor returns the first output, or with ``all_outputs`` a list of every output.
    """
    from ai_edge_litert.interpreter import Interpreter

    try:
        interp = Interpreter(model_path=str(path), num_threads=threads)
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

    return predict
