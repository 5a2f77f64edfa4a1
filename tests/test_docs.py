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
SOURCE_FILE = r"(?<![\w/.])((?:detector|face_detector|maskwatch|evaluation|train|models|tools|tests|demo)/[\w/]*\.py)"
FILE_ENDINGS = (".md", ".py", ".yaml", ".json", ".jsonl", ".log", ".csv", ".txt", ".png", ".jpg", ".mp4")


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # its parent is no package
        return False


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
            if module not in {"pip", "pytest"} and not _is_module(module):
                missing.add(f"{page.relative_to(ROOT)}: python -m {module}")
        for tool in re.findall(r"python (tools/\w+\.py)", text):
            if not (ROOT / tool).is_file():
                missing.add(f"{page.relative_to(ROOT)}: python {tool}")
    assert not missing, sorted(missing)


def test_code_files_in_user_docs_exist() -> None:
    """A source file the docs name (`detector/sinks.py`, `tests/test_web.py`) exists."""
    missing = set()
    for page in USER_PAGES:
        for name in re.findall(SOURCE_FILE, page.read_text()):
            if not (ROOT / name).is_file():
                missing.add(f"{page.relative_to(ROOT)}: {name}")
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


def _config_keys() -> set[str]:
    import dataclasses

    from maskwatch.config import Config

    keys: set[str] = set()

    def walk(section: object, prefix: str) -> None:
        for f in dataclasses.fields(section):
            keys.add(prefix + f.name)
            value = getattr(section, f.name)
            if dataclasses.is_dataclass(value):
                walk(value, prefix + f.name + ".")

    walk(Config(), "")
    return keys


def test_config_keys_in_user_docs_exist() -> None:
    """A key the docs name (`section.key`, `section.key=value`, `--set section.key=...`) is a key of the config."""
    keys = _config_keys()
    sections = {k for k in keys if "." not in k}
    unknown = set()
    for page in USER_PAGES:
        text = re.sub(r"```text.*?```", "", page.read_text(), flags=re.S)  # examples of errors
        named = re.findall(r"`([a-z_]+(?:\.[a-z0-9_]+)+)(?:=[^`]*|: [^`]*)?`", text)
        named += re.findall(r"--set \"?([a-z_]+(?:\.[a-z0-9_]+)+)=", text)
        for key in named:
            section = key.split(".")[0]
            if section not in sections or key in keys or key.endswith(FILE_ENDINGS):
                continue
            module = key.rsplit(".", 1)[0]
            if _is_module(key) or ("." in module and _is_module(module)):
                continue  # a module (train.maskify) or a module's function (train.export.save_classifier)
            unknown.add(f"{page.relative_to(ROOT)}: {key}")
    assert not unknown, sorted(unknown)


_WITHOUT_INSTALL = """
import runpy, sys
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in getattr(f, "__module__", "") + repr(f)]
sys.path[:] = [p for p in sys.path if "editable" not in p and p not in ("", ".")]
for name in [m for m in sys.modules if m.split(".")[0] in {"maskwatch", "detector", "train", "models"}]:
    del sys.modules[name]
sys.argv = [sys.argv[1], "--help"]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_tools_in_user_docs_run_from_a_checkout_without_install(tmp_path: Path) -> None:
    """``python tools/x.py`` finds the project's packages from the checkout itself (no ``pip install -e .``)."""
    import subprocess
    import sys

    tools = sorted({t for page in USER_PAGES for t in re.findall(r"python (tools/\w+\.py)", page.read_text())})
    assert tools
    failed = []
    for tool in tools:
        proc = subprocess.run([sys.executable, "-c", _WITHOUT_INSTALL, str(ROOT / tool)], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        if proc.returncode != 0 or "usage:" not in proc.stdout:
            failed.append(f"{tool}: {(proc.stderr.strip().splitlines() or ['no usage'])[-1]}")
    assert not failed, failed
