"""Step 11: PNG plots of a training run (history, confusion matrix, ROC curve), written atomically."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from maskwatch.files import atomic_path


def _figure() -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(7, 5), dpi=100)


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path


def plot_history(history: Mapping[str, Sequence[float]], path: Path, *, title: str = "Training") -> Path:
    """Training/validation loss and accuracy per epoch in one figure (the classic plot.png)."""
    fig, ax = _figure()
    for key, label in (
        ("loss", "train loss"),
        ("val_loss", "val loss"),
        ("accuracy", "train accuracy"),
        ("val_accuracy", "val accuracy"),
    ):
        values = history.get(key)
        if values:
            ax.plot(range(1, len(values) + 1), values, marker="o", label=label)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(f"{title}: loss and accuracy")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss / accuracy")
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    return _save(fig, path)


def plot_confusion(matrix: Sequence[Sequence[int]], class_names: Sequence[str], path: Path) -> Path:
    """Confusion matrix with counts; rows true class, columns predicted class."""
    import numpy as np

    fig, ax = _figure()
    m = np.asarray(matrix)
    ax.imshow(m, cmap="Blues")
    ax.set_xticks(range(len(class_names)), class_names)
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix (test set)")
    for (i, j), v in np.ndenumerate(m):
        ax.text(j, i, str(v), ha="center", va="center", color="white" if v > m.max() / 2 else "black")
    return _save(fig, path)


def plot_roc(fpr: Sequence[float], tpr: Sequence[float], auc: float | None, path: Path) -> Path:
    """ROC curve of P(mask) on the test set, with the chance diagonal."""
    fig, ax = _figure()
    label = f"ROC (AUC = {auc:.3f})" if auc is not None else "ROC (one class only: undefined)"
    ax.plot(fpr, tpr, label=label)
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    ax.set_xlabel("false positive rate (no_mask called mask)")
    ax.set_ylabel("true positive rate (mask found)")
    ax.set_title("ROC curve (test set)")
    ax.legend(loc="lower right")
    return _save(fig, path)


def plot_roc_one_vs_rest(
    curves: Mapping[str, Mapping[str, Sequence[float]]], aucs: Mapping[str, float], path: Path
) -> Path:
    """ROC curve of each class against the rest (a three-class model's softmax), with the chance diagonal."""
    fig, ax = _figure()
    for name, curve in curves.items():
        ax.plot(curve["fpr"], curve["tpr"], label=f"{name} vs rest (AUC = {aucs[name]:.3f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC curves, one vs rest (test set)")
    ax.legend(loc="lower right")
    return _save(fig, path)
