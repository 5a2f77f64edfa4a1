"""Ctrl-C outside a command's ``maskwatch.cli.run``: before it, the same ``interrupted`` line and exit code 130, no
traceback; after it, while the program exits, ignored.

A command's modules take a few tenths of a second to import (numpy, OpenCV, ...) before ``run`` catches Ctrl-C;
there Python would print a ``KeyboardInterrupt`` traceback. ``guard_start()`` (called by the command packages'
``__init__`` and by ``maskwatch``'s: the first project code of every command) installs a SIGINT handler for that
time, only while the program is still importing from its top level (``python -m``, a console script, a script):
a library use of these modules (pytest, the REPL, a worker process) keeps Python's own Ctrl-C, and so does
``run`` (``keyboard_interrupts()``). Python's own start (``site``, the first ~30 ms) comes before any project code
and is not covered; nor are scripts' imports before their first project import (``python tools/x.py``: OpenCV).

After a command's ``run`` returned, its work is done and reported (the final lines printed, the files closed): a
Ctrl-C while the program then exits (thread joins, atexit callbacks, the libraries' teardown: TensorFlow's takes
seconds) is ignored and the exit code stays the command's own (0 after a complete run), not 130 with an
``interrupted`` line that would tell the user the work was cut short. Python's own Ctrl-C there printed ``Exception
ignored ... KeyboardInterrupt`` tracebacks, or (in the teardown after the atexit callbacks, where Python's handlers
no longer run) killed the process silently by the signal (exit status 130 in a shell).

During ``run``, a Ctrl-C that does not reach it as a ``KeyboardInterrupt`` still ends it as ``interrupted``, 130: one
that a finalizer got (Python prints ``Exception ignored``) or that C code printed instead of raising comes again
(``sys.unraisablehook``, ``sys.excepthook``); one wrapped in another error (``broke``) is one; and one that left
``exec``/``eval`` of a string (namedtuple's, dataclasses' code) no longer makes ``python -m`` kill itself by SIGINT
at its end (``_forget_handled_ctrl_c``). C code that clears the error (``PyErr_Clear``) still loses it.
"""

from __future__ import annotations

import _thread
import atexit
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType, TracebackType
from typing import Any

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
        if _main_body(f):
            continue
        return f.f_globals.get("__name__") in _IMPORT_MODULES
    return False


def _main_body(frame: FrameType) -> bool:
    """Whether ``frame`` runs the main module's body, or is runpy's that runs it (``python -m``)."""
    name = frame.f_globals.get("__name__")
    return name == "runpy" or (name == "__main__" and frame.f_code.co_name == "<module>")


def guard_start() -> None:
    """Install the guard if this program is starting (see the module's doc) and Ctrl-C is still Python's own."""
    if (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler and _starting(sys._getframe(1))):
        signal.signal(signal.SIGINT, _exit_interrupted)


def _keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    """Python's Ctrl-C (``KeyboardInterrupt``), remembered for ``broke``."""
    global _lost
    _SEEN.set()
    _lost = False
    signal.default_int_handler(signum, frame)


def _after_run(signum: int, frame: FrameType | None) -> None:
    """After a command's ``run``: Ctrl-C while the program exits is ignored (see the module's doc); while it goes
    on (a script that called a command's ``main``, then runs its own code), Python's ``KeyboardInterrupt``."""
    if not _exiting(frame):
        signal.default_int_handler(signum, frame)


def _exiting(frame: FrameType | None) -> bool:
    """Whether the main module's code is over: the outermost frame is not its body (nor runpy's) but the exit's
    (``threading._shutdown`` joining threads, an atexit callback, a finalizer), or there is no frame at all."""
    outermost = frame
    while frame is not None:
        outermost, frame = frame, frame.f_back
    return outermost is None or not _main_body(outermost)


def _ignore_at_exit() -> None:
    """An atexit callback (registered after a command's ``run``, so among the first to run): Ctrl-C ignored from
    here to the process's end, also in the teardown after the atexit callbacks, where Python resets a handler of
    its own to the system's (the signal would kill the process) but keeps an ignored signal ignored."""
    ours = (_after_run, _keyboard_interrupt)  # the latter if a Ctrl-C at run's very end cut its finally short
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) in ours:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def keyboard_interrupts() -> Iterator[None]:
    """Inside (``maskwatch.cli.run``): the guard ends, Ctrl-C is a ``KeyboardInterrupt`` (the command stops and
    closes its files), and ``broke`` knows whether one came. After, in a command (the guard was on): ``_after_run``
    and ``_ignore_at_exit``; in a library use (pytest, a worker): Python's Ctrl-C again."""
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGINT) if main else None
    command = previous in (_exit_interrupted, _after_run)
    swap = command or previous is signal.default_int_handler
    _SEEN.clear()
    hooks = {"unraisablehook": _unraisable_ctrl_c(sys.unraisablehook), "excepthook": _printed_ctrl_c(sys.excepthook)}
    before = {name: getattr(sys, name) for name in hooks}
    if swap:
        signal.signal(signal.SIGINT, _keyboard_interrupt)
        for name, hook in hooks.items():
            setattr(sys, name, hook)
    try:
        yield
    finally:
        for name, hook in hooks.items():
            if swap and getattr(sys, name) is hook:
                setattr(sys, name, before[name])
        if main:
            _forget_handled_ctrl_c()
        if swap and signal.getsignal(signal.SIGINT) is _keyboard_interrupt:
            if command:
                atexit.unregister(_ignore_at_exit)  # once, and registered last: among the first callbacks to run
                atexit.register(_ignore_at_exit)
            signal.signal(signal.SIGINT, _after_run if command else signal.default_int_handler)
        if swap:
            _raise_lost_ctrl_c()


