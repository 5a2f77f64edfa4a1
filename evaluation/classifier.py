"""``python -m evaluation.classifier DIR... [--out runs/eval/NAME]``: the mask classifier through the pipeline.

Every folder under each DIR that holds a ``boxes.csv`` (``file,x1,y1,x2,y2,label[,look]``, as ``train.maskify
--full-images``, ``train.starter_data --eval-dir`` and ``evaluation.sets`` write them) is read. For each
photo the configured face detector runs, its boxes are matched to the labelled faces (IoU >= 0.4, strongest first),
crops are cut exactly as the detector cuts them (``Faces.crops``: the boxes as they are), classified in one batch, and
labelled by ``maskwatch.labels.label_faces`` (``classifier.threshold``, ``unsure_band``, ``min_face_px``).

Reported (text on stdout and in OUT/report.txt, OUT/report.json, OUT/reliability.png, one row per face in
OUT/faces.csv): accuracy per label x face-height bin (the detector box's height: under 32, 32-63, 64-127, 128+ px),
the unknown share, per mask look, the confusion matrix, and a reliability diagram with the expected calibration error.
Accuracy counts decided faces (unknown ones apart); labelled faces the detector misses are counted as missed.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import io
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from evaluation.sets import IGNORE, LabelledImage, read_labelled_folder, readable_images, skipped_line
from maskwatch import labels as codes
from maskwatch.cli import Parser, add_config_args, config_from_args, run
from maskwatch.config import Config
from maskwatch.errors import UserError
from maskwatch.files import IMAGE_EXTS, atomic_path, check_writable, write_json_atomic, write_text_atomic
from maskwatch.labels import LABELS, label_faces

MASK, NO_MASK, UNKNOWN = (LABELS[c] for c in (codes.MASK, codes.NO_MASK, codes.UNKNOWN))  # label names
BOX_LABELS = (MASK, NO_MASK, LABELS[codes.INCORRECT], IGNORE)  # boxes.csv labels (only mask / no_mask are scored)

HEIGHT_BINS_PX = (0, 32, 64, 128)  # bin i: HEIGHT_BINS_PX[i] <= height < HEIGHT_BINS_PX[i + 1]
BIN_NAMES = ("<32", "32-63", "64-127", "128+")
IOU_MIN = 0.4
CALIBRATION_BINS = 10


@dataclass(frozen=True)
class FaceResult:
    """One labelled face: found by the detector or not, P(mask) and the label the product gives it."""

    image: str
    truth: str
    look: str
    true_height_px: int
    found: bool
    height_px: int = 0  # the detector box's height (0 if missed)
    prob_mask: float = float("nan")
    label: str = ""


def height_bin(height_px: float) -> str:
    """The name of the face-height bin of ``height_px``."""
    return BIN_NAMES[int(np.searchsorted(HEIGHT_BINS_PX, height_px, side="right")) - 1]


def find_folders(dirs: Sequence[Path]) -> list[Path]:
    """Every folder under ``dirs`` (or a DIR itself) that holds a ``boxes.csv``, sorted."""
    folders: list[Path] = []
    for d in dirs:
        if not d.is_dir():
            raise UserError(f"not a folder: {d}")
        found = sorted({p.parent for p in d.rglob("boxes.csv")})
        if not found:
            raise UserError(f"{d}: no boxes.csv (make one with: python -m train.maskify SRC {d} --full-images)")
        folders.extend(found)
    return folders


def read_folder(folder: Path) -> list[LabelledImage]:
    """The photos of one folder that have labelled boxes, with their labels and mask looks."""
    return [im for im in read_labelled_folder(folder, IMAGE_EXTS, labels=BOX_LABELS[:-1]) if im.labels]


def match_boxes(pred_xyxy: np.ndarray, pred_score: np.ndarray, true_xyxy: np.ndarray, iou_min: float) -> np.ndarray:
    """For each labelled box the index of its detection (-1 = none): ``greedy_match``, strongest detection first."""
    from maskwatch.geometry import greedy_match, iou_matrix

    match = np.full(len(true_xyxy), -1)
    if len(pred_xyxy) and len(true_xyxy):
        taken = greedy_match(iou_matrix(pred_xyxy, true_xyxy), pred_score, iou_min)
        match[taken[taken >= 0]] = np.flatnonzero(taken >= 0)
    return match


Classify = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]  # frame -> boxes, scores, P(mask)


def pipeline_classify(cfg: Config) -> Classify:
    """The detector's path: configured face detector -> crops as the detector cuts them -> MaskClassifier."""
    from detector.classifier import MaskClassifier
    from face_detector import build_face_detector

    detect, classify = build_face_detector(cfg), MaskClassifier.from_config(cfg)

    def call(frame_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        faces = detect(frame_bgr)
        probs = classify(faces.crops(frame_bgr))
        return np.asarray(faces.xyxy).reshape(-1, 4), np.asarray(faces.confidence).reshape(-1), probs

    return call


def evaluate_images(images: Sequence[LabelledImage], classify: Classify, cfg: Config,
                    unreadable: list[str] | None = None) -> Iterator[FaceResult]:  # fmt: skip
    """One ``FaceResult`` per labelled mask / no_mask face; an unreadable photo is skipped, its path appended to
    ``unreadable``."""
    c = cfg.classifier
    for image, frame in readable_images(images, [] if unreadable is None else unreadable):
        xyxy, scores, probs = classify(frame)
        heights = (xyxy[:, 3] - xyxy[:, 1]).astype(int) if len(xyxy) else np.zeros(0, int)
        labels = label_faces(probs, heights, threshold=c.threshold, unsure_band=c.unsure_band,
                             min_face_px=c.min_face_px)
        match = match_boxes(xyxy, scores, image.xyxy, IOU_MIN)
        for t, (box, truth, look) in enumerate(zip(image.xyxy, image.labels, image.looks, strict=True)):
            if truth not in (MASK, NO_MASK):
                continue
            base = {"image": str(image.path), "truth": truth, "look": look, "true_height_px": int(box[3] - box[1])}
            p = match[t]
            if p < 0:
                yield FaceResult(**base, found=False)
            else:
                yield FaceResult(**base, found=True, height_px=int(heights[p]), prob_mask=float(probs[p]),
                                 label=LABELS[labels[p]])


def _counts(rows: Sequence[FaceResult]) -> dict[str, float | int | None]:
    decided = [r for r in rows if r.label != UNKNOWN]
    right = sum(r.label == r.truth for r in decided)
    return {
        "faces": len(rows),
        "correct": right,
        "unknown": len(rows) - len(decided),
        "accuracy": round(right / len(decided), 4) if decided else None,
        "unknown_share": round((len(rows) - len(decided)) / len(rows), 4) if rows else None,
    }


def calibration(prob_mask: np.ndarray, is_mask: np.ndarray, n_bins: int = CALIBRATION_BINS) -> dict[str, object]:
    """Reliability bins of P(mask) (equal width) and the expected calibration error (weighted |freq - conf|)."""
    prob_mask, is_mask = np.asarray(prob_mask, float), np.asarray(is_mask, float)
    edges = np.linspace(0, 1, n_bins + 1)
    idx = np.clip(np.digitize(prob_mask, edges[1:-1]), 0, n_bins - 1)
    bins, ece = [], 0.0
    for b in range(n_bins):
        sel = idx == b
        n = int(sel.sum())
        conf = float(prob_mask[sel].mean()) if n else None
        freq = float(is_mask[sel].mean()) if n else None
        if n:
            ece += n / len(prob_mask) * abs(freq - conf)
        bins.append({"low": round(edges[b], 2), "high": round(edges[b + 1], 2), "faces": n,
                     "mean_p_mask": conf, "mask_share": freq})
    return {"ece": round(ece, 4) if len(prob_mask) else None, "bins": bins}


def summarize(results: Sequence[FaceResult]) -> dict[str, object]:
    """The report: per label x height bin, per look, confusion matrix, calibration, missed faces."""
    found = [r for r in results if r.found]
    by_bin = {
        truth: {name: _counts([r for r in found if r.truth == truth and height_bin(r.height_px) == name])
                for name in BIN_NAMES}
        for truth in (MASK, NO_MASK)
    }
    looks = sorted({r.look for r in found if r.truth == MASK and r.look})
    by_look = {look: _counts([r for r in found if r.truth == MASK and r.look == look]) for look in looks}
    confusion = {truth: {pred: sum(r.truth == truth and r.label == pred for r in found)
                         for pred in (MASK, NO_MASK, UNKNOWN)} for truth in (MASK, NO_MASK)}
    from32 = [r for r in found if r.height_px >= 32]
    probs = np.array([r.prob_mask for r in found])
    return {
        "faces": len(results),
        "missed_by_face_detector": {t: sum(not r.found and r.truth == t for r in results) for t in (MASK, NO_MASK)},
        "per_label": {t: _counts([r for r in found if r.truth == t]) for t in (MASK, NO_MASK)},
        "per_label_height_bin": by_bin,
        "per_look": by_look,
        "confusion_truth_x_label": confusion,
        "unknown_share_from_32px": _counts(from32)["unknown_share"],
        "calibration": calibration(probs, np.array([r.truth == MASK for r in found])),
    }


def format_report(report: dict, settings: dict) -> str:
    """The report as a plain-text table."""
    lines = [f"settings: {settings}", f"faces: {report['faces']}, missed by the face detector: "
             f"{report['missed_by_face_detector']}", "", f"{'label':8} {'height px':>9} {'faces':>6} {'right':>6} "
             f"{'unknown':>7} {'accuracy':>8}"]
    for truth, bins in report["per_label_height_bin"].items():
        for name, c in bins.items():
            acc = "-" if c["accuracy"] is None else f"{c['accuracy']:.3f}"
            lines.append(f"{truth:8} {name:>9} {c['faces']:6d} {c['correct']:6d} {c['unknown']:7d} {acc:>8}")
    lines += ["", "masked faces per look:"]
    for look, c in report["per_look"].items():
        acc = "-" if c["accuracy"] is None else f"{c['accuracy']:.3f}"
        lines.append(f"  {look:22} {c['faces']:5d} faces, {c['correct']:5d} right, {c['unknown']:3d} unknown, {acc}")
    lines += ["", "confusion (rows truth, columns label):", f"  {'':8} {'mask':>6} {'no_mask':>7} {'unknown':>7}"]
    for truth, row in report["confusion_truth_x_label"].items():
        lines.append(f"  {truth:8} {row[MASK]:6d} {row[NO_MASK]:7d} {row[UNKNOWN]:7d}")
    lines += ["", f"unknown share from 32 px up: {report['unknown_share_from_32px']}",
              f"expected calibration error: {report['calibration']['ece']}"]
    if report.get("unreadable"):
        lines.append(skipped_line(report["unreadable"]))
    return "\n".join(lines) + "\n"


def plot_reliability(cal: dict, path: Path) -> None:
    """Reliability diagram (mask share per P(mask) bin against the diagonal), written atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bins = [b for b in cal["bins"] if b["faces"]]
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect")
    ax.bar([(b["low"] + b["high"]) / 2 for b in bins], [b["mask_share"] for b in bins], width=0.09,
           alpha=0.6, label="mask share")
    ax.plot([b["mean_p_mask"] for b in bins], [b["mask_share"] for b in bins], "o-", color="C1", label="per bin")
    ax.set(xlabel="P(mask)", ylabel="share of masked faces", xlim=(0, 1), ylim=(0, 1),
           title=f"reliability, ECE {cal['ece']}")
    ax.legend(loc="upper left")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def write_faces_csv(results: Sequence[FaceResult], path: Path) -> None:
    """One row per labelled face (the input of choosing ``unsure_band`` / ``min_face_px`` on development data)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(FaceResult.__dataclass_fields__), lineterminator="\n")
    writer.writeheader()
    writer.writerows(asdict(r) for r in results)
    write_text_atomic(path, buf.getvalue())


