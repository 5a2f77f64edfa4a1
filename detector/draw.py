"""Pure drawing: coloured labelled face boxes, an FPS line and people counts on a copy of the frame; faces blurred
first for privacy (``DrawStyle.blur``: ``none``, ``all``, or ``masked`` = every face not labelled no_mask)."""

from __future__ import annotations

from dataclasses import dataclass, fields

import cv2
import numpy as np

from detector.people import Counts
from maskwatch.config import DrawConfig
from maskwatch.faces import NO_MASK, NO_TRACK, Faces, grow_boxes
from maskwatch.labels import COUNT_TEXT, INCORRECT, LABELS, MASK, UNKNOWN, count_labels, label_color_bgr, label_text

FONT = cv2.FONT_HERSHEY_SIMPLEX
PAD_PX = 3  # space between a label's text and the edge of its filled background
OVERLAY_BG_BGR = (0, 0, 0)
BLUR_MODES = ("none", "all", "masked")
BLUR_MARGIN = 0.15  # a blurred region is the box grown by this share of its size on every side (hair, chin)
BLUR_CELLS = 3  # the region is averaged down to this many cells across, then smoothed back up: no face is left


@dataclass(frozen=True)
class DrawStyle(DrawConfig):
    """The ``draw`` section (box colours, line thickness; its defaults) and what the config does not set."""

    text_color_bgr: tuple[int, int, int] = (255, 255, 255)  # white on the box colour
    font_scale: float = 0.5  # OpenCV Hershey scale of the labels (the FPS line: twice this)
    blur: str = "none"  # one of BLUR_MODES

    def __post_init__(self) -> None:
        if self.blur not in BLUR_MODES:
            raise ValueError(f"blur must be one of {', '.join(BLUR_MODES)}, got {self.blur!r}")

    @classmethod
    def from_config(cls, draw: DrawConfig, blur: str = "none") -> DrawStyle:
        """The draw section's colours and line thickness; ``blur`` from ``privacy.blur`` or ``--blur-faces``."""
        return cls(**{f.name: getattr(draw, f.name) for f in fields(DrawConfig)}, blur=blur)


def blur_faces(frame_bgr: np.ndarray, faces: Faces, mode: str) -> np.ndarray:
    """A copy of ``frame_bgr`` with the faces blurred beyond recognition: every face (``all``), every face not
    labelled no_mask (``masked``: the compliant stay private, violations stay visible), or none (``none``).
    Used for the shown and saved frames and for snapshots."""
    if mode not in BLUR_MODES:
        raise ValueError(f"blur must be one of {', '.join(BLUR_MODES)}, got {mode!r}")
    out = frame_bgr.copy()
    chosen = faces.label != NO_MASK if mode == "masked" else np.full(len(faces), mode == "all")
    height, width = out.shape[:2]
    for x1, y1, x2, y2 in grow_boxes(faces.xyxy[chosen], BLUR_MARGIN, (width, height)).tolist():
        if x2 - x1 < 1 or y2 - y1 < 1:
            continue
        cells = cv2.resize(out[y1:y2, x1:x2], (BLUR_CELLS, BLUR_CELLS), interpolation=cv2.INTER_AREA)
        out[y1:y2, x1:x2] = cv2.resize(cells, (x2 - x1, y2 - y1), interpolation=cv2.INTER_LINEAR)
    return out


def by_label_text(by_label: dict[str, int]) -> str:
    """``2 mask, 1 no mask``, then ``1 worn wrong`` and ``1 unknown`` only when there are some (label names in)."""
    parts = [(code, by_label.get(LABELS[code], 0)) for code in (MASK, NO_MASK, INCORRECT, UNKNOWN)]
    return ", ".join(f"{n} {COUNT_TEXT[code]}" for code, n in parts if n or code in (MASK, NO_MASK))


def people_text(prefix: str, by_label: dict[str, int]) -> str:
    """``in view: 3 (2 mask, 1 no mask)``; ``worn wrong`` and ``unknown`` listed only when there are some."""
    return f"{prefix}: {sum(by_label.values())} ({by_label_text(by_label)})"


def counts_text(by_label: dict[str, int]) -> str:
    """``3 faces: 2 mask, 1 no mask`` (``0 faces`` when there is none) of this frame's faces per label name."""
    n = sum(by_label.values())
    return f"{n} face{'s' if n != 1 else ''}: {by_label_text(by_label)}" if n else "0 faces"


