"""``python -m detector.webcam``: the real-time mask detector (webcam, video files, streams, images).

Each frame: find faces (CenterFace by default; in video every few frames, tracked between), classify the faces that
need it in one batch (Mask / No Mask), draw labelled boxes and an FPS overlay, then show and / or write the frame.
``q`` or Esc in the window quits; so does Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from detector.batch import is_batch, run_batch
from detector.draw import DrawStyle
from detector.live import pipeline_for
from detector.loop import Window, run_loop
from detector.outputs import check_outputs
from detector.progress import expected_frames, progress_name, with_progress
from detector.sinks import Outputs
from detector.sources import FrameSource, primed
from detector.stats import RunStats, format_summary

if TYPE_CHECKING:
    from detector.alerts import Alerts
    from detector.web import Viewer
from maskwatch.cli import Parser, add_config_args, config_from_args, run
from maskwatch.config import PROJECT_ROOT, Config
from maskwatch.errors import UserError
from maskwatch.files import check_writable, write_json_atomic

DEMO_VIDEO = "demo/demo.mp4"
DEMO_VIDEO_HINT = "git checkout -- demo/demo.mp4, or rebuild it with python -m demo.make_demo"
WEB_HOST = "127.0.0.1"  # the web view binds here when --serve / web.serve gives only a port


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m detector.webcam", description=__doc__,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", action="append", help="camera index, video file, image file or folder, or "
                        "rtsp:// / http(s):// URL (default: stream.source in the config, camera 0). Several --source, "
                        "a glob or a folder of videos: a batch, one worker per source (docs/usage.md)")
    parser.add_argument("--no-display", action="store_true", help="do not open a window (headless)")
    parser.add_argument("--output", metavar="PATH", help="annotated video (.mp4), or a folder for image sources")
    parser.add_argument("--log", metavar="PATH.jsonl|PATH.csv",
                        help="per-frame log: one JSON line per frame (boxes, labels, P(mask)); .csv: one row per face")
    parser.add_argument("--summary", metavar="PATH.json", help="save the end-of-run summary as JSON")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files (else refused)")
    parser.add_argument("--max-frames", metavar="N", type=int, help="stop after N frames")
    parser.add_argument("--alerts", action="store_true", help="alert on unmasked people (alerts.* in the config)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar / status line on stderr (shown "
                        "headless when stderr is a terminal)")
    parser.add_argument("--blur-faces", nargs="?", const="all", choices=("none", "all", "masked"),
                        help="blur faces in the shown and saved frames: all (the default of the flag), or masked = "
                        "all but no_mask (default: privacy.blur in the config)")
    parser.add_argument("--serve", metavar="[HOST:]PORT", help="serve the live web view (web.* in the config; "
                        "a non-loopback HOST needs the token printed at start)")
    parser.add_argument("--demo", action="store_true", help=f"run on {DEMO_VIDEO} headless; outputs in runs/demo/")
    batch = parser.add_argument_group("batch (several sources; --output/--log/--summary name the files per source)")
    batch.add_argument("--workers", metavar="N", type=int, help="sources processed at once (default: CPU count)")
    batch.add_argument("--run-dir", metavar="DIR", help="outputs in DIR/<source>/ (default: runs/batch-<time>)")
    batch.add_argument("--engine", choices=("local", "ray"), default="local",
                       help="local worker processes, or Ray tasks (pip install 'maskwatch[cluster]')")
    batch.add_argument("--ray-address", metavar="ADDR", help="Ray cluster to join, e.g. ray://head:10001 or auto "
                       "(default: start a local Ray instance)")
    add_config_args(parser)
    return parser


def apply_demo(args: argparse.Namespace, cfg: Config) -> None:
    """``--demo``: the demo video in, annotated video, summary and log out under ``<runs_dir>/demo``."""
    video = PROJECT_ROOT / DEMO_VIDEO
    if not video.is_file():
        raise UserError(f"the demo video {DEMO_VIDEO} is missing: restore it with {DEMO_VIDEO_HINT}")
    out = cfg.output_path(cfg.paths.runs_dir) / "demo"
    args.source = str(video)
    args.no_display = True
    args.output = args.output or str(out / "annotated.mp4")
    args.summary = args.summary or str(out / "summary.json")
    args.log = args.log or str(out / "log.jsonl")


def _check_batch(args: argparse.Namespace, cfg: Config) -> None:
    """A batch has no live view and no alerts: asking for them is an error, not silently nothing."""
    for asked, what in ((args.serve or cfg.web.serve, "--serve (web.serve)"),
                        (args.alerts or cfg.alerts.enabled, "--alerts (alerts.enabled)")):  # fmt: skip
        if asked:
            raise UserError(f"{what} works with one source, not a batch: run that source on its own")


def _main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = config_from_args(args)
    if args.max_frames is not None and args.max_frames < 1:
        raise UserError(f"--max-frames must be at least 1, got {args.max_frames}")
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.default_int_handler)  # `kill` stops a run (a batch) like Ctrl-C does
    if args.demo:
        apply_demo(args, cfg)
    elif args.engine == "ray" or is_batch(args.source):
        _check_batch(args, cfg)
        return run_batch(args, cfg)
    elif args.source:
        args.source = args.source[0]
    source = FrameSource(args.source if args.source is not None else cfg.stream.source, cfg)
    display = cfg.stream.display and not args.no_display
    check_outputs([source.spec], {"--output": args.output, "--log": args.log, "--summary": args.summary},
                  overwrite=args.overwrite or args.demo, images=source.kind == "images")  # before models load
    stats = RunStats(source=source.spec, skipped=source.skipped)
    raw_frames = source.frames()
    with contextlib.closing(raw_frames), contextlib.ExitStack() as stack:
        frames = primed(raw_frames)
        if not display and not args.quiet:
            frames = stack.enter_context(contextlib.closing(with_progress(
                frames, stats, name=progress_name(source), total=expected_frames(source, args.max_frames))))
        show = stack.enter_context(Window()) if display else None
        pipeline = pipeline_for(cfg, source.kind)  # live for cameras/streams, in order for videos, images untracked
        stack.callback(getattr(pipeline, "close", lambda: None))
        card_threshold = getattr(pipeline.classify, "threshold", cfg.classifier.threshold)
        if abs(card_threshold - cfg.classifier.threshold) > 1e-9:
            print(f"note: labelling with classifier.threshold={cfg.classifier.threshold:g}; the model card "
                  f"suggests {card_threshold:g} (--set classifier.threshold={card_threshold:g})")
        outputs = Outputs.open(stack, source, args.output, args.log)
        alerts = _alerts(cfg, args, source, stack) if cfg.alerts.enabled or args.alerts else None
        viewer = _viewer(cfg, args, alerts, stack) if args.serve or cfg.web.serve else None
        try:
            style = DrawStyle.from_config(cfg.draw, args.blur_faces or cfg.privacy.blur)
            run_loop(frames, pipeline, style=style, outputs=outputs, stats=stats, show=show,
                     max_frames=args.max_frames, alerts=alerts, viewer=viewer)
        finally:
            if hasattr(frames, "close"):
                frames.close()  # the progress bar ends before the summary
            _report(stats, args, source.kind)
    return 0


def _alerts(cfg: Config, args: argparse.Namespace, source: FrameSource, stack: contextlib.ExitStack) -> Alerts:
    """The configured alerts, closed by ``stack`` (then their summary line is printed)."""
    from detector.alerts import Alerts, snapshot_folder  # only for runs with alerts

    if source.kind == "images":  # video is tracked even with tracking.detect_every 1
        print("alerts: no alert can fire: they need track ids (a video, camera or stream source, not images)")
    folder = snapshot_folder(cfg.alerts, cfg.output_path(cfg.paths.runs_dir), log=args.log, output=args.output)
    folder = cfg.output_path(folder) if folder is not None else None
    if folder is not None:  # refused now, not found out at the first alert
        check_writable("alerts.snapshots_dir" if cfg.alerts.snapshots_dir else "alert snapshots", folder)
    alerts = Alerts.from_config(cfg.alerts, folder)

    def summary() -> None:
        saved = any(e["snapshot_frame"] for e in alerts.events)  # none if every save failed
        print(alerts.summary_line() + (f"; snapshots in {folder}" if folder and saved else ""))

    stack.callback(summary)
    return stack.enter_context(alerts)


def _viewer(cfg: Config, args: argparse.Namespace, alerts: Alerts | None, stack: contextlib.ExitStack) -> Viewer:
    """The web view's holder, its server started now and stopped by ``stack``."""
    try:
        from detector.web import Viewer, WebServer, parse_serve  # the optional extra [web] (aiohttp)
    except ModuleNotFoundError as exc:
        if exc.name != "aiohttp":
            raise
        raise UserError("the web view (--serve) needs aiohttp: pip install 'maskwatch[web]'") from None
    host, port = parse_serve(args.serve or cfg.web.serve, WEB_HOST)
    snapshots = alerts.snapshots.folder if alerts is not None and alerts.snapshots is not None else None
    viewer = Viewer(snapshots_dir=snapshots)
    server = stack.enter_context(WebServer(viewer, host, port))
    stack.callback(viewer.finish)
    print(f"web view: {server.url}" + ("  (the token is needed off this machine)" if server.token else ""),
          flush=True)
    return viewer


def _report(stats: RunStats, args: argparse.Namespace, kind: str) -> None:
    """Print the summary and where the outputs are; save the summary JSON if asked."""
    if stats.frames == 0:
        return
    summary = stats.summary()
    print(format_summary(summary))
    if args.summary:
        write_json_atomic(args.summary, summary)
    for what, path in (("images" if kind == "images" else "video", args.output),
                       ("log", args.log), ("summary", args.summary)):
        if path:
            print(f"{what}: {path}")


def main(argv: Sequence[str] | None = None) -> int:
    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
