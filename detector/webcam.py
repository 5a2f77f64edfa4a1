"""``python -m detector.webcam``: the real-time mask detector (webcam, video files, streams, images)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from maskwatch.cli import add_config_args, config_from_args, run
from maskwatch.errors import UserError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m detector.webcam", description=__doc__)
    parser.add_argument("--source", help="camera index, video file, image file or folder, or stream URL")
    add_config_args(parser)
    return parser


def _main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config_from_args(args)
    raise UserError("the detector loop is not built yet (issue: Detector)")


def main(argv: Sequence[str] | None = None) -> int:
    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
