"""``Faces``: the face record of one frame (boxes, detector scores, P(mask), label, track id)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

LABELS = ("no_mask", "mask", "unknown")  # label codes 0, 1, 2 (``Faces.label`` holds codes)
NO_MASK, MASK, UNKNOWN = 0, 1, 2
NO_TRACK = -1


def labels_from_prob(prob_mask: np.ndarray | float, threshold: float) -> np.ndarray:
    """int8 label codes of P(mask): ``MASK`` at or above ``threshold``, ``NO_MASK`` below, ``UNKNOWN`` for NaN
    (not classified). The one place a probability becomes a label (drawing, log and stats use it)."""
    prob = np.asarray(prob_mask, np.float64)
    codes = np.where(prob >= threshold, MASK, NO_MASK).astype(np.int8)
    codes[np.isnan(prob)] = UNKNOWN
    return codes


def _frozen(values: object, dtype: type, shape: tuple[int, ...]) -> np.ndarray:
    array = np.array(values, dtype=dtype).reshape(shape)
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class Faces:
    """Faces of one frame, in the detector's order (strongest first); every array is read-only, one row per face.

    ``xyxy``: int32 (n, 4) ``x1, y1, x2, y2`` in pixels, clipped to the frame, end exclusive (the face is
    ``frame[y1:y2, x1:x2]``). ``confidence``: float32 (n,) detector scores. ``prob_mask``: float32 (n,) P(mask),
    NaN = not classified. ``label``: int8 (n,) codes into ``LABELS`` (``label_names`` gives the strings).
    ``track_id``: int64 (n,), ``NO_TRACK`` = none. ``Faces(xyxy, confidence)`` leaves the rest unset.
    """

    xyxy: np.ndarray
    confidence: np.ndarray
    prob_mask: np.ndarray | None = field(default=None)
    label: np.ndarray | None = field(default=None)
    track_id: np.ndarray | None = field(default=None)

    def __post_init__(self) -> None:
        xyxy = _frozen(self.xyxy, np.int32, (-1, 4))
        n = len(xyxy)
        columns = {
            "xyxy": xyxy,
            "confidence": _frozen(self.confidence, np.float32, (-1,)),
            "prob_mask": _frozen(np.full(n, np.nan) if self.prob_mask is None else self.prob_mask, np.float32, (-1,)),
            "label": _frozen(np.full(n, UNKNOWN) if self.label is None else self.label, np.int8, (-1,)),
            "track_id": _frozen(np.full(n, NO_TRACK) if self.track_id is None else self.track_id, np.int64, (-1,)),
        }
        for name, column in columns.items():
            if len(column) != n:
                raise ValueError(f"Faces: {n} boxes but {len(column)} values of {name}")
            object.__setattr__(self, name, column)

    @classmethod
    def empty(cls) -> Faces:
        """No face."""
        return cls(np.zeros((0, 4), np.int32), np.zeros((0,), np.float32))

    @classmethod
    def concat(cls, parts: Sequence[Faces]) -> Faces:
        """All faces of ``parts``, in order."""
        if not parts:
            return cls.empty()
        return cls(*(np.concatenate([getattr(p, name) for p in parts]) for name in _COLUMNS))

    def __len__(self) -> int:
        return len(self.confidence)

    def __getitem__(self, index: np.ndarray | slice | int | list[int]) -> Faces:
        """Select faces by a boolean mask, an index array, a slice or one index (always returns ``Faces``)."""
        if isinstance(index, int | np.integer):
            index = [int(index)]
        return Faces(*(getattr(self, name)[index] for name in _COLUMNS))

    def __repr__(self) -> str:
        return (f"Faces(n={len(self)}, xyxy={self.xyxy.tolist()}, confidence={np.round(self.confidence, 3).tolist()}, "
                f"labels={self.label_names}, track_id={self.track_id.tolist()})")

    @property
    def size_wh(self) -> np.ndarray:
        """int32 (n, 2): width and height of every box in pixels."""
        return self.xyxy[:, 2:] - self.xyxy[:, :2]

    @property
    def label_names(self) -> list[str]:
        """The label of every face as a string (``"mask"``, ``"no_mask"``, ``"unknown"``)."""
        return [LABELS[code] for code in self.label.tolist()]

    def with_labels(self, prob_mask: np.ndarray, threshold: float) -> Faces:
        """A copy with these P(mask) and the labels ``labels_from_prob`` gives them."""
        prob = np.asarray(prob_mask, np.float32)
        return replace(self, prob_mask=prob, label=labels_from_prob(prob, threshold))

    def with_unknown(self, chosen: np.ndarray) -> Faces:
        """A copy with the chosen faces (bool (n,)) labelled unknown; P(mask) kept."""
        label = self.label.copy()
        label[np.asarray(chosen, bool)] = UNKNOWN
        return replace(self, label=label)

    def with_track_ids(self, track_id: np.ndarray) -> Faces:
        """A copy with these track ids."""
        return replace(self, track_id=track_id)

    def crops(self, frame_bgr: np.ndarray, margin: float = 0.0) -> list[np.ndarray]:
        """Copies of the face regions of ``frame_bgr``, each box grown by ``margin`` x its size on every side."""
        if margin < 0:
            raise ValueError(f"crop margin must be >= 0, got {margin}")
        height, width = frame_bgr.shape[:2]
        grown = grow_boxes(self.xyxy, margin, (width, height))
        return [frame_bgr[y1:y2, x1:x2].copy() for x1, y1, x2, y2 in grown]


_COLUMNS = ("xyxy", "confidence", "prob_mask", "label", "track_id")


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