def relabel(results: Sequence[FaceResult], cfg: Config, unsure_band: tuple[float, float],
            min_face_px: int) -> list[FaceResult]:
    """The found faces labelled again with another band and minimum size (no new inference)."""
    from dataclasses import replace

    found = [r for r in results if r.found]
    labels = label_faces([r.prob_mask for r in found], [r.height_px for r in found],
                         threshold=cfg.classifier.threshold, unsure_band=unsure_band, min_face_px=min_face_px)
    return [replace(r, label=LABELS[lb]) for r, lb in zip(found, labels, strict=True)]


def choose_decision(results: Sequence[FaceResult], cfg: Config, *, accuracy_min: float = 0.97,
                    unknown_max: float = 0.05, small_accuracy_min: float = 0.90) -> dict[str, object]:
    """On development data: the narrowest band around the threshold that lifts every label's accuracy from 32 px up
    to ``accuracy_min`` with at most ``unknown_max`` unknown (else the most accurate band within that share), then
    the lowest minimum face height below which faces under 32 px fall short of ``small_accuracy_min``."""
    t = cfg.classifier.threshold
    trials = []
    for half in np.round(np.arange(0.0, min(t, 1 - t) + 1e-9, 0.025), 3):
        band = (round(t - half, 3), round(t + half, 3)) if half > 0 else (t, t)
        big = [r for r in relabel(results, cfg, band, 0) if r.height_px >= 32]
        accs = [_counts([r for r in big if r.truth == lb])["accuracy"] for lb in (MASK, NO_MASK)]
        share = _counts(big)["unknown_share"] or 0.0
        worst = min((a for a in accs if a is not None), default=0.0)
        trials.append({"band": band, "min_accuracy": worst, "unknown_share": share})
    ok = [tr for tr in trials if tr["unknown_share"] <= unknown_max]
    good = [tr for tr in ok if tr["min_accuracy"] >= accuracy_min]
    best = good[0] if good else max(ok, key=lambda tr: tr["min_accuracy"])
    min_px = 32
    for m in range(8, 33, 2):
        small = [r for r in relabel(results, cfg, best["band"], m) if 0 < r.height_px < 32 and r.label != UNKNOWN]
        accs = [_counts([r for r in small if r.truth == lb])["accuracy"] for lb in (MASK, NO_MASK)]
        if all(a is None or a >= small_accuracy_min for a in accs):
            min_px = m
            break
    return {"unsure_band": list(best["band"]), "min_face_px": min_px, "band_trials": trials}


