"""The Keras callbacks of a run: the epoch reporter, early stopping, the best-epoch checkpoint
and TensorBoard."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from dataprep.train.rundir import RUN_FILES


class EpochReporter:
    """Keras callback factory: prints one line per epoch and records throughput.

    ``progress(batches done, batches per epoch)``, when given, is called after every batch.
    """

    def __new__(
        cls,
        log: Callable[[str], None],
        examples: int,
        frames_per_example: int,
        epochs: int,
        progress: Callable[[int, int], None] | None = None,
        batches: int = 0,
    ):
        import keras

        class _Reporter(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.rows: list[dict[str, float]] = []

            def on_epoch_begin(self, epoch, logs=None):
                self._start = time.perf_counter()
                self._train_end = None
                self._last_batch = None

            def on_train_batch_end(self, batch, logs=None):
                self._last_batch = time.perf_counter()
                if progress:
                    progress(batch + 1, batches)

            def on_test_begin(self, logs=None):
                if self._train_end is None:
                    self._train_end = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                # without validation data (embedding models) training ends at the last batch
                end = self._train_end or self._last_batch
                row = _epoch_row(epoch, logs, self._start, end, examples, frames_per_example)
                self.rows.append(row)
                log(_epoch_line(row, epochs, frames_per_example))

        return _Reporter()


def _epoch_row(epoch, logs, start, train_end, examples, frames_per_example) -> dict[str, float]:
    logs = dict(logs or {})
    now = time.perf_counter()
    train_s = (train_end or now) - start
    images_per_s = examples * frames_per_example / train_s if train_s else 0.0
    row = {
        "epoch": epoch + 1,
        **{k: float(v) for k, v in logs.items()},
        "seconds": now - start,
        "train_seconds": train_s,
        "images_per_s": images_per_s,
    }
    if frames_per_example > 1:
        row["clips_per_s"] = examples / train_s if train_s else 0.0
    return row


def _epoch_line(row: dict[str, float], epochs: int, frames_per_example: int) -> str:
    nan = float("nan")
    clips = f" {row['clips_per_s']:.1f} clips/s" if frames_per_example > 1 else ""
    if "val_fewshot_accuracy" in row:  # embedding models: no class accuracy, no val loss
        scores = f"val_fewshot_accuracy {row['val_fewshot_accuracy']:.4f} "
    else:
        scores = (
            f"accuracy {row.get('accuracy', nan):.4f} "
            f"val_loss {row.get('val_loss', nan):.4f} "
            f"val_accuracy {row.get('val_accuracy', nan):.4f} "
        )
    return (
        f"epoch {int(row['epoch'])}/{epochs}: loss {row.get('loss', nan):.4f} {scores}"
        f"{row['seconds']:.1f}s {row['images_per_s']:.0f} images/s{clips}"
    )


PATIENCE_STEPS = 100  # early stopping waits at least this many optimizer steps


def patience_epochs(patience: int, steps_per_epoch: int) -> int:
    """Early stopping's patience in epochs: ``patience`` epochs, and at least
    :data:`PATIENCE_STEPS` optimizer steps, so a small export (a few steps an epoch) is not
    stopped while validation still sits at chance during the warm-up."""
    return max(int(patience), -(-PATIENCE_STEPS // max(1, int(steps_per_epoch))))


def standard_callbacks(run_dir: Path, *, patience: int, monitor: str = "val_loss", mode="min"):
    """Early stopping on ``monitor`` (best weights restored), a checkpoint of the best epoch
    and TensorBoard logs, in that order."""
    import keras

    checkpoint = run_dir / RUN_FILES["checkpoint"]
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    return [
        keras.callbacks.EarlyStopping(
            monitor=monitor, mode=mode, patience=patience, restore_best_weights=True
        ),
        keras.callbacks.ModelCheckpoint(
            str(checkpoint), monitor=monitor, mode=mode, save_best_only=True
        ),
        keras.callbacks.TensorBoard(
            log_dir=str(run_dir / RUN_FILES["tensorboard"]), write_graph=False, profile_batch=0
        ),
    ]
