"""Output paths checked before the first frame: an output never overwrites a source, another output, or (without
``--overwrite``) an existing file, and every output location is writable before the models load.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from maskwatch.errors import UserError
from maskwatch.files import IMAGE_EXTS, VIDEO_EXTS, check_writable

FILE_SUFFIXES = (*IMAGE_EXTS, *VIDEO_EXTS, ".json", ".jsonl", ".csv", ".txt")  # an --output ending so is a file


def check_outputs(
    sources: Sequence[Path | str],
    outputs: Mapping[str, Path | str | None],
    *,
    overwrite: bool,
    images: bool = False,
) -> None:
    """Raise ``UserError`` (one line) if an output is unsafe or cannot be written.

    ``sources``: source paths (camera indexes and URLs are ignored). ``outputs``: option name -> path (``None`` =
    not asked). ``images``: the sources are images, so an ``--output`` that is a folder (an existing one, or a name
    not ending in ``FILE_SUFFIXES``) receives one file per source image, with the source image's name; an image file
    name only for one source image; any other output that is an existing folder is refused.
    """
    files = [Path(s).expanduser() for s in map(str, sources) if "://" not in s and not s.strip().isdigit()]
    files = [p for p in files if p.exists()]
    seen: dict[str, str] = {}
    for name, value in outputs.items():
        if value is None or str(value) == "":
            continue
        out = Path(value).expanduser()
        folder = images and name == "--output" and (out.is_dir() or out.suffix.lower() not in FILE_SUFFIXES)
        if images and name == "--output" and not folder:
            _check_image_file(out, files)
        for src in files:
            _check_not_source(name, out, src, folder=folder)
        if out.is_dir() and not folder:
            raise UserError(f"{name} {value} is a folder; give a file name")
        key = os.path.normcase(os.path.realpath(out)).casefold()  # case-insensitive file systems too
        if key in seen:
            raise UserError(f"{name} {value} is the same file as {seen[key]}: give each output its own name")
        seen[key] = f"{name} {value}"
        if not overwrite:
            _check_not_existing(name, out, files, folder=folder)
        check_writable(name, out if folder else out.parent)


def _check_image_file(out: Path, files: Sequence[Path]) -> None:
    """An image source's ``--output`` with a suffix must be an image file name, and only for one source image."""
    if len(files) == 1 and files[0].is_file() and out.suffix.lower() in IMAGE_EXTS:
        return
    if len(files) == 1 and files[0].is_file():
        raise UserError(f"--output {out}: an image gives an annotated image: end the name in "
                        f"{', '.join(IMAGE_EXTS)}, or give a folder")
    raise UserError(f"--output {out}: a folder of images gives a folder of annotated images: give a folder name")


def _check_not_source(name: str, out: Path, src: Path, *, folder: bool) -> None:
    """Refuse an output that is the source, or a folder that would receive a file over a source image."""
    if folder:
        src_dir = src if src.is_dir() else src.parent
        if _same(out, src_dir):
            raise UserError(f"{name} {out} is the source folder: its images would be overwritten; "
                            "write the annotated images to another folder")
    elif _same(out, src) or (src.is_dir() and _same(out.parent, src) and out.name in _names(src)):
        raise UserError(f"{name} {out} is the source {src}: it would be overwritten; choose another file name")


def _check_not_existing(name: str, out: Path, sources: Sequence[Path], *, folder: bool) -> None:
    """An existing output file (or, for a folder, a file a source image would replace) needs ``--overwrite``."""
    if folder:
        if not out.is_dir():
            return
        incoming = {n for src in sources for n in (_names(src) if src.is_dir() else {src.name})}
        clash = sorted(incoming & _names(out))
        if clash:
            raise UserError(f"{name} {out} already holds {clash[0]} (and {len(clash) - 1} more of the source's "
                            "names): add --overwrite to replace them, or choose another folder")
    elif out.is_file():
        raise UserError(f"{name} {out} exists: add --overwrite to replace it, or choose another file name")


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def _names(folder: Path) -> set[str]:
    try:
        return {p.name for p in folder.iterdir() if p.is_file()}
    except OSError:
        return set()
