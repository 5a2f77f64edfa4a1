"""``--log``: JSON lines by default, CSV (one row per face) when the file name ends in .csv."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest

from detector.sinks import CSV_COLUMNS, CsvLog, JsonlLog, frame_record, open_log
from detector.sources import Frame
from maskwatch.errors import UserError
from maskwatch.faces import MASK, NO_MASK, Faces


def _records() -> list[dict]:
    image = np.zeros((60, 80, 3), np.uint8)
    two = Faces(np.array([[1, 2, 30, 40], [40, 5, 70, 50]]), np.array([0.9, 0.7]),
                prob_mask=np.array([0.97, np.nan]), label=np.array([MASK, NO_MASK]), track_id=np.array([3, -1]))
    return [frame_record(Frame(0, 0.0, image, "clip.mp4", 10.0), two),
            frame_record(Frame(1, 0.1, image, "clip.mp4", 10.0), Faces.empty()),
            frame_record(Frame(2, 0.2, image, "clip.mp4", 10.0), two[[0]])]


def _write(log: JsonlLog, records: list[dict]) -> None:
    with log:
        for record in records:
            log.write(record)


@pytest.mark.parametrize(("name", "kind"), [("log.csv", CsvLog), ("LOG.CSV", CsvLog), ("log.jsonl", JsonlLog),
                                            ("log.txt", JsonlLog)])
def test_open_log_picks_the_format_by_file_name(name: str, kind: type, tmp_path: Path):
    assert type(open_log(tmp_path / name)) is kind


def test_a_source_name_that_is_not_utf8_is_logged_by_its_bytes(tmp_path: Path):
    """A CSV log of an image named b"caf\\xe9.jpg" was a UnicodeEncodeError traceback (JSON escapes it)."""
    name = os.fsdecode(b"caf\xe9.jpg")
    record = _records()[0] | {"source": name}
    _write(open_log(tmp_path / "log.csv"), [record])
    assert (tmp_path / "log.csv").read_bytes().splitlines()[1].startswith(b"caf\xe9.jpg,0,")


def test_csv_has_one_row_per_face_and_agrees_with_jsonl(tmp_path: Path):
    records = _records()
    _write(open_log(tmp_path / "log.csv"), records)
    _write(open_log(tmp_path / "log.jsonl"), records)
    with (tmp_path / "log.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    lines = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert len(lines) == 3
    from_jsonl = [{"source": r["source"], "frame": str(r["frame"]), "time_s": str(r["time_s"]),
                   **dict(zip(("x1", "y1", "x2", "y2"), map(str, face["box"]), strict=True)),
                   "label": face["label"], "prob_mask": "" if face["prob_mask"] is None else str(face["prob_mask"]),
                   "det_conf": str(face["det_conf"]), "track_id": str(face["track_id"])}
                  for r in lines for face in r["faces"]]
    assert tuple(rows[0]) == CSV_COLUMNS
    assert rows == from_jsonl
    assert [(r["frame"], r["label"], r["prob_mask"], r["track_id"]) for r in rows] == [
        ("0", "mask", "0.97", "3"), ("0", "no_mask", "", "-1"), ("2", "mask", "0.97", "3")]


def test_no_log_path_writes_nothing(tmp_path: Path):
    _write(open_log(None), _records())
    assert list(tmp_path.iterdir()) == []


def test_three_class_faces_log_incorrect_and_each_class_probability(tmp_path: Path):
    image = np.zeros((60, 80, 3), np.uint8)
    faces = Faces([[1, 2, 30, 40], [40, 5, 70, 50]], [0.9, 0.7], track_id=[4, 5]).with_labels(
        np.array([[0.05, 0.1, 0.85], [0.2, 0.7, 0.1]]), 0.5)
    records = [frame_record(Frame(0, 0.0, image, "clip.mp4", 10.0), Faces.empty()),
               frame_record(Frame(1, 0.1, image, "clip.mp4", 10.0), faces)]
    first = records[1]["faces"][0]
    assert first["label"] == "incorrect" and first["prob_mask"] == pytest.approx(0.1)
    assert first["probs"] == pytest.approx({"no_mask": 0.05, "mask": 0.1, "incorrect": 0.85})
    assert records[1]["faces"][1]["label"] == "mask"
    assert all("probs" not in face for r in _records() for face in r["faces"])  # binary lines stay as they were
    _write(open_log(tmp_path / "log.csv"), records)
    with (tmp_path / "log.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == (*CSV_COLUMNS, "p_no_mask", "p_mask", "p_incorrect")
    assert [(r["label"], r["p_incorrect"], r["track_id"]) for r in rows] == [("incorrect", "0.85", "4"),
                                                                            ("mask", "0.1", "5")]


def test_a_csv_log_without_faces_still_has_its_header(tmp_path: Path):
    image = np.zeros((60, 80, 3), np.uint8)
    _write(open_log(tmp_path / "log.csv"), [frame_record(Frame(0, 0.0, image, "clip.mp4", 10.0), Faces.empty())])
    assert (tmp_path / "log.csv").read_text() == ",".join(CSV_COLUMNS) + "\n"


@pytest.mark.parametrize("kind", [JsonlLog, CsvLog])
@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_a_full_disk_stops_either_log_in_one_line(kind: type):
    with kind(Path("/dev/full")) as log, pytest.raises(UserError, match=r"^disk full while writing the log /dev/full"):
        log.write(_records()[0])


@pytest.mark.parametrize("kind", [JsonlLog, CsvLog])
def test_a_log_that_cannot_be_opened_is_one_line(kind: type, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "log.jsonl"
    path.write_text("old\n")
    path.chmod(0o444)  # an existing read-only log, replaced with --overwrite
    if os.access(path, os.W_OK):  # root writes any file: fail the open as it fails for a user
        def denied(self: Path, *args: object, **kwargs: object) -> object:
            raise PermissionError(13, "Permission denied", str(self))
        monkeypatch.setattr(Path, "open", denied)
    with pytest.raises(UserError, match=r"^--log: cannot write .*log\.jsonl \(Permission denied\)$"):
        kind(path).__enter__()