def _raise_lost_ctrl_c() -> None:
    """At the run's end, the ``KeyboardInterrupt`` of a Ctrl-C that did not reach it, if it has not come again."""
    global _lost
    if _lost:
        _lost = False
        raise KeyboardInterrupt


def _unraisable_ctrl_c(previous: Callable[[Any], object]) -> Callable[[Any], None]:
    """A ``sys.unraisablehook`` for a command's run: a Ctrl-C that Python could not raise, as it landed in a finalizer
    (``__del__``: ai_edge_litert's ``Interpreter``; a weakref callback: importlib's module locks), is ``_lost_ctrl_c``
    (Python printed ``Exception ignored ... KeyboardInterrupt`` and the run went on, to exit 0); any other exception
    goes to ``previous``."""

    def hook(unraisable: Any) -> None:
        if issubclass(unraisable.exc_type, KeyboardInterrupt):
            _lost_ctrl_c()
        else:
            previous(unraisable)

    return hook


def _printed_ctrl_c(previous: Callable[..., object]) -> Callable[..., None]:
    """A ``sys.excepthook`` for a command's run: there, only C code that prints the error it got instead of raising
    it calls the hook (protobuf's, as ``descriptor_pool.Default`` got the Ctrl-C while TensorFlow imported: a
    ``KeyboardInterrupt`` traceback, and the run went on); a ``KeyboardInterrupt`` is ``_lost_ctrl_c``."""

    def hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            _lost_ctrl_c()
        else:
            previous(exc_type, exc, tb)

    return hook


def _lost_ctrl_c() -> None:
    """A Ctrl-C that did not reach the run comes again once the hook that got it returned (a helper thread), or at
    the latest as the run ends (``_raise_lost_ctrl_c``)."""
    global _in_hook, _lost
    _lost = _in_hook = True
    threading.Thread(target=_ctrl_c_again, name="maskwatch-ctrl-c", daemon=True).start()
    _in_hook = False  # the last statements: no bytecode of the hooks runs SIGINT's handler after it


_lost = False  # a Ctrl-C did not reach the run and has not come again yet
_in_hook = False  # the main thread is in one of the hooks: a Ctrl-C there would be lost again


def _ctrl_c_again() -> None:
    """SIGINT's handler again in the main thread, at its next bytecode after the hook (``_thread.interrupt_main``:
    for a Python handler only, never the system's default that would kill the process)."""
    while _in_hook:
        time.sleep(0.001)
    if _lost:
        _thread.interrupt_main()


def _forget_handled_ctrl_c() -> None:
    """Clear CPython's "uncaught Ctrl-C" mark: a ``KeyboardInterrupt`` that left code run by ``exec``/``eval`` of a
    string (namedtuple's and dataclasses' generated methods, while numpy or TensorFlow import) sets it, even when
    ``run`` then handles the Ctrl-C, and at the end of a ``python -m`` program Python then kills itself by SIGINT
    (exit -2, after ``interrupted``, instead of 130; or after a run that went on, instead of its own code). Every
    ``eval`` of a string resets the mark first (CPython's ``run_eval_code_obj``): this one does only that, no ctypes on
    the private ``_Py_UnhandledKeyboardInterrupt``; on a Python without the mark it does nothing."""
    with contextlib.suppress(Exception):
        eval("None", {})


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
    """Whether a Ctrl-C broke ``exc``: it came from a ``KeyboardInterrupt`` (Python 3.11 wraps one raised in a
    ``__set_name__`` into ``RuntimeError: Error calling __set_name__``, as numpy's import met it), or it is an
    ``ImportError`` (or came from one) after a Ctrl-C: numpy's and ONNX Runtime's C code turn a Ctrl-C during their
    import into ``ImportError: import numpy failed``, which a command would report as a missing package."""
    seen: set[int] = set()
    chain: BaseException | None = exc
    imports = False
    while chain is not None and id(chain) not in seen:
        if isinstance(chain, KeyboardInterrupt):
            return True
        imports = imports or isinstance(chain, ImportError)
        seen.add(id(chain))
        chain = chain.__cause__ or chain.__context__
    return imports and _SEEN.is_set()
