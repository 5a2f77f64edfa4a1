"""``maskwatch.interrupts``: a Ctrl-C while a command's modules still import is one line and exit code 130; one
while the program exits after the command's run is ignored."""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

import detector.webcam  # noqa: F401  (a library import: pytest's own Ctrl-C must stay a KeyboardInterrupt)
from maskwatch.cli import run
from maskwatch.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
DETECT = ["-m", "detector.webcam", "--demo", "--no-display", "--quiet"]
DETECT_SCRIPT = ["-c", "import sys; from detector.webcam import main; sys.exit(main(sys.argv[1:]))",  # console script
                 "--demo", "--no-display", "--quiet"]


def _interrupt_after_import(args: list[str], package: str, delay_s: float) -> tuple[int, str]:
    """Run ``python -X importtime ARGS``, send SIGINT ``delay_s`` after ``package`` is imported (the project's first
    code: Python's own start, before it, is not the project's to handle); return code and stderr."""
    proc = subprocess.Popen([sys.executable, "-X", "importtime", *args], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    head = []
    for line in proc.stderr:
        head.append(line)
        if line.rsplit("|", 1)[-1].strip() == package:
            break
    else:
        raise AssertionError(f"{package} was never imported: {''.join(head)[-2000:]}")
    time.sleep(delay_s)
    proc.send_signal(signal.SIGINT)
    _, tail = proc.communicate(timeout=60)
    return proc.returncode, "".join(head) + tail


TRAIN = ["-m", "train", "--dataset", "DATASET", "--quiet"]
CASES = [(DETECT, "detector", 0.0), (DETECT, "detector", 0.05), (DETECT, "detector", 0.15),
         (DETECT_SCRIPT, "detector", 0.0), (DETECT_SCRIPT, "detector", 0.1), (TRAIN, "train", 0.0),
         (TRAIN, "train", 0.1), (["-m", "demo.make_demo", "--help"], "demo", 0.0)]


@pytest.mark.parametrize(("args", "package", "delay_s"), CASES)
def test_ctrl_c_while_a_command_imports_is_one_line_and_exit_code_130(args: list[str], package: str, delay_s: float,
                                                                      tmp_path: Path):
    for name in ("with_mask", "without_mask"):  # a dataset, so that the run goes on (into TensorFlow's import)
        (tmp_path / name).mkdir()
        cv2.imwrite(str(tmp_path / name / "a.jpg"), np.full((32, 32, 3), 128, np.uint8))
    args = [str(tmp_path) if a == "DATASET" else a for a in args]
    rc, err = _interrupt_after_import([*args, "--set", f"paths.runs_dir={tmp_path / 'runs'}"], package, delay_s)
    assert rc == 130 and "Traceback" not in err and "interrupted" in err.splitlines(), (rc, err[-3000:])


def test_a_library_import_keeps_pythons_ctrl_c():
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_run_turns_a_ctrl_c_into_one_line_and_exit_code_130(capsys):
    def main(argv: object) -> int:
        raise KeyboardInterrupt

    assert run(main) == 130
    assert capsys.readouterr().err == "interrupted\n"


def _missing_onnxruntime(ctrl_c: bool) -> int:
    """A command whose import of a package fails, as numpy's C code makes it fail when a Ctrl-C comes."""
    if ctrl_c:
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)  # its KeyboardInterrupt swallowed by the C code
    try:
        raise ImportError("import numpy failed")
    except ImportError:
        raise UserError("face_detector.backend onnxruntime needs onnxruntime and onnx") from None


def test_an_import_a_ctrl_c_broke_is_a_ctrl_c_not_a_missing_package(capsys):
    assert run(lambda argv: _missing_onnxruntime(ctrl_c=True)) == 130
    assert capsys.readouterr().err == "interrupted\n"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert run(lambda argv: _missing_onnxruntime(ctrl_c=False)) == 2  # a missing package without Ctrl-C: its line
    assert capsys.readouterr().err == "error: face_detector.backend onnxruntime needs onnxruntime and onnx\n"
    with pytest.raises(ImportError):  # and a plain ImportError stays a bug's traceback
        run(lambda argv: importlib.import_module("maskwatch.no_such_module"))


