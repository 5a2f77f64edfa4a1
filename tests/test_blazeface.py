"""BlazeFace as the face/not-face check: anchors, decoding, crops, the shipped model and its card."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from face_detector import FaceDetector
from face_detector.blazeface import (
    SHORT_RANGE_INPUT_PX,
    BlazeFaceDetector,
    BlazeFaceVerifier,
    blazeface_anchors,
    candidate_boxes_in_crops,
    cut_by_tile,
    decode_blazeface,
    face_boxes,
    letterbox,
    tile_regions,
)
from face_detector.matching import iou_matrix
from face_detector.multiscale import zoom_regions
from face_detector.verifier import FaceVerifier, read_verifier_card
from maskwatch.config import load_config
from maskwatch.errors import UserError
from models.assets import file_sha256

ROOT = Path(__file__).resolve().parents[1]
STEM = ROOT / "models" / "blazeface_short_range"


def test_anchors_follow_mediapipes_short_range_layout():
    anchors = blazeface_anchors()
    assert anchors.shape == (896, 2)
    assert np.allclose(anchors[:2], [1 / 32, 1 / 32]) and np.allclose(anchors[2], [3 / 32, 1 / 32])
    assert np.allclose(anchors[32], [1 / 32, 3 / 32])  # row-major: the second row of the 16x16 grid
    assert np.allclose(anchors[512:518], [1 / 16, 1 / 16]) and np.allclose(anchors[518], [3 / 16, 1 / 16])
    assert np.allclose(anchors[-1], [15 / 16, 15 / 16])


def test_decoding_offsets_the_anchor_and_squashes_scores():
    anchors = blazeface_anchors()
    reg = np.zeros((896, 16), np.float32)
    reg[600, :4] = [12.8, -6.4, 64.0, 32.0]  # +0.1 x, -0.05 y, 0.5 wide, 0.25 tall (of 128 px)
    logits = np.full(896, -1000.0, np.float32)  # clipped, no overflow
    logits[600] = 0.0
    boxes, scores = decode_blazeface(reg, logits, anchors, SHORT_RANGE_INPUT_PX)
    cx, cy = anchors[600] + [0.1, -0.05]
    assert np.allclose(boxes[600], [cx - 0.25, cy - 0.125, cx + 0.25, cy + 0.125], atol=1e-6)
    assert scores[600] == pytest.approx(0.5) and scores.max() == scores[600] and scores.min() >= 0
    assert np.isfinite(scores).all()


def test_candidates_sit_in_the_middle_of_their_crops():
    xyxy = np.array([[100, 50, 140, 100], [0, 0, 20, 20]])
    regions = zoom_regions(xyxy, 0.5)  # side = 2 x the longer box side
    inside = candidate_boxes_in_crops(xyxy, regions)
    assert np.allclose(inside[0], [0.3, 0.25, 0.7, 0.75]) and np.allclose(inside[1], [0.25, 0.25, 0.75, 0.75])


def test_shipped_model_matches_its_card():
    card = read_verifier_card(STEM)
    assert card["kind"] == "blazeface" and 0 < card["threshold"] < 1
    assert file_sha256(STEM.with_suffix(".tflite")) == card["source"]["sha256"]


def test_blazeface_tells_faces_from_the_rest(astronaut):
    frame, masked, face = astronaut
    verifier = BlazeFaceVerifier(STEM.with_suffix(".tflite"), read_verifier_card(STEM), threads=1)
    threshold = verifier.threshold
    suit_flag_rocket = np.array([[300, 300, 400, 420], [20, 300, 120, 420], [380, 30, 480, 150], [150, 250, 260, 380]])
    assert verifier(frame, face)[0] >= threshold
    assert verifier(masked, face)[0] >= threshold  # the point: a masked face still looks like a face
    assert (verifier(frame, suit_flag_rocket) < threshold).all()
    half_face = np.array([[225, 58, 318, 177]])  # the box shifted by half a face: the right box is not there
    assert verifier(frame, half_face)[0] < verifier(frame, face)[0]
    both = verifier(frame, np.concatenate([face, suit_flag_rocket]))  # one batch gives each box its own answer
    assert np.allclose(both, [verifier(frame, face)[0], *verifier(frame, suit_flag_rocket)], atol=1e-5)
    assert verifier(frame, np.zeros((0, 4))).shape == (0,)


def test_config_picks_the_verifier_by_its_card(tmp_path: Path):
    cfg = load_config(overrides=[f"face_detector.verifier={STEM}"])
    assert isinstance(FaceVerifier.from_config(cfg), BlazeFaceVerifier)
    card = json.loads(STEM.with_suffix(".json").read_text())
    (tmp_path / "bf.json").write_text(json.dumps(card))  # a card without its model file
    with pytest.raises(UserError, match="missing"):
        FaceVerifier.from_config(load_config(overrides=[f"face_detector.verifier={tmp_path / 'bf'}"]))


def test_blazeface_boxes_become_face_boxes_around_the_same_centre():
    card = read_verifier_card(STEM)
    box = np.array([[100.0, 100.0, 200.0, 200.0]])
    assert np.allclose(face_boxes(box, {"dx": 0.0, "dy": 0.0, "width": 1.0, "height": 1.0}), box)
    assert np.allclose(face_boxes(box, {"dx": 0.1, "dy": -0.1, "width": 0.8, "height": 1.2}), [[120, 80, 200, 200]])
    shifted = face_boxes(box, card["face_box"])[0]  # the shipped factors: taller than wide, moved up to the brow
    assert shifted[3] - shifted[1] > shifted[2] - shifted[0] and shifted[1] < 100
    square, scale, pad_xy = letterbox(np.full((480, 640, 3), 200, np.uint8), 128)
    assert square.shape == (128, 128, 3) and scale == pytest.approx(0.2) and pad_xy == (0, 16)
    assert (square[16:112] == 200).all() and (square[:16] == 0).all() and (square[112:] == 0).all()
    square, scale, pad_xy = letterbox(np.full((5, 3, 3), 200, np.uint8), 16)  # portrait, odd padding
    assert square.shape == (16, 16, 3) and pad_xy == (3, 0) and (square[:, 3:13] == 200).all()


def test_blazeface_on_the_whole_frame_finds_a_masked_face_where_it_is(astronaut):
    frame, masked, face = astronaut
    detector = BlazeFaceDetector(STEM.with_suffix(".tflite"), read_verifier_card(STEM), (128,), min_confidence=0.5)
    for image in (frame, masked):
        found = detector(image)
        assert len(found) == 1 and iou_matrix(found.xyxy, face)[0, 0] >= 0.6
    tall = np.zeros((600, 512, 3), np.uint8)  # the same face in a portrait frame: the letterbox is undone
    tall[80:592] = frame
    moved = detector(tall)
    assert len(moved) == 1 and iou_matrix(moved.xyxy, face + np.array([0, 80, 0, 80]))[0, 0] >= 0.6
    assert len(detector(np.full((300, 400, 3), 127, np.uint8))) == 0
    assert len(detector(np.ascontiguousarray(frame[300:, :, :]))) == 0  # the suit and the flag, no face


def test_tiles_overlap_by_half_so_a_small_face_lies_whole_in_one():
    assert tile_regions((640, 480), 1).tolist() == [[0, 0, 640, 480]]
    tiles = tile_regions((640, 480), 2)
    assert tiles.tolist() == [[0, 0, 427, 320], [213, 0, 640, 320], [0, 160, 427, 480], [213, 160, 640, 480]]
    for grid, (width, height) in ((2, (640, 480)), (3, (1280, 720)), (4, (333, 999))):
        tiles = tile_regions((width, height), grid)
        face_w, face_h = width // (grid + 1), height // (grid + 1)
        for x in range(0, width - face_w + 1, 7):
            for y in range(0, height - face_h + 1, 7):
                inside = ((tiles[:, 0] <= x) & (tiles[:, 1] <= y) & (tiles[:, 2] >= x + face_w)
                          & (tiles[:, 3] >= y + face_h))  # fmt: skip
                assert inside.any(), (grid, x, y)


def test_a_face_at_a_tiles_inner_edge_is_cut_the_frames_edge_is_not():
    tile = np.array([213, 160, 640, 480])  # the lower right tile of a 640x480 frame: left and top edges inside
    boxes = np.array([[2, 50, 60, 120], [100, 1, 150, 60], [380, 250, 427, 320], [100, 100, 160, 170]])
    assert cut_by_tile(boxes, tile, (640, 480)).tolist() == [True, True, False, False]
    assert not cut_by_tile(boxes, np.array([0, 0, 640, 480]), (640, 480)).any()  # the whole frame cuts nothing


def test_tiles_find_a_masked_face_too_small_for_the_whole_frame_pass(astronaut):
    _, masked, face = astronaut
    frame = np.full((768, 1024, 3), 127, np.uint8)  # her face is 9% of the frame's width, 14% of a tile's
    frame[128:640, 256:768] = masked
    face = face + np.array([256, 128, 256, 128])
    card = read_verifier_card(STEM)
    whole, tiled = (BlazeFaceDetector(STEM.with_suffix(".tflite"), card, (128,), min_confidence=0.4, tile_grid=grid)
                    for grid in (1, 2))  # fmt: skip
    assert len(whole(frame)) == 0
    found, from_tile = tiled.detect(frame)
    assert len(found) and iou_matrix(found.xyxy, face).max() >= 0.45
    assert from_tile.tolist() == [True] * len(found)  # only a tile sees her
    large, large_from_tile = tiled.detect(cv2.resize(frame[128:640, 256:768], (640, 480)))  # she fills the frame
    her = np.argmax(iou_matrix(large.xyxy, (face - np.array([256, 128] * 2)) * np.array([1.25, 0.9375] * 2))[:, 0])
    assert not large_from_tile[her]  # the whole frame sees her too, whichever pass's box is kept


@pytest.mark.parametrize("fill", [0.6, 0.9])
def test_the_ssd_detector_finds_a_masked_face_filling_a_webcam_frame(astronaut, webcam_close_up, fill):
    _, masked, face = astronaut
    frame, expected = webcam_close_up(masked, face, fill)
    found = FaceDetector.from_config(load_config(overrides=["face_detector.model=ssd"]))(frame)
    assert len(found) == 1 and iou_matrix(found.xyxy, expected)[0, 0] >= 0.5


def test_blazeface_frame_passes_need_a_card_with_face_box_factors(tmp_path: Path):
    default = FaceDetector.from_config(load_config())
    assert isinstance(default.frame_detector, BlazeFaceDetector) and default.frame_detector.tile_grid == 3
    assert isinstance(default.proposal_check, BlazeFaceVerifier)  # sure proposals get BlazeFace on a zoomed crop
    assert default.proposal_sure == 0.7 and default.proposal_min_check == read_verifier_card(STEM)["threshold"]
    off = load_config(overrides=["face_detector.blazeface_passes_px=[]"])
    assert FaceDetector.from_config(off).frame_detector is None and FaceDetector.from_config(off).proposal_check is None
    assert default.proposal_check_tiles and not default.proposal_check_all  # tile-only proposals get it too
    no_sure = load_config(overrides=["face_detector.blazeface_sure=1.0"])
    assert isinstance(FaceDetector.from_config(no_sure).proposal_check, BlazeFaceVerifier)  # for the tiles' proposals
    no_check = load_config(overrides=["face_detector.blazeface_sure=1.0", "face_detector.blazeface_check_tiles=false"])
    assert FaceDetector.from_config(no_check).proposal_check is None
    card = json.loads(STEM.with_suffix(".json").read_text())
    del card["face_box"]
    (tmp_path / "bf.json").write_text(json.dumps(card))
    overrides = ["face_detector.blazeface_passes_px=[128]", f"face_detector.blazeface_model={tmp_path / 'bf'}"]
    with pytest.raises(UserError, match="face_box"):
        FaceDetector.from_config(load_config(overrides=overrides))
    missing = load_config(overrides=[f"face_detector.blazeface_model={tmp_path / 'nothing'}"])
    with pytest.raises(UserError, match=r"no BlazeFace card .*blazeface_passes_px=\[\]"):
        FaceDetector.from_config(missing)


@pytest.mark.slow
def test_a_close_up_masked_face_the_ssd_misses_is_found_through_blazeface():
    """Grace Hopper (matplotlib's sample photo) with a maskify surgical mask, cut as a close-up: the SSD's passes and
    looks find nothing there; BlazeFace proposes the face and the SSD's look on the proposal confirms it."""
    pytest.importorskip("dlib")
    pytest.importorskip("face_recognition_models")
    import matplotlib.cbook as cbook

    from train.landmarks import Landmarker
    from train.mask_overlay import box_from_landmarks, render_mask
    from train.maskify import style_for

    with cbook.get_sample_data("grace_hopper.jpg") as f:
        photo = cv2.imdecode(np.frombuffer(f.read(), np.uint8), cv2.IMREAD_COLOR)
    (points,) = Landmarker().find(photo)
    masked = render_mask(photo, points, style_for("grace", 3), [], seed=3)
    (x0, y0), (x1, y1) = points.min(axis=0).astype(int), points.max(axis=0).astype(int)
    w, h = x1 - x0, y1 - y0
    top, left = max(0, int(y0 - 0.6 * h)), max(0, int(x0 - 0.3 * w))
    close_up = np.ascontiguousarray(masked[top : int(y1 + 0.3 * h), left : int(x1 + 0.3 * w)])
    face = np.asarray(box_from_landmarks(points, photo.shape[1::-1]), np.float64) - [left, top, left, top]

    ssd_only = FaceDetector.from_config(load_config(overrides=["face_detector.blazeface_passes_px=[]"]))(close_up)
    found = FaceDetector.from_config(load_config())(close_up)
    assert len(ssd_only) == 0
    assert len(found) == 1 and iou_matrix(found.xyxy, face[None])[0, 0] >= 0.4
