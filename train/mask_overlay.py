"""Synthetic face masks drawn from 68-point landmarks (pure functions: no model files, no I/O).

Landmark indices (0-based, iBUG 68): jaw 0-16 (chin 8), brows 17-26, nose bridge 27-30, nostrils 31-35,
eyes 36-47, lips 48-67. A mask worn right runs from the nose bridge along the jaw, below the chin; worn wrong
(``placement``) it sits below the nose (nose tip and nostrils visible), on the chin (mouth visible) or pulled to one
side (nose tip and one mouth corner visible).

    style = random_style(np.random.default_rng(0))
    masked_bgr = render_mask(image_bgr, landmarks_xy, style)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

SHAPES = ("surgical", "cloth", "n95")
LOOKS = ("solid", "pattern", "texture")
PATTERNS = ("stripes", "dots", "checks")
JAW = slice(0, 17)
EYES = slice(36, 48)
NOSE_TIP_AND_NOSTRILS = slice(30, 36)
MOUTH = slice(48, 68)
CORRECT = "correct"
WRONG_PLACEMENTS = ("below_nose", "on_chin", "to_side")
PLACEMENTS = (CORRECT, *WRONG_PLACEMENTS)

# Colours of real masks (BGR): surgical blue/green/white, black, grey, navy, pink, beige, red, olive.
PALETTE_BGR = (
    (219, 190, 143), (200, 215, 160), (235, 235, 235), (40, 40, 40), (150, 150, 150),
    (90, 45, 30), (190, 170, 240), (170, 200, 220), (50, 50, 180), (60, 110, 90),
)  # fmt: skip
PALETTE_NAMES = ("blue", "green", "white", "black", "grey", "navy", "pink", "beige", "red", "olive")

# The res10 SSD's boxes relative to the landmarks (median over 83 faces of the starter photos):
# left/right at the jaw's extremes, top at eye level minus 0.63 x (eye-to-chin), bottom at the chin.
SSD_TOP_ABOVE_EYES = 0.63


@dataclass(frozen=True)
class MaskStyle:
    """How one mask looks: shape, fill (solid colour, two-colour pattern or a texture image), shading."""

    shape: str = "surgical"
    look: str = "solid"
    color_bgr: tuple[int, int, int] = (219, 190, 143)
    color2_bgr: tuple[int, int, int] = (235, 235, 235)
    pattern: str = "stripes"
    texture_index: int = 0
    shading: float = 0.35  # 0 = flat; darkening towards the sides of the face
    edge_softness: float = 0.012  # Gaussian sigma of the mask edge, as a fraction of the face width
    angle_deg: float = 0.0  # pattern rotation

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ValueError(f"mask shape {self.shape!r} is not one of {', '.join(SHAPES)}")
        if self.look not in LOOKS:
            raise ValueError(f"mask look {self.look!r} is not one of {', '.join(LOOKS)}")
        if self.pattern not in PATTERNS:
            raise ValueError(f"mask pattern {self.pattern!r} is not one of {', '.join(PATTERNS)}")


def random_style(rng: np.random.Generator, n_textures: int = 0, shapes: Sequence[str] = SHAPES) -> MaskStyle:
    """A random style (shape, look, colours, shading); ``look="texture"`` only when textures exist."""
    looks = LOOKS if n_textures > 0 else LOOKS[:2]
    look = str(rng.choice(looks, p=[0.5, 0.25, 0.25] if n_textures > 0 else [0.65, 0.35]))
    c1, c2 = rng.choice(len(PALETTE_BGR), size=2, replace=False)
    jitter = rng.integers(-20, 21, size=3)
    color = tuple(int(v) for v in np.clip(np.array(PALETTE_BGR[c1]) + jitter, 0, 255))
    return MaskStyle(
        shape=str(rng.choice(list(shapes))),
        look=look,
        color_bgr=color,  # type: ignore[arg-type]
        color2_bgr=tuple(int(v) for v in PALETTE_BGR[c2]),  # type: ignore[arg-type]
        pattern=str(rng.choice(PATTERNS)),
        texture_index=int(rng.integers(0, max(n_textures, 1))),
        shading=float(rng.uniform(0.15, 0.5)),
        edge_softness=float(rng.uniform(0.004, 0.02)),
        angle_deg=float(rng.uniform(-30, 30)),
    )


def look_name(style: MaskStyle) -> str:
    """A short name of how a mask looks, e.g. "white surgical", "cloth pattern", "n95 texture" (for evaluations)."""
    if style.look != "solid":
        return f"{style.shape} {style.look}"
    dist = [sum((a - b) ** 2 for a, b in zip(style.color_bgr, c, strict=True)) for c in PALETTE_BGR]
    return f"{PALETTE_NAMES[int(np.argmin(dist))]} {style.shape}"


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 1e-6 else np.array([0.0, 1.0])


def _quad_bezier(p0: np.ndarray, p1: np.ndarray, p2: np.ndarray, n: int) -> np.ndarray:
    t = np.linspace(0.0, 1.0, n)[:, None]
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2


def face_axes(landmarks_xy: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Unit ``down`` (eyes to chin) and ``right`` vectors of the face and its eye-to-chin length in pixels."""
    pts = np.asarray(landmarks_xy, np.float64)
    eyes = pts[EYES].mean(axis=0)
    down = _unit(pts[8] - eyes)
    right = np.array([-down[1], down[0]])  # image coordinates: y grows downwards
    if np.dot(right, pts[16] - pts[0]) < 0:
        right = -right
    return down, right, float(np.linalg.norm(pts[8] - eyes))


