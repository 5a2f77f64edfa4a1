"""``maskwatch.tf_quiet``: TensorFlow imported without its C++ start-up notices on stderr."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from maskwatch.tf_quiet import without_notices

ROOT = Path(__file__).resolve().parents[1]
NOTICES = """WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1796685364.719590   14453 port.cc:153] oneDNN custom operations are on. You may see slightly different
I0000 00:00:1796685400.543315   14769 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use
To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow with the flags.
"""


def test_only_the_start_up_notices_are_dropped():
    other = "E0000 00:00:1796685364.7 14453 cuda.cc:1] a real error\nW0000 a warning\nsome text\n"
    assert without_notices(NOTICES) == ""
    first, *rest = NOTICES.splitlines(keepends=True)
    assert without_notices(first + other + "".join(rest)) == other


def test_import_tensorflow_writes_no_notice_and_keeps_stderr_working():
    code = ("import sys; from maskwatch.tf_quiet import import_tensorflow; tf = import_tensorflow(); "
            "print('after', tf.__name__, file=sys.stderr)")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stderr == "after tensorflow\n", done.stderr[-2000:]
