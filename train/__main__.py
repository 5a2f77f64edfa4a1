"""``python -m train --dataset DIR``: train the Mask / No Mask classifier.

DIR holds with_mask/ and without_mask/ (jpg, jpeg, png, bmp, webp; any case), optionally groups.csv. Writes a run
directory under paths.runs_dir (report, plots, config, log, and the model in model/: .keras, .h5, .tflite, .json
card). With --install the model replaces the detector's (classifier.model) if it is at least as
accurate as the current one on the run's test split; --force installs it anyway. See docs/TRAINING.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import sys
from collections.abc import Sequence

from maskwatch.cli import Parser, add_config_args, config_from_args, run
from maskwatch.errors import UserError
from maskwatch.tf_quiet import import_tensorflow

# Import name -> distribution of the `train` extra (pyproject.toml [project.optional-dependencies]).
TRAIN_MODULES = {"tensorflow": "tensorflow", "sklearn": "scikit-learn", "matplotlib": "matplotlib"}


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="python -m train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", required=True, help="folder with with_mask/ and without_mask/")
    parser.add_argument("--quiet", action="store_true", help="no progress bars (one Keras line per epoch)")
    parser.add_argument("--install", action="store_true",
                        help="install the model for the detector if at least as good as the current one")
    parser.add_argument("--force", action="store_true", help="install the model even if it is worse")
    add_config_args(parser)
    return parser


def check_train_extra() -> None:
    """Training's libraries are an extra: say how to install them instead of an ImportError."""
    missing = [dist for module, dist in TRAIN_MODULES.items() if importlib.util.find_spec(module) is None]
    if missing:
        raise UserError(f"training needs {', '.join(missing)}: pip install 'maskwatch[train]' "
                        "(from a checkout: pip install -e '.[train]')")


def _main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = config_from_args(args)
    check_train_extra()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    import_tensorflow()
    from train.run import train_run

    result = train_run(
        cfg, args.dataset, progress=not args.quiet and sys.stderr.isatty(), install=args.install, force=args.force
    )
    print(f"run directory: {result.run_dir}")
    print(f"model card: {result.model_paths['card']}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
