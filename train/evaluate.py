"""Steps 9-10: turn the test-set probabilities into labels and score them (report, confusion matrix, ROC-AUC).

Two classes: P(mask) (n,) thresholded. Three classes: softmax (n, 3) over the labels 0 no_mask, 1 mask, 2 incorrect,
argmax; ROC one-vs-rest per class, ``roc_auc`` their macro mean.
"""

from __future__ import annotations

from typing import Any

import numpy as np

CLASS_NAMES = ("mask", "no_mask")  # label 1, label 0
CLASS_NAMES_3 = ("mask", "no_mask", "incorrect")  # label 1, label 0, label 2 (report order)
_REPORT_ORDER = {"mask": 1, "no_mask": 0, "incorrect": 2}


def predict_labels(probs: np.ndarray, threshold: float) -> np.ndarray:
    """Integer labels: P(mask) (n,) or (n, 1) at or above ``threshold`` -> 1; softmax (n, k) -> argmax."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim == 1 or probs.shape[1] == 1:
        return (probs.reshape(-1) >= threshold).astype(int)
    return np.argmax(probs, axis=1).astype(int)


def evaluate(labels: np.ndarray, probs: np.ndarray, threshold: float) -> dict[str, Any]:
    """Per-class precision / recall / F1, accuracy, confusion matrix (rows true, columns predicted), ROC-AUC;
    ``mask_no_mask_accuracy``: accuracy on the mask and no_mask faces only (what the binary model is scored on)."""
    from sklearn.metrics import classification_report, confusion_matrix

    labels = np.asarray(labels).astype(int)
    probs = np.asarray(probs, dtype=np.float64)
    three = probs.ndim == 2 and probs.shape[1] > 1
    names = CLASS_NAMES_3 if three else CLASS_NAMES
    order = [_REPORT_ORDER[n] for n in names]
    predicted = predict_labels(probs, threshold)  # step 9
    report_kw: dict[str, Any] = {"labels": order, "target_names": list(names), "zero_division": 0}
    report = classification_report(labels, predicted, output_dict=True, **report_kw)
    text = classification_report(labels, predicted, digits=4, **report_kw)
    binary = labels <= 1
    curves, aucs = _roc_one_vs_rest(labels, probs.reshape(len(labels), -1), names)
    return {
        "threshold": float(threshold),
        "class_names": list(names),
        "output": "softmax" if three else "sigmoid P(mask)",
        "n_test": len(labels),
        "accuracy": float((predicted == labels).mean()) if len(labels) else float("nan"),
        "mask_no_mask_accuracy": float((predicted[binary] == labels[binary]).mean()) if binary.any() else None,
        "report": report,
        "report_text": text,
        "confusion_matrix": {
            "labels": list(names),
            "rows": "true",
            "columns": "predicted",
            "matrix": confusion_matrix(labels, predicted, labels=order).tolist(),
        },
        "roc_auc": (float(np.mean(list(aucs.values()))) if three else aucs["mask"]) if aucs else None,
        "roc_auc_per_class": aucs,
        "roc_curve": curves.get("mask", {"fpr": [], "tpr": [], "thresholds": []}),
        "roc_curves": curves,
    }


def _roc_one_vs_rest(
    labels: np.ndarray, probs: np.ndarray, names: tuple[str, ...]
) -> tuple[dict[str, dict[str, list[float]]], dict[str, float]]:
    """ROC curve and AUC of each class against the rest (binary: P(mask) for ``mask`` only); classes with no
    positive or no negative test image are left out."""
    from sklearn.metrics import roc_auc_score, roc_curve

    scores = {"mask": probs[:, 0]} if probs.shape[1] == 1 else {n: probs[:, _REPORT_ORDER[n]] for n in names}
    curves, aucs = {}, {}
    for name, score in scores.items():
        positive = (labels == _REPORT_ORDER[name]).astype(int)
        if positive.min(initial=1) == positive.max(initial=0):
            continue
        fpr, tpr, thresholds = roc_curve(positive, score)
        curves[name] = {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "thresholds": np.nan_to_num(thresholds).tolist()}
        aucs[name] = float(roc_auc_score(positive, score))
    return curves, aucs


def summary_metrics(result: dict[str, Any]) -> dict[str, Any]:
    """The short form kept in the model card."""
    rep = result["report"]
    names = result.get("class_names", CLASS_NAMES)
    per_class = {
        name: {k: float(rep[name][k]) for k in ("precision", "recall", "f1-score", "support")} for name in names
    }
    summary = {
        "accuracy": result["accuracy"],
        "roc_auc": result["roc_auc"],
        "threshold": result["threshold"],
        "n_test": result["n_test"],
        "per_class": per_class,
        "confusion_matrix": result["confusion_matrix"]["matrix"],
    }
    if len(names) > 2:
        summary |= {"class_names": list(names), "mask_no_mask_accuracy": result["mask_no_mask_accuracy"],
                    "roc_auc_per_class": result["roc_auc_per_class"]}  # fmt: skip
    return summary
