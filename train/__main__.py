"""``python -m train --dataset DIR``: train the Mask / No Mask classifier."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from maskwatch.cli import add_config_args, config_from_args, run
from maskwatch.errors import UserError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m train", description=__doc__)
    parser.add_argument("--dataset", required=True, help="folder with with_mask/ and without_mask/")
    add_config_args(parser)
    return parser


def _main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config_from_args(args)
    raise UserError("training is not built yet (issue: Training module)")


def main(argv: Sequence[str] | None = None) -> int:
    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
