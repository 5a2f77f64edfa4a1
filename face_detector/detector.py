"""``FaceDetector``: the res10 SSD (OpenCV DNN, Caffe), built once, called per frame."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from face_detector.decoding import select_faces, ssd_boxes
from face_detector.matching import iou_matrix
from face_detector.multiscale import (
    add_new_faces,
    at_border,
    best_overlap,
    fits_fine_pass,
    inside_share,
    nested_in,
    nested_in_stronger,
    pass_sizes_wh,
    shape_ok,
    split_batch,
    square_crop,
    zoom_regions,
)
from maskwatch.errors import UserError
from maskwatch.faces import Faces

if TYPE_CHECKING:
    from face_detector.blazeface import BlazeFaceDetector, BlazeFaceVerifier
    from maskwatch.config import Config

MEAN_BGR = (104.0, 177.0, 123.0)  # the res10 SSD's training mean
MAX_NETS = 3  # networks kept for large input sizes, one per size; images of many sizes replace the oldest
SHARED_NET_MAX_AREA = 300 * 300  # inputs up to this many pixels share one network (see FaceDetector._net_for)
BORDER_MARGIN_PX = 2  # recheck_at_border: a box this close to an edge was (nearly) clipped by the frame
FRAME_DETECTOR_MAX_IOU = 0.3  # a second detector's face overlapping an SSD face this much is the same face
LOOK_IOU = 0.4  # a second look's box overlapping the box it looks at this much is the same face


def _blazeface_files(cfg: Config) -> tuple[Path, dict]:
    """The BlazeFace model file and its card (``face_detector.blazeface_model``), with one-line errors."""
    from face_detector.verifier import BLAZEFACE_HINT, read_verifier_card, verifier_model_file

    stem = Path(cfg.resolve_path(cfg.face_detector.blazeface_model))
    if not stem.with_suffix(".json").is_file():
        raise UserError(f"no BlazeFace card at {stem.with_suffix('.json')}: set face_detector.blazeface_model "
                        "(shipped: models/blazeface_short_range), or turn the pass off with "
                        "face_detector.blazeface_passes_px=[]")
    card = read_verifier_card(stem)
    if card.get("kind") != "blazeface" or "face_box" not in card:
        raise UserError(f"{stem.with_suffix('.json')} is not a BlazeFace card with face_box factors "
                        "(face_detector.blazeface_model: models/blazeface_short_range)")  # fmt: skip
    return verifier_model_file(stem, BLAZEFACE_HINT), card


def blazeface_parts(cfg: Config) -> tuple[BlazeFaceDetector | None, BlazeFaceVerifier | None]:
    """BlazeFace on the whole frame (``face_detector.blazeface_passes_px``; [] = None) and BlazeFace on a zoomed
    crop for its proposals (``blazeface_check_all`` or ``_tiles``, or ``blazeface_sure`` < 1; else None), from one
    card."""
    from face_detector.blazeface import BlazeFaceDetector, BlazeFaceVerifier

    fd = cfg.face_detector
    if not fd.blazeface_passes_px:
        return None, None
    model, card = _blazeface_files(cfg)
    detector = BlazeFaceDetector(model, card, fd.blazeface_passes_px, min_confidence=fd.blazeface_min_confidence,
                                 min_size_px=fd.min_size_px, threads=fd.verifier_threads,
                                 tile_grid=fd.blazeface_tile_grid)  # fmt: skip
    checked = fd.blazeface_check_all or fd.blazeface_check_tiles or fd.blazeface_sure < 1.0
    return detector, BlazeFaceVerifier(model, card, threads=fd.verifier_threads) if checked else None


def set_opencv_threads(threads: int) -> None:
    """Set OpenCV's worker threads once for the process (0 = OpenCV's default, all cores)."""
    cv2.setNumThreads(threads if threads > 0 else -1)  # OpenCV: 0 would mean "no threading", <0 the default


def as_bgr(frame: np.ndarray) -> np.ndarray:
    """A 3-channel BGR uint8 view of ``frame`` (grayscale and BGRA are converted); bad input: ``ValueError``."""
    if not isinstance(frame, np.ndarray):
        raise ValueError(f"expected an image as a numpy array, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got dtype {frame.dtype}")
    if frame.size == 0:
        raise ValueError(f"expected a non-empty image, got shape {frame.shape}")
    if frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 1):
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.ndim == 3 and frame.shape[2] == 3:
        return frame
    if frame.ndim == 3 and frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    raise ValueError(f"expected an image of shape (h, w), (h, w, 3) or (h, w, 4), got {frame.shape}")


class NetsBySize(dict):
    """Networks of one model, one per input size (``size_wh -> cv2.dnn.Net``, least recently used first; the last
    ``max_nets`` kept): OpenCV re-plans a network whose input shape changes, which is costly for large inputs and,
    for some networks (CenterFace), gives wrong outputs. ``spare``: an already loaded network, used for the first
    size instead of loading another."""

    def __init__(self, load: Callable[[], cv2.dnn.Net], max_nets: int, spare: cv2.dnn.Net | None = None) -> None:
        super().__init__()
        self._load, self.max_nets, self._spare = load, int(max_nets), spare

    def net_for(self, size_wh: tuple[int, int]) -> cv2.dnn.Net:
        net = self.pop(size_wh, None)
        if net is None:
            net, self._spare = self._spare or self._load(), None
            if len(self) >= self.max_nets:
                self.pop(next(iter(self)))
        self[size_wh] = net  # most recently used last
        return net


class FaceDetector:
    """The res10 300x300 SSD face detector: ``detector(frame_bgr) -> Faces``.

    One SSD pass per input size (``input_long_sides_px``: frame resized, aspect kept; else ``input_size_wh``; plus
    ``large_frame_pass_px`` for frames at least that large, up to their own size with ``large_frame_pass_max_px``),
    boxes of all passes merged by one NMS; boxes with less than ``min_inside_share`` of their area inside the frame
    are dropped first. Optional: boxes outside ``[min_aspect_hw, max_aspect_hw]`` are dropped; boxes scoring from
    ``recheck_min_confidence`` up to ``min_confidence`` get a zoomed second look (a square crop around the box per
    entry of ``recheck_contexts``, that fraction of its size on every side, at ``recheck_size_px``; all crops in one
    batch) and are kept only when their best look scores ``min_confidence`` or more; so are boxes up to
    ``recheck_max_confidence`` (1.0: every box gets the second look, which also rejects confident false boxes), and,
    with ``recheck_at_border``, boxes touching the frame's edge whatever their score (the SSD saw only part of the
    thing there; confident ghosts at the edge are rejected at the cost of a few border crops), and so are boxes
    flatter than ``recheck_below_aspect_hw`` (a masked face's box is often wider than tall; so is a coin's). A
    ``verifier`` (``(frame_bgr, xyxy) -> P(face)``, e.g. BlazeFace) works with the second look: boxes it scores
    below ``verifier_gate`` get no look (the costly SSD crops go to plausible faces only), and a box the look keeps
    must also score ``verifier_min_p_face``, and the mean of its look's score and P(face) ``verifier_min_mean``
    (the SSD and the verifier rarely fire strongly on the same non-face). Without the
    second look (``recheck_size_px`` 0) the verifier alone decides: boxes it scores ``verifier_min_p_face`` or more
    are kept as found. Last, with ``nested_share``, a box mostly inside a stronger one, or holding most of one, is
    dropped. With several passes, ``fine_pass_max_box_px`` drops boxes taller than that (in SSD input pixels) from
    every pass but the coarsest: large faces belong to the coarse pass, a fine pass fires on parts of them (a half
    face at 0.95 on a webcam close-up). A ``frame_detector`` (``frame_bgr -> Faces``, e.g. BlazeFace on the whole
    frame) proposes the faces it finds that no SSD face overlaps (IoU >= ``FRAME_DETECTOR_MAX_IOU``, or nested):
    close-up masked faces the SSD does not see at all. With the second look on, a proposal is kept only if a look
    there finds the face at ``proposal_min_look`` (with the look's box and score); without it, it is added as found.
    From ``proposal_sure`` up, a proposal the look misses (a masked face filling the look's crop) is kept with its own
    box when ``proposal_check`` (``(frame_bgr, xyxy) -> P(face)``, e.g. BlazeFace on a zoomed crop) scores
    ``proposal_min_check``. Before their look, every proposal (``proposal_check_all``) or those only a tile found
    (``proposal_check_tiles``, with a frame detector whose ``detect`` says so) must pass that check too.
    """

    def __init__(
        self,
        prototxt: str | Path,
        caffemodel: str | Path,
        *,
        min_confidence: float = 0.5,
        input_size_wh: tuple[int, int] = (300, 300),
        input_long_sides_px: Sequence[int] = (),
        large_frame_pass_px: int = 0,
        large_frame_pass_max_px: int = 0,
        min_inside_share: float = 0.0,
        min_size_px: int = 20,
        nms_iou: float = 0.4,
        min_aspect_hw: float = 0.0,
        max_aspect_hw: float = float("inf"),
        recheck_size_px: int = 0,
        recheck_min_confidence: float = 0.2,
        recheck_contexts: Sequence[float] = (0.5,),
        recheck_max: int = 8,
        recheck_max_confidence: float = 1.0,
        recheck_at_border: bool = False,
        recheck_below_aspect_hw: float = 0.0,
        recheck_skip_nested: bool = False,
        verifier: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
        verifier_min_p_face: float = 0.5,
        verifier_gate: float = 0.0,
        verifier_min_mean: float = 0.0,
        nested_share: float = 0.0,
        fine_pass_max_box_px: int = 0,
        frame_detector: Callable[[np.ndarray], Faces] | None = None,
        proposal_min_look: float = 0.5,
        proposal_check: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
        proposal_sure: float = 1.0,
        proposal_check_all: bool = False,
        proposal_check_tiles: bool = False,
        proposal_min_check: float = 0.5,
    ) -> None:
        for path in (prototxt, caffemodel):
            if not Path(path).is_file():
                raise UserError(f"face detector file not found: {path} (run: python -m models fetch)")
        try:
            self.net = cv2.dnn.readNetFromCaffe(str(prototxt), str(caffemodel))
            self._model_files = (str(prototxt), str(caffemodel))
        except cv2.error as exc:
            msg = " ".join(str(exc).split())[-200:]
            raise UserError(f"cannot load the SSD face detector from {prototxt}, {caffemodel}: {msg}") from None
        self._nets = NetsBySize(lambda: cv2.dnn.readNetFromCaffe(*self._model_files), MAX_NETS)  # large inputs
        self.min_confidence = float(min_confidence)
        self.input_size_wh = (int(input_size_wh[0]), int(input_size_wh[1]))
        self.input_long_sides_px = tuple(int(s) for s in input_long_sides_px)
        self.large_frame_pass_px, self.min_inside_share = int(large_frame_pass_px), float(min_inside_share)
        self.large_frame_pass_max_px = int(large_frame_pass_max_px)
        self.min_size_px = int(min_size_px)
        self.nms_iou = float(nms_iou)
        self.min_aspect_hw, self.max_aspect_hw = float(min_aspect_hw), float(max_aspect_hw)
        self.recheck_size_px = int(recheck_size_px)
        self.recheck_min_confidence = float(recheck_min_confidence)
        self.recheck_contexts = tuple(float(c) for c in recheck_contexts)
        if not self.recheck_contexts:
            raise UserError("face_detector.recheck_contexts is empty: give at least one context, e.g. [0.5]")
        self.recheck_max = int(recheck_max)
        self.recheck_max_confidence = float(recheck_max_confidence)
        self.recheck_at_border = bool(recheck_at_border)
        self.recheck_below_aspect_hw = float(recheck_below_aspect_hw)
        self.recheck_skip_nested = bool(recheck_skip_nested)
        self.verifier = verifier
        self.verifier_min_p_face = float(verifier_min_p_face)
        self.verifier_gate = float(verifier_gate)
        self.verifier_min_mean = float(verifier_min_mean)
        self.nested_share = float(nested_share)
        self.fine_pass_max_box_px = int(fine_pass_max_box_px)
        self.frame_detector = frame_detector
        self.proposal_min_look = float(proposal_min_look)
        self.proposal_check = proposal_check
        self.proposal_sure, self.proposal_min_check = float(proposal_sure), float(proposal_min_check)
        self.proposal_check_all = bool(proposal_check_all)
        self.proposal_check_tiles = bool(proposal_check_tiles)

    @classmethod
    def from_config(cls, cfg: Config, *, video: bool = False) -> FaceDetector:
        """Build from ``cfg.face_detector``; the model files come from ``models.assets.resolve``. For ``video``
        (camera, stream, video file) the large-frame pass runs only with ``large_frame_pass_in_video``, and at
        ``large_frame_pass_px`` itself."""
        from face_detector.verifier import FaceVerifier
        from models.assets import resolve

        fd = cfg.face_detector
        set_opencv_threads(fd.opencv_threads)
        verifier = FaceVerifier.from_config(cfg)
        min_p_face = fd.verifier_min_p_face or (verifier.threshold if verifier else 0.5)
        frame_detector, check = blazeface_parts(cfg)
        return cls(
            resolve("prototxt", cfg),
            resolve("caffemodel", cfg),
            min_confidence=fd.min_confidence,
            input_size_wh=fd.input_size_wh,
            input_long_sides_px=fd.input_long_sides_px,
            large_frame_pass_px=fd.large_frame_pass_px if fd.large_frame_pass_in_video or not video else 0,
            large_frame_pass_max_px=0 if video else fd.large_frame_pass_max_px,  # video: the cheaper fixed size
            min_inside_share=fd.min_inside_share,
            min_size_px=fd.min_size_px,
            nms_iou=fd.nms_iou,
            min_aspect_hw=fd.min_aspect_hw,
            max_aspect_hw=fd.max_aspect_hw,
            recheck_size_px=fd.recheck_size_px,
            recheck_min_confidence=fd.recheck_min_confidence,
            recheck_contexts=fd.recheck_contexts,
            recheck_max=fd.recheck_max,
            recheck_max_confidence=fd.recheck_max_confidence,
            recheck_at_border=fd.recheck_at_border,
            recheck_below_aspect_hw=fd.recheck_below_aspect_hw,
            recheck_skip_nested=fd.recheck_skip_nested,
            verifier=verifier,
            verifier_min_p_face=min_p_face,
            verifier_gate=fd.verifier_gate,
            verifier_min_mean=fd.verifier_min_mean,
            nested_share=fd.nested_share,
            fine_pass_max_box_px=fd.fine_pass_max_box_px,
            frame_detector=frame_detector,
            proposal_min_look=fd.blazeface_min_look,
            proposal_check=check,
            proposal_sure=fd.blazeface_sure,
            proposal_check_all=fd.blazeface_check_all,
            proposal_check_tiles=fd.blazeface_check_tiles,
            proposal_min_check=check.threshold if check else 0.5,
        )

    @property
    def rechecks(self) -> bool:
        return (self.recheck_size_px > 0 or self.verifier is not None) and self.recheck_max >= 1

    def forward(self, frames_bgr: Sequence[np.ndarray], size_wh: tuple[int, int]) -> np.ndarray:
        """Raw SSD output ``[1, 1, N, 7]`` for ``frames_bgr`` resized to ``size_wh`` (one batch)."""
        net = self._net_for(tuple(size_wh))
        net.setInput(cv2.dnn.blobFromImages(list(frames_bgr), 1.0, size_wh, MEAN_BGR))
        return net.forward()

    def _net_for(self, size_wh: tuple[int, int]) -> cv2.dnn.Net:
        """The network for an input size. OpenCV re-plans a network whose input shape changes, which is costly for
        large inputs: each size above ``SHARED_NET_MAX_AREA`` pixels (the 600 px pass) gets its own network (the
        last ``MAX_NETS`` such sizes kept); the small inputs (the 300 px pass, the second look) share one. Measured
        on crowd.mp4: a network per size was 5-10% faster but held 100 MB more; this split keeps most of the gain
        for ~50 MB (docs/PERFORMANCE.md)."""
        return self.net if size_wh[0] * size_wh[1] <= SHARED_NET_MAX_AREA else self._nets.net_for(size_wh)

    def __call__(self, frame_bgr: np.ndarray) -> Faces:
        frame_bgr = as_bgr(frame_bgr)
        height, width = frame_bgr.shape[:2]
        sizes = pass_sizes_wh((width, height), self.long_sides_px((width, height)), self.input_size_wh)
        coarse_h = min(h for _, h in sizes)
        passes = []
        for size in sizes:
            boxes, scores = ssd_boxes(self.forward([frame_bgr], size), (0, 0, width, height))
            if self.min_inside_share > 0:  # the SSD's ghosts reaching past the corner of a close-up
                keep = inside_share(boxes, (width, height)) >= self.min_inside_share
                boxes, scores = boxes[keep], scores[keep]
            if self.fine_pass_max_box_px > 0 and size[1] > coarse_h:
                keep = fits_fine_pass(boxes, size[1] / height, self.fine_pass_max_box_px)
                boxes, scores = boxes[keep], scores[keep]
            passes.append((boxes, scores))
        floor = self.recheck_min_confidence if self.rechecks else self.min_confidence
        faces = self._select(np.concatenate([b for b, _ in passes]), np.concatenate([s for _, s in passes]),
                             (width, height), floor)  # fmt: skip
        if self.rechecks:
            faces = self._recheck(frame_bgr, faces)
        faces = faces[shape_ok(faces.xyxy, self.min_aspect_hw, self.max_aspect_hw)]
        if self.nested_share > 0:
            faces = faces[~nested_in_stronger(faces.xyxy, self.nested_share)]
        if self.frame_detector is not None:
            faces = self._add_proposals(frame_bgr, faces)
        return faces

    def long_sides_px(self, frame_wh: tuple[int, int]) -> tuple[int, ...]:
        """The passes' longer sides for a frame: ``input_long_sides_px``, and ``large_frame_pass_px`` when the frame
        is at least that large (a pass that never upscales: small faces in large photos and video); with
        ``large_frame_pass_max_px`` above it, that pass sees the frame at its own size, shrunk to at most that."""
        large, longest = self.large_frame_pass_px, max(frame_wh)
        if not self.input_long_sides_px or large <= 0 or longest < large:
            return self.input_long_sides_px
        if self.large_frame_pass_max_px > large:
            large = min(longest, self.large_frame_pass_max_px)
        return (*self.input_long_sides_px, large)

    def _add_proposals(self, frame_bgr: np.ndarray, faces: Faces) -> Faces:
        """``faces`` and the ``frame_detector``'s faces that none of them overlaps (IoU >= ``FRAME_DETECTOR_MAX_IOU``,
        or nested). With the second look on, each such proposal is kept only if a look finds the face there at
        ``proposal_min_look`` (and ``min_confidence``), with the look's box and score (two detectors agree: no aspect
        limit), or, from ``proposal_sure`` up, with its own box when ``proposal_check`` agrees (``_sure_proposals``);
        without the look it is added as found. A kept proposal nested in a stronger one is dropped
        (``nested_share``)."""
        proposals, checked = self._proposals(frame_bgr)
        if len(proposals) and len(faces):
            new = iou_matrix(proposals.xyxy, faces.xyxy).max(axis=1) < FRAME_DETECTOR_MAX_IOU
            if self.nested_share > 0:
                new &= ~nested_in(proposals.xyxy, faces.xyxy, self.nested_share)
            proposals, checked = proposals[new], checked[new]
        if checked.any() and self.proposal_check is not None:
            passed = ~checked
            passed[checked] = self.proposal_check(frame_bgr, proposals.xyxy[checked]) >= self.proposal_min_check
            proposals, checked = proposals[passed], checked[passed]
        if len(proposals) and self.recheck_size_px > 0:
            height, width = frame_bgr.shape[:2]
            boxes, scores = self._second_look(frame_bgr, proposals.xyxy)
            floor = max(self.min_confidence, self.proposal_min_look)
            confirmed = self._select(boxes, scores, (width, height), floor)
            sure = self._sure_proposals(frame_bgr, proposals, checked, confirmed)
            proposals = add_new_faces(confirmed, sure, LOOK_IOU)
        if self.nested_share > 0:  # a tile's part of a face next to the whole-frame box of the same face
            proposals = proposals[~nested_in_stronger(proposals.xyxy, self.nested_share)]
        return add_new_faces(faces, proposals, FRAME_DETECTOR_MAX_IOU)

    def _proposals(self, frame_bgr: np.ndarray) -> tuple[Faces, np.ndarray]:
        """The ``frame_detector``'s faces, and which of them need ``proposal_check`` before their look (all with
        ``proposal_check_all``; with ``proposal_check_tiles``, those a tile found, from a frame detector with a
        ``detect`` method that says so, as ``BlazeFaceDetector``)."""
        detect = getattr(self.frame_detector, "detect", None)
        if self.proposal_check_tiles and not self.proposal_check_all and detect is not None:
            return detect(frame_bgr)
        proposals = self.frame_detector(frame_bgr)
        return proposals, np.full(len(proposals), self.proposal_check_all)

    def _sure_proposals(self, frame_bgr: np.ndarray, proposals: Faces, checked: np.ndarray, confirmed: Faces
                        ) -> Faces:  # fmt: skip
        """Proposals from ``proposal_sure`` up that no confirmed look overlaps (``LOOK_IOU``; the SSD's look misses
        many masked faces that fill their crop), kept with their own box when ``proposal_check`` on a zoomed crop
        scores ``proposal_min_check`` (the ``checked`` ones passed it before their look already)."""
        if self.proposal_check is None:
            return Faces.empty()
        sure = proposals.confidence >= max(self.proposal_sure, self.min_confidence)
        if sure.any() and len(confirmed):
            sure &= iou_matrix(proposals.xyxy, confirmed.xyxy).max(axis=1) < LOOK_IOU
        ask = np.flatnonzero(sure & ~checked)
        if len(ask):
            sure[ask] = self.proposal_check(frame_bgr, proposals.xyxy[ask]) >= self.proposal_min_check
        return proposals[sure]

    def _select(self, boxes: np.ndarray, scores: np.ndarray, frame_wh: tuple[int, int], floor: float) -> Faces:
        return select_faces(
            boxes, scores, frame_wh, min_confidence=floor, min_size_px=self.min_size_px, nms_iou=self.nms_iou
        )

    def _recheck(self, frame_bgr: np.ndarray, faces: Faces) -> Faces:
        """Re-score the strongest ``recheck_max`` boxes up to ``recheck_max_confidence`` on zoomed crops.

        With ``recheck_skip_nested``, boxes ``nested_share`` inside or around a sure box are dropped unlooked at
        (the nested-box rule would mostly drop them afterwards). Boxes touching the frame's edge are re-scored
        too with ``recheck_at_border``, and boxes whose height / width is below ``recheck_below_aspect_hw`` (often
        a masked face, sometimes a coin). A re-scored box is kept when its best second look scores
        ``min_confidence`` (with that look's box) and, with a ``verifier``, the verifier gave the box
        ``verifier_gate`` and the look's box ``verifier_min_p_face`` (mean with the look's score
        ``verifier_min_mean``); the other boxes above ``min_confidence`` (past ``recheck_max_confidence``, or
        past the cap) are kept as found.
        """
        verifier_only = self.verifier is not None and self.recheck_size_px <= 0
        if verifier_only:  # it keeps the boxes it accepts as they are: no use asking about bad shapes
            faces = faces[shape_ok(faces.xyxy, self.min_aspect_hw, self.max_aspect_hw)]
        candidates = faces.confidence <= self.recheck_max_confidence
        if self.recheck_at_border:
            height, width = frame_bgr.shape[:2]
            candidates |= at_border(faces.xyxy, (width, height), BORDER_MARGIN_PX)
        if self.recheck_below_aspect_hw > 0:
            candidates |= ~shape_ok(faces.xyxy, self.recheck_below_aspect_hw, float("inf"))
        sure = faces.confidence >= self.min_confidence
        if self.recheck_skip_nested and self.nested_share > 0:  # parts of a sure face, or boxes around one
            candidates &= ~nested_in(faces.xyxy, faces.xyxy[sure & ~candidates], self.nested_share)
        unsure = np.flatnonzero(candidates)[: self.recheck_max]
        sure[unsure] = False
        if len(unsure) and self.verifier is not None:
            p_face = np.asarray(self.verifier(frame_bgr, faces.xyxy[unsure]))
            if verifier_only:
                sure[unsure[p_face >= self.verifier_min_p_face]] = True
                return faces[sure]
            unsure = unsure[p_face >= self.verifier_gate]
        if len(unsure) == 0:
            return faces[sure]
        boxes, scores = self._second_look(frame_bgr, faces.xyxy[unsure])
        if self.verifier is not None and len(boxes):
            p_face = np.asarray(self.verifier(frame_bgr, boxes))
            confirmed = (p_face >= self.verifier_min_p_face) & ((p_face + scores) / 2 >= self.verifier_min_mean)
            boxes, scores = boxes[confirmed], scores[confirmed]
        height, width = frame_bgr.shape[:2]
        return self._select(np.concatenate([faces.xyxy[sure], boxes]), np.concatenate([faces.confidence[sure], scores]),
                            (width, height), self.min_confidence)  # fmt: skip

    def _second_look(self, frame_bgr: np.ndarray, xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The boxes (n', 4) and scores (n',) of ``xyxy`` that a zoomed look confirms at ``min_confidence``: per box,
        the best look's box overlapping it at IoU >= 0.4, one look per context, all crops in one SSD batch."""
        # box k's looks are rows k, k + n, k + 2n, ...
        regions = np.concatenate([zoom_regions(xyxy, c) for c in self.recheck_contexts])
        crops = [square_crop(frame_bgr, r, MEAN_BGR) for r in regions]
        size = (self.recheck_size_px, self.recheck_size_px)
        rows = split_batch(self.forward(crops, size), len(crops))
        boxes, scores = [], []
        for k in range(len(xyxy)):
            looks = []
            for j in range(k, len(regions), len(xyxy)):
                x, y, side = regions[j]
                looks.append(best_overlap(*ssd_boxes(rows[j], (x, y, side, side)), xyxy[k], iou_min=LOOK_IOU))
            box, score = max(looks, key=lambda look: look[1])
            if box is not None and score >= self.min_confidence:
                boxes.append(box)
                scores.append(score)
        return np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(scores, np.float64)
