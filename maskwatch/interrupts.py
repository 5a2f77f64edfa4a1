"""Ctrl-C before a command's ``maskwatch.cli.run``: the same ``interrupted`` line and exit code 130, no traceback.

A command's modules take a few tenths of a second to import (numpy, OpenCV, ...) before ``run`` catches Ctrl-C;
there Python would print a ``KeyboardInterrupt`` traceback. ``guard_start()`` (called by the command packages'
``__init__`` and by ``maskwatch``'s: the first project code of every command) installs a SIGINT handler for that
time, only while the program is still importing from its top level (``python -m``, a console script, a script):
a library use of these modules (pytest, the REPL, a worker process) keeps Python's own Ctrl-C, and so does
``run`` (``keyboard_interrupts()``). Python's own start (``site``, the first ~30 ms) comes before any project code
and is not covered; nor are scripts' imports before their first project import (``python tools/x.py``: OpenCV).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType

EXIT_CODE = 130  # as after a Ctrl-C later in a run (maskwatch.cli.run)
_IMPORT_MODULES = frozenset({"runpy", "importlib", "importlib.util", "importlib._bootstrap",
                             "importlib._bootstrap_external", "_frozen_importlib", "_frozen_importlib_external"})
_SEEN = threading.Event()  # a Ctrl-C came during the command's run


def _exit_interrupted(signum: int, frame: FrameType | None) -> None:
    """The guard: while the program starts, one line and exit code 130 at once (not an exception: nothing is open
    yet, and a ``SystemExit`` raised here was once lost while a module compiled: the command printed ``interrupted``
    and ran to its end); later (a program that imported these modules, then went on) Python's ``KeyboardInterrupt``."""
    if not _starting(frame):
        signal.signal(signal.SIGINT, signal.default_int_handler)  # the imports are over: Python's Ctrl-C from now on
        signal.default_int_handler(signum, frame)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    with contextlib.suppress(OSError):
        os.write(2, b"interrupted\n")
    os._exit(EXIT_CODE)


def _starting(frame: FrameType | None) -> bool:
    """Whether the program is importing from its top level: an import that the main module's body started, directly
    or through other imports only (not from one of its functions, as pytest does), in a non-interactive interpreter.
    The main module's own statements are not: a user's script that imports the project and then runs its own loop
    keeps Python's Ctrl-C (its ``finally`` blocks run)."""
    if hasattr(sys, "ps1") or sys.flags.interactive:
        return False
    stack = []
    while frame is not None:
        stack.append(frame)
        frame = frame.f_back
    for f in reversed(stack):  # outermost first: runpy, the main module's body, then an import
        name = f.f_globals.get("__name__")
        if name == "runpy" or (name == "__main__" and f.f_code.co_name == "<module>"):
            continue
        return name in _IMPORT_MODULES
    return False


def guard_start() -> None:
    """Install the guard if this program is starting (see the module's doc) and Ctrl-C is still Python's own."""
    if (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler and _starting(sys._getframe(1))):
        signal.signal(signal.SIGINT, _exit_interrupted)


def _keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    """Python's Ctrl-C (``KeyboardInterrupt``), remembered for ``broke``."""
    _SEEN.set()
    signal.default_int_handler(signum, frame)


@contextlib.contextmanager
def keyboard_interrupts() -> Iterator[None]:
    """Inside (``maskwatch.cli.run``): the guard ends, Ctrl-C is a ``KeyboardInterrupt`` (the command stops and
    closes its files), and ``broke`` knows whether one came."""
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGINT) if main else None
    swap = previous in (signal.default_int_handler, _exit_interrupted)
    _SEEN.clear()
    if swap:
        signal.signal(signal.SIGINT, _keyboard_interrupt)
    try:
        yield
    finally:
        if swap and signal.getsignal(signal.SIGINT) is _keyboard_interrupt:
            signal.signal(signal.SIGINT, signal.default_int_handler)


HELD_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # the stop signals a command turns into ``KeyboardInterrupt``


@contextlib.contextmanager
def held() -> Iterator[None]:
    """Inside: a Ctrl-C or SIGTERM (and Ray's cancel, which calls the SIGINT handler) waits for the block's end, so
    that what the block writes together stays together (a frame's video frame, log line and alerts). Only signals
    with a Python handler are held, and only in the main thread; more than one is handled once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[tuple[int, FrameType | None]] = []
    previous = {s: h for s in HELD_SIGNALS if callable(h := signal.getsignal(s))}
    for signum in previous:
        signal.signal(signum, lambda got, frame: pending.append((got, frame)))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if pending:
            signum, frame = pending[0]
            previous[signum](signum, frame)


def broke(exc: BaseException) -> bool:
    """Whether ``exc`` is an ``ImportError`` (or came from one) after a Ctrl-C: numpy's and ONNX Runtime's C code
    turn a Ctrl-C during their import into ``ImportError: import numpy failed``, which a command would report as a
    missing package."""
    seen: set[int] = set()
    chain: BaseException | None = exc
    while chain is not None and id(chain) not in seen:
        if isinstance(chain, ImportError):
            return _SEEN.is_set()
        seen.add(id(chain))
        chain = chain.__cause__ or chain.__context__
    return False
