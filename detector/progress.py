"""Progress of a headless run on stderr: a tqdm bar for video files and image folders (frames, FPS, ETA, faces so
far), a live status line (the same, without a total) for cameras and streams.

Shown only when stderr is a terminal (tqdm's ``disable=None``): piped or CI logs stay free of carriage-return
lines; ``--quiet`` turns it off everywhere.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

import cv2
from tqdm import tqdm

from detector.sources import Frame, FrameSource, list_images, open_video
from detector.stats import RunStats


def expected_frames(source: FrameSource, max_frames: int | None = None) -> int | None:
    """Frames the run will process if known: a video file's frame count, a folder's images (capped by
    ``max_frames``); ``None`` for cameras, streams and files that do not say."""
    if source.kind == "video":
        cap = open_video(Path(source.spec).expanduser())
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) or None
        cap.release()
    elif source.kind == "images":
        total = len(list_images(Path(source.spec).expanduser()))
    else:
        total = None
    return min((n for n in (total, max_frames) if n is not None), default=None)


def progress_name(source: FrameSource) -> str:
    """The bar's label: a file or folder name, ``camera N``, or ``stream`` (a URL may hold a password)."""
    if source.kind in ("video", "images"):
        return Path(source.spec).expanduser().name or source.spec
    return f"camera {source.spec}" if source.kind == "camera" else "stream"


def with_progress(
    frames: Iterable[Frame], stats: RunStats, *, total: int | None, name: str, enabled: bool | None = None,
    file: TextIO | None = None,
) -> Iterator[Frame]:  # fmt: skip
    """Yield ``frames`` unchanged, advancing a bar as each one is done (when the next is asked for), with the faces
    counted so far by ``stats``. ``enabled``: None = only on a terminal, False = never, True = always."""
    bar = tqdm(total=total, desc=name, unit="frame", file=file or sys.stderr, disable=None if enabled is None
               else not enabled, dynamic_ncols=True, smoothing=0.1)  # fmt: skip
    try:
        for frame in frames:
            yield frame
            _advance(bar, stats)
    finally:
        _advance(bar, stats)  # a run stopped by --max-frames, q or Ctrl-C still shows its last frame
        bar.close()


def _advance(bar: tqdm, stats: RunStats) -> None:
    if stats.frames > bar.n:
        bar.set_postfix_str(f"faces {stats.faces}", refresh=False)
        bar.update(stats.frames - bar.n)

