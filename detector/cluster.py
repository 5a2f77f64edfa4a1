"""``--engine ray``: the batch as Ray tasks, one per source, on a local Ray instance or a cluster (``--ray-address``).

The driver reads the model files (face detector, classifier card and weights) once and puts them in Ray's object
store; each worker process writes them once to ``<user cache>/ray-models/<digest>`` on its node (``paths.cache_dir``,
default ``~/.cache/maskwatch``: one folder per set of model files, shared by the node's workers and batches; folders
unused for ``KEEP_UNUSED_DAYS`` are removed) and points its config there, so the nodes need the package
(``pip install 'maskwatch[cluster]'``) but not the models. Sources and the run folder are
paths each node must reach (a shared file system). Every task runs ``detector.batch.run_job``: the same code as the
local engine, so the same results.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from detector.batch import Interrupted, Job, Result, collect, results_so_far, run_job
from maskwatch.card import card_file, card_path, read_card
from maskwatch.config import Config, load_config
from maskwatch.errors import UserError
from maskwatch.files import write_bytes_atomic
from models.assets import resolve, user_cache_dir

INSTALL_HINT = "pip install 'maskwatch[cluster]' (or pip install ray)"
RAY_AUTH_MODE = "RAY_AUTH_MODE"  # Ray's token authentication: https://docs.ray.io/en/latest/ray-security/token-auth.html
KEEP_UNUSED_DAYS = 7  # a node's copy of a set of model files no batch used for this long is removed
CANCEL_WAIT_S = 10.0  # Ctrl-C: how long the cancelled tasks get to close their files before Ray is shut down

ModelFiles = dict[str, tuple[str, bytes]]  # config key -> (file name, bytes); classifier.model -> its card


def model_files(cfg: Config) -> ModelFiles:
    """The bytes of every model file the configured pipeline loads, by the config key that names it."""
    files: ModelFiles = {}
    if cfg.face_detector.model == "centerface":
        path = cfg.resolve_path(cfg.face_detector.onnx)
        files["face_detector.onnx"] = (path.name, _read(path))
    else:
        for name in ("prototxt", "caffemodel"):
            path = resolve(name, cfg)
            files[f"assets.{name}"] = (path.name, _read(path))
    stem = cfg.classifier_stem()
    card = card_path(stem)
    weights = card_file(stem, read_card(stem), cfg.classifier.backend)
    files["classifier.model"] = (card.name, _read(card))
    files[f"classifier.{cfg.classifier.backend}"] = (weights.name, _read(weights))
    return files


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read model file {path}: {exc.strerror}") from None


_UNPACKED: set[Path] = set()  # per worker process: the model folders already checked


def unpack(files: ModelFiles, cache_dir: Path) -> tuple[str, ...]:
    """Write ``files`` to ``cache_dir/ray-models/<digest of the files>`` (a file already there with the same bytes is
    kept; once per worker process) and return the overrides that point there."""
    digest = hashlib.sha256(b"".join(name.encode() + data for name, data in files.values())).hexdigest()[:16]
    folder = cache_dir / "ray-models" / digest
    if folder not in _UNPACKED:
        try:
            for name, data in files.values():
                if not ((folder / name).is_file() and (folder / name).read_bytes() == data):
                    write_bytes_atomic(folder / name, data)
            os.utime(folder)  # in use: not removed by another batch's clean-up
        except OSError as exc:
            raise UserError(f"cannot write the batch's model files to {folder}: {exc.strerror}") from None
        remove_unused(folder.parent, keep=folder)
        _UNPACKED.add(folder)
    overrides = []
    for key, (name, _) in files.items():
        if key == "classifier.model":
            overrides.append(f"{key}={folder / name.removesuffix('.json')}")
        elif not key.startswith("classifier."):  # the weights: found beside the card
            overrides.append(f"{key}={folder / name}")
    return tuple(overrides)


def remove_unused(parent: Path, *, keep: Path, days: float = KEEP_UNUSED_DAYS) -> None:
    """Remove the model folders in ``parent`` but ``keep`` that no worker has used for ``days``."""
    oldest_s = time.time() - days * 86400
    for folder in parent.iterdir():
        with contextlib.suppress(OSError):
            if folder != keep and folder.is_dir() and folder.stat().st_mtime < oldest_s:
                shutil.rmtree(folder)


def run_shipped(job: Job, files: ModelFiles) -> Result:
    """A Ray task's body: the shipped models, then the same ``run_job`` as the local engine."""
    try:
        overrides = unpack(files, user_cache_dir(load_config(job.config, job.overrides)))
    except UserError as exc:
        return Result(job.name, job.source, job.out_dir, error=str(exc))
    return run_job(replace(job, overrides=job.overrides + overrides))


def run_ray(jobs: Sequence[Job], cfg: Config, *, address: str | None, workers: int | None,
            on_done: Callable[[Result], None]) -> list[Result]:  # fmt: skip
    """One Ray task (1 CPU) per job; ``address`` None starts a local Ray instance with ``workers`` CPUs (default:
    all). Results in job order."""
    if address is None:  # token authentication, Ray's default for a local instance, chosen: Ray then does not warn
        os.environ.setdefault(RAY_AUTH_MODE, "token")  # on every run (it warns only when the variable is unset)
    try:
        import ray
    except ImportError:
        raise UserError(f"--engine ray needs Ray: {INSTALL_HINT}") from None
    files = model_files(cfg)
    try:
        # A local instance runs this very code (also from a checkout); cluster nodes use their installed package.
        local_env = {"env_vars": {"PYTHONPATH": str(Path(__file__).resolve().parents[1])}}
        context = ray.init(address=address, num_cpus=None if address else workers, include_dashboard=False,
                           logging_level="WARNING", runtime_env=None if address else local_env)  # fmt: skip
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise UserError(f"cannot connect to Ray at {address or 'a local instance'}: {exc}".splitlines()[0]) from None
    try:
        files_ref = ray.put(files)
        task = ray.remote(num_cpus=1, max_retries=0)(run_shipped)
        refs = [task.remote(job, files_ref) for job in jobs]
        futures = {ref.future(): i for i, ref in enumerate(refs)}
        try:
            return collect(jobs, futures, on_done, "ray task")
        except KeyboardInterrupt:  # Ray's workers block SIGINT: a cancel is their KeyboardInterrupt (files closed)
            for ref in refs:
                ray.cancel(ref)
            concurrent.futures.wait(futures, timeout=CANCEL_WAIT_S)
            raise Interrupted(results_so_far(jobs, futures)) from None
    finally:
        ray.shutdown()
        if address is None:  # Ray keeps a local instance's session folder (logs, ~230 KB) after every run
            remove_session(Path(context.address_info.get("session_dir") or ""))


def remove_session(session_dir: Path) -> None:
    """Remove a finished local Ray instance's session folder, and Ray's ``session_latest`` link if it points there."""
    if session_dir.name.startswith("session_"):
        shutil.rmtree(session_dir, ignore_errors=True)
        latest = session_dir.parent / "session_latest"
        with contextlib.suppress(OSError):
            if latest.is_symlink() and Path(os.readlink(latest)).name == session_dir.name:
                latest.unlink()

