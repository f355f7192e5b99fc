"""What a run writes about itself: metrics, history, curves and confusion-matrix plots.

Plots use matplotlib's Agg backend (no display needed). All writers are atomic.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dataprep.atomic import atomic_path, atomic_write_text

TOP_K_VALUES = (3, 5)


def compute_metrics(
    labels: Sequence[int],
    probabilities: np.ndarray,
    class_names: Sequence[str],
    *,
    split: str = "test",
) -> dict[str, Any]:
    """Accuracy, per-class precision/recall/F1, confusion matrix and (for > 5 classes) top-k.

    Args:
        labels: true class indices, one per example.
        probabilities: ``[N, num_classes]`` predicted probabilities.
        class_names: names in index order.
        split: the split's name; the accuracy is also stored as ``<split>_accuracy``.

    Returns:
        A JSON-ready dict: ``examples``, ``accuracy``, ``<split>_accuracy``, ``per_class``
        (``{name: {precision, recall, f1, support}}``), ``macro_f1``, ``confusion_matrix``
        (rows = true class, columns = predicted), ``class_names`` and ``top_k``
        (``{"3": acc, "5": acc}``, only when there are more than 5 classes).
    """
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    y_true = np.asarray(labels, dtype=int)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    num_classes = len(class_names)
    y_pred = probabilities.argmax(axis=1) if len(y_true) else np.zeros(0, int)
    indices = list(range(num_classes))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=indices, zero_division=0
    )
    accuracy = float((y_true == y_pred).mean()) if len(y_true) else 0.0
    metrics: dict[str, Any] = {
        "split": split,
        "examples": int(len(y_true)),
        "accuracy": accuracy,
        f"{split}_accuracy": accuracy,
        "macro_f1": float(np.mean(f1)) if num_classes else 0.0,
        "class_names": list(class_names),
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(class_names)
        },
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=indices).tolist(),
    }
    if num_classes > 5 and len(y_true):
        ranked = np.argsort(-probabilities, axis=1)
        metrics["top_k"] = {
            str(k): float(np.mean([y in row[:k] for y, row in zip(y_true, ranked, strict=True)]))
            for k in TOP_K_VALUES
            if k < num_classes
        }
    return metrics


def majority_vote(
    labels: Sequence[int], probabilities: np.ndarray, groups: Sequence[str], num_classes: int
) -> dict[str, Any]:
    """Media-level accuracy: each media item's prediction is the majority of its examples' votes.

    Ties go to the class with the larger summed probability. Returns ``{"media": n,
    "accuracy": acc}``; used to show that a per-frame model cannot tell gestures apart.
    """
    votes: dict[str, np.ndarray] = {}
    mass: dict[str, np.ndarray] = {}
    truth: dict[str, int] = {}
    for label, probs, group in zip(labels, np.asarray(probabilities), groups, strict=True):
        votes.setdefault(group, np.zeros(num_classes))[int(np.argmax(probs))] += 1
        mass.setdefault(group, np.zeros(num_classes))
        mass[group] += probs
        truth[group] = int(label)
    correct = 0
    for group, counts in votes.items():
        best = np.flatnonzero(counts == counts.max())
        choice = best[np.argmax(mass[group][best])]
        correct += int(choice == truth[group])
    return {"media": len(votes), "accuracy": correct / len(votes) if votes else 0.0}


def write_json(path: Path, data: Any) -> None:
    """Writes pretty JSON atomically."""
    atomic_write_text(Path(path), json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def write_history_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """Writes one row per epoch (``epoch`` first, then the sorted metric names)."""
    keys = sorted({key for row in rows for key in row if key != "epoch"})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["epoch", *keys], lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: row.get(key, "") for key in ["epoch", *keys]})
    atomic_write_text(Path(path), buffer.getvalue())


def read_history_csv(path: Path) -> list[dict[str, float]]:
    """Reads a history written by :func:`write_history_csv`."""
    with open(path, newline="", encoding="utf-8") as handle:
        return [
            {key: float(value) for key, value in row.items() if value not in ("", None)}
            for row in csv.DictReader(handle)
        ]


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(path: Path, history: Sequence[dict[str, float]], title: str = "") -> None:
    """Training vs validation accuracy and loss per epoch, side by side, as a PNG."""
    plt = _figure()
    from matplotlib.ticker import MaxNLocator

    epochs = [int(row["epoch"]) for row in history]
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(10, 4))
    for axis, metric in ((ax_acc, "accuracy"), (ax_loss, "loss")):
        for prefix, style in (("", "-o"), ("val_", "--s")):
            values = [row.get(prefix + metric, np.nan) for row in history]
            label = ("validation " if prefix else "training ") + metric
            axis.plot(epochs, values, style, label=label, markersize=3)
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_ylabel(metric)
        axis.grid(alpha=0.3)
        axis.legend()
    fig.suptitle(title or "training curves")
    fig.tight_layout()
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def plot_confusion(
    path: Path, matrix: Sequence[Sequence[int]], class_names: Sequence[str], title: str = ""
) -> None:
    """The confusion matrix (rows true, columns predicted) with counts in the cells, as a PNG."""
    plt = _figure()
    matrix = np.asarray(matrix)
    side = max(4.0, 0.5 * len(class_names) + 2)
    fig, axis = plt.subplots(figsize=(side, side))
    image = axis.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=axis, fraction=0.046)
    ticks = range(len(class_names))
    axis.set_xticks(ticks, class_names, rotation=45, ha="right")
    axis.set_yticks(ticks, class_names)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    limit = matrix.max() / 2 if matrix.size else 0
    for (row, col), value in np.ndenumerate(matrix):
        axis.text(
            col,
            row,
            str(value),
            ha="center",
            va="center",
            color="white" if value > limit else "black",
            fontsize=8,
        )
    axis.set_title(title or "confusion matrix")
    fig.tight_layout()
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
