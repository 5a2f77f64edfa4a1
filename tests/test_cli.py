"""``maskwatch.cli``: a bad argument is one error line and exit code 2, in every command."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from maskwatch.cli import Parser, run
from maskwatch.files import write_json_atomic

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("argv", "message"), [
    (["--frames", "abc"], "error: argument --frames: invalid int value: 'abc' (see prog --help)\n"),
    (["--frames", "1", "--nope"], "error: unrecognized arguments: --nope (see prog --help)\n"),
    ([], "error: the following arguments are required: --frames (see prog --help)\n"),
])
def test_a_bad_argument_is_one_line_and_exit_code_2(argv: list[str], message: str, capsys):
    parser = Parser(prog="prog")
    parser.add_argument("--frames", type=int, required=True)
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args(argv)
    assert exit_.value.code == 2
    assert capsys.readouterr() == ("", message)


def test_every_command_uses_the_one_line_parser():
    plain = [str(p.relative_to(ROOT)) for folder in ("detector", "train", "evaluation", "face_detector", "models",
                                                     "maskwatch", "tools", "demo")
             for p in (ROOT / folder).rglob("*.py") if "argparse.ArgumentParser(" in p.read_text()]
    assert plain == []


def test_a_path_that_cannot_be_used_is_one_line_and_exit_code_2(tmp_path: Path, capsys):
    """A writer's OSError no check caught before (here a file where a folder should be; for a user, also a
    read-only folder) was a traceback."""
    (tmp_path / "a_file").write_text("x")
    target = tmp_path / "a_file" / "out" / "summary.json"
    assert run(lambda argv: write_json_atomic(target, {})) == 2
    assert capsys.readouterr().err == f"error: cannot use {target.parent}: Not a directory\n"


@pytest.mark.parametrize(("module", "argv", "message"), [
    ("evaluation.recording_cost", ["NOPE.mp4"], "error: no frame could be read from NOPE.mp4 (missing, not a video"),
    ("evaluation.recording_cost", ["demo/demo.mp4", "--repeats", "0"], "error: --repeats must be at least 1, got 0"),
    ("evaluation.batch", ["--video", "NOPE.mp4"], "error: video not found: NOPE.mp4"),
    ("evaluation.batch", ["--copies", "0"], "error: --copies, --rounds and --workers must be at least 1"),
    ("evaluation.video", ["demo/crowd.mp4", "--max-missed", "1,-1"], "error: --max-missed values must be 0 or more"),
    ("evaluation.soak", ["--source", "NOT_A_VIDEO", "--minutes", "0.01"], "error: no frame could be read from"),
])  # fmt: skip
def test_evaluation_tools_bad_input_is_one_line_and_exit_code_2(module: str, argv: list[str], message: str,
                                                                tmp_path: Path, monkeypatch, capsys):  # fmt: skip
    """Each was a traceback (IndexError, FileNotFoundError, ValueError) or a batch of no video."""
    monkeypatch.chdir(ROOT)
    (tmp_path / "x.mp4").write_text("not a video")
    argv = [str(tmp_path / "x.mp4") if a == "NOT_A_VIDEO" else a for a in argv]
    if module == "evaluation.soak":
        argv += ["--out", str(tmp_path / "soak")]
    assert importlib.import_module(module).main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1, err
