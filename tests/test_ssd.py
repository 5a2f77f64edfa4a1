"""The classic SSD (face_detector.ssd): decoding of hand-made outputs (no weights), then the res10 model on photos."""

from __future__ import annotations

import numpy as np
import pytest

from face_detector import set_opencv_threads
from face_detector.dnn import select_faces
from face_detector.ssd import SSDFaceDetector, decode_ssd, pass_sizes_wh, ssd_boxes
from maskwatch.config import load_config
from maskwatch.errors import UserError
from maskwatch.faces import Faces
from maskwatch.geometry import iou_matrix

W, H = 640, 480


def ssd_output(*rows: tuple[float, float, float, float, float]) -> np.ndarray:
    """A hand-made SSD output [1, 1, N, 7] from (score, x1, y1, x2, y2) rows in 0-1 units."""
    out = np.zeros((1, 1, max(len(rows), 1), 7), np.float32)
    for i, (score, *corners) in enumerate(rows):
        out[0, 0, i] = [0, 1, score, *corners]
    return out


def decode(output: np.ndarray, min_confidence: float = 0.5, min_size_px: int = 0, nms_iou: float = 0.4) -> Faces:
    return decode_ssd(output, (W, H), min_confidence=min_confidence, min_size_px=min_size_px, nms_iou=nms_iou)


# --- pure decoding ------------------------------------------------------------------------------------------


def test_decode_scales_normalised_corners_to_pixels():
    faces = decode(ssd_output((0.9, 0.25, 0.5, 0.5, 0.75)))
    assert faces.xyxy.tolist() == [[160, 240, 320, 360]]
    assert faces.xyxy.dtype == np.int32 and faces.confidence.dtype == np.float32
    assert faces.confidence.tolist() == pytest.approx([0.9])


@pytest.mark.parametrize(
    ("corners", "expected"),
    [
        ((-0.1, 0.1, 0.2, 0.3), [0, 48, 128, 144]),  # left edge
        ((0.1, -0.2, 0.2, 0.3), [64, 0, 128, 144]),  # top edge
        ((0.8, 0.1, 1.3, 0.3), [512, 48, 640, 144]),  # right edge
        ((0.1, 0.7, 0.2, 1.5), [64, 336, 128, 480]),  # bottom edge
        ((-1.0, -1.0, 2.0, 2.0), [0, 0, 640, 480]),  # every edge
    ],
)
def test_decode_clips_to_every_edge(corners, expected):
    assert decode(ssd_output((0.9, *corners))).xyxy.tolist() == [expected]


def test_decode_drops_zero_negative_and_outside_boxes():
    faces = decode(
        ssd_output(
            (0.9, 0.3, 0.3, 0.3, 0.5),  # zero width
            (0.9, 0.5, 0.5, 0.4, 0.6),  # negative width
            (0.9, 0.3, 0.6, 0.4, 0.5),  # negative height
            (0.9, 1.1, 0.1, 1.3, 0.3),  # entirely right of the frame: zero width after clipping
            (0.9, 0.0, 0.0, 0.1, 0.1),  # the only valid one
        )
    )
    assert faces.xyxy.tolist() == [[0, 0, 64, 48]]


def test_decode_drops_small_boxes_in_either_direction():
    rows = [
        (0.9, 0.0, 0.0, 19 / W, 0.5),  # 19 px wide
        (0.9, 0.5, 0.0, 0.9, 19 / H),  # 19 px tall
        (0.9, 0.5, 0.5, 0.5 + 20 / W, 0.5 + 20 / H),  # exactly 20 x 20
    ]
    assert decode(ssd_output(*rows), min_size_px=20).xyxy.tolist() == [[320, 240, 340, 260]]
    assert len(decode(ssd_output(*rows), min_size_px=0)) == 3
    assert decode(ssd_output((0.9, 0.5, 0.5, 0.5 + 1 / W, 0.5 + 1 / H))).xyxy.tolist() == [[320, 240, 321, 241]]  # 1 px


