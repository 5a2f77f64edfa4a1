"""Atomic file writes: a crash never leaves a half-written model or output where a reader looks for it."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from maskwatch.errors import UserError

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")  # image files in folders and sources, any case
VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv")  # video files in folders


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one rename, else it is removed.

    The temporary name keeps the suffix, so libraries that choose a format by extension still work. A device or a
    pipe (``/dev/stdout``, ``/dev/full``, a FIFO) is written in place: a rename would replace it with a file.
    """
    path = Path(path)
    if path.exists() and not path.is_file() and not path.is_dir():
        try:
            yield path
        except OSError as exc:
            _name_the_output(exc, path)
            raise
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    except OSError as exc:  # e.g. a read-only folder: name the output, not a temporary name never created
        exc.filename = str(path)
        raise
    os.close(fd)
    os.unlink(tmp)  # let the writer create it; some writers refuse an existing file
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except OSError as exc:
        _name_the_output(exc, path)
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()


def _name_the_output(exc: OSError, path: Path) -> None:
    if exc.filename is None and exc.errno is not None:  # a failed write() names no file: name the output
        # (a message-only OSError keeps its message: a filename would replace it)
        exc.filename = str(path)


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically; a failed write (full disk) is an ``OSError`` naming ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: str | Path, text: str) -> None:
    """UTF-8; a file name in ``text`` that is not valid UTF-8 keeps its own bytes."""
    write_bytes_atomic(path, text.encode("utf-8", "surrogateescape"))


def write_csv_atomic(path: str | Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """A CSV file of ``header`` and ``rows`` (Unix line ends), written atomically."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    write_text_atomic(path, buf.getvalue())


def write_json_atomic(path: str | Path, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def check_writable(name: str, folder: Path) -> None:
    """Create and remove a temporary file in ``folder`` (or its nearest existing parent, which must allow creating
    it); ``UserError`` naming the option if that fails."""
    target = folder
    while not target.exists() and target != target.parent:
        target = target.parent
    if not target.is_dir():
        raise UserError(f"{name}: cannot create the folder {folder}: {target} is a file")
    try:
        with tempfile.TemporaryFile(dir=target, prefix=".maskwatch-write-check."):
            pass
    except OSError as exc:
        raise UserError(f"{name}: cannot write in {target} ({exc.strerror or exc}): choose a writable place") from None

