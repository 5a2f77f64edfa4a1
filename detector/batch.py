"""Many sources at once: ``--source`` given several times (or a folder / glob of videos), one worker per source.

Each source runs headless in its own worker process (``--workers N``, default: the CPU count) or in a Ray task
(``--engine ray``, ``detector.cluster``), with its own outputs in ``<run>/<source-name>/`` (annotated video, log,
summary); the run folder gets a combined ``summary.json`` (per source and total). A failing source reports its one
line and the others go on; the exit code is 2 if any failed.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import glob
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from detector.outputs import check_outputs
from detector.stats import COUNTS
from maskwatch.config import Config, load_config
from maskwatch.errors import UserError
from maskwatch.files import IMAGE_EXTS, VIDEO_EXTS, write_json_atomic

THREAD_KEYS = ("face_detector.threads", "classifier.threads")


@dataclass(frozen=True)
class Job:
    """One source of a batch and where its outputs go (``out_dir``/``output_name`` ...; a name "" = not written)."""

    name: str
    source: str
    out_dir: str
    config: str | None = None
    overrides: tuple[str, ...] = ()
    output_name: str = "annotated.mp4"
    log_name: str = "log.jsonl"
    summary_name: str = "summary.json"
    max_frames: int | None = None


INTERRUPTED = "interrupted"  # the error of a source Ctrl-C (or SIGTERM) stopped: counted apart from the failed ones


@dataclass
class Result:
    """What became of one job: its run summary, or the one-line error that stopped it (``summary`` then holds
    the frames done before it, if any)."""

    name: str
    source: str
    out_dir: str
    summary: dict[str, Any] | None = None
    error: str | None = None
    seconds: float = 0.0
    outputs: dict[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------- which sources


def expand_sources(specs: Sequence[str]) -> list[str]:
    """The ``--source`` values as a list of sources: a glob becomes its matches (sorted), a folder holding videos
    and no images becomes its videos (an image folder stays one source); anything else stays as it is (checked
    when its worker opens it)."""
    out: list[str] = []
    for spec in specs:
        path = Path(spec).expanduser()
        if "://" not in spec and glob.escape(spec) != spec and not path.exists():  # a pattern
            matches = sorted(glob.glob(str(path)))
            if not matches:
                raise UserError(f"--source {spec} matches no file")
            out.extend(matches)
        elif path.is_dir() and not any(p.suffix.lower() in IMAGE_EXTS for p in path.iterdir() if p.is_file()):
            videos = sorted(str(p) for p in path.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_EXTS)
            out.extend(videos or [spec])  # neither: the image-folder error of its run ("no images ...")
        else:
            out.append(spec)
    return out


def is_batch(specs: Sequence[str] | None) -> bool:
    """More than one source, a glob, or a folder of videos: the batch path; else the single-source run."""
    return bool(specs) and (len(specs) > 1 or expand_sources(specs) != list(specs))


def source_names(sources: Sequence[str]) -> list[str]:
    """A folder name per source: the file stem (``clip`` for clip.mp4), ``camera0``, ``stream1``; repeats get
    ``-2``, ``-3``, ..."""
    names: list[str] = []
    for i, spec in enumerate(sources):
        if spec.strip().isdigit():
            base = f"camera{spec.strip()}"
        elif "://" in spec:
            base = f"stream{i + 1}"
        else:
            base = Path(spec).expanduser().stem or f"source{i + 1}"
        name, n = base, 1
        while name in names:
            n += 1
            name = f"{base}-{n}"
        names.append(name)
    return names


def thread_overrides(workers: int, overrides: Sequence[str], cpus: int | None = None) -> tuple[str, ...]:
    """Split the cores between the workers (each runtime gets cores // workers threads, at least 1) unless
    ``--set`` chose the thread counts."""
    threads = max(1, (cpus or os.cpu_count() or 1) // max(workers, 1))
    given = {o.split("=", 1)[0].strip() for o in overrides}
    return tuple(overrides) + tuple(f"{key}={threads}" for key in THREAD_KEYS if key not in given)


def plan_jobs(args: argparse.Namespace, cfg: Config, workers: int) -> tuple[Path, list[Job]]:
    """The run folder (``--run-dir``, else ``<runs_dir>/batch-<time>``) and one job per source. ``--output``,
    ``--log`` and ``--summary`` give the file names inside each source's folder; ``--blur-faces`` is passed on as
    ``privacy.blur``."""
    sources = expand_sources(args.source)
    run_dir = Path(args.run_dir) if args.run_dir else cfg.output_path(cfg.paths.runs_dir) / time.strftime(
        "batch-%Y%m%d-%H%M%S")
    blur = [f"privacy.blur={args.blur_faces}"] if getattr(args, "blur_faces", None) else []
    overrides = thread_overrides(workers, [*args.overrides, *blur])
    config = str(Path(args.config).resolve()) if args.config else None
    names = {k: Path(v).name for k, v in (("output_name", args.output), ("log_name", args.log),
                                          ("summary_name", args.summary)) if v}  # fmt: skip
    jobs = [Job(name, src, str((run_dir / name).resolve()), config, overrides, max_frames=args.max_frames, **names)
            for name, src in zip(source_names(sources), sources, strict=True)]
    return run_dir, jobs


def check_job_outputs(jobs: Sequence[Job], combined_summary: Path, *, overwrite: bool) -> None:
    """The single run's output checks for every job (``check_outputs``: two outputs with one name, an existing file
    without ``--overwrite``, a folder that cannot be written) and the combined summary, before any worker starts."""
    for job in jobs:
        names = {"--output": job.output_name, "--log": job.log_name, "--summary": job.summary_name}
        check_outputs([job.source], {option: Path(job.out_dir) / name if name else None
                                     for option, name in names.items()}, overwrite=overwrite)  # fmt: skip
    check_outputs([], {"the combined summary": combined_summary}, overwrite=overwrite)


# ---------------------------------------------------------------- one source (in a worker)

_WORKER = {"running": False, "stopping": False}  # this worker process: a job running; Ctrl-C seen


def _stop_on_sigint(signum: int, frame: Any) -> None:
    """A local worker's SIGINT: the running job stops (``KeyboardInterrupt``, its files closed) and every job still
    queued ends at once as ``interrupted``; a second SIGINT (Ctrl-C reaches the worker and the driver passes it on)
    does not cut the closing of the files."""
    first = not _WORKER["stopping"]
    _WORKER["stopping"] = True
    if first and _WORKER["running"]:
        raise KeyboardInterrupt


_JOB = threading.Lock()  # held by a local worker while it runs a job (its outputs being written)
ORPHAN_CHECK_S = 1.0  # how often a local worker checks that its driver is still there


def init_worker(driver_pid: int) -> None:
    """The local engine's worker initializer: Ctrl-C (and SIGTERM, e.g. sent to the whole group) handled by
    ``_stop_on_sigint``; a worker whose driver is gone exits (``_exit_when_orphaned``). ``driver_pid`` comes from
    the driver: a worker may start after the driver died (its parent is then already another process)."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _stop_on_sigint)
    threading.Thread(target=_exit_when_orphaned, args=(driver_pid,), name="orphan-watch", daemon=True).start()


