"""``tools/shrink_set.py``: bad input is one error line and writes nothing."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest

from maskwatch.cli import run

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("shrink_set", ROOT / "tools" / "shrink_set.py")
shrink_set = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(shrink_set)  # type: ignore[union-attr]


def _labelled(folder: Path, rows: str) -> Path:
    (folder / "images").mkdir(parents=True)
    for name in ("a.jpg", "b.jpg"):
        cv2.imwrite(str(folder / "images" / name), np.full((40, 40, 3), 128, np.uint8))
    (folder / "boxes.csv").write_text("file,x1,y1,x2,y2,label\n" + rows)
    return folder


def test_shrinks_photos_and_boxes(tmp_path: Path) -> None:
    src = _labelled(tmp_path / "set", "images/a.jpg,10,10,30,30,mask\nimages/b.jpg,0,0,20,20,no_mask\n")
    assert run(shrink_set.main, [str(src), str(tmp_path / "out"), "--scales", "0.5"]) == 0
    out = tmp_path / "out" / "set_x0.5"
    assert (out / "boxes.csv").read_text().splitlines()[1] == "images/a.jpg,5,5,15,15,mask"
    assert cv2.imread(str(out / "images" / "b.jpg")).shape == (20, 20, 3)


@pytest.mark.parametrize(
    ("rows", "dst_is_file", "message"),
    [
        ("images/a.jpg,10,10,30,30,mask\nimages/b.jpg,abc,0,20,20,no_mask\n", False,
         "boxes.csv:3: box coordinates must be integers"),
        ("images/a.jpg,10,10,30,30,mask\n", True, "DST: cannot create the folder"),
    ],
    ids=["bad-box", "dst-is-a-file"],
)
def test_bad_input_is_one_error_line_and_writes_nothing(tmp_path: Path, capsys, rows, dst_is_file, message) -> None:
    src = _labelled(tmp_path / "set", rows)
    dst = tmp_path / "out"
    if dst_is_file:
        dst.write_text("a file")
    assert run(shrink_set.main, [str(src), str(dst), "--scales", "0.5"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err
    assert dst.is_file() if dst_is_file else not dst.exists()
