"""MediaPipe's BlazeFace (short range, 128x128): a face/not-face check of the SSD's uncertain boxes, and a second
face detector on the whole frame.

BlazeFace is a second, independent face detector trained by Google on a large and varied set of faces; the SSD and
it rarely fire on the same non-face thing, while a masked face still looks like a face to both. Each candidate box
is cut out as a square with ``context`` of its longer side on every side (the face then fills the middle of the crop,
as in the selfie-range pictures the model was made for), and its P(face) is BlazeFace's best score among the
anchors whose box overlaps the candidate's at IoU >= ``iou_min``. The model file comes from the Apache-2.0
``mediapipe==0.10.14`` wheel (``mediapipe/modules/face_detection/face_detection_short_range.tflite``, see
docs/ASSETS.md); its card (``<stem>.json``, ``"kind": "blazeface"``) holds these settings and the threshold.
Pure parts (anchors, decoding) work without the model.

``BlazeFaceDetector`` runs the model on the whole frame, letterboxed to a square of each of ``sizes_px`` (the graph
is fully convolutional up to its per-stride reshape, so any multiple of 16 works: 128 sees faces of ~15-100% of the
frame's longer side, 192 down to ~10%). Its boxes (eyes to mouth) are turned into the SSD's face boxes (brow to
chin) by the card's ``face_box`` factors, fitted on unmasked faces of the development set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from face_detector.decoding import select_indices
from face_detector.matching import iou_matrix
from face_detector.multiscale import square_crop, zoom_regions
from face_detector.verifier import PAD_BGR
from maskwatch.faces import Faces
from maskwatch.litert import prepare_batch, tflite_predictor

# MediaPipe's face_detection_short_range graph: SSD anchors, strides 8, 16, 16, 16 on a 128 px input, one anchor
# size per stride (fixed_anchor_size), 2 anchors per cell at stride 8 and 2 per layer (6) at stride 16.
SHORT_RANGE_INPUT_PX = 128
SHORT_RANGE_CELLS = ((8, 2), (16, 6))  # (stride px, anchors per cell)
SCORE_CLIP = 100.0
LETTERBOX_BGR = (0, 0, 0)
FRAME_NMS_IOU = 0.3  # MediaPipe's own suppression overlap


def blazeface_anchors(input_px: int = SHORT_RANGE_INPUT_PX, cells: tuple[tuple[int, int], ...] = SHORT_RANGE_CELLS
                      ) -> np.ndarray:  # fmt: skip
    """Anchor centres ``(cx, cy)`` (float32 (n, 2), 0-1 of the input) in the model's output order."""
    centres = []
    for stride, per_cell in cells:
        side = -(-input_px // stride)
        ys, xs = np.meshgrid((np.arange(side) + 0.5) / side, (np.arange(side) + 0.5) / side, indexing="ij")
        grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(grid, per_cell, axis=0))
    return np.concatenate(centres).astype(np.float32)


