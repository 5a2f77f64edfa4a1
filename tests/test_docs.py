"""The user docs hold together: relative links and anchors resolve, every docs page a file names exists, and every
command the docs give names a module or tool that exists."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", ROOT / "models/README.md", ROOT / "demo/README.md",
                *(ROOT / "docs").glob("*.md"), *(ROOT / "docs/lab").glob("*.md")])  # fmt: skip
USER_PAGES = [p for p in PAGES if "lab" not in p.parts]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
CODE = re.compile(r"```.*?```", re.S)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> Iterator[str]:
    seen: dict[str, int] = {}
    for line in CODE.sub("", page.read_text()).splitlines():
        if line.startswith("#"):
            base = slug(line.lstrip("#"))
            n = seen.get(base, 0)
            seen[base] = n + 1
            yield base if n == 0 else f"{base}-{n}"


def test_slug_matches_github() -> None:
    assert slug(" Alerts (`--alerts` or `alerts.enabled: true`)") == "alerts---alerts-or-alertsenabled-true"
    assert slug(" A third class: masks worn wrong") == "a-third-class-masks-worn-wrong"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    broken = []
    for target in LINK.findall(CODE.sub("", page.read_text())):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(target)
        elif anchor and file.suffix == ".md" and anchor not in set(anchors(file)):
            broken.append(f"{target} (no such heading)")
    assert not broken, f"{page.relative_to(ROOT)}: broken links {broken}"


def test_named_docs_pages_exist() -> None:
    """A page named in prose, a docstring or a message (``docs/<page>.md``) must exist."""
    files = [*PAGES, *(p for p in ROOT.rglob("*.py") if not {"data", "runs", ".git"} & set(p.parts))]
    missing = set()
    for file in files:
        for name in re.findall(r"(?<![\w/.])(docs/[\w/]+\.(?:md|png))", file.read_text(errors="replace")):
            if not (ROOT / name).exists():
                missing.add(f"{file.relative_to(ROOT)}: {name}")
    assert not missing, sorted(missing)


def test_commands_in_user_docs_exist() -> None:
    """Every ``python -m X`` names a module that exists, every ``python tools/x.py`` a file."""
    missing = set()
    for page in USER_PAGES:
        text = page.read_text()
        for module in re.findall(r"python -m ([A-Za-z_][\w.]*)", text):
            if module not in {"pip", "pytest"} and importlib.util.find_spec(module) is None:
                missing.add(f"{page.relative_to(ROOT)}: python -m {module}")
        for tool in re.findall(r"python (tools/\w+\.py)", text):
            if not (ROOT / tool).is_file():
                missing.add(f"{page.relative_to(ROOT)}: python {tool}")
    assert not missing, sorted(missing)


def test_architecture_lists_every_runtime_module() -> None:
    """docs/architecture.md's module map names every module of the runtime packages, and only modules that exist."""
    text = (ROOT / "docs/architecture.md").read_text()
    for package in ("detector", "face_detector", "maskwatch"):
        for module in sorted((ROOT / package).glob("*.py")):
            if module.name != "__init__.py":
                name = f"{package}/{module.name}"
                assert f"`{name}`" in text, f"docs/architecture.md does not list {name}"
    for named in re.findall(r"`((?:detector|face_detector|maskwatch|evaluation|train|models)/\w+\.py)`", text):
        assert (ROOT / named).is_file(), f"docs/architecture.md names {named}, which does not exist"
