"""``Faces``: the face record of one frame (boxes, detector scores, P(mask), label, track id, class probabilities)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from maskwatch.geometry import clip_boxes
from maskwatch.labels import CLASSES, LABELS, MASK, NO_MASK, UNKNOWN, labels_from_prob

__all__ = ["LABELS", "MASK", "NO_MASK", "NO_TRACK", "UNKNOWN", "Faces", "grow_boxes", "labels_from_prob"]
NO_TRACK = -1


def _frozen(values: object, dtype: type, shape: tuple[int, ...]) -> np.ndarray:
    array = np.array(values, dtype=dtype).reshape(shape)
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class Faces:
    """Faces of one frame, in the detector's order (strongest first); every array is read-only, one row per face.

    ``xyxy``: int32 (n, 4) ``x1, y1, x2, y2`` in pixels, clipped to the frame, end exclusive (the face is
    ``frame[y1:y2, x1:x2]``). ``confidence``: float32 (n,) detector scores. ``prob_mask``: float32 (n,) P(mask),
    NaN = not classified. ``label``: int8 (n,) codes into ``maskwatch.labels.LABELS`` (``label_names`` gives the
    strings). ``track_id``: int64 (n,), ``NO_TRACK`` = none. ``probs``: float32 (n, 0) for a binary model, else
    (n, 3), the class probabilities in the order of ``maskwatch.labels.CLASSES`` (no_mask, mask, incorrect; NaN =
    not classified). ``Faces(xyxy, confidence)`` leaves the rest unset.
    """

    xyxy: np.ndarray
    confidence: np.ndarray
    prob_mask: np.ndarray | None = field(default=None)
    label: np.ndarray | None = field(default=None)
    track_id: np.ndarray | None = field(default=None)
    probs: np.ndarray | None = field(default=None)

    def __post_init__(self) -> None:
        xyxy = _frozen(self.xyxy, np.int32, (-1, 4))
        n = len(xyxy)
        no_probs = self.probs is None or np.size(self.probs) == 0
        columns = {
            "xyxy": xyxy,
            "confidence": _frozen(self.confidence, np.float32, (-1,)),
            "prob_mask": _frozen(np.full(n, np.nan) if self.prob_mask is None else self.prob_mask, np.float32, (-1,)),
            "label": _frozen(np.full(n, UNKNOWN) if self.label is None else self.label, np.int8, (-1,)),
            "track_id": _frozen(np.full(n, NO_TRACK) if self.track_id is None else self.track_id, np.int64, (-1,)),
            "probs": _frozen(np.zeros((n, 0)) if no_probs else self.probs, np.float32,
                             (n, 0) if no_probs else (-1, len(CLASSES))),
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
        confidence = [round(float(c), 3) for c in self.confidence]
        return (f"Faces(n={len(self)}, xyxy={self.xyxy.tolist()}, confidence={confidence}, "
                f"labels={self.label_names}, track_id={self.track_id.tolist()})")

    @property
    def size_wh(self) -> np.ndarray:
        """int32 (n, 2): width and height of every box in pixels."""
        return self.xyxy[:, 2:] - self.xyxy[:, :2]

    @property
    def label_names(self) -> list[str]:
        """The label of every face as a string (``"mask"``, ``"no_mask"``, ``"incorrect"``, ``"unknown"``)."""
        return [LABELS[code] for code in self.label.tolist()]

    @property
    def label_prob(self) -> np.ndarray:
        """float64 (n,): the probability of each face's label (binary: P(mask), or 1 - P(mask) for no_mask; three
        classes: that class's column), NaN for unknown."""
        prob = self.prob_mask.astype(np.float64)
        if self.probs.shape[1]:
            column = np.where(self.label == UNKNOWN, 0, self.label).astype(np.intp)
            prob = self.probs[np.arange(len(column)), column].astype(np.float64)
        elif len(prob):
            prob = np.where(self.label == NO_MASK, 1 - prob, prob)
        return np.where(self.label == UNKNOWN, np.nan, prob)

    def with_labels(self, scores: np.ndarray, threshold: float) -> Faces:
        """A copy labelled by ``labels_from_prob``: ``scores`` are P(mask) (n,), or class probabilities (n, 3) (then
        P(mask) is their mask column)."""
        scores = np.asarray(scores, np.float32)
        label = labels_from_prob(scores, threshold)
        if scores.ndim == 2:
            return replace(self, prob_mask=scores[:, MASK], label=label, probs=scores)
        return replace(self, prob_mask=scores, label=label)

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


_COLUMNS = ("xyxy", "confidence", "prob_mask", "label", "track_id", "probs")


def grow_boxes(xyxy: np.ndarray, margin: float, frame_wh: tuple[int, int]) -> np.ndarray:
    """Boxes grown by ``margin`` x their width/height on every side, clipped to the frame (int32 (n, 4))."""
    xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    size = xyxy[:, 2:] - xyxy[:, :2]
    grown = np.concatenate([xyxy[:, :2] - margin * size, xyxy[:, 2:] + margin * size], axis=1)
    return clip_boxes(np.rint(grown), frame_wh).astype(np.int32)
