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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dataprep.errors import UsageError
from dataprep.train.inputs import check_backend, run_over_split, split_meta
from dataprep.train.models import is_embedding_model
from dataprep.train.options import TrainSettings


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
        ``(labels [N], outputs [N, ...], meta)``: probabilities (classifiers) or embeddings;
        ``meta`` holds one dict per example with ``media_id`` and ``start_frame`` (the frame
        index for frames, the first frame for clips).

    Raises:
        CorruptShardError: naming the shard file and record when the export is damaged.
    """
    export_dir = run_export_dir(config)
    settings = TrainSettings.from_resolved(config["resolved"])
    labels, outputs = run_over_split(
        model,
        export_dir,
        split,
        settings,
        batch_size=batch_size or settings.batch_size,
        progress=progress,
    )
    return labels, outputs, split_meta(export_dir, split)


def run_export_dir(config: dict[str, Any]) -> Path:
    """The folder of a run's export.

    Raises:
        UsageError: when it is gone.
    """
    from dataprep.data.info import info_path

    export_dir = Path(config["export"]["dir"])
    if not info_path(export_dir).is_file():
        raise UsageError(
            f"the run's export {export_dir} is gone (no dataset_info.json); export it again with "
            f"the same settings (fingerprints in config.json) to evaluate"
        )
    return export_dir


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
    ``metrics-<split>.json`` and ``confusion-<split>.png``. An embedding model gets few-shot
    metrics instead (:func:`fewshot_summary`), without the plot.
    """
    from dataprep.train import reports

    suffix = "" if split == "test" else f"-{split}"
    if is_embedding_model(config["resolved"]["model"]):
        metrics = fewshot_summary(model, run_dir, config, split, progress=progress)
        if training is not None:
            metrics["training"] = training
        reports.write_json(Path(run_dir) / f"metrics{suffix}.json", metrics)
        return metrics
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
    reports.write_json(Path(run_dir) / f"metrics{suffix}.json", metrics)
    reports.plot_confusion(
        Path(run_dir) / f"confusion{suffix}.png",
        metrics["confusion_matrix"],
        class_names,
        title=f"{config['resolved']['model']} on {split}: accuracy {metrics['accuracy']:.3f}",
    )
    return metrics


def fewshot_summary(
    model, run_dir: Path, config: dict[str, Any], split: str, *, progress=None
) -> dict[str, Any]:
    """An embedding run's metrics on a split: 1-shot episodes over up to 5 of its classes
    (``accuracy`` and ``<split>_accuracy``), the raw-pixel floor, and the open-set rates at the
    calibrated threshold when the split has classes outside the episodes."""
    from dataprep.train import embedding, fewshot

    export_dir = run_export_dir(config)
    settings = TrainSettings.from_resolved(config["resolved"])
    class_names = list(config["export"]["class_names"])
    labels, _ = run_over_split(None, export_dir, split, settings, batch_size=64, pixels=True)
    media = [row["media_id"] for row in split_meta(export_dir, split)]
    eligible = fewshot.eligible_classes(labels, media, 1)
    calibration = embedding.read_calibration(run_dir)
    ways = min(5, len(eligible))
    result = embedding.fewshot_metrics(
        model,
        export_dir,
        settings,
        class_names,
        split=split,
        ways=ways,
        shots=1,
        episodes=300,
        open_set=bool(calibration) and len(set(labels.tolist())) > ways,
        threshold=(calibration or {}).get("threshold"),
        progress=progress,
    )
    return {
        **result,
        "run_id": config["run_id"],
        "model": config["resolved"]["model"],
        "export": config["export"]["name"],
        "episode": f"{ways}-way 1-shot",
        "examples": int(len(labels)),
        f"{split}_accuracy": result["accuracy"],
    }


@dataclass(frozen=True)
class FewShotRequest:
    """``evaluate --ways N --shots K --episodes E [--classes ...] [--open-set]``."""

    ways: int = 5
    shots: int = 1
    episodes: int = 600
    queries: int = 5
    classes: tuple[str, ...] = ()
    open_set: bool = False
    threshold: float | None = None
    seed: int = 0


def evaluate_run(
    workspace,
    run: str | Path,
    *,
    split: str = "test",
    fewshot: FewShotRequest | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Re-computes a run's metrics and plots on ``split`` (train, val or test), or, with
    ``fewshot``, scores an embedding run on few-shot episodes of the split.

    Returns:
        The metrics dict (also written to the run folder), with ``files`` naming what was written.

    Raises:
        UsageError: for an unknown split, a run whose export is gone, or few-shot episodes asked
            of a classifier.
    """
    if split not in ("train", "val", "test"):
        raise UsageError(f"--split {split!r} is not known; use train, val or test")
    check_backend("evaluate")
    run_dir = find_run(workspace, run)
    config = read_run_config(run_dir)
    model = load_run_model(run_dir)
    if fewshot is not None:
        return _evaluate_fewshot(model, run_dir, config, split, fewshot, progress)
    previous = _previous_training(run_dir) if split == "test" else None
    metrics = evaluate_model(model, run_dir, config, split, training=previous, progress=progress)
    suffix = "" if split == "test" else f"-{split}"
    metrics["files"] = {"metrics": str(run_dir / f"metrics{suffix}.json")}
    if not is_embedding_model(config["resolved"]["model"]):
        metrics["files"]["confusion"] = str(run_dir / f"confusion{suffix}.png")
    return metrics


def _evaluate_fewshot(model, run_dir, config, split, request: FewShotRequest, progress):
    from dataprep.train import embedding, reports

    if not is_embedding_model(config["resolved"]["model"]):
        raise UsageError(
            f"--ways/--shots score embedding runs; run {run_dir.name} is a "
            f"{config['resolved']['model']} classifier (train --model siamese or siamese-lstm)"
        )
    threshold = request.threshold
    if threshold is None:
        threshold = (embedding.read_calibration(run_dir) or {}).get("threshold")
    result = embedding.fewshot_metrics(
        model,
        run_export_dir(config),
        TrainSettings.from_resolved(config["resolved"]),
        list(config["export"]["class_names"]),
        split=split,
        ways=request.ways,
        shots=request.shots,
        episodes=request.episodes,
        queries=request.queries,
        classes=list(request.classes) or None,
        open_set=request.open_set,
        threshold=threshold,
        seed=request.seed,
        progress=progress,
    )
    result["run_id"] = config["run_id"]
    name = f"fewshot-{split}-{request.ways}way-{request.shots}shot"
    if request.classes:
        name += "-" + "_".join(request.classes)
    if request.open_set:
        name += "-open"
    path = run_dir / f"{name[:150]}.json"
    reports.write_json(path, result)
    result["files"] = {"fewshot": str(path)}
    return result


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
