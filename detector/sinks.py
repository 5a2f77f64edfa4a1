"""Where annotated frames and per-frame records go: a video file, a folder of images, a JSONL log.

Every sink is a context manager. The video is written under a hidden temporary name beside the final one and
renamed when the sink closes, also after Ctrl-C, an error or a full disk, so the final name never holds a
half-written file. The video stays readable when cut (fragmented MP4 with one fragment per frame, Matroska or
AVI): a run killed hard (SIGKILL, power loss) loses only its last frame or so, and the next run writing to that
folder recovers the leftover (``<name>.recovered.mp4``) or removes it if nothing in it can be read.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import secrets
import sys
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO, Self

import cv2
import numpy as np

from detector.sources import DEFAULT_FPS, Frame, FrameSource, open_video
from maskwatch.cli import DISK_FULL
from maskwatch.errors import UserError
from maskwatch.faces import Faces
from maskwatch.files import IMAGE_EXTS, write_bytes_atomic
from maskwatch.labels import CLASSES

VIDEO_CODEC = "mpeg4"  # MPEG-4 Part 2, as OpenCV's mp4v: fast to encode, every player reads it
KEYFRAME_EVERY_S = 1.0  # where a player can start; a cut file decodes past them
FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".avi": "avi"}
# fragmented MP4: one self-contained fragment per frame, written at once: a cut file is readable up to its last one
MP4_FLAGS = {"movflags": "frag_every_frame+empty_moov+default_base_moof", "flush_packets": "1"}
LEFTOVER = re.compile(r"^\.(?P<stem>.+?)\.(?:(?P<pid>\d+)\.)?[^.]+\.tmp(?P<suffix>\.(?:mp4|m4v|mov|mkv|avi))$")


class Sink:
    """Where the annotated frames go: a context manager with ``write``; the base writes nothing."""

    frames = 0  # frames written

    def write(self, frame: Frame, annotated_bgr: np.ndarray) -> None:
        return None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class NullSink(Sink):
    """No output (``--output`` not given)."""


class VideoSink(Sink):
    """Annotated frames as an MPEG-4 video sized from the first frame; fps from the source (else 30)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise UserError(f"--output {self.path} is a folder; a video source writes a video file, e.g. out.mp4")
        if self.path.suffix.lower() not in FORMATS:
            raise UserError(f"cannot write video {self.path}: use a file name ending in {', '.join(FORMATS)}")
        self._container: Any = None
        self._stream: Any = None
        self._av: Any = None  # the av module, imported when the video is opened
        self._tmp: Path | None = None
        self._size_wh: tuple[int, int] | None = None
        self._write_failed = False  # a write failed (full disk): the file may end inside a fragment

    def __enter__(self) -> Self:
        for message in recover_leftovers(self.path.parent):
            print(message, file=sys.stderr)
        return self

    def write(self, frame: Frame, annotated_bgr: np.ndarray) -> None:
        h, w = annotated_bgr.shape[:2]
        if self._container is None:
            self._open((w, h), frame.fps or DEFAULT_FPS)
        elif (w, h) != self._size_wh:
            raise UserError(f"frame {frame.index} is {w}x{h}, the video {self.path} is {self._size_wh}")
        try:
            self._container.mux(self._stream.encode(self._av.VideoFrame.from_ndarray(annotated_bgr, format="bgr24")))
        except OSError as exc:
            self._write_failed = True
            raise self._write_error(exc) from None
        self.frames += 1

    def _write_error(self, exc: OSError) -> UserError:
        if exc.errno in DISK_FULL:
            return UserError(f"disk full while writing video {self.path}: stopped; the video so far is kept "
                             f"(about {self.frames} frames)")
        return UserError(f"cannot write video {self.path}: {exc.strerror or exc}")

    def _open(self, size_wh: tuple[int, int], fps: float) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        suffix = self.path.suffix
        self._tmp = self.path.with_name(f".{self.path.stem}.{os.getpid()}.{secrets.token_hex(4)}.tmp{suffix}")
        fmt = FORMATS[suffix.lower()]
        import av  # PyAV (~20 MB, 60 ms): only for runs that write a video

        self._av = av
        try:
            container = av.open(str(self._tmp), "w", format=fmt, options=MP4_FLAGS if fmt in ("mp4", "mov") else {})
        except OSError as exc:
            raise UserError(f"cannot write video {self.path}: {exc.strerror or exc}") from None
        rate = Fraction(fps).limit_denominator(1001)
        stream = container.add_stream(VIDEO_CODEC, rate=rate)
        stream.width, stream.height = size_wh
        stream.pix_fmt = "yuv420p"
        stream.gop_size = max(1, round(fps * KEYFRAME_EVERY_S))
        stream.bit_rate = int(min(size_wh[0] * size_wh[1] * fps, 50e6))  # ~1 bit per pixel, as OpenCV's writer
        self._container, self._stream, self._size_wh = container, stream, size_wh

    def __exit__(self, *exc: object) -> None:
        """Finish the file and give it its final name, however the run ended (Ctrl-C, lost stream, full disk)."""
        if self._container is None:
            return
        try:
            self._container.mux(self._stream.encode())  # flush the encoder
            self._container.close()
        except OSError:
            self._write_failed = True
            with contextlib.suppress(OSError):
                self._container.close()
        kept = trim_mp4(self._tmp) if self._write_failed else True  # a full disk: cut after the last whole fragment
        if self.frames and kept:
            os.replace(self._tmp, self.path)
        else:
            self._tmp.unlink(missing_ok=True)