def read_faces_csv(path: Path) -> list[FaceResult]:
    """The rows ``write_faces_csv`` wrote (to choose settings again without running the pipeline)."""
    with path.open(newline="", encoding="utf-8") as fh:
        return [FaceResult(image=r["image"], truth=r["truth"], look=r["look"], true_height_px=int(r["true_height_px"]),
                           found=r["found"] == "True", height_px=int(r["height_px"]), prob_mask=float(r["prob_mask"]),
                           label=r["label"]) for r in csv.DictReader(fh)]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m evaluation.classifier", description=__doc__,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dirs", nargs="+", type=Path, metavar="DIR", help="labelled folder(s) with boxes.csv")
    parser.add_argument("--out", type=Path, default=Path("runs/eval/classifier"), help="output folder")
    parser.add_argument("--choose", action="store_true",
                        help="development data only: also print the unsure band and minimum face size to configure")
    add_config_args(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = config_from_args(args)

    check_writable("--out", args.out)  # before the pipeline runs, not after
    images = [im for folder in find_folders(args.dirs) for im in read_folder(folder)]
    unreadable: list[str] = []
    results = list(evaluate_images(images, pipeline_classify(cfg), cfg, unreadable))
    if not results:
        raise UserError("no labelled mask / no_mask faces in " + " ".join(map(str, args.dirs))
                        + (f" ({skipped_line(unreadable)})" if unreadable else ""))
    c = cfg.classifier
    settings = {"model": c.model, "face_detector": cfg.face_detector.model, "threshold": c.threshold,
                "unsure_band": list(c.unsure_band), "min_face_px": c.min_face_px,
                "dirs": [str(d) for d in args.dirs]}
    report = {**summarize(results), "unreadable": sorted(unreadable)}
    text = format_report(report, settings)
    args.out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out / "report.txt", text)
    write_json_atomic(args.out / "report.json", {"settings": settings, **report})
    write_faces_csv(results, args.out / "faces.csv")
    if importlib.util.find_spec("matplotlib") is None:  # the train extra; the figures do not need it
        plotted = " (no reliability.png: it needs matplotlib, pip install 'maskwatch[train]')"
    else:
        plot_reliability(report["calibration"], args.out / "reliability.png")
        plotted = ", reliability.png"
    print(text + f"wrote {args.out}/report.txt, report.json, faces.csv{plotted}")
    if args.choose:
        choice = choose_decision(results, cfg)
        write_json_atomic(args.out / "choice.json", choice)
        print(f"chosen on these folders: classifier.unsure_band={choice['unsure_band']} "
              f"classifier.min_face_px={choice['min_face_px']} (trials in {args.out}/choice.json)")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