def _exit_when_orphaned(driver_pid: int) -> None:
    """A driver killed (SIGKILL, the OOM killer, a caller's ``Popen.kill``) left its workers waiting for jobs
    forever, models in memory: once the driver is gone, stop the running job as Ctrl-C does (its files closed and
    renamed), then exit."""
    while os.getppid() == driver_pid:
        time.sleep(ORPHAN_CHECK_S)
    os.kill(os.getpid(), signal.SIGINT)
    with _JOB:
        os._exit(1)


def run_local_job(job: Job) -> Result:
    """``run_job`` in a local worker, holding ``_JOB``."""
    with _JOB:
        return run_job(job)


@functools.cache
def _models(cfg: Config, video: bool) -> Any:
    """This worker process's face detector and classifier for ``cfg``, built on first use only."""
    from detector.pipeline import build_models

    return build_models(cfg, video=video)


def run_job(job: Job) -> Result:
    """Run one source headless into its folder; never raises (errors become ``Result.error``)."""
    from detector.draw import DrawStyle
    from detector.loop import run_loop
    from detector.pipeline import Pipeline
    from detector.sinks import Outputs
    from detector.sources import FrameSource, primed
    from detector.stats import RunStats

    if _WORKER["stopping"]:
        return Result(job.name, job.source, job.out_dir, error=INTERRUPTED)
    t0 = time.perf_counter()
    result = Result(job.name, job.source, job.out_dir)
    stats: RunStats | None = None
    _WORKER["running"] = True
    try:
        cfg = load_config(job.config, job.overrides)
        source = FrameSource(job.source, cfg)
        stats = RunStats(source=source.spec, skipped=source.skipped)
        out = Path(job.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {k: str(out / n) for k, n in (("video", job.output_name), ("log", job.log_name)) if n}
        raw = source.frames()
        with contextlib.closing(raw), contextlib.ExitStack() as stack:
            frames = primed(raw)
            video = source.kind != "images"
            pipeline = Pipeline.from_config(cfg, video=video, models=_models(cfg, video))  # a fresh tracker
            outputs = Outputs.open(stack, source, paths.get("video"), paths.get("log"))
            style = DrawStyle.from_config(cfg.draw, cfg.privacy.blur)
            run_loop(frames, pipeline, style=style, outputs=outputs, stats=stats, max_frames=job.max_frames)
        result.outputs = paths
    except UserError as exc:
        result.error = str(exc)
    except KeyboardInterrupt:
        result.error = INTERRUPTED
    except Exception as exc:  # one source's crash must not stop the batch: report it in one line
        result.error = f"{type(exc).__name__}: {exc}".splitlines()[0]
    finally:
        _WORKER["running"] = False
    if stats is not None and stats.frames:
        result.summary = stats.summary()
        if job.summary_name:
            path = Path(job.out_dir) / job.summary_name
            write_json_atomic(path, result.summary)
            result.outputs["summary"] = str(path)
    result.seconds = round(time.perf_counter() - t0, 3)
    return result


# ---------------------------------------------------------------- engines


def collect(jobs: Sequence[Job], futures: dict[Future[Result], int], on_done: Callable[[Result], None],
            worker: str) -> list[Result]:  # fmt: skip
    """Each job's result as it comes in (``on_done``; a dead ``worker`` gives a one-line error); in job order."""
    results: dict[int, Result] = {}
    for future in as_completed(futures):
        i = futures[future]
        try:
            results[i] = future.result()
        except Exception as exc:  # the worker died (killed, out of memory, node lost)
            job = jobs[i]
            results[i] = Result(job.name, job.source, job.out_dir, error=f"{worker} failed: {exc}".splitlines()[0])
        on_done(results[i])
    return [results[i] for i in range(len(jobs))]


class Interrupted(KeyboardInterrupt):
    """Ctrl-C stopped the batch; ``results``: every job's result, ``interrupted`` for those that did not finish."""

    def __init__(self, results: list[Result]) -> None:
        super().__init__()
        self.results = results


def results_so_far(jobs: Sequence[Job], futures: dict[Future[Result], int]) -> list[Result]:
    """After the pool stopped: each job's result, or ``interrupted`` (cancelled before it started, or its worker
    gone)."""
    results = [Result(job.name, job.source, job.out_dir, error=INTERRUPTED) for job in jobs]
    for future, i in futures.items():
        if future.done() and not future.cancelled() and future.exception() is None:
            results[i] = future.result()
    return results


def run_local(jobs: Sequence[Job], workers: int, on_done: Callable[[Result], None]) -> list[Result]:
    """Each job in a process of a spawn-context pool of ``workers`` processes; results in job order."""
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=ctx, initializer=init_worker,
                             initargs=(os.getpid(),)) as pool:
        futures = {pool.submit(run_local_job, job): i for i, job in enumerate(jobs)}
        try:
            return collect(jobs, futures, on_done, "worker")
        except KeyboardInterrupt:
            # the pool's workers, also when only this process got it (kill -INT, TERM)
            for process in multiprocessing.active_children():
                with contextlib.suppress(OSError):
                    os.kill(process.pid, signal.SIGINT)  # the workers close their files; queued jobs end at once
            pool.shutdown(wait=True, cancel_futures=True)
            raise Interrupted(results_so_far(jobs, futures)) from None


