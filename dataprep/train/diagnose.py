"""What a finished run's curves say: the train/val gap, and a one-line hint when it overfit.

Users with small data need this more than anything: a model that reaches train accuracy 1.0
with validation far below has learnt its training clips, not the task.
"""

from __future__ import annotations

from typing import Any

OVERFIT_TRAIN = 0.95  # train accuracy at the best epoch from which a run can look overfit
OVERFIT_GAP = 0.15  # ... when validation is at least this far below


def fit_gap(history: list[dict[str, float]], best_epoch: int) -> dict[str, Any] | None:
    """Train and val accuracy at the best epoch and at the last, and their gaps (None when the
    history has no accuracies, e.g. embedding models)."""
    if not history or "accuracy" not in history[0] or "val_accuracy" not in history[0]:
        return None
    best = history[max(0, min(best_epoch, len(history)) - 1)]
    last = history[-1]
    return {
        "best_epoch": best_epoch,
        "train_accuracy": float(best["accuracy"]),
        "val_accuracy": float(best["val_accuracy"]),
        "gap": float(best["accuracy"] - best["val_accuracy"]),
        "last_train_accuracy": float(last["accuracy"]),
        "last_val_accuracy": float(last["val_accuracy"]),
        "last_gap": float(last["accuracy"] - last["val_accuracy"]),
    }


def gap_line(gap: dict[str, Any]) -> str:
    """``train/val gap 0.03 at the best epoch 12 (train 0.99, val 0.96); last epoch 0.05``."""
    return (
        f"train/val gap {gap['gap']:.2f} at the best epoch {gap['best_epoch']} (train "
        f"{gap['train_accuracy']:.2f}, val {gap['val_accuracy']:.2f}); last epoch "
        f"{gap['last_gap']:.2f}"
    )


def overfit_warning(
    gap: dict[str, Any] | None, *, train_examples: int, augmented: bool
) -> str | None:
    """One line when the run looks overfit (train near 1.0, validation far below), with what to
    try; None otherwise."""
    if gap is None:
        return None
    train, val = max(gap["train_accuracy"], gap["last_train_accuracy"]), gap["val_accuracy"]
    if train < OVERFIT_TRAIN or train - val < OVERFIT_GAP:
        return None
    tries = []
    if not augmented:
        tries.append("clip-consistent augmentation (--augment light)")
    tries += ["fewer epochs (--epochs) or more patience for the warm-up", "more data"]
    if train_examples < 500:
        tries[-1] = f"more data ({train_examples} training examples is little)"
    return (
        f"warning: the run looks overfit (train {train:.2f}, val {val:.2f}); try {', '.join(tries)}"
    )