def test_decode_confidence_threshold_is_inclusive():
    out = ssd_output((0.49, 0.0, 0.0, 0.2, 0.2), (0.5, 0.3, 0.3, 0.5, 0.5), (0.8, 0.6, 0.6, 0.8, 0.8))
    assert decode(out, min_confidence=0.5).confidence.tolist() == pytest.approx([0.8, 0.5])
    assert len(decode(out, min_confidence=0.81)) == 0


def test_decode_nms_keeps_the_strongest_of_overlapping_boxes():
    out = ssd_output(
        (0.7, 0.10, 0.10, 0.30, 0.30),
        (0.9, 0.11, 0.11, 0.31, 0.31),  # overlaps the first (IoU ~0.8): suppresses it
        (0.6, 0.60, 0.60, 0.80, 0.80),  # separate face
    )
    faces = decode(out, nms_iou=0.4)
    assert faces.confidence.tolist() == pytest.approx([0.9, 0.6])
    assert faces.xyxy.tolist() == [[70, 53, 198, 149], [384, 288, 512, 384]]
    assert len(decode(out, nms_iou=0.95)) == 3  # nothing overlaps that much


def test_decode_empty_outputs():
    assert len(decode(np.zeros((1, 1, 0, 7), np.float32))) == 0
    assert len(decode(ssd_output((0.1, 0.1, 0.1, 0.5, 0.5)))) == 0
    nan = ssd_output((np.nan, 0.1, 0.1, 0.5, 0.5), (0.9, np.nan, 0.1, 0.5, 0.5))
    assert len(decode(nan)) == 0


def test_decode_rejects_malformed_output():
    with pytest.raises(ValueError, match="7 values"):
        decode(np.zeros((1, 1, 3, 5), np.float32))
    with pytest.raises(ValueError, match="7 values"):
        decode(np.zeros((1, 1, 7, 5), np.float32))  # 35 values, but rows of 5


def test_ssd_boxes_drop_rows_with_a_score_or_corner_not_finite():
    good = (0.8, 0.25, 0.25, 0.75, 0.75)
    bad = [(np.inf, 0.1, 0.1, 0.5, 0.5), (0.9, 0.1, np.nan, 0.5, 0.5), (0.9, 0.1, 0.1, 0.5, -np.inf),
           (np.nan, 0.1, 0.1, 0.5, 0.5)]  # fmt: skip
    boxes, scores = ssd_boxes(ssd_output(*bad, good), (200, 100))
    assert boxes.tolist() == [[50, 25, 150, 75]] and scores.tolist() == pytest.approx([0.8])
    assert len(decode(ssd_output((np.inf, 0.1, 0.1, 0.5, 0.5)))) == 0  # an infinite score is no face


# --- real photos ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def detector() -> SSDFaceDetector:
    """The configured SSD (300x300); its files come from models.assets (offline sources): missing ones fail."""
    try:
        return SSDFaceDetector.from_config(load_config(overrides=["face_detector.model=ssd"]))
    except UserError as exc:
        pytest.fail(f"SSD face detector assets unavailable: {exc}", pytrace=False)


def iou(a, b) -> float:
    return float(iou_matrix([a], [b])[0, 0])


def grace_hopper_bgr() -> np.ndarray:
    import cv2
    from matplotlib import cbook

    return cv2.imread(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))


# Reference points from dlib's 68-point landmarks (eye centres, mouth centre) and the landmarks' hull box.
ASTRONAUT = {"points": [(203, 102), (246, 104), (223, 146)], "landmark_box": (179, 87, 272, 178)}
GRACE = {"points": [(224, 192), (305, 189), (267, 279)], "landmark_box": (178, 161, 355, 333)}


@pytest.mark.parametrize(("name", "reference"), [("astronaut", ASTRONAUT), ("grace_hopper", GRACE)])
def test_real_photo_has_exactly_one_face_around_eyes_and_mouth(detector, name, reference):
    from skimage import data

    frame = data.astronaut()[:, :, ::-1].copy() if name == "astronaut" else grace_hopper_bgr()
    faces = detector(frame)
    assert len(faces) == 1, faces
    x1, y1, x2, y2 = faces.xyxy[0].tolist()
    for px, py in reference["points"]:
        assert x1 < px < x2 and y1 < py < y2
    assert iou(faces.xyxy[0].tolist(), reference["landmark_box"]) > 0.6


