"""``maskwatch.files``: atomic writes."""

from __future__ import annotations

import errno
from pathlib import Path

from maskwatch.cli import run
from maskwatch.files import write_bytes_atomic


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

