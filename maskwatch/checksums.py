"""SHA-256 of model files, checked when they are loaded; a small cache keeps start-up fast.

The cache (``<paths.runs_dir>/cache/sha256.json``) maps a file's resolved path to ``[size, mtime_ns, inode,
sha256]``: a file whose size, modification time and inode are unchanged is not hashed again; any change (a new
copy, an edit in place) hashes it again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from maskwatch.errors import UserError

log = logging.getLogger(__name__)
_CHUNK_BYTES = 1 << 20

if TYPE_CHECKING:
    from maskwatch.config import Config


class ChecksumMismatch(UserError):
    """A file's SHA-256 is not the one pinned for it (exit 2)."""


def file_sha256(path: str | Path) -> str:
    """SHA-256 (hex) of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def cache_path(cfg: Config) -> Path:
    """The checksum cache of a configuration: ``<paths.runs_dir>/cache/sha256.json`` (an output)."""
    return cfg.output_path(cfg.paths.runs_dir) / "cache" / "sha256.json"


def cached_sha256(
    path: str | Path,
    cache: str | Path | None = None,
    *,
    compute: Callable[[Path], str] | None = None,
    method: str = "file",
) -> str:
    """``compute(path)`` (default ``file_sha256``), served from ``cache`` when size and mtime_ns are unchanged.

    ``method`` names ``compute`` in the cache key, so two kinds of checksum of one file never mix.
    """
    path = Path(path).resolve()
    cache = Path(cache) if cache is not None else None
    st = path.stat()
    key = str(path) if method == "file" else f"{method}:{path}"
    entries = _read_cache(cache) if cache is not None else {}
    hit = entries.get(key)
    if isinstance(hit, list) and len(hit) == 4 and hit[:3] == [st.st_size, st.st_mtime_ns, st.st_ino]:
        return str(hit[3])
    digest = (compute or file_sha256)(path)
    if cache is not None:
        entries = {k: v for k, v in entries.items() if Path(_key_path(k)).exists()}  # else it grew by every
        entries[key] = [st.st_size, st.st_mtime_ns, st.st_ino, digest]  # temporary copy (tests, Ray workers)
        _write_cache(cache, entries)
    return digest


def _key_path(key: str) -> str:
    """The file of a cache key: ``PATH`` or ``METHOD:PATH`` (paths are absolute)."""
    return key if Path(key).is_absolute() else key.partition(":")[2]


def verify_file(
    path: str | Path, expected: Iterable[str], what: str, *, cache: Path | None = None, enabled: bool = True
) -> None:
    """Raise ``ChecksumMismatch`` (one line naming the file) unless ``path``'s SHA-256 is one of ``expected``.

    ``enabled=False`` (``assets.verify_checksums: false``) accepts a knowingly modified file with a warning.
    """
    expected = tuple(expected)
    actual = cached_sha256(path, cache)
    if actual in expected:
        return
    if not enabled:
        log.warning("%s: %s does not match its pinned sha256 (accepted: assets.verify_checksums is false)", what, path)
        return
    raise ChecksumMismatch(
        f"{what}: {path} does not match its pinned sha256 (expected {expected[0][:12]}..., got {actual[:12]}...): "
        "the file is damaged or modified; restore it, or set assets.verify_checksums=false to use it anyway"
    )


def _read_cache(cache: Path) -> dict[str, list]:
    try:
        data = json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(cache: Path, entries: dict[str, list]) -> None:
    """Best effort (a read-only disk just means hashing again next time); atomic, so never half-written."""
    from maskwatch.files import write_json_atomic

    with contextlib.suppress(OSError):
        write_json_atomic(cache, entries)
        os.chmod(cache, 0o644)
