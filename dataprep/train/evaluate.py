"""``evaluate``: a run's model on any split of its export: metrics, confusion matrix, plots.

Examples are read with the same pipeline as in training (:func:`dataprep.train.inputs.make_dataset`,
not shuffled, not augmented), so the numbers are those of the model on exactly the data it was
validated and tested on. For a frame model on video data the media-level accuracy by majority vote
of its frames is added (``media_vote``): on the gesture set it shows that single frames cannot tell
the class.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dataprep.errors import UsageError


def find_run(workspace, run: str | Path) -> Path:
    """A run's folder from its id (``runs/<id>``) or a path.

    Raises:
        UsageError: when there is no finished run there (no ``config.json`` or ``model.keras``).
    """
    candidates = [Path(run).expanduser()]
    if workspace is not None:
        candidates.insert(0, workspace.runs_dir / str(run))
    for folder in candidates:
        if (folder / "config.json").is_file():
            if not (folder / "model.keras").is_file():
                raise UsageError(
                    f"run {folder} has no model.keras (the training did not finish); "
                    f"train again with `dataprep train-baseline`"
                )
            return folder.resolve()
    raise UsageError(
        f"no run {run!r} (looked for {' and '.join(str(c) for c in candidates)}); "
        f"list runs with `ls runs/` or pass the run folder"
    )


def read_run_config(run_dir: Path) -> dict[str, Any]:
    """Reads a run's ``config.json``."""
    path = Path(run_dir) / "config.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(f"{path}: cannot be read ({exc}); the run folder is damaged") from None


def load_run_model(run_dir: Path):
    """Loads ``model.keras`` of a run (with dataprep's custom layers)."""
    import keras

    from dataprep.train.models import custom_objects

    return keras.models.load_model(
        Path(run_dir) / "model.keras", custom_objects=custom_objects(), compile=False
    )