def mask_polygon(
    landmarks_xy: np.ndarray, shape: str = "surgical", placement: str = CORRECT, side: int = 1
) -> np.ndarray:
    """The mask outline (k, 2) float; never over the eyes.

    ``correct``: nose bridge, along the jaw, below the chin. ``below_nose``: top edge under the nostrils.
    ``on_chin``: top edge under the lower lip, hanging below the chin. ``to_side``: the correct mask slid sideways
    (``side`` 1: towards jaw landmark 16, -1: towards landmark 0) until the nose tip is uncovered.
    """
    if shape not in SHAPES:
        raise ValueError(f"mask shape {shape!r} is not one of {', '.join(SHAPES)}")
    if placement not in PLACEMENTS:
        raise ValueError(f"mask placement {placement!r} is not one of {', '.join(PLACEMENTS)}")
    pts = np.asarray(landmarks_xy, np.float64)
    if pts.shape != (68, 2):
        raise ValueError(f"expected 68 landmarks (68, 2), got {pts.shape}")
    if placement == "below_nose":
        return _lowered_polygon(pts, shape, top_idx=33, side_idx=(3, 13), uncovered=NOSE_TIP_AND_NOSTRILS)
    if placement == "on_chin":
        return _lowered_polygon(pts, shape, top_idx=57, side_idx=(4, 12), uncovered=MOUTH, chin_extra=0.3)
    polygon = _correct_polygon(pts, shape)
    if placement == "to_side":
        _, right, _ = face_axes(pts)
        face_w = float(np.linalg.norm(pts[16] - pts[0]))
        for share in np.linspace(0.15, 0.6, 10):  # slide until the nose tip is out
            moved = polygon + (1 if side >= 0 else -1) * share * face_w * right
            if not points_inside(moved, pts[[30]]).any():
                return moved
        return moved
    return polygon


def _correct_polygon(pts: np.ndarray, shape: str) -> np.ndarray:
    down, _, height = face_axes(pts)
    top_t = {"surgical": 0.35, "cloth": 0.1, "n95": 0.25}[shape]  # along the bridge 28 -> 29
    chin_drop = {"surgical": 0.05, "cloth": 0.1, "n95": 0.14}[shape]
    jaw_idx = list(range(2, 15)) if shape != "n95" else [2, 4, 6, 8, 10, 12, 14]
    for lower in np.linspace(0.0, 0.6, 7):  # lower the top edge until no eye landmark is inside
        top = pts[28] + (top_t + lower) * (pts[29] - pts[28])
        left = pts[1] + lower * (pts[2] - pts[1])
        right = pts[15] + lower * (pts[14] - pts[15])
        polygon = np.vstack([_top_curve(left, top, right, 0.05 * height * down), _jaw(pts, jaw_idx, chin_drop)])
        if not points_inside(polygon, pts[EYES]).any():
            return polygon
    return polygon


