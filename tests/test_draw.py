"""The drawing is pure and pixel-exact: golden frames built from cv2 primitives, labels kept inside the frame."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from detector.draw import FONT, PAD_PX, DrawStyle, blur_faces, counts_text, draw, label_box, label_text, people_text
from detector.people import Counts
from maskwatch.config import load_config
from maskwatch.faces import MASK, NO_MASK, UNKNOWN, Faces
from maskwatch.geometry import iou_matrix
from maskwatch.labels import INCORRECT

STYLE = DrawStyle.from_config(load_config().draw)


def _block(image: np.ndarray, text: str, x: int, y: int, bg: tuple[int, int, int]) -> int:
    """Expected text block with its top-left corner at (x, y); returns its bottom y (end-exclusive)."""
    (tw, th), baseline = cv2.getTextSize(text, FONT, STYLE.font_scale, 1)
    cv2.rectangle(image, (x, y), (x + tw + 2 * PAD_PX - 1, y + th + baseline + 2 * PAD_PX - 1), bg, cv2.FILLED)
    cv2.putText(image, text, (x + PAD_PX, y + PAD_PX + th), FONT, STYLE.font_scale, STYLE.text_color_bgr, 1,
                cv2.LINE_AA)
    return y + th + baseline + 2 * PAD_PX


def _label_height(text: str) -> int:
    (_, th), baseline = cv2.getTextSize(text, FONT, STYLE.font_scale, 1)
    return th + baseline + 2 * PAD_PX


def test_label_and_count_texts():
    assert label_text(MASK, 0.972) == "Mask 97.2%"
    assert label_text(NO_MASK, 0.881) == "No Mask 88.1%"
    assert label_text(MASK, 0.5) == "Mask 50.0%"
    assert label_text(INCORRECT, 0.912) == "Mask Worn Wrong 91.2%"
    assert label_text(UNKNOWN, float("nan")) == "?"
    assert counts_text({"mask": 2, "no_mask": 1}) == "3 faces: 2 mask, 1 no mask"
    assert counts_text({"mask": 0, "no_mask": 1, "incorrect": 0, "unknown": 0}) == "1 face: 0 mask, 1 no mask"
    assert counts_text({}) == "0 faces"
    assert counts_text({"mask": 1, "no_mask": 1, "unknown": 2}) == "4 faces: 1 mask, 1 no mask, 2 unknown"
    assert counts_text({"mask": 1, "no_mask": 0, "incorrect": 2}) == "3 faces: 1 mask, 0 no mask, 2 worn wrong"


def test_unknown_faces_are_grey_with_a_question_mark():
    assert label_text(UNKNOWN, 0.5) == "?"
    frame = np.zeros((120, 160, 3), np.uint8)
    faces = Faces([[40, 40, 100, 110]], [0.9]).with_labels(np.array([0.7]), 0.5).with_unknown(np.array([True]))
    out = draw(frame, faces, DrawStyle())
    assert tuple(out[80, 40]) == DrawStyle().unknown_color_bgr  # the box's left edge


def test_golden_two_faces_and_overlay():
    frame = np.full((240, 320, 3), 90, np.uint8)
    frame[::7] = 140  # some texture, so a stray pixel anywhere shows
    faces = Faces(np.array([[60, 100, 140, 200], [200, 5, 300, 90]]), np.array([0.99, 0.8]))
    got = draw(frame, faces.with_labels(np.array([0.9, 0.2]), 0.5), STYLE, fps=12.5)

    want = frame.copy()
    # Face 1, Mask: box, label above it.
    cv2.rectangle(want, (60, 100), (139, 199), STYLE.mask_color_bgr, STYLE.thickness_px)
    _block(want, "Mask 90.0%", 60, 100 - _label_height("Mask 90.0%"), STYLE.mask_color_bgr)
    # Face 2, No Mask, at the top right: no room above, so the label goes inside the box under its top edge,
    # and it is too wide to start at x1 = 200, so it ends at the frame's right edge.
    cv2.rectangle(want, (200, 5), (299, 89), STYLE.no_mask_color_bgr, STYLE.thickness_px)
    (tw, _), _ = cv2.getTextSize("No Mask 80.0%", FONT, STYLE.font_scale, 1)
    assert 200 + tw + 2 * PAD_PX > 320
    _block(want, "No Mask 80.0%", 320 - tw - 2 * PAD_PX, 5, STYLE.no_mask_color_bgr)
    # Overlay at the bottom left: FPS, then counts on the last line.
    y = _block(want, "FPS 12.5", 0, 240 - _label_height("FPS 12.5") - _label_height("2 faces"), (0, 0, 0))
    assert _block(want, "2 faces: 1 mask, 1 no mask", 0, y, (0, 0, 0)) == 240

    np.testing.assert_array_equal(got, want)


def test_golden_three_classes_orange_box_and_own_label_text():
    """A three-class record: each face's text is its own class's probability; a mask worn wrong is orange."""
    frame = np.full((200, 320, 3), 90, np.uint8)
    faces = Faces([[20, 60, 100, 160], [120, 60, 200, 160], [220, 60, 300, 160]], [0.9, 0.9, 0.9])
    probs = np.array([[0.02, 0.95, 0.03], [0.08, 0.01, 0.91], [0.7, 0.1, 0.2]])
    got = draw(frame, faces.with_labels(probs, 0.5), STYLE)

    want = frame.copy()
    for (x1, y1, x2, y2), text, color in zip(faces.xyxy.tolist(), ["Mask 95.0%", "Mask Worn Wrong 91.0%",
                                             "No Mask 70.0%"], [STYLE.mask_color_bgr, (0, 140, 255),
                                             STYLE.no_mask_color_bgr], strict=True):  # fmt: skip
        cv2.rectangle(want, (x1, y1), (x2 - 1, y2 - 1), color, STYLE.thickness_px)
        (tw, th), baseline = cv2.getTextSize(text, FONT, STYLE.font_scale, 1)
        left, top, _, _ = label_box((x1, y1, x2, y2), (tw, th), baseline, (320, 200))  # the last one ends at x 320
        _block(want, text, left, top, color)
    text = "3 faces: 1 mask, 1 no mask, 1 worn wrong"
    _block(want, text, 0, 200 - _label_height(text), (0, 0, 0))
    np.testing.assert_array_equal(got, want)
    assert tuple(got[110, 120]) == (0, 140, 255) == STYLE.incorrect_color_bgr  # the orange box's left edge


def test_golden_no_face_no_fps():
    frame = np.zeros((50, 200, 3), np.uint8)
    want = frame.copy()
    _block(want, "0 faces", 0, 50 - _label_height("0 faces"), (0, 0, 0))
    np.testing.assert_array_equal(draw(frame, Faces.empty(), STYLE), want)


def test_draw_is_pure():
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    before = frame.copy()
    faces = Faces(np.array([[10, 40, 60, 100]]), np.array([0.9])).with_labels(np.array([0.3]), 0.5)
    a = draw(frame, faces, STYLE, fps=30.0)
    b = draw(frame, faces, STYLE, fps=30.0)
    np.testing.assert_array_equal(frame, before)
    assert a is not frame and not np.shares_memory(a, frame)
    np.testing.assert_array_equal(a, b)
    assert tuple(a[70, 10]) == STYLE.no_mask_color_bgr  # left edge of the box: the No Mask colour


def test_style_colours_come_from_config():
    cfg = load_config(overrides=["draw.mask_color_bgr=[255, 0, 255]", "draw.thickness_px=1"])
    style = DrawStyle.from_config(cfg.draw)
    faces = Faces(np.array([[20, 50, 80, 90]]), np.array([1.0])).with_labels(np.array([0.99]), 0.5)
    out = draw(np.zeros((100, 100, 3), np.uint8), faces, style)
    assert tuple(out[70, 20]) == (255, 0, 255)
    assert tuple(out[70, 21]) == (0, 0, 0)  # thickness 1


@pytest.mark.parametrize("seed", range(5))
def test_labels_stay_inside_the_frame(seed: int):
    rng = np.random.default_rng(seed)
    width, height = 160, 120
    for _ in range(200):
        x1, y1 = int(rng.integers(0, width - 2)), int(rng.integers(0, height - 2))
        box = (x1, y1, int(rng.integers(x1 + 1, width + 1)), int(rng.integers(y1 + 1, height + 1)))
        text_wh = (int(rng.integers(10, 120)), int(rng.integers(5, 20)))
        lx1, ly1, lx2, ly2 = label_box(box, text_wh, 4, (width, height))
        assert lx1 >= 0 and ly1 >= 0 and lx2 <= width and ly2 <= height, (box, text_wh)
        assert (lx2 - lx1, ly2 - ly1) == (text_wh[0] + 2 * PAD_PX, text_wh[1] + 4 + 2 * PAD_PX)


def test_label_above_box_when_room_right_edge_shifts_left():
    assert label_box((50, 60, 90, 100), (30, 10), 4, (200, 200)) == (50, 60 - 20, 86, 60)
    assert label_box((180, 60, 199, 100), (30, 10), 4, (200, 200)) == (200 - 36, 40, 200, 60)


# privacy: blurred faces (issue 21)


def test_blur_modes_choose_the_faces():
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (100, 200, 3), dtype=np.uint8)
    faces = Faces(np.array([[10, 10, 60, 60], [110, 10, 160, 60]]), np.array([1.0, 1.0])).with_labels(
        np.array([0.9, 0.1]), 0.5)  # masked left, unmasked right
    def changed(out):
        return [not np.array_equal(out[10:60, x:x + 50], frame[10:60, x:x + 50]) for x in (10, 110)]
    assert changed(blur_faces(frame, faces, "all")) == [True, True]
    assert changed(blur_faces(frame, faces, "masked")) == [True, False]  # the violation stays visible
    assert changed(blur_faces(frame, faces, "none")) == [False, False]
    out = draw(frame, faces, DrawStyle(blur="all"))
    assert tuple(out[30, 10]) == DrawStyle().mask_color_bgr  # boxes and labels are still drawn
    assert out[35:55, 15:55].std() < frame[35:55, 15:55].std() / 4  # the face itself is gone (below its label)
    with pytest.raises(ValueError, match="blur"):
        DrawStyle(blur="faces")


def test_a_blurred_face_is_not_found_by_the_face_detector(astronaut):
    from face_detector import build_face_detector

    frame, masked, face = astronaut
    detect = build_face_detector(load_config())
    assert len(detect(frame)) == 1  # the real photo's face is found ...
    faces = Faces(face, np.array([1.0])).with_labels(np.array([0.2]), 0.5)
    for image, mode, label in ((frame, "all", 0.2), (masked, "masked", 0.9)):
        blurred = blur_faces(image, faces.with_labels(np.array([label]), 0.5), mode)
        found = detect(blurred)
        assert len(found) == 0 or iou_matrix(found.xyxy, face).max() == 0, mode  # ... and not once blurred


def test_overlay_counts_people_in_view_and_seen():
    assert people_text("in view", {"mask": 2, "no_mask": 1, "unknown": 0}) == "in view: 3 (2 mask, 1 no mask)"
    assert people_text("seen", {"mask": 0, "no_mask": 1, "unknown": 2}) == "seen: 3 (0 mask, 1 no mask, 2 unknown)"
    assert people_text("seen", {"mask": 1, "no_mask": 0, "incorrect": 1, "unknown": 0}) == (
        "seen: 2 (1 mask, 0 no mask, 1 worn wrong)")
    counts = Counts({"mask": 1, "no_mask": 0, "unknown": 0}, {"mask": 3, "no_mask": 2, "unknown": 0})
    frame = np.zeros((240, 320, 3), np.uint8)
    with_counts = draw(frame, Faces.empty(), DrawStyle(), people=counts)
    without = draw(frame, Faces.empty(), DrawStyle())
    assert (with_counts.any(axis=2).sum(axis=1) > 0).sum() > (without.any(axis=2).sum(axis=1) > 0).sum()  # 2 lines


def test_blur_refuses_an_unknown_mode_and_skips_empty_boxes_but_blurs_a_one_pixel_one():
    rng = np.random.default_rng(2)
    frame = rng.integers(0, 256, (100, 200, 3), dtype=np.uint8)
    faces = Faces(np.array([[10, 10, 60, 60]]), np.array([1.0]))
    with pytest.raises(ValueError, match="blur must be one of"):
        blur_faces(frame, faces, "faces")
    empty = Faces(np.array([[50, 10, 50, 60], [20, 30, 40, 30]]), np.array([1.0, 1.0]))  # zero width, zero height
    np.testing.assert_array_equal(blur_faces(frame, empty, "all"), frame)
    thin = blur_faces(frame, Faces(np.array([[50, 10, 51, 60]]), np.array([1.0])), "all")
    assert not np.array_equal(thin[10:60, 50], frame[10:60, 50]) and np.array_equal(thin[:, 51:], frame[:, 51:])
    flat = blur_faces(frame, Faces(np.array([[20, 50, 80, 51]]), np.array([1.0])), "all")
    assert not np.array_equal(flat[50, 20:80], frame[50, 20:80]) and np.array_equal(flat[51:], frame[51:])


def test_label_box_edges_and_frames_smaller_than_two_labels():
    # label 36 x 20 (text 30 x 10, baseline 4, padding 3 each side)
    assert label_box((50, 20, 90, 100), (30, 10), 4, (200, 200)) == (50, 0, 86, 20)  # just room above
    assert label_box((50, 19, 90, 100), (30, 10), 4, (200, 200)) == (50, 19, 86, 39)  # one pixel short: inside
    assert label_box((0, 60, 40, 100), (30, 10), 4, (200, 200)) == (0, 40, 36, 60)
    assert label_box((5, 15, 40, 28), (30, 10), 4, (200, 30)) == (5, 10, 41, 30)  # inside would cross the bottom
    assert label_box((5, 5, 15, 15), (30, 10), 4, (20, 15)) == (0, 0, 36, 20)  # frame smaller than the label


def test_golden_labels_and_overlay_in_a_frame_shorter_than_they_are():
    frame = np.full((30, 320, 3), 90, np.uint8)
    faces = Faces(np.array([[100, 10, 140, 28]]), np.array([0.9])).with_labels(np.array([0.9]), 0.5)
    got = draw(frame, faces, STYLE, fps=9.0)
    want = frame.copy()
    cv2.rectangle(want, (100, 10), (139, 27), STYLE.mask_color_bgr, STYLE.thickness_px)
    (tw, th), baseline = cv2.getTextSize("Mask 90.0%", FONT, STYLE.font_scale, 1)
    left, top, _, _ = label_box((100, 10, 140, 28), (tw, th), baseline, (320, 30))
    assert top == 30 - _label_height("Mask 90.0%") < 10  # moved up to stay in the frame
    _block(want, "Mask 90.0%", left, top, STYLE.mask_color_bgr)
    y = _block(want, "FPS 9.0", 0, 0, (0, 0, 0))  # the overlay does not fit: it starts at the top
    _block(want, "1 face: 1 mask, 0 no mask", 0, y, (0, 0, 0))
    np.testing.assert_array_equal(got, want)


def test_golden_banner_across_the_top_centred():
    frame = np.full((120, 401, 3), 90, np.uint8)  # odd: the centring measures the text at its own thickness
    got = draw(frame, Faces.empty(), STYLE, banner="NO MASK: person 3")
    want = draw(frame, Faces.empty(), STYLE)
    (tw, th), baseline = cv2.getTextSize("NO MASK: person 3", FONT, 2 * STYLE.font_scale, 2)
    bar_h = th + baseline + 4 * PAD_PX
    cv2.rectangle(want, (0, 0), (400, bar_h - 1), STYLE.no_mask_color_bgr, cv2.FILLED)
    cv2.putText(want, "NO MASK: person 3", ((401 - tw) // 2, 2 * PAD_PX + th), FONT, 2 * STYLE.font_scale,
                STYLE.text_color_bgr, 2, cv2.LINE_AA)
    np.testing.assert_array_equal(got, want)
    assert tuple(got[bar_h - 1, 0]) == tuple(got[0, 400]) == STYLE.no_mask_color_bgr
    assert tuple(got[bar_h, 0]) == (90, 90, 90)
    np.testing.assert_array_equal(draw(frame, Faces.empty(), STYLE, banner=""), draw(frame, Faces.empty(), STYLE))
    small = np.full((60, 100, 3), 90, np.uint8)
    got = draw(small, Faces.empty(), STYLE, banner="NO MASK: persons 3, 12")
    want = draw(small, Faces.empty(), STYLE)
    (tw, th), baseline = cv2.getTextSize("NO MASK: persons 3, 12", FONT, 2 * STYLE.font_scale, 2)
    assert tw > 100  # wider than the frame: it starts PAD_PX from the left edge
    cv2.rectangle(want, (0, 0), (99, th + baseline + 4 * PAD_PX - 1), STYLE.no_mask_color_bgr, cv2.FILLED)
    cv2.putText(want, "NO MASK: persons 3, 12", (PAD_PX, 2 * PAD_PX + th), FONT, 2 * STYLE.font_scale,
                STYLE.text_color_bgr, 2, cv2.LINE_AA)
    np.testing.assert_array_equal(got, want)