def anchor_group_sizes(input_px: int = SHORT_RANGE_INPUT_PX, cells: tuple[tuple[int, int], ...] = SHORT_RANGE_CELLS
                       ) -> tuple[int, ...]:  # fmt: skip
    """Anchors per stride group, in output order (512 and 384 for the short-range model)."""
    return tuple((-(-input_px // stride)) ** 2 * per_cell for stride, per_cell in cells)


def decode_blazeface(regressors: np.ndarray, logits: np.ndarray, anchors: np.ndarray, input_px: int
                     ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Boxes ``x1, y1, x2, y2`` (0-1 of the input, float32 (n, 4)) and sigmoid scores (n,) of one image."""
    reg = np.asarray(regressors, np.float32).reshape(len(anchors), -1)
    centre = anchors + reg[:, :2] / input_px
    half = reg[:, 2:4] / input_px / 2
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    logits = np.clip(np.asarray(logits, np.float32).reshape(-1), -SCORE_CLIP, SCORE_CLIP)
    scores = (1.0 / (1.0 + np.exp(-logits.astype(np.float64)))).astype(np.float32)
    return boxes, scores


def candidate_boxes_in_crops(xyxy: np.ndarray, regions_xys: np.ndarray) -> np.ndarray:
    """Each box in its own square region, as fractions 0-1 of the region (float32 (n, 4))."""
    xyxy = np.asarray(xyxy, np.float64).reshape(-1, 4)
    x, y, side = (np.asarray(regions_xys, np.float64)[:, k] for k in range(3))
    out = (xyxy - np.column_stack([x, y, x, y])) / side[:, None]
    return out.astype(np.float32)


class BlazeFaceVerifier:
    """Callable: ``verifier(frame_bgr, xyxy) -> P(face)`` float32 (n,), one LiteRT batch per call."""

    def __init__(self, model_path: str | Path, card: dict[str, Any], threads: int = 1) -> None:
        self.context = float(card["context"])
        self.threshold = float(card["threshold"])
        self.iou_min = float(card.get("iou_min", 0.3))
        self.input_px = int(card.get("input_size_px", SHORT_RANGE_INPUT_PX))
        self.anchors = blazeface_anchors(self.input_px)
        self.group_sizes = anchor_group_sizes(self.input_px)
        self._predict = tflite_predictor(Path(model_path), threads, all_outputs=True)

    def __call__(self, frame_bgr: np.ndarray, xyxy: np.ndarray) -> np.ndarray:
        xyxy = np.asarray(xyxy).reshape(-1, 4)
        if len(xyxy) == 0:
            return np.zeros((0,), np.float32)
        regions = zoom_regions(xyxy, self.context)
        crops = [square_crop(frame_bgr, r, PAD_BGR) for r in regions]
        batch = prepare_batch(crops, (self.input_px, self.input_px)) / 127.5 - 1.0  # MediaPipe's -1..1 input
        regressors, logits = (unfold_batch(head, len(batch), self.group_sizes) for head in heads(self._predict(batch)))
        targets = candidate_boxes_in_crops(xyxy, regions)
        p_face = np.zeros(len(xyxy), np.float32)
        for i in range(len(xyxy)):
            boxes, scores = decode_blazeface(regressors[i], logits[i], self.anchors, self.input_px)
            near = iou_matrix(targets[i : i + 1], boxes)[0] >= self.iou_min
            p_face[i] = scores[near].max() if near.any() else 0.0
        return p_face


def heads(outputs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The model's two outputs by their last axis: box regressors (16 values per anchor) and score logits (1)."""
    return next(o for o in outputs if o.shape[-1] == 16), next(o for o in outputs if o.shape[-1] == 1)


def unfold_batch(output: np.ndarray, n_images: int, group_sizes: tuple[int, ...]) -> np.ndarray:
    """Per-image rows (n, anchors, k) of a batched output ((n, anchors) when k is 1). The graph reshapes each
    stride's head to (1, -1, k) before concatenating them, so a batch comes out as [image 0..n-1 of stride 8,
    image 0..n-1 of stride 16]."""
    flat = np.asarray(output).reshape(-1, output.shape[-1])
    blocks, start = [], 0
    for size in group_sizes:
        blocks.append(flat[start:start + n_images * size].reshape(n_images, size, -1))
        start += n_images * size
    out = np.concatenate(blocks, axis=1)
    return out[..., 0] if out.shape[-1] == 1 else out


def face_boxes(blazeface_xyxy: np.ndarray, face_box: dict[str, float]) -> np.ndarray:
    """BlazeFace boxes (float (n, 4)) moved and scaled to face boxes like the SSD's: centre shifted by ``dx``, ``dy``
    of the box's width, height; width, height times ``width``, ``height``."""
    b = np.asarray(blazeface_xyxy, np.float64).reshape(-1, 4)
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    cx = (b[:, 0] + b[:, 2]) / 2 + face_box["dx"] * w
    cy = (b[:, 1] + b[:, 3]) / 2 + face_box["dy"] * h
    half_w, half_h = w * face_box["width"] / 2, h * face_box["height"] / 2
    return np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1)


def letterbox(frame_bgr: np.ndarray, side_px: int) -> tuple[np.ndarray, float, tuple[int, int]]:
    """``frame_bgr`` resized to fit a ``side_px`` square (aspect kept) and padded black around the middle: the
    square, the scale (square px per frame px) and the padding ``(left, top)`` in square px."""
    height, width = frame_bgr.shape[:2]
    scale = side_px / max(width, height)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    resized = cv2.resize(frame_bgr, (new_w, new_h), interpolation=cv2.INTER_AREA)
    left, top = (side_px - new_w) // 2, (side_px - new_h) // 2
    square = cv2.copyMakeBorder(resized, top, side_px - new_h - top, left, side_px - new_w - left,
                                cv2.BORDER_CONSTANT, value=LETTERBOX_BGR)  # fmt: skip
    return square, scale, (left, top)


def tile_regions(frame_wh: tuple[int, int], grid: int) -> np.ndarray:
    """``grid`` x ``grid`` tiles of a frame, each ``2 / (grid + 1)`` of its width and height, neighbours overlapping
    by half (so a face up to ``1 / (grid + 1)`` of the frame lies whole in one tile): int (n, 4) x1, y1, x2, y2."""
    width, height = frame_wh
    tile_w, tile_h = round(2 * width / (grid + 1)), round(2 * height / (grid + 1))
    xs = [round(width * i / (grid + 1)) for i in range(grid)]
    ys = [round(height * i / (grid + 1)) for i in range(grid)]
    return np.array([(x, y, min(width, x + tile_w), min(height, y + tile_h)) for y in ys for x in xs], np.int64)


def cut_by_tile(xyxy: np.ndarray, tile_xyxy: np.ndarray, frame_wh: tuple[int, int], margin: float = 0.02
                ) -> np.ndarray:  # fmt: skip
    """Which boxes (tile coordinates, float (n, 4)) come within ``margin`` of the tile's side of an edge of the
    tile that lies inside the frame (bool (n,)); the frame's own edges do not count."""
    x1, y1, x2, y2 = (float(v) for v in tile_xyxy)
    tile_w, tile_h = x2 - x1, y2 - y1
    pad_w, pad_h = margin * tile_w, margin * tile_h
    b = np.asarray(xyxy, np.float64).reshape(-1, 4)
    return (((b[:, 0] < pad_w) & (x1 > 0)) | ((b[:, 1] < pad_h) & (y1 > 0))
            | ((b[:, 2] > tile_w - pad_w) & (x2 < frame_wh[0])) | ((b[:, 3] > tile_h - pad_h) & (y2 < frame_wh[1])))


class BlazeFaceDetector:
    """Callable: ``detector(frame_bgr) -> Faces``: BlazeFace on the whole frame, one pass per entry of ``sizes_px``,
    boxes of all passes merged by one NMS, as face boxes (``face_boxes``), scores ``min_confidence`` and up.

    With ``tile_grid`` >= 2 the first pass also sees ``tile_grid`` x ``tile_grid`` overlapping tiles
    (``tile_regions``) in the same batch: faces too small for the whole-frame pass fill more of a tile. A tile
    drops faces that reach one of its edges inside the frame (``cut_by_tile``): parts of a face it cuts."""

    def __init__(self, model_path: str | Path, card: dict[str, Any], sizes_px: tuple[int, ...], *,
                 min_confidence: float, min_size_px: int = 20, threads: int = 1,
                 tile_grid: int = 1) -> None:  # fmt: skip
        self.face_box = {k: float(card["face_box"][k]) for k in ("dx", "dy", "width", "height")}
        self.sizes_px = tuple(int(s) for s in sizes_px)
        if not self.sizes_px:
            raise ValueError("BlazeFaceDetector needs at least one input size")
        self.min_confidence, self.min_size_px, self.tile_grid = float(min_confidence), int(min_size_px), int(tile_grid)
        self._passes = [(px, blazeface_anchors(px), anchor_group_sizes(px),
                         tflite_predictor(Path(model_path), threads, all_outputs=True))
                        for px in self.sizes_px]  # fmt: skip

    def __call__(self, frame_bgr: np.ndarray) -> Faces:
        return self.detect(frame_bgr)[0]

    def detect(self, frame_bgr: np.ndarray) -> tuple[Faces, np.ndarray]:
        """The faces and, per face, whether only a tile found it (bool (n,): no box of the whole frame's pass, at any
        score from ``min_confidence``, overlaps it at ``FRAME_NMS_IOU``)."""
        height, width = frame_bgr.shape[:2]
        whole = np.array([[0, 0, width, height]], np.int64)
        tiles = tile_regions((width, height), self.tile_grid) if self.tile_grid >= 2 else whole[:0]
        boxes, scores, from_tile = [], [], []
        for i, (px, anchors, group_sizes, predict) in enumerate(self._passes):
            regions = np.vstack([whole, tiles]) if i == 0 else whole
            squares = [letterbox(frame_bgr[y1:y2, x1:x2], px) for x1, y1, x2, y2 in regions]
            batch = prepare_batch([sq for sq, _, _ in squares], (px, px)) / 127.5 - 1.0
            regressors, logits = (unfold_batch(head, len(batch), group_sizes) for head in heads(predict(batch)))
            for k, (region, (_, scale, pad_xy)) in enumerate(zip(regions, squares, strict=True)):
                unit_xyxy, region_scores = decode_blazeface(regressors[k], logits[k], anchors, px)
                keep = np.flatnonzero(region_scores >= self.min_confidence)
                xyxy = face_boxes((unit_xyxy[keep] * px - np.tile(pad_xy, 2)) / scale, self.face_box)
                if k > 0:  # a tile: drop the parts of faces it cuts
                    inside = ~cut_by_tile(xyxy, region, (width, height))
                    xyxy, keep = xyxy[inside], keep[inside]
                boxes.append(xyxy + np.tile(region[:2], 2))
                scores.append(region_scores[keep])
                from_tile.append(np.full(len(keep), k > 0))
        scores_all, from_tile_all = np.concatenate(scores), np.concatenate(from_tile)
        kept, rounded = select_indices(np.concatenate(boxes), scores_all, (width, height),
                                       min_confidence=self.min_confidence, min_size_px=self.min_size_px,
                                       nms_iou=FRAME_NMS_IOU)  # fmt: skip
        faces, tile_only = Faces(rounded[kept], scores_all[kept]), np.ones(len(kept), bool)
        whole_boxes = rounded[~from_tile_all]
        if len(kept) and len(whole_boxes):  # a face the whole frame's pass also has is not a tile's alone
            tile_only = iou_matrix(faces.xyxy, whole_boxes).max(axis=1) < FRAME_NMS_IOU
        return faces, tile_only