# ---------------------------------------------------------------- the combined summary


def combine(results: Sequence[Result], wall_s: float) -> dict[str, Any]:
    """Per-source results and the totals (frames, faces by label, the share without mask of the labelled faces as
    in each source's summary, failed, interrupted (by Ctrl-C; not failed), wall seconds, frames / wall s)."""
    done = [r.summary for r in results if r.summary]
    total: dict[str, Any] = {k: sum(s.get(k, 0) for s in done) for k in COUNTS}
    labelled = total["mask"] + total["no_mask"] + total["incorrect"]
    total["share_no_mask"] = round(total["no_mask"] / labelled, 4) if labelled else None
    interrupted = sum(r.error == INTERRUPTED for r in results)
    total.update(sources=len(results), failed=sum(r.error is not None for r in results) - interrupted,
                 interrupted=interrupted, wall_s=round(wall_s, 2),
                 fps=round(total["frames"] / wall_s, 2) if wall_s > 0 else None)
    return {"sources": [asdict(r) for r in results], "total": total}


def format_combined(combined: dict[str, Any]) -> str:
    """One line per source, then the total."""
    lines = []
    for r in combined["sources"]:
        s = r["summary"]
        counts = (f"{s['frames']} frames, {s['faces']} faces ({s['mask']} mask, {s['no_mask']} no mask), "
                  f"{s['fps_mean']} FPS" if s else "")
        end = r["error"] if r["error"] == INTERRUPTED else f"error: {r['error']}"
        lines.append(f"{r['name']}: " + (end + (f" (after {counts})" if s else "") if r["error"] else counts))
    t = combined["total"]
    ended = f"{t['failed']} failed" + (f", {t['interrupted']} interrupted" if t["interrupted"] else "")
    lines.append(f"total: {t['sources']} sources ({ended}), {t['frames']} frames, {t['faces']} faces "
                 f"({t['mask']} mask, {t['no_mask']} no mask) in {t['wall_s']:.1f} s ({t['fps']} frames/s)")
    return "\n".join(lines)


