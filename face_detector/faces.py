"""``Faces``: the boxes and scores of the faces found in one frame."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


class _hybridmethod:
    """``Faces.empty()`` builds an empty ``Faces``; ``faces.empty()`` says whether ``faces`` has no box."""

    def __init__(self, on_class: Callable[[type], Any], on_instance: Callable[[Any], Any]) -> None:
        self.on_class = on_class
        self.on_instance = on_instance
        self.__doc__ = on_instance.__doc__

    def __get__(self, obj: Any, owner: type) -> Callable[[], Any]:
        if obj is None:
            return lambda: self.on_class(owner)
        return lambda: self.on_instance(obj)


def _new_empty(cls: type[Faces]) -> Faces:
    return cls(np.zeros((0, 4), np.int32), np.zeros((0,), np.float32))


def _is_empty(faces: Faces) -> bool:
    """True when there is no face."""
    return len(faces) == 0


@dataclass(frozen=True, eq=False)
class Faces:
    """Face boxes of one frame, strongest first.

    ``xyxy``: int32 (n, 4) ``x1, y1, x2, y2`` in pixels, clipped to the frame, end exclusive
    (the face is ``frame[y1:y2, x1:x2]``). ``confidence``: float32 (n,) detector scores.
    Both arrays are read-only.
    """

    xyxy: np.ndarray
    confidence: np.ndarray

    def __post_init__(self) -> None:
        xyxy = np.array(self.xyxy, dtype=np.int32).reshape(-1, 4)
        confidence = np.array(self.confidence, dtype=np.float32).reshape(-1)
        if len(xyxy) != len(confidence):
            raise ValueError(f"Faces: {len(xyxy)} boxes but {len(confidence)} confidences")
        xyxy.setflags(write=False)
        confidence.setflags(write=False)
        object.__setattr__(self, "xyxy", xyxy)
        object.__setattr__(self, "confidence", confidence)

    empty = _hybridmethod(_new_empty, _is_empty)

    def __len__(self) -> int:
        return len(self.confidence)

    def __getitem__(self, index: np.ndarray | slice | int | list[int]) -> Faces:
        """Select faces by a boolean mask, an index array, a slice or one index (always returns ``Faces``)."""
        if isinstance(index, int | np.integer):
            index = [int(index)]
        return Faces(self.xyxy[index], self.confidence[index])

    def __repr__(self) -> str:
        return f"Faces(n={len(self)}, xyxy={self.xyxy.tolist()}, confidence={np.round(self.confidence, 3).tolist()})"

    @property
    def size_wh(self) -> np.ndarray:
        """int32 (n, 2): width and height of every box in pixels."""
        return self.xyxy[:, 2:] - self.xyxy[:, :2]

    def crops(self, frame_bgr: np.ndarray, margin: float = 0.0) -> list[np.ndarray]:
        """Copies of the face regions of ``frame_bgr``, each box grown by ``margin`` x its size on every side."""
        if margin < 0:
            raise ValueError(f"crop margin must be >= 0, got {margin}")
        height, width = frame_bgr.shape[:2]
        grown = grow_boxes(self.xyxy, margin, (width, height))
        return [frame_bgr[y1:y2, x1:x2].copy() for x1, y1, x2, y2 in grown]


def grow_boxes(xyxy: np.ndarray, margin: float, frame_wh: tuple[int, int]) -> np.ndarray:
    """Boxes grown by ``margin`` x their width/height on every side, clipped to the frame (int32 (n, 4))."""
    xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    size = xyxy[:, 2:] - xyxy[:, :2]
    grown = np.concatenate([xyxy[:, :2] - margin * size, xyxy[:, 2:] + margin * size], axis=1)
    width, height = frame_wh
    grown = np.rint(grown)
    grown[:, 0::2] = np.clip(grown[:, 0::2], 0, width)
    grown[:, 1::2] = np.clip(grown[:, 1::2], 0, height)
    return grown.astype(np.int32)