@pytest.mark.parametrize(
    "frame_fn",
    [
        lambda: __import__("skimage.data").data.coffee()[:, :, ::-1].copy(),
        lambda: np.zeros((480, 640, 3), np.uint8),
        lambda: np.full((480, 640, 3), 255, np.uint8),
    ],
    ids=["coffee", "black", "white"],
)
def test_no_face_in_non_face_frames(detector, frame_fn):
    assert len(detector(frame_fn())) == 0


def test_the_classic_ssd_takes_the_cat_for_a_weak_face(detector):
    from skimage import data

    cat = detector(data.chelsea()[:, :, ::-1].copy())  # its known false positive at 300x300
    assert len(cat) == 1 and 0.5 <= cat.confidence[0] < 0.75


def test_grayscale_and_bgra_inputs(detector):
    import cv2
    from skimage import data

    bgr = data.astronaut()[:, :, ::-1].copy()
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    bgra = cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA)
    reference = detector(bgr).xyxy[0].tolist()
    for frame in (gray, gray[:, :, None], bgra):
        faces = detector(frame)
        assert len(faces) == 1 and iou(faces.xyxy[0].tolist(), reference) > 0.8


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (None, "numpy array"),
        ([[1, 2], [3, 4]], "numpy array"),
        (np.zeros((0, 0, 3), np.uint8), "non-empty"),
        (np.zeros((10, 10, 3), np.float32), "uint8"),
        (np.zeros((10, 10, 2), np.uint8), "shape"),
        (np.zeros((2, 10, 10, 3), np.uint8), "shape"),
    ],
)
def test_bad_inputs_raise_a_clear_value_error(detector, frame, message):
    with pytest.raises(ValueError, match=message):
        detector(frame)


def test_missing_model_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not found"):
        SSDFaceDetector(tmp_path / "deploy.prototxt", tmp_path / "x.caffemodel")


def test_set_opencv_threads_maps_zero_to_the_default():
    import cv2

    set_opencv_threads(1)
    assert cv2.getNumThreads() == 1
    set_opencv_threads(0)
    assert cv2.getNumThreads() >= 1


def test_ssd_boxes_scale_to_the_frame():
    out = ssd_output((0.8, 0.25, 0.25, 0.75, 0.75))
    boxes, scores = ssd_boxes(out, (200, 100))
    assert boxes.tolist() == [[50, 25, 150, 75]] and scores.tolist() == pytest.approx([0.8])


def test_pass_sizes_keep_the_aspect_and_fall_back_to_the_fixed_size():
    assert pass_sizes_wh((640, 480), (), (300, 300)) == [(300, 300)]
    assert pass_sizes_wh((640, 480), (300, 600, 300), (300, 300)) == [(300, 225), (600, 450)]
    assert pass_sizes_wh((40, 4000), (300,), (300, 300)) == [(32, 300)]
    assert pass_sizes_wh((4000, 40), (300,), (300, 300)) == [(300, 32)]


def test_passes_merged_by_one_nms_keep_one_box_per_face():
    frame_wh = (800, 400)
    small = ssd_boxes(ssd_output((0.6, 0.100, 0.10, 0.200, 0.50)), frame_wh)
    large = ssd_boxes(ssd_output((0.9, 0.105, 0.12, 0.205, 0.52), (0.7, 0.6, 0.2, 0.7, 0.6)), frame_wh)
    faces = select_faces(np.concatenate([small[0], large[0]]), np.concatenate([small[1], large[1]]), frame_wh,
                         min_confidence=0.5, min_size_px=0, nms_iou=0.4)  # fmt: skip
    assert faces.confidence.tolist() == pytest.approx([0.9, 0.7])
    assert faces.xyxy.tolist() == [[84, 48, 164, 208], [480, 80, 560, 240]]


def test_passes_at_long_sides_find_the_astronaut_once(astronaut):
    frame, _, face = astronaut
    detector = SSDFaceDetector.from_config(load_config(overrides=["face_detector.ssd.long_sides_px=[300, 600]"]))
    faces = detector(frame)
    assert len(faces) == 1 and iou(faces.xyxy[0].tolist(), face[0].tolist()) > 0.6
