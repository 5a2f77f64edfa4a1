"""The classifier's classes as drawn: box colour (from the config's ``draw`` section) and label text (pure).

    class_color_bgr("incorrect", cfg.draw)      # (0, 140, 255), orange
    class_label_text("incorrect", 0.91)         # "Mask Worn Wrong 91.0%"
"""

from __future__ import annotations

from maskwatch.config import DrawConfig

MASK, NO_MASK, INCORRECT = "mask", "no_mask", "incorrect"
LABEL_TEXT = {MASK: "Mask", NO_MASK: "No Mask", INCORRECT: "Mask Worn Wrong"}


def class_color_bgr(class_name: str, draw: DrawConfig) -> tuple[int, int, int]:
    """The box colour of ``class_name`` (``mask``, ``no_mask`` or ``incorrect``), BGR."""
    colors = {MASK: draw.mask_color_bgr, NO_MASK: draw.no_mask_color_bgr, INCORRECT: draw.incorrect_color_bgr}
    if class_name not in colors:
        raise ValueError(f"no colour for class {class_name!r} (classes: {', '.join(colors)})")
    return tuple(colors[class_name])  # type: ignore[return-value]


def class_label_text(class_name: str, probability: float) -> str:
    """``Mask Worn Wrong 91.0%``: the class's text and the probability of that class."""
    if class_name not in LABEL_TEXT:
        raise ValueError(f"no label text for class {class_name!r} (classes: {', '.join(LABEL_TEXT)})")
    return f"{LABEL_TEXT[class_name]} {100 * probability:.1f}%"
