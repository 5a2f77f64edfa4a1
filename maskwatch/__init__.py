"""maskwatch: shared configuration, errors and file helpers for the detector, trainer and tools."""

from __future__ import annotations

import os

from maskwatch.interrupts import guard_start

guard_start()  # first: a Ctrl-C while the command's modules import is one line, exit code 130
# ONNX Runtime's telemetry (on Linux since 1.29): without this, every process that imports it writes $TMPDIR/.ses
# and a device id and an event database that grows on every run (offline: never sent) in ~/.cache/Microsoft.
# Read when onnxruntime is imported; set here, the first project code of every command, and inherited by the
# batch's worker processes. ORT_DISABLE_TELEMETRY=0 in the environment keeps it on.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
