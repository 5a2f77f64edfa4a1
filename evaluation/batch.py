"""``python -m evaluation.batch``: batch speed-up by worker count, with the logs compared.

Runs ``python -m detector.webcam --source COPY1 ... --workers N`` on ``--copies`` copies of a video for each
``--workers`` value, alternating the values ``--rounds`` times (the machine may be shared: compare the ratio of
runs made side by side), then prints the wall and CPU seconds (on a busy machine a second worker may find no idle
core), the speed-up over the first value, the load average, and whether every run wrote byte-identical logs.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from maskwatch.cli import Parser, run
from maskwatch.config import PROJECT_ROOT
from maskwatch.errors import UserError


def run_once(videos: list[Path], workers: int, run_dir: Path, extra: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system of the command and its workers) of one batch run: start-up, models,
    every video."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    argv = [sys.executable, "-m", "detector.webcam", *(a for v in videos for a in ("--source", str(v))),
            "--workers", str(workers), "--run-dir", str(run_dir), "--quiet", *extra]
    t0 = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))}
    with subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=run_dir.parent,
                          env=env) as proc:  # fmt: skip
        try:
            _, stderr = proc.communicate()
        except KeyboardInterrupt:  # not subprocess.run's SIGKILL: the batch stops its workers and closes its files
            proc.send_signal(signal.SIGINT)
            proc.wait()
            raise
    wall_s = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    if proc.returncode != 0:
        last = (stderr.strip().splitlines() or ["no output"])[-1]
        raise UserError(f"batch run failed ({proc.returncode}): {last.removeprefix('error: ')}")
    return wall_s, cpu_s


def logs(run_dir: Path) -> dict[str, bytes]:
    return {p.parent.name: p.read_bytes() for p in sorted(run_dir.glob("*/log.jsonl"))}


def _main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m evaluation.batch", description=__doc__,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", default=str(PROJECT_ROOT / "demo" / "demo.mp4"), help="the video to copy")
    parser.add_argument("--copies", type=int, default=4, help="videos in the batch (default 4)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts (default 1 2)")
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds (default 1)")
    parser.add_argument("--max-frames", type=int, help="frames per video (default: all)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override passed to every run (e.g. face_detector.threads=1)")
    args = parser.parse_args(argv)
    if min(args.copies, args.rounds, *args.workers) < 1:
        raise UserError("--copies, --rounds and --workers must be at least 1")
    if not Path(args.video).is_file():
        raise UserError(f"video not found: {args.video}")
    extra = ["--max-frames", str(args.max_frames)] if args.max_frames else []
    extra += [a for o in args.set for a in ("--set", o)]
    with tempfile.TemporaryDirectory(prefix="maskwatch-batch-") as tmp:
        root = Path(tmp)
        videos = [Path(shutil.copy(args.video, root / f"video{i + 1}{Path(args.video).suffix}"))
                  for i in range(args.copies)]
        walls: dict[int, list[float]] = {w: [] for w in args.workers}
        cpus: dict[int, list[float]] = {w: [] for w in args.workers}
        reference: dict[str, bytes] | None = None
        identical = True
        print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        for r in range(args.rounds):
            for w in args.workers:
                run_dir = root / f"r{r}-w{w}"
                wall_s, cpu_s = run_once(videos, w, run_dir, extra)
                walls[w].append(wall_s)
                cpus[w].append(cpu_s)
                got = logs(run_dir)
                reference = reference or got
                identical &= got == reference and len(got) == args.copies
                print(f"round {r + 1}, {w} worker(s): {wall_s:.1f} s wall, {cpu_s:.1f} s CPU "
                      f"(load {os.getloadavg()[0]:.2f})", flush=True)
        base = statistics.median(walls[args.workers[0]])
        cores_used = statistics.median(cpus[args.workers[0]]) / base
        print(f"{args.workers[0]} worker(s) kept {cores_used:.2f} of {os.cpu_count()} cores busy: more workers can "
              f"speed it up at most {(os.cpu_count() or 1) / cores_used:.2f}x")
        for w in args.workers:
            med = statistics.median(walls[w])
            print(f"{w} worker(s): median {med:.1f} s wall, speed-up {base / med:.2f}x over {args.workers[0]}")
        print(f"logs identical across runs: {'yes' if identical else 'NO'}")
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    return 0 if identical else 1


def main(argv: list[str] | None = None) -> int:
    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