def _top_curve(left: np.ndarray, top: np.ndarray, right: np.ndarray, lift: np.ndarray) -> np.ndarray:
    return np.vstack([
        _quad_bezier(left, (left + top) / 2 - lift, top, 8),
        _quad_bezier(top, (top + right) / 2 - lift, right, 8)[1:],
    ])  # fmt: skip


def _jaw(pts: np.ndarray, jaw_idx: Sequence[int], chin_drop: float) -> np.ndarray:
    """The jaw points right to left, pushed down (most at the chin) by ``chin_drop`` x eye-to-chin."""
    down, _, height = face_axes(pts)
    jaw = pts[list(jaw_idx)[::-1]].copy()
    weights = np.cos(np.linspace(-np.pi / 2, np.pi / 2, len(jaw))) ** 2  # most below the chin
    return jaw + (chin_drop * height * weights)[:, None] * down


def _lowered_polygon(pts: np.ndarray, shape: str, *, top_idx: int, side_idx: tuple[int, int], uncovered: slice,
                     chin_extra: float = 0.0) -> np.ndarray:  # fmt: skip
    """A mask pulled down: the top edge just below landmark ``top_idx`` (lowered until no ``uncovered`` landmark is
    inside), its sides at the jaw points ``side_idx``, the bottom below the chin."""
    down, _, height = face_axes(pts)
    chin_drop = {"surgical": 0.08, "cloth": 0.12, "n95": 0.16}[shape] + chin_extra
    a, b = side_idx
    for gap in np.linspace(0.04, 0.3, 8):
        top = pts[top_idx] + gap * height * down
        left, right = pts[a] + 0.5 * gap * height * down, pts[b] + 0.5 * gap * height * down
        jaw = _jaw(pts, range(a + 1, b), chin_drop)
        polygon = np.vstack([_top_curve(left, top, right, 0.03 * height * down), jaw])
        if not points_inside(polygon, pts[uncovered]).any():
            return polygon
    return polygon


def points_inside(polygon: np.ndarray, points_xy: np.ndarray) -> np.ndarray:
    """Boolean (n,): which points lie inside (or on) the polygon."""
    contour = np.asarray(polygon, np.float32).reshape(-1, 1, 2)
    return np.array(
        [cv2.pointPolygonTest(contour, (float(x), float(y)), False) >= 0 for x, y in np.asarray(points_xy)],
        dtype=bool,
    )


def box_from_landmarks(landmarks_xy: np.ndarray, image_wh: tuple[int, int]) -> tuple[int, int, int, int]:
    """A face box ``x1, y1, x2, y2`` (end exclusive, clipped) shaped like the res10 SSD's boxes."""
    pts = np.asarray(landmarks_xy, np.float64)
    eyes_y = pts[EYES, 1].mean()
    chin_y = pts[8, 1]
    x1, x2 = pts[JAW, 0].min(), pts[JAW, 0].max()
    y1 = eyes_y - SSD_TOP_ABOVE_EYES * (chin_y - eyes_y)
    y2 = max(chin_y, pts[JAW, 1].max())
    w, h = image_wh
    box = np.clip(np.round([x1, y1, x2 + 1, y2 + 1]), 0, [w, h, w, h]).astype(int)
    return int(box[0]), int(box[1]), int(box[2]), int(box[3])