def run_batch(args: argparse.Namespace, cfg: Config) -> int:
    """``python -m detector.webcam --source A --source B ...``: every source, combined summary, exit code."""
    if not args.source:
        raise UserError("a batch needs --source (several times, a glob or a folder of videos)")
    workers = args.workers if args.workers is not None else (os.cpu_count() or 1)  # 0: refused, not all CPUs
    if workers < 1:
        raise UserError(f"--workers must be at least 1, got {args.workers}")
    # a Ray task holds one CPU: one thread per runtime (as plan_jobs gives when workers = cores)
    run_dir, jobs = plan_jobs(args, cfg, workers if args.engine == "local" else (os.cpu_count() or 1))
    check_job_outputs(jobs, run_dir / "summary.json", overwrite=args.overwrite)
    bar = tqdm(total=len(jobs), desc="sources", unit="source", file=sys.stderr,
               disable=True if args.quiet else None)
    failed: list[str] = []

    def on_done(result: Result) -> None:
        if result.error and result.error != INTERRUPTED:
            failed.append(result.name)
            bar.write(f"error: {result.name} ({result.source}): {result.error}", file=sys.stderr)
        bar.set_postfix_str(f"failed {len(failed)}", refresh=False)
        bar.update(1)

    t0 = time.perf_counter()
    interrupted = False
    with bar:
        try:
            if args.engine == "ray":
                from detector.cluster import run_ray

                results = run_ray(jobs, cfg, address=args.ray_address, workers=args.workers, on_done=on_done)
            else:
                results = run_local(jobs, workers, on_done)
        except Interrupted as exc:  # the sources' files are closed: say what each one got, then exit 130
            results, interrupted = exc.results, True
    combined = combine(results, time.perf_counter() - t0)
    write_json_atomic(run_dir / "summary.json", combined)
    print(format_combined(combined))
    print(f"outputs: {run_dir}/<source>/, combined summary: {run_dir / 'summary.json'}")
    if interrupted:
        raise KeyboardInterrupt
    return 2 if any(r.error for r in results) else 0  # also a source stopped alone (its worker killed -INT)
