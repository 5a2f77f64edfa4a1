"""maskwatch: shared configuration, errors and file helpers for the detector, trainer and tools."""

from __future__ import annotations

from maskwatch.interrupts import guard_start

guard_start()  # first: a Ctrl-C while the command's modules import is one line, exit code 130
