"""LiteRT without TensorFlow: the shipped classifier runs and prints nothing of its own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import sys
import numpy as np
from maskwatch.litert import tflite_predictor
predict = tflite_predictor(sys.argv[1], 1)
print(predict(np.zeros((2, *predict.input_shape[1:]), np.float32)).shape)
print("stderr still works", file=sys.stderr)
"""


def test_the_classifier_prints_no_line_of_litert_on_stderr():
    """LiteRT's "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." would be a second line beside an error."""
    model = ROOT / "models" / "mask_classifier.tflite"
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(model)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("(2, ")
    assert proc.stderr == "stderr still works\n"