def predict_split(
    model,
    config: dict[str, Any],
    split: str,
    batch_size: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Runs the model over a split in export order.

    Returns:
        ``(labels [N], probabilities [N, classes], meta)``; ``meta`` holds one dict per example
        with ``media_id`` and ``frame_index`` (frames) or ``start_frame`` (clips).

    Raises:
        CorruptShardError: naming the shard file and record when the export is damaged.
    """
    from dataprep.data import naming_corrupt_shards
    from dataprep.train.inputs import make_dataset
    from dataprep.train.options import TrainSettings

    export_dir = Path(config["export"]["dir"])
    if not (export_dir / "dataset_info.json").is_file():
        raise UsageError(
            f"the run's export {export_dir} is gone (no dataset_info.json); export it again with "
            f"the same settings (fingerprints in config.json) to evaluate"
        )
    settings = TrainSettings.from_resolved(config["resolved"])
    batch = batch_size or settings.batch_size
    dataset = make_dataset(export_dir, split, settings, training=False, batch_size=batch)
    labels, probabilities = [], []
    total = int(
        json.loads((export_dir / "dataset_info.json").read_text())["splits"]
        .get(split, {})
        .get("examples", 0)
    )
    done = 0
    with naming_corrupt_shards(export_dir, split):
        for images, batch_labels in dataset:
            probabilities.append(np.asarray(model(images, training=False), dtype=np.float32))
            labels.append(np.asarray(batch_labels))
            done += len(labels[-1])
            if progress:
                progress(done, total)
    if not labels:
        raise UsageError(f"split {split!r} of export {export_dir} has no examples")
    meta = split_meta(export_dir, split)
    return np.concatenate(labels), np.concatenate(probabilities), meta


def split_meta(export_dir: Path, split: str) -> list[dict[str, Any]]:
    """Per-example ``media_id`` and first frame of a split, in file order (the eval order)."""
    from dataprep.data import iter_examples

    return [
        {
            "media_id": ex.get("media_id"),
            "start_frame": ex.get("start_frame", ex.get("frame_index")),
            "copy_index": ex.get("copy_index", 0),
        }
        for ex in iter_examples(export_dir, split)
    ]


def evaluate_model(
    model,
    run_dir: Path,
    config: dict[str, Any],
    split: str,
    *,
    training: dict[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Computes a split's metrics with ``model`` and writes them with the confusion plot.

    The test split goes to ``metrics.json`` and ``confusion.png``; other splits to
    ``metrics-<split>.json`` and ``confusion-<split>.png``.
    """
    from dataprep.train import reports

    class_names = config["export"]["class_names"]
    labels, probabilities, meta = predict_split(model, config, split, progress=progress)
    metrics = reports.compute_metrics(labels, probabilities, class_names, split=split)
    metrics["run_id"] = config["run_id"]
    metrics["model"] = config["resolved"]["model"]
    metrics["export"] = config["export"]["name"]
    if meta and len(meta) == len(labels):
        groups = [row["media_id"] for row in meta]
        if len(set(groups)) < len(groups):
            metrics["media_vote"] = reports.majority_vote(
                labels, probabilities, groups, len(class_names)
            )
    if training is not None:
        metrics["training"] = training
    suffix = "" if split == "test" else f"-{split}"
    reports.write_json(Path(run_dir) / f"metrics{suffix}.json", metrics)
    reports.plot_confusion(
        Path(run_dir) / f"confusion{suffix}.png",
        metrics["confusion_matrix"],
        class_names,
        title=f"{config['resolved']['model']} on {split}: accuracy {metrics['accuracy']:.3f}",
    )
    return metrics


def evaluate_run(
    workspace,
    run: str | Path,
    *,
    split: str = "test",
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Re-computes a run's metrics and plots on ``split`` (train, val or test).

    Returns:
        The metrics dict (also written to the run folder), with ``files`` naming what was written.

    Raises:
        UsageError: for an unknown split or a run whose export is gone.
    """
    if split not in ("train", "val", "test"):
        raise UsageError(f"--split {split!r} is not known; use train, val or test")
    from dataprep.train.inputs import check_backend

    check_backend("evaluate")
    run_dir = find_run(workspace, run)
    config = read_run_config(run_dir)
    model = load_run_model(run_dir)
    previous = _previous_training(run_dir) if split == "test" else None
    metrics = evaluate_model(model, run_dir, config, split, training=previous, progress=progress)
    suffix = "" if split == "test" else f"-{split}"
    metrics["files"] = {
        "metrics": str(run_dir / f"metrics{suffix}.json"),
        "confusion": str(run_dir / f"confusion{suffix}.png"),
    }
    return metrics


def _previous_training(run_dir: Path) -> dict[str, Any] | None:
    """Keeps the ``training`` block of ``metrics.json`` when the test metrics are re-computed."""
    path = Path(run_dir) / "metrics.json"
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("training")
    except (OSError, json.JSONDecodeError):
        return None


def summarize_runs(workspace) -> list[dict[str, Any]] | None:
    """One row per run folder (for ``dataprep info``): id, model, export, test accuracy, state.

    Reads only ``config.json`` and ``metrics.json`` (no TensorFlow). None when there is no run.
    """
    folders = sorted(p for p in workspace.runs_dir.glob("*") if (p / "config.json").is_file())
    if not folders:
        return None
    rows = []
    for folder in folders:
        row: dict[str, Any] = {"run_id": folder.name, "path": str(folder)}
        try:
            config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
            row["model"] = config["resolved"]["model"]
            row["export"] = config["export"]["name"]
            row["created_at"] = config.get("created_at")
        except (OSError, json.JSONDecodeError, KeyError, TypeError):
            row["state"] = "damaged config.json"
            rows.append(row)
            continue
        try:
            metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
            row["test_accuracy"] = metrics.get("test_accuracy")
            row["epochs_run"] = (metrics.get("training") or {}).get("epochs_run")
            row["state"] = "finished"
        except (OSError, json.JSONDecodeError):
            row["state"] = "unfinished"
        rows.append(row)
    return rows
