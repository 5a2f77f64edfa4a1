"""The demo videos and ``python -m demo.make_demo``, which builds them (demo/README.md)."""

from __future__ import annotations

from maskwatch.interrupts import guard_start

guard_start()  # first: a Ctrl-C while the command's modules import is one line, exit code 130
