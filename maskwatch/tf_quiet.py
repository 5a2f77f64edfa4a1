"""``import tensorflow`` without the C++ start-up notices it writes to stderr (absl's "All log messages before
absl::InitializeLog() ...", oneDNN's and the CPU features' INFO lines), which ``TF_CPP_MIN_LOG_LEVEL`` does not
silence; any other line written during the import is passed on."""

from __future__ import annotations

import os
import re
import sys
import tempfile
from types import ModuleType

NOTICE = re.compile(r"WARNING: All log messages before absl::InitializeLog\(\)|I\d{4} |To enable the following "
                    r"instructions:")  # fmt: skip


def without_notices(text: str) -> str:
    """``text`` without the lines that are TensorFlow's start-up notices (pure)."""
    return "".join(line for line in text.splitlines(keepends=True) if not NOTICE.match(line))


def import_tensorflow() -> ModuleType:
    """The ``tensorflow`` module, imported with its start-up notices dropped from stderr (file descriptor 2)."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            sys.stderr.write(without_notices(captured.read().decode(errors="replace")))
            sys.stderr.flush()
    return tensorflow
