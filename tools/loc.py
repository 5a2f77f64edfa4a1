"""``python tools/loc.py DIR [DIR ...]``: lines of code of each folder's ``*.py`` files, as issue 19's targets count
them: lines that hold a token of code; blank lines, comments and docstrings are not counted. ``-v``: per file."""

from __future__ import annotations

import ast
import io
import sys
import tokenize
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # python tools/x.py from a checkout

from maskwatch.cli import Parser, run
from maskwatch.errors import UserError

NOT_CODE = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER}
SCOPES = (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def docstring_lines(tree: ast.Module) -> set[int]:
    """Line numbers of the module's, classes' and functions' docstrings."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, SCOPES) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value,
                                                                                                    str):  # fmt: skip
                lines.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    return lines


def count_lines(source: str) -> int:
    """Lines of ``source`` that hold code (see the module's doc)."""
    code: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in NOT_CODE:
            code.update(range(token.start[0], token.end[0] + 1))
    return len(code - docstring_lines(ast.parse(source)))


def main(argv: list[str] | None = None) -> int:
    return run(_main, argv)


def _main(argv: list[str] | None) -> int:
    parser = Parser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dirs", nargs="+", type=Path, metavar="DIR")
    parser.add_argument("-v", "--verbose", action="store_true", help="one line per file too")
    args = parser.parse_args(argv)
    for folder in args.dirs:
        files = sorted(folder.rglob("*.py")) if folder.is_dir() else []
        if not files:
            raise UserError(f"no Python files in {folder}")
        counts = {path: count_lines(path.read_text(encoding="utf-8")) for path in files}
        if args.verbose:
            for path, n in counts.items():
                print(f"{n:6d}  {path}")
        print(f"{sum(counts.values()):6d}  {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