def label_box(
    box_xyxy: tuple[int, int, int, int], text_wh: tuple[int, int], baseline_px: int, frame_wh: tuple[int, int]
) -> tuple[int, int, int, int]:
    """Label background ``(x1, y1, x2, y2)``: above the box, inside it if there is no room above, always in the
    frame (as far as the frame is large enough)."""
    x1, y1 = box_xyxy[0], box_xyxy[1]
    width, height = frame_wh
    label_w, label_h = text_wh[0] + 2 * PAD_PX, text_wh[1] + baseline_px + 2 * PAD_PX
    top = y1 - label_h if y1 - label_h >= 0 else y1
    top = max(0, min(top, height - label_h))
    left = max(0, min(x1, width - label_w))
    return left, top, left + label_w, top + label_h


def _text_block(image: np.ndarray, text: str, rect_xyxy: tuple[int, int, int, int], text_h: int,
                bg_bgr: tuple[int, int, int], style: DrawStyle) -> None:
    """Fill ``rect_xyxy`` (end-exclusive) with ``bg_bgr`` and write ``text`` in it."""
    x1, y1, x2, y2 = rect_xyxy
    cv2.rectangle(image, (x1, y1), (x2 - 1, y2 - 1), bg_bgr, cv2.FILLED)
    cv2.putText(image, text, (x1 + PAD_PX, y1 + PAD_PX + text_h), FONT, style.font_scale, style.text_color_bgr, 1,
                cv2.LINE_AA)


def draw(
    frame_bgr: np.ndarray,
    faces: Faces,
    style: DrawStyle,
    fps: float | None = None,
    banner: str | None = None,
    people: Counts | None = None,
) -> np.ndarray:
    """A new frame with the faces blurred as ``style.blur`` says, every face boxed and labelled (a tracked face's
    label starts with its id: ``#3 Mask 97.2%``), and the FPS (if given) and counts at the bottom left: people in
    view and seen so far by label when ``people`` is given, else this frame's faces (labels sit above the boxes, so
    the top of the frame is theirs). Colours and texts follow ``faces.label``. ``banner`` (an alert's text) is drawn
    last, across the top, in the no-mask colour.

    Boxes are end-exclusive (``Faces``): the rectangle's last pixel row and column are ``x2 - 1``, ``y2 - 1``.
    """
    out = blur_faces(frame_bgr, faces, style.blur)
    frame_wh = (out.shape[1], out.shape[0])
    for box, prob, label, track_id in zip(faces.xyxy.tolist(), faces.label_prob.tolist(), faces.label.tolist(),
                                          faces.track_id.tolist(), strict=True):  # fmt: skip
        x1, y1, x2, y2 = box
        color = label_color_bgr(label, style)
        cv2.rectangle(out, (x1, y1), (max(x1, x2 - 1), max(y1, y2 - 1)), color, style.thickness_px)
        text = label_text(label, prob) if track_id == NO_TRACK else f"#{track_id} {label_text(label, prob)}"
        (tw, th), baseline = cv2.getTextSize(text, FONT, style.font_scale, 1)
        _text_block(out, text, label_box(box, (tw, th), baseline, frame_wh), th, color, style)
    lines = [f"FPS {fps:.1f}"] if fps is not None else []
    if people is not None:
        lines += [people_text("in view", people.in_view), people_text("seen", people.seen)]
    else:
        lines.append(counts_text(count_labels(faces.label)))
    sizes = [cv2.getTextSize(text, FONT, style.font_scale, 1) for text in lines]
    top = max(0, out.shape[0] - sum(th + baseline + 2 * PAD_PX for (_, th), baseline in sizes))
    for text, ((tw, th), baseline) in zip(lines, sizes, strict=True):
        bottom = top + th + baseline + 2 * PAD_PX
        _text_block(out, text, (0, top, tw + 2 * PAD_PX, bottom), th, OVERLAY_BG_BGR, style)
        top = bottom
    if banner:
        _banner(out, banner, style)
    return out


def _banner(image: np.ndarray, text: str, style: DrawStyle) -> None:
    """``text`` centred in a full-width bar across the top of ``image`` (twice the label font size)."""
    scale = 2 * style.font_scale
    (tw, th), baseline = cv2.getTextSize(text, FONT, scale, 2)
    bar_h = th + baseline + 4 * PAD_PX
    cv2.rectangle(image, (0, 0), (image.shape[1] - 1, bar_h - 1), style.no_mask_color_bgr, cv2.FILLED)
    x = max(PAD_PX, (image.shape[1] - tw) // 2)
    cv2.putText(image, text, (x, 2 * PAD_PX + th), FONT, scale, style.text_color_bgr, 2, cv2.LINE_AA)
