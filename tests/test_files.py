"""Atomic writes: the file is whole or absent, and a failed write names the file."""

from __future__ import annotations

import errno
import os
import resource
import signal
import stat
from pathlib import Path

import pytest

from maskwatch.cli import run
from maskwatch.files import atomic_path, write_bytes_atomic, write_json_atomic


def test_a_full_disk_names_the_file_and_leaves_nothing(tmp_path: Path, capsys):
    path = tmp_path / "summary.json"
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (100, hard))
    try:
        with pytest.raises(OSError) as error:
            write_json_atomic(path, {"x": "y" * 1000})
        assert run(lambda argv: write_json_atomic(path, {"x": "y" * 1000})) == 2
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)
    assert error.value.errno == errno.EFBIG and error.value.filename == str(path)
    assert capsys.readouterr().err == (f"error: disk full writing {path}: free some space (files written so far are "
                                       "kept)\n")
    assert list(tmp_path.iterdir()) == []  # no half file, no temporary file


def test_a_write_is_whole(tmp_path: Path):
    write_json_atomic(tmp_path / "s.json", {"a": 1})
    assert (tmp_path / "s.json").read_text() == '{\n  "a": 1\n}\n'


def test_an_error_without_errno_keeps_its_message(tmp_path: Path) -> None:
    with pytest.raises(OSError) as error, atomic_path(tmp_path / "deploy.prototxt"):
        raise OSError("cannot resolve example.invalid")  # e.g. a download's own error
    assert str(error.value) == "cannot resolve example.invalid" and list(tmp_path.iterdir()) == []


def test_a_pipe_or_device_is_written_in_place_not_replaced_by_a_file(tmp_path: Path):
    """``--summary /dev/full`` once replaced the device node by a file (as root): a rename over it."""
    fifo = tmp_path / "summary.json"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        write_json_atomic(fifo, {"a": 1})  # fits in the pipe's buffer
        assert os.read(reader, 100) == b'{\n  "a": 1\n}\n'
    finally:
        os.close(reader)
    assert stat.S_ISFIFO(fifo.stat().st_mode) and list(tmp_path.iterdir()) == [fifo]


def test_a_full_disk_names_the_output_and_leaves_no_file(tmp_path: Path, monkeypatch, capsys) -> None:
    target = tmp_path / "clf.keras"
    target.write_bytes(b"the good model")

    def full_disk(self: Path, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")  # as write() raises it: no file name

    monkeypatch.setattr(Path, "write_bytes", full_disk)
    assert run(lambda argv: write_bytes_atomic(target, b"a new model")) == 2
    assert capsys.readouterr().err.startswith(f"error: disk full writing {target}: free some space")
    monkeypatch.undo()
    assert target.read_bytes() == b"the good model" and [p.name for p in tmp_path.iterdir()] == ["clf.keras"]


def test_a_read_only_folder_names_the_output_not_its_temporary_name(tmp_path: Path, monkeypatch, capsys):
    def read_only(*args: object, **kwargs: object) -> tuple[int, str]:
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path / ".s.abc123.tmp.json"))

    monkeypatch.setattr("tempfile.mkstemp", read_only)
    assert run(lambda argv: write_json_atomic(tmp_path / "s.json", {})) == 2
    assert capsys.readouterr().err == f"error: cannot use {tmp_path / 's.json'}: Read-only file system\n"


def test_write_csv_atomic_writes_header_and_rows_with_unix_line_ends(tmp_path):
    from maskwatch.files import write_csv_atomic

    path = tmp_path / "rows.csv"
    write_csv_atomic(path, ("file", "group"), iter([("a, b.png", "x"), ("c.png", 'say "hi"')]))
    assert path.read_bytes() == b'file,group\n"a, b.png",x\nc.png,"say ""hi"""\n'
    assert [p.name for p in tmp_path.iterdir()] == ["rows.csv"]  # no temporary file left
