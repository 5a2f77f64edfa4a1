"""``maskwatch.cli``: a bad argument is one error line and exit code 2, in every command."""

from __future__ import annotations

from pathlib import Path

import pytest

from maskwatch.cli import Parser

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
