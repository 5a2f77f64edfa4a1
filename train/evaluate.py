"""Steps 9-10: threshold the test-set probabilities and score them (report, confusion matrix, ROC-AUC)."""

from __future__ import annotations

from typing import Any

import numpy as np

CLASS_NAMES = ("mask", "no_mask")  # label 1, label 0


def evaluate(labels: np.ndarray, p_mask: np.ndarray, threshold: float) -> dict[str, Any]:
    """Per-class precision / recall / F1, accuracy, confusion matrix (rows true, columns predicted), ROC-AUC."""
    from sklearn.metrics import classification_report, confusion_matrix, roc_auc_score, roc_curve

    labels = np.asarray(labels).astype(int)
    p_mask = np.asarray(p_mask, dtype=np.float64).reshape(-1)
    predicted = (p_mask >= threshold).astype(int)  # step 9
    order = [1, 0]  # mask first, matching CLASS_NAMES
    report_kw: dict[str, Any] = {"labels": order, "target_names": list(CLASS_NAMES), "zero_division": 0}
    report = classification_report(labels, predicted, output_dict=True, **report_kw)
    text = classification_report(labels, predicted, digits=4, **report_kw)
    both = len(np.unique(labels)) == 2
    fpr, tpr, thresholds = roc_curve(labels, p_mask) if both else (np.array([]), np.array([]), np.array([]))
    return {
        "threshold": float(threshold),
        "n_test": len(labels),
        "accuracy": float((predicted == labels).mean()) if len(labels) else float("nan"),
        "report": report,
        "report_text": text,
        "confusion_matrix": {
            "labels": list(CLASS_NAMES),
            "rows": "true",
            "columns": "predicted",
            "matrix": confusion_matrix(labels, predicted, labels=order).tolist(),
        },
        "roc_auc": float(roc_auc_score(labels, p_mask)) if both else None,
        "roc_curve": {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "thresholds": np.nan_to_num(thresholds).tolist()},
    }


def summary_metrics(result: dict[str, Any]) -> dict[str, Any]:
    """The short form kept in the model card."""
    rep = result["report"]
    per_class = {
        name: {k: float(rep[name][k]) for k in ("precision", "recall", "f1-score", "support")} for name in CLASS_NAMES
    }
    return {
        "accuracy": result["accuracy"],
        "roc_auc": result["roc_auc"],
        "threshold": result["threshold"],
        "n_test": result["n_test"],
        "per_class": per_class,
        "confusion_matrix": result["confusion_matrix"]["matrix"],
    }
