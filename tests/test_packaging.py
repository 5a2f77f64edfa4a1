"""Packaging: dependencies by job (no TensorFlow in the base install), shipped files, and a non-editable install
run from another folder (docs/configuration.md, "Paths")."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from maskwatch.config import DEFAULT_CONFIG_PATH, PROJECT_ROOT, Config, load_config

HEAVY = {"tensorflow", "tensorflow-cpu", "keras", "scikit-learn", "matplotlib", "torch"}


def _pyproject() -> dict:
    return tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]


def _requirement_sections() -> dict[str, list[str]]:
    """requirements.txt: ``# [name] ...`` starts a section; ``base`` is the install without extras."""
    sections: dict[str, list[str]] = {}
    current = None
    for line in (PROJECT_ROOT / "requirements.txt").read_text().splitlines():
        line = line.strip()
        if line.startswith("# ["):
            current = line[3:line.index("]")]
            sections[current] = []
        elif line and not line.startswith("#"):
            assert current is not None, f"requirement before the first section: {line}"
            sections[current].append(line)
    return sections


def _same(a: list[str], b: list[str]) -> bool:
    return sorted(str(Requirement(r)) for r in a) == sorted(str(Requirement(r)) for r in b)


def test_requirements_txt_agrees_with_pyproject():
    project, sections = _pyproject(), _requirement_sections()
    assert set(sections) == {"base", *project["optional-dependencies"]}
    assert _same(sections["base"], project["dependencies"])
    for extra, reqs in project["optional-dependencies"].items():
        assert _same(sections[extra], reqs), f"requirements.txt [{extra}] differs from pyproject.toml"


def test_base_install_pulls_no_tensorflow():
    base = {Requirement(r).name.lower() for r in _pyproject()["dependencies"]}
    assert not base & HEAVY, f"the detector's install must stay light: {sorted(base & HEAVY)}"
    assert {"tensorflow-cpu", "scikit-learn", "matplotlib"} <= {
        Requirement(r).name.lower() for r in _pyproject()["optional-dependencies"]["train"]
    }


def test_ci_runs_the_readme_test_command():
    readme = (PROJECT_ROOT / "README.md").read_text()
    command = next(line for line in readme.splitlines() if line.endswith("python -m pytest -q"))
    ci = (PROJECT_ROOT / ".ci" / "run").read_text()
    assert command.replace("pip install -e", "pip install -q -e") in ci.splitlines()
    assert "[dev,data,train,cluster,web]" in command


def test_default_config_is_the_checkout_file():
    assert DEFAULT_CONFIG_PATH.resolve() == (PROJECT_ROOT / "config.yaml").resolve()


def test_inputs_prefer_the_current_folder_then_shipped_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    cfg = Config()
    assert cfg.resolve_path("models/mask_classifier") == PROJECT_ROOT / "models/mask_classifier"
    assert cfg.resolve_path("models/mine") == tmp_path / "models/mine"  # missing: reported where the user looks
    (tmp_path / "models").mkdir()
    (tmp_path / "models/mask_classifier.json").write_text("{}")
    assert cfg.resolve_path("models/mask_classifier") == tmp_path / "models/mask_classifier"
    assert cfg.output_path("runs") == tmp_path / "runs"
    assert cfg.output_path("/abs/x") == Path("/abs/x")


def test_config_in_the_current_folder_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    assert load_config() == Config()
    (tmp_path / "config.yaml").write_text("train:\n  epochs: 3\n")
    assert load_config().train.epochs == 3
    assert load_config(DEFAULT_CONFIG_PATH).train.epochs == Config().train.epochs


def _copy_source(dst: Path) -> Path:
    """The checkout without data, runs, caches and build output, so the build writes only under tmp_path."""
    skip = shutil.ignore_patterns(".git", "data", "runs", "build", "*.egg-info", "__pycache__", ".*_cache", "cache")
    shutil.copytree(PROJECT_ROOT, dst, ignore=skip, symlinks=True)
    return dst


@pytest.mark.slow
def test_non_editable_install_runs_from_another_folder(tmp_path: Path):
    """pip install . (base only) into a fresh venv; the detector, its demo and the train hint work elsewhere."""
    env = {**os.environ, "PIP_NO_CACHE_DIR": "1", "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTHONPATH", None)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py, bindir = venv / "bin" / "python", venv / "bin"
    src = _copy_source(tmp_path / "src")
    proc = subprocess.run([str(py), "-m", "pip", "install", "-q", str(src)], capture_output=True, text=True,
                          env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    work = tmp_path / "work"
    work.mkdir()

    def run(*cmd: str) -> subprocess.CompletedProcess:
        return subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=300)

    probe = run(str(py), "-c", "import importlib.metadata as m, json, detector, maskwatch.config as c; "
                "print(json.dumps([sorted(d.metadata['Name'].lower() for d in m.distributions()), "
                "detector.__file__, str(c.DEFAULT_CONFIG_PATH), c.DEFAULT_CONFIG_PATH.read_text()]))")
    assert probe.returncode == 0, probe.stderr
    installed, detector_file, config_path, config_text = json.loads(probe.stdout)
    assert not set(installed) & HEAVY, sorted(set(installed) & HEAVY)
    site = venv / "lib"
    assert Path(detector_file).is_relative_to(site) and Path(config_path).is_relative_to(site)
    assert not Path(config_path).is_symlink()
    assert config_text == (PROJECT_ROOT / "config.yaml").read_text()

    demo = run(str(py), "-m", "detector.webcam", "--demo", "--max-frames", "10")
    assert demo.returncode == 0, demo.stderr
    for name in ("annotated.mp4", "summary.json", "log.jsonl"):
        assert (work / "runs" / "demo" / name).stat().st_size > 0, name
    assert json.loads((work / "runs/demo/summary.json").read_text())["frames"] == 10

    shutil.copy(PROJECT_ROOT / "demo" / "demo.mp4", work / "clip.mp4")
    clip = run(str(bindir / "maskwatch-detect"), "--source", "clip.mp4", "--no-display", "--max-frames", "5",
               "--output", "out.mp4")
    assert clip.returncode == 0, clip.stderr
    assert (work / "out.mp4").stat().st_size > 0

    train = run(str(py), "-m", "train", "--dataset", "photos")
    assert train.returncode == 2
    assert train.stderr.strip() == ("error: training needs tensorflow, scikit-learn, matplotlib: pip install "
                                    "'maskwatch[train]' (from a checkout: pip install -e '.[train]')")
    assert not list(site.glob("python*/site-packages/runs")), "outputs must not land in site-packages"