def test_a_users_script_that_imports_the_project_keeps_pythons_ctrl_c(tmp_path: Path):
    """A script of the user's own imports the project, then runs its loop at its top level: a Ctrl-C there is
    Python's KeyboardInterrupt, so the script's ``finally`` runs (the start guard once ended it with exit 130)."""
    script = tmp_path / "mine.py"
    script.write_text("import time\nimport maskwatch.faces  # noqa: F401\nprint('ready', flush=True)\ntry:\n"
                      "    t0 = time.monotonic()\n    while time.monotonic() - t0 < 20:\n        time.sleep(0.01)\n"
                      "finally:\n    print('cleanup ran', flush=True)\n")
    proc = subprocess.Popen([sys.executable, str(script)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert "cleanup ran" in out and "KeyboardInterrupt" in err, (proc.returncode, out, err)
    assert proc.returncode == -signal.SIGINT  # Python's own end after an uncaught Ctrl-C, not the guard's 130


# A command whose work prints "done" (or is cut short by a Ctrl-C: "ctrl-c-in-run"), then a Ctrl-C comes as the
# program exits: while Python joins a thread, in an atexit callback, or in the teardown after them (a module's
# object deleted, as TensorFlow's are for seconds after `python -m train` printed its last line).
LATE_CTRL_C = """
import signal
import sys
import threading
import time

import maskwatch  # noqa: F401  (the guard: every command's first project import)
from maskwatch.cli import run

PHASE = sys.argv[1]


class Late:
    def __del__(self, raise_signal=signal.raise_signal, sigint=signal.SIGINT):
        raise_signal(sigint)


def _join_me():
    while threading.main_thread().is_alive():  # until the main thread began to exit
        time.sleep(0.001)
    signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
    time.sleep(0.2)  # Python joins this thread meanwhile


def _main(argv):
    if PHASE == "thread-join":
        threading.Thread(target=_join_me).start()
    elif PHASE == "atexit":
        import atexit

        atexit.register(signal.raise_signal, signal.SIGINT)
    else:
        globals()["late"] = Late()  # deleted with this module's globals, after the atexit callbacks
    if PHASE == "ctrl-c-in-run":
        raise KeyboardInterrupt
    print("done")


sys.exit(run(_main))
"""


@pytest.mark.parametrize(("phase", "code", "out", "err"), [
    ("thread-join", 0, "done\n", ""), ("atexit", 0, "done\n", ""), ("teardown", 0, "done\n", ""),
    ("ctrl-c-in-run", 130, "", "interrupted\n")])
def test_a_ctrl_c_while_the_program_exits_after_the_run_is_ignored(phase: str, code: int, out: str, err: str,
                                                                   tmp_path: Path):
    """The work is done and reported: the command's output and exit code stand, not a second ``interrupted`` nor
    130 (Python printed ``Exception ignored ... KeyboardInterrupt``, or the signal killed it in the teardown)."""
    (tmp_path / "late_ctrl_c.py").write_text(LATE_CTRL_C)
    proc = subprocess.run([sys.executable, "-m", "late_ctrl_c", phase], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(tmp_path)])})
    assert (proc.returncode, proc.stdout, proc.stderr) == (code, out, err)


def test_a_script_that_ran_a_command_keeps_pythons_ctrl_c(tmp_path: Path):
    """After a command's ``run``, a script that goes on (its own loop) still gets Python's ``KeyboardInterrupt``."""
    script = tmp_path / "mine.py"
    script.write_text("import signal\nimport maskwatch  # noqa: F401\nfrom maskwatch.cli import run\n"
                      "run(lambda argv: 0)\ntry:\n    signal.raise_signal(signal.SIGINT)\n"
                      "except KeyboardInterrupt:\n    print('KeyboardInterrupt')\n")
    proc = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "KeyboardInterrupt\n", "")


# A command whose Ctrl-C lands in code that ``exec``/``eval`` of a string runs (namedtuple's and dataclasses' generated
# methods, while numpy or TensorFlow import: ``selectors.SelectorKey`` in ``import socket`` was seen), or in a
# ``__set_name__`` (Python 3.11 makes it ``RuntimeError: Error calling __set_name__``: numpy's ``finfo``), or in a
# finalizer (``__del__``, a weakref callback), where Python cannot raise it, or in code that C code runs and then
# prints the error instead of raising it.
BROKEN_CTRL_C = """
import signal
import sys
import time

import maskwatch  # noqa: F401  (the guard: every command's first project import)
from maskwatch.cli import run

CTRL_C = "import signal; signal.raise_signal(signal.SIGINT)"


class Finalized:
    def __del__(self):
        signal.raise_signal(signal.SIGINT)


def _main(argv):
    if sys.argv[1] == "exec":
        exec(CTRL_C, {})
    elif sys.argv[1] == "eval":
        eval("__import__('signal').raise_signal(2)", {})
    elif sys.argv[1] == "exec-import-error":
        try:
            exec(CTRL_C, {})
        except KeyboardInterrupt:
            raise ImportError("import numpy failed") from None
    elif sys.argv[1] == "finalizer":
        Finalized()  # deleted at once: the KeyboardInterrupt is raised in its __del__
        t0 = time.monotonic()
        while time.monotonic() - t0 < 5:  # the run goes on (in C): the Ctrl-C comes again and stops it
            time.sleep(0.01)
    elif sys.argv[1] == "printed-by-c-code":
        import ctypes

        ctypes.pythonapi.PyRun_SimpleString(CTRL_C.encode())  # C code that prints the error it got (PyErr_Print)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 5:
            time.sleep(0.01)
    elif sys.argv[1] == "finalizer-at-the-end":
        Finalized()
        return 0  # before the Ctrl-C could come again: the run's end raises it
    else:
        class Attribute:
            def __set_name__(self, owner, name):
                signal.raise_signal(signal.SIGINT)

        class Finfo:
            attribute = Attribute()
    print("not interrupted")


sys.exit(run(_main))
"""


@pytest.mark.parametrize("where", ["exec", "eval", "exec-import-error", "set-name", "finalizer",
                                   "finalizer-at-the-end", "printed-by-c-code"])
def test_a_ctrl_c_in_generated_code_is_one_line_and_exit_code_130(where: str, tmp_path: Path):
    """A ``KeyboardInterrupt`` that left ``exec``/``eval`` of a string marks it "uncaught" in CPython even when
    ``run`` handles it: ``python -m`` then killed itself by SIGINT at its end (return code -2, after ``interrupted``);
    one raised in ``__set_name__`` was a ``RuntimeError`` traceback, exit 1; one in a finalizer was ``Exception
    ignored ... KeyboardInterrupt``, one in code that C code ran and printed its error (protobuf's) a traceback, and
    the run went on (exit 0)."""
    (tmp_path / "broken_ctrl_c.py").write_text(BROKEN_CTRL_C)
    proc = subprocess.run([sys.executable, "-m", "broken_ctrl_c", where], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(tmp_path)])})
    assert (proc.returncode, proc.stdout, proc.stderr) == (130, "", "interrupted\n")