def recover_leftovers(folder: Path) -> list[str]:
    """Recordings of killed runs in ``folder`` (hidden temporary files whose process is gone): each is renamed
    ``<name>.recovered<suffix>`` (numbered if taken) if frames can be read from it, else removed. One line each."""
    messages = []
    with contextlib.suppress(OSError):
        for path in sorted(folder.iterdir()):
            match = LEFTOVER.match(path.name)
            if match is None or not path.is_file() or (match["pid"] and _alive(int(match["pid"]))):
                continue
            trim_mp4(path)
            n = count_frames(path)
            if n == 0:
                path.unlink(missing_ok=True)
                messages.append(f"removed an unreadable leftover recording of a killed run: {path}")
                continue
            target = _free_name(folder, f"{match['stem']}.recovered", match["suffix"])
            os.replace(path, target)
            messages.append(f"recovered {n} frames of a killed run's recording: {target}")
    return messages


def trim_mp4(path: Path) -> bool:
    """Cut an MP4 / MOV file after its last whole fragment (FFmpeg refuses a file whose last fragment header is
    cut short); False if no frame is left whole. Other formats are left as they are (readers stop at a cut): True."""
    if path.suffix.lower() not in (".mp4", ".m4v", ".mov"):
        return True
    size, pos, good, whole = path.stat().st_size, 0, 0, set()
    with path.open("r+b") as f:
        while pos + 8 <= size:
            f.seek(pos)
            header = f.read(16)
            box = int.from_bytes(header[:4], "big")
            if box == 1 and len(header) == 16:
                box = int.from_bytes(header[8:16], "big")
            if box < 8 or pos + box > size:
                break
            pos += box
            whole.add(header[4:8])
            if header[4:8] in (b"mdat", b"moov", b"mfra"):  # a fragment ends with its data
                good = pos
        if good and good < size:
            f.truncate(good)
    return {b"moov", b"mdat"} <= whole


def count_frames(path: Path) -> int:
    """Frames OpenCV can decode from ``path`` (0 if it cannot open it)."""
    cap = open_video(path)
    n = 0
    while cap.isOpened() and cap.grab():
        n += 1
    cap.release()
    return n


def _free_name(folder: Path, stem: str, suffix: str) -> Path:
    path, k = folder / f"{stem}{suffix}", 2
    while path.exists():
        path, k = folder / f"{stem}-{k}{suffix}", k + 1
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        pass
    return True


class ImageDirSink(Sink):
    """Annotated images into a folder, one per source image, same file name (each written atomically).

    ``file_name`` writes every image to that one name instead (for a single image: ``--output out.jpg``).
    """

    def __init__(self, folder: str | Path, *, file_name: str | None = None) -> None:
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise UserError(f"--output {self.folder} is a file; an image folder writes a folder of images")
        self.file_name = file_name

    def __enter__(self) -> Self:
        self.folder.mkdir(parents=True, exist_ok=True)
        return self

    def write(self, frame: Frame, annotated_bgr: np.ndarray) -> None:
        path = self.folder / (self.file_name or frame.source)
        ok, data = cv2.imencode(path.suffix, annotated_bgr)  # in memory: a failed write says why (full disk)
        if not ok:
            raise UserError(f"cannot write image {path} (unknown image type?)")
        try:
            write_bytes_atomic(path, data.tobytes())
        except OSError as exc:
            what = "disk full while writing" if exc.errno in DISK_FULL else f"cannot write ({exc.strerror or exc})"
            kept = (f"the {self.frames} images written before it are kept" if self.frames != 1
                    else "the image written before it is kept")
            raise UserError(f"{what} image {path}: stopped; {kept}") from None
        self.frames += 1


def frame_record(frame: Frame, faces: Faces) -> dict[str, Any]:
    """The JSONL log line of one frame (shape fixed by the detector issue, ``track_id`` added; tools read it).
    ``prob_mask`` is null for a face not classified. A three-class model adds ``probs``, each class's probability
    (``{"no_mask": .., "mask": .., "incorrect": ..}``)."""
    records = [
        {"box": [int(v) for v in box], "label": label, "prob_mask": round_prob(prob), "det_conf": round(float(conf), 5),
         "track_id": track_id}
        for box, label, prob, conf, track_id in zip(faces.xyxy.tolist(), faces.label_names, faces.prob_mask.tolist(),
                                                    faces.confidence.tolist(), faces.track_id.tolist(), strict=True)
    ]  # fmt: skip
    if faces.probs.shape[1]:
        for record, probs in zip(records, faces.probs.tolist(), strict=True):
            record["probs"] = {name: round_prob(p) for name, p in zip(CLASSES, probs, strict=True)}
    return frame_fields(frame) | {"faces": records}


