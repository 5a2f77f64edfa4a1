"""Where annotated frames and per-frame records go: a video file, a folder of images, a JSONL log.

Every sink is a context manager. The video writer is opened on the first frame (its size) under a temporary name
and renamed to the final name when the sink closes, also after Ctrl-C or an error, so a stopped run leaves a
playable file and the final name never holds a half-written one (only SIGKILL leaves a hidden temporary file).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Protocol, Self, TextIO

import cv2
import numpy as np

from detector.sources import DEFAULT_FPS, Frame
from maskwatch.errors import UserError
from maskwatch.faces import Faces
from maskwatch.files import atomic_path

VIDEO_FOURCC = "mp4v"


class Sink(Protocol):
    def write(self, frame: Frame, annotated_bgr: np.ndarray) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(self, *exc: object) -> None: ...


class VideoSink:
    """Annotated frames as an mp4v video sized from the first frame; fps from the source (else 30)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise UserError(f"--output {self.path} is a folder; a video source writes a video file, e.g. out.mp4")
        self._writer: cv2.VideoWriter | None = None
        self._tmp: Path | None = None
        self._size_wh: tuple[int, int] | None = None
        self.frames = 0

    def __enter__(self) -> Self:
        return self

    def write(self, frame: Frame, annotated_bgr: np.ndarray) -> None:
        h, w = annotated_bgr.shape[:2]
        if self._writer is None:
            self._open((w, h), frame.fps or DEFAULT_FPS)
        elif (w, h) != self._size_wh:
            raise UserError(f"frame {frame.index} is {w}x{h}, the video {self.path} is {self._size_wh}")
        assert self._writer is not None
        self._writer.write(annotated_bgr)
        self.frames += 1

    def _open(self, size_wh: tuple[int, int], fps: float) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=f".tmp{self.path.suffix}",
                                   dir=self.path.parent)
        os.close(fd)
        os.unlink(tmp)  # the writer creates it, with the usual permissions (mkstemp's are 0600)
        self._tmp = Path(tmp)
        writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*VIDEO_FOURCC), fps, size_wh)
        if not writer.isOpened():
            self._tmp.unlink(missing_ok=True)
            raise UserError(f"cannot write video {self.path} (use a .mp4 or .avi file name)")
        self._writer, self._size_wh = writer, size_wh

    def __exit__(self, *exc: object) -> None:
        """Finish the file and give it its final name, however the run ended (Ctrl-C, lost stream, error)."""
        if self._writer is None or self._tmp is None:
            return
        self._writer.release()
        if self.frames:
            os.replace(self._tmp, self.path)
        else:
            self._tmp.unlink(missing_ok=True)


class ImageDirSink:
    """Annotated images into a folder, one per source image, same file name (each written atomically).

    ``file_name`` writes every image to that one name instead (for a single image: ``--output out.jpg``).
    """

    def __init__(self, folder: str | Path, *, file_name: str | None = None) -> None:
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise UserError(f"--output {self.folder} is a file; an image folder writes a folder of images")
        self.file_name = file_name
        self.frames = 0

    def __enter__(self) -> Self:
        self.folder.mkdir(parents=True, exist_ok=True)
        return self

    def write(self, frame: Frame, annotated_bgr: np.ndarray) -> None:
        path = self.folder / (self.file_name or frame.source)
        with atomic_path(path) as tmp:
            if not cv2.imwrite(str(tmp), annotated_bgr):
                raise UserError(f"cannot write image {path} (unknown image type?)")
        self.frames += 1

    def __exit__(self, *exc: object) -> None:
        return None


class NullSink:
    """No output (``--output`` not given)."""

    frames = 0

    def __enter__(self) -> Self:
        return self

    def write(self, frame: Frame, annotated_bgr: np.ndarray) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def frame_record(frame: Frame, faces: Faces) -> dict[str, Any]:
    """The JSONL log line of one frame (shape fixed by the detector issue, ``track_id`` added; tools read it).
    ``prob_mask`` is null for a face not classified."""
    return {
        "source": frame.source,
        "frame": int(frame.index),
        "time_s": round(float(frame.time_s), 4),
        "faces": [
            {
                "box": [int(v) for v in box],
                "label": label,
                "prob_mask": round(prob, 5) if prob == prob else None,
                "det_conf": round(float(conf), 5),
                "track_id": track_id,
            }
            for box, label, prob, conf, track_id in zip(faces.xyxy.tolist(), faces.label_names,
                                                        faces.prob_mask.tolist(), faces.confidence.tolist(),
                                                        faces.track_id.tolist(), strict=True)
        ],
    }


class JsonlLog:
    """One JSON object per line, flushed per line (a stopped run keeps every line it wrote)."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path is not None else None
        self._file: TextIO | None = None
        self.lines = 0

    def __enter__(self) -> Self:
        if self.path is not None:
            if self.path.is_dir():
                raise UserError(f"--log {self.path} is a folder; give a file name such as log.jsonl")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("w", encoding="utf-8")
        return self

    def write(self, record: dict[str, Any]) -> None:
        if self._file is None:
            return
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._file.flush()
        self.lines += 1

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()


CSV_COLUMNS = ("source", "frame", "time_s", "x1", "y1", "x2", "y2", "label", "prob_mask", "det_conf", "track_id")


class CsvLog(JsonlLog):
    """The log as CSV, one row per face (``CSV_COLUMNS``; ``prob_mask`` empty when not classified), flushed per
    frame. A frame without faces writes no row."""

    def __enter__(self) -> Self:
        super().__enter__()
        if self._file is not None:
            self._writer = csv.writer(self._file, lineterminator="\n")
            self._writer.writerow(CSV_COLUMNS)
        return self

    def write(self, record: dict[str, Any]) -> None:
        if self._file is None:
            return
        for face in record["faces"]:
            prob = face["prob_mask"]
            self._writer.writerow([record["source"], record["frame"], record["time_s"], *face["box"], face["label"],
                                   "" if prob is None else prob, face["det_conf"], face["track_id"]])
        self._file.flush()
        self.lines += 1


def open_log(path: str | Path | None) -> JsonlLog:
    """``--log``: CSV when the file name ends in ``.csv`` (any case), JSON lines otherwise; ``None``: no log."""
    return CsvLog(path) if path is not None and Path(path).suffix.lower() == ".csv" else JsonlLog(path)
