"""What every command-line tool shares: ``--config`` / ``--set`` and a one-line error instead of a traceback."""

from __future__ import annotations

import argparse
import errno
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from maskwatch.config import Config, load_config
from maskwatch.errors import UserError
from maskwatch.interrupts import broke, keyboard_interrupts

DISK_FULL = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
NOT_HERE = (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EISDIR)  # a path the user gave cannot be used


class Parser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose bad-argument message is one line (not the usage block), exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def add_config_args(parser: argparse.ArgumentParser) -> None:
    """Add ``--config PATH`` and repeatable ``--set section.key=value``."""
    parser.add_argument("--config", metavar="PATH",
                        help="config file (default: ./config.yaml if there is one, else the shipped default)")
    parser.add_argument(
        "--set",
        dest="overrides",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="override one config key, e.g. --set train.epochs=5 (repeatable)",
    )


def config_from_args(args: argparse.Namespace) -> Config:
    return load_config(args.config, args.overrides)


def run(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None) -> int:
    """Run ``main``; a ``UserError`` becomes ``error: ...`` on stderr and its exit code, Ctrl-C exits 130 (also when
    it broke an import or other code on its way: ``maskwatch.interrupts.broke``); so does a full disk, or a path that
    cannot be written or read (permission, read-only, not a folder: exit code 2)."""
    try:
        with keyboard_interrupts():  # before: maskwatch.interrupts' guard, while the command's modules imported
            return int(main(argv) or 0)
    except UserError as exc:
        if broke(exc):  # e.g. "needs onnxruntime": its import got the Ctrl-C
            return _interrupted()
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return _interrupted()
    except OSError as exc:
        if exc.errno in NOT_HERE and exc.filename:  # a place no check before the run caught (e.g. a read-only folder)
            print(f"error: cannot use {exc.filename}: {exc.strerror}", file=sys.stderr)
            return UserError.exit_code
        if exc.errno not in DISK_FULL:
            raise
        print(f"error: disk full writing {exc.filename or 'a file'}: free some space (files written so far are kept)",
              file=sys.stderr)
        return UserError.exit_code
    except Exception as exc:  # an ImportError or RuntimeError ("Error calling __set_name__") a Ctrl-C caused
        if not broke(exc):
            raise
        return _interrupted()


def _interrupted() -> int:
    print("interrupted", file=sys.stderr)
    return 130