def _pattern_fill(style: MaskStyle, size_hw: tuple[int, int], period_px: float) -> np.ndarray:
    h, w = size_hw
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a = np.deg2rad(style.angle_deg)
    u = xx * np.cos(a) + yy * np.sin(a)
    v = -xx * np.sin(a) + yy * np.cos(a)
    p = max(period_px, 3.0)
    if style.pattern == "stripes":
        on = (u // (p / 2)) % 2 == 0
    elif style.pattern == "checks":
        on = ((u // p) + (v // p)) % 2 == 0
    else:  # dots
        on = ((u % p - p / 2) ** 2 + (v % p - p / 2) ** 2) < (p / 4) ** 2
    fill = np.empty((h, w, 3), np.float32)
    fill[:] = style.color_bgr
    fill[on] = style.color2_bgr
    return fill


def _texture_fill(texture_bgr: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    th, tw = texture_bgr.shape[:2]
    crop = texture_bgr[th // 4 : th - th // 4, tw // 4 : tw - tw // 4]  # the fabric, not the background
    if crop.size == 0:
        crop = texture_bgr
    return cv2.resize(crop, (size_hw[1], size_hw[0]), interpolation=cv2.INTER_AREA).astype(np.float32)


def _fill(style: MaskStyle, size_hw: tuple[int, int], face_w: float, textures: Sequence[np.ndarray]) -> np.ndarray:
    if style.look == "texture" and textures:
        return _texture_fill(textures[style.texture_index % len(textures)], size_hw)
    if style.look == "pattern":
        return _pattern_fill(style, size_hw, period_px=face_w / 12)
    fill = np.empty((*size_hw, 3), np.float32)
    fill[:] = style.color_bgr
    return fill


def render_mask(
    image_bgr: np.ndarray,
    landmarks_xy: np.ndarray,
    style: MaskStyle,
    textures: Sequence[np.ndarray] = (),
    *,
    seed: int = 0,
    placement: str = CORRECT,
    side: int = 1,
) -> np.ndarray:
    """A new image with a mask of ``style`` at ``placement`` (``side``: see ``mask_polygon``) on the face at
    ``landmarks_xy`` (soft edges, shading, grain)."""
    pts = np.asarray(landmarks_xy, np.float64)
    polygon = mask_polygon(pts, style.shape, placement, side)
    h_img, w_img = image_bgr.shape[:2]
    face_w = float(np.ptp(pts[JAW, 0])) or 1.0
    pad = int(np.ceil(face_w * style.edge_softness * 3)) + 2
    x0, y0 = np.floor(polygon.min(axis=0)).astype(int) - pad
    x1, y1 = np.ceil(polygon.max(axis=0)).astype(int) + pad
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w_img), min(y1, h_img)
    out = image_bgr.copy()
    if x1 - x0 < 2 or y1 - y0 < 2:
        return out
    size_hw = (y1 - y0, x1 - x0)
    alpha = np.zeros(size_hw, np.float32)
    cv2.fillPoly(alpha, [np.round(polygon - [x0, y0]).astype(np.int32)], 1.0, lineType=cv2.LINE_AA)
    sigma = max(face_w * style.edge_softness, 0.5)
    alpha = cv2.GaussianBlur(alpha, (0, 0), sigma)
    fill = _fill(style, size_hw, face_w, textures)
    fill *= _shading(pts, style, (x0, y0), size_hw)[..., None]
    region = image_bgr[y0:y1, x0:x1].astype(np.float32)
    brightness = np.clip(region.mean() / 140.0, 0.45, 1.15)  # match the scene's light
    rng = np.random.default_rng(seed)
    fill = fill * brightness + rng.normal(0.0, 3.0, fill.shape).astype(np.float32)
    blended = region * (1 - alpha[..., None]) + fill * alpha[..., None]
    out[y0:y1, x0:x1] = np.clip(blended, 0, 255).astype(np.uint8)
    return out


def _shading(pts: np.ndarray, style: MaskStyle, origin_xy: tuple[int, int], size_hw: tuple[int, int]) -> np.ndarray:
    """Multiplicative light: darker towards the jaw's sides (a curved surface), surgical pleats."""
    down, right, height = face_axes(pts)
    centre = (pts[30] + pts[8]) / 2
    half_w = max(float(np.ptp(pts[JAW, 0])) / 2, 1.0)
    yy, xx = np.mgrid[0 : size_hw[0], 0 : size_hw[1]].astype(np.float32)
    dx = (xx + origin_xy[0] - centre[0]) * right[0] + (yy + origin_xy[1] - centre[1]) * right[1]
    dy = (xx + origin_xy[0] - centre[0]) * down[0] + (yy + origin_xy[1] - centre[1]) * down[1]
    light = 1.0 - style.shading * np.clip(np.abs(dx) / half_w, 0, 1) ** 2
    if style.shape == "surgical":
        light *= 1.0 - 0.08 * (np.cos(dy / max(height, 1.0) * 2 * np.pi * 3.5) > 0.85)
    return light.astype(np.float32)