def frame_fields(frame: Frame) -> dict[str, Any]:
    """Which frame a log line or an alert is about: ``source``, ``frame`` (index), ``time_s``."""
    return {"source": frame.source, "frame": int(frame.index), "time_s": round(float(frame.time_s), 4)}


def round_prob(prob: float) -> float | None:
    """A probability as logged: 5 decimals, ``None`` for NaN (not classified)."""
    return round(prob, 5) if prob == prob else None


class JsonlLog:
    """One JSON object per line, each written at once, unbuffered (a stopped run keeps every line it wrote). A
    failed write (full disk) cuts the file back to its last whole line."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path is not None else None
        self._file: BinaryIO | None = None
        self.lines = 0  # frames logged
        self._size = 0  # bytes of the whole frames in the file

    def __enter__(self) -> Self:
        if self.path is not None:
            if self.path.is_dir():
                raise UserError(f"--log {self.path} is a folder; give a file name such as log.jsonl")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                self._file = self.path.open("wb", buffering=0)
            except OSError as exc:  # e.g. an existing read-only log with --overwrite
                raise UserError(f"--log: cannot write {self.path} ({exc.strerror or exc})") from None
        return self

    def write(self, record: dict[str, Any]) -> None:
        if self._file is None:
            return
        data = memoryview(self._text(record).encode("utf-8", "surrogateescape"))  # a non-UTF-8 file name: its bytes
        try:
            while data:
                data = data[self._file.write(data):]  # a write cut short by a full disk: the rest fails
        except OSError as exc:
            with contextlib.suppress(OSError):
                self._file.truncate(self._size)  # no half line: the log ends with its last whole frame
            what = "disk full while writing" if exc.errno in DISK_FULL else f"cannot write ({exc.strerror})"
            raise UserError(f"{what} the log {self.path}: stopped; {self._kept()}") from None
        self._size = self._file.tell()
        self.lines += 1

    def _text(self, record: dict[str, Any]) -> str:
        return json.dumps(record, separators=(",", ":")) + "\n"

    def _kept(self) -> str:
        return f"its first {self.lines} lines are kept"

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()


CSV_COLUMNS = ("source", "frame", "time_s", "x1", "y1", "x2", "y2", "label", "prob_mask", "det_conf", "track_id")
CSV_PROB_COLUMNS = tuple(f"p_{name}" for name in CLASSES)  # after CSV_COLUMNS, for a three-class model


class CsvLog(JsonlLog):
    """The log as CSV, one row per face (``CSV_COLUMNS``, and ``CSV_PROB_COLUMNS`` for a three-class model;
    probabilities empty when not classified), a frame's rows written at once. A frame without faces writes no row.
    The header is written with the first row (or at the end, if there is none): the first face says which columns
    there are."""

    _columns: tuple[str, ...] | None = None

    def _text(self, record: dict[str, Any]) -> str:
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        for face in record["faces"]:
            if self._columns is None:
                self._columns = CSV_COLUMNS + (CSV_PROB_COLUMNS if "probs" in face else ())
                writer.writerow(self._columns)
            probs = [face["probs"][name] for name in CLASSES] if "probs" in face else []
            writer.writerow([record["source"], record["frame"], record["time_s"], *face["box"], face["label"],
                             face["prob_mask"], face["det_conf"], face["track_id"], *probs])  # None: empty
        return text.getvalue()

    def _kept(self) -> str:
        return f"the rows of its first {self.lines} frames are kept"

    def __exit__(self, *exc: object) -> None:
        if self._file is not None and self._columns is None:
            self._columns = CSV_COLUMNS
            with contextlib.suppress(OSError):
                self._file.write((",".join(CSV_COLUMNS) + "\n").encode("utf-8"))
        super().__exit__(*exc)


def open_log(path: str | Path | None) -> JsonlLog:
    """``--log``: CSV when the file name ends in ``.csv`` (any case), JSON lines otherwise; ``None``: no log."""
    return CsvLog(path) if path is not None and Path(path).suffix.lower() == ".csv" else JsonlLog(path)


def open_sink(source: FrameSource, output: str | None) -> Sink:
    """``--output``: a video file for videos, cameras and streams; a folder for images (or one file for one image)."""
    if output is None:
        return NullSink()
    if source.kind != "images":
        return VideoSink(output)
    out = Path(output)
    if Path(source.spec).is_file() and out.suffix.lower() in IMAGE_EXTS:
        return ImageDirSink(out.parent, file_name=out.name)
    return ImageDirSink(out)


@dataclass(frozen=True)
class Outputs:
    """Where the loop's results go: the annotated frames and the per-frame log."""

    sink: Sink = field(default_factory=NullSink)
    log: JsonlLog = field(default_factory=lambda: JsonlLog(None))

    @classmethod
    def open(cls, stack: contextlib.ExitStack, source: FrameSource, output: str | None, log: str | None) -> Outputs:
        """``open_sink`` and ``open_log``, entered on ``stack`` (closed with it)."""
        return cls(stack.enter_context(open_sink(source, output)), stack.enter_context(open_log(log)))
