"""A batch's local workers exit when their driver is killed (they waited for jobs forever, models in memory)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DRIVER = """
import multiprocessing, os, signal, time
from concurrent.futures import ProcessPoolExecutor
from detector.batch import init_worker
pool = ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn"),
                           initializer=init_worker, initargs=(os.getpid(),))
pool.submit(os.getpid).result()  # one worker up
pool.submit(time.sleep, 60)  # and busy: the next job starts a second one
pool.submit(os.getpid)
print(" ".join(map(str, pool._processes)), flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer or a caller's Popen.kill(), while the second one starts
"""


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
def test_the_workers_of_a_killed_driver_exit(ended):
    with subprocess.Popen([sys.executable, "-c", DRIVER], cwd=ROOT, stdout=subprocess.PIPE, text=True) as proc:
        workers = {int(pid) for pid in proc.stdout.readline().split()}  # not to EOF: the workers hold the pipe
        assert proc.wait(timeout=60) == -9 and len(workers) == 2
    deadline = time.monotonic() + 10
    while not all(map(ended, workers)) and time.monotonic() < deadline:
        time.sleep(0.2)
    alive = [pid for pid in workers if not ended(pid)]
    for pid in alive:  # the old code's orphans: not left running after the test
        subprocess.run(["kill", "-9", str(pid)], check=False)
    assert alive == []
