"""``tools/loc.py``: the lines of code that issue 19's size targets count."""

from __future__ import annotations

import runpy
from pathlib import Path

count_lines = runpy.run_path(str(Path(__file__).resolve().parents[1] / "tools" / "loc.py"))["count_lines"]

SOURCE = '''"""A module docstring,
over two lines."""

import os  # a comment


def f(x):
    """A docstring."""
    # a comment line
    return os.path.join(
        x, "y"
    )
'''


def test_counts_code_lines_not_blanks_comments_or_docstrings():
    assert count_lines(SOURCE) == 5  # the import, the def and the return statement's three lines
