"""``train_baseline``: train a reference model on an export and write ``runs/<run_id>/``.

The run is Keras 3 ``fit`` on the export's tf.data pipeline (:mod:`dataprep.train.inputs`), with
early stopping on the validation loss, a checkpoint of the best epoch, TensorBoard logs
(:mod:`dataprep.train.callbacks`), and a final evaluation on the test split
(:mod:`dataprep.train.evaluate`). Everything the run was given goes to ``config.json``
(:mod:`dataprep.train.rundir`), so ``dataprep train-baseline --from-config runs/<id>/config.json``
repeats it.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dataprep.errors import UsageError
from dataprep.train import diagnose, embedding, evaluate, reports, rundir, transfer
from dataprep.train.callbacks import EpochReporter, patience_epochs, standard_callbacks
from dataprep.train.inputs import check_backend, make_dataset, resolve_export, split_examples
from dataprep.train.models import build_model, compile_model
from dataprep.train.options import (  # noqa: F401  (re-exported: the library's entry points)
    TrainOptions,
    TrainSettings,
    options_from_config,
    resolve_options,
)


@dataclass
class TrainResult:
    """What a finished run produced."""

    run_id: str
    run_dir: Path
    metrics: dict[str, Any]
    history: list[dict[str, float]]
    best_epoch: int
    stopped_early: bool
    seconds: float
    train_images_per_s: float
    train_clips_per_s: float | None
    files: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Run:
    """What one training run works with, once its options are resolved and its folder made."""

    workspace: Any
    options: TrainOptions
    settings: TrainSettings
    info: dict[str, Any]
    export_dir: Path
    run_dir: Path
    setup: Any
    log: Callable[[str], None]
    started: float
    progress: Callable[[int, int], None] | None = None
    trunk_weights: list | None = None  # --init-from: the source run's trunk

    @property
    def global_batch(self) -> int:
        return self.settings.batch_size * self.setup.replicas

    @property
    def train_examples(self) -> int:
        """Training examples per epoch (embedding models: of the classes not excluded)."""
        if not self.settings.embedding:
            return split_examples(self.info, "train")
        by_class = ((self.info.get("splits") or {}).get("train") or {}).get("by_class") or {}
        kept = [c for c in by_class if c not in self.settings.exclude_classes]
        return sum(int(by_class[c]) for c in kept) or split_examples(self.info, "train")

    @property
    def monitor(self) -> tuple[str, str]:
        """What chooses the best epoch: val few-shot accuracy (embeddings) or val loss."""
        return ("val_fewshot_score", "max") if self.settings.embedding else ("val_loss", "min")


def train_baseline(
    workspace,
    options: TrainOptions,
    *,
    log: Callable[[str], None] = print,
    runs_dir: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> TrainResult:
    """Trains ``options.model`` on ``options.export`` and writes the run folder.

    Args:
        workspace: the opened workspace (for ``exports/``, ``runs/``, ``[train]`` defaults and
            the frame settings that ``predict`` must repeat); may be None when ``options.export``
            is a folder and ``runs_dir`` is given.
        options: the command's options.
        log: where progress lines go (devices, model summary, one line per epoch).
        runs_dir: where runs go (default ``<workspace>/runs``).
        progress: called with (batches done, batches per epoch) during each epoch.

    Returns:
        The run's id, folder, test metrics, history and throughput.

    Raises:
        UsageError: for options that do not fit the export.
        CorruptShardError: naming the shard file and record when the export is damaged.
    """
    from dataprep.data import read_info
    from dataprep.train.devices import reset_policy, setup_devices

    started = time.perf_counter()
    if workspace is None and runs_dir is None:
        raise UsageError(
            "train-baseline writes runs/<run_id>/ inside a workspace; run it in one or pass -w DIR"
        )
    export_dir = resolve_export(workspace, options.export)
    info = read_info(export_dir)
    settings = resolve_options(options, workspace, info)
    check_backend("train-baseline")
    setup = setup_devices(
        mixed_precision=settings.mixed_precision, xla=settings.xla, seed=settings.seed
    )
    log(setup.describe())
    # Deterministic element order costs input throughput; only worth it where the run is
    # bit-for-bit repeatable anyway (seeded, CPU op determinism on).
    settings = replace(settings, deterministic_data=setup.deterministic)
    trunk_weights = None
    if settings.init_from:
        source_dir, trunk_weights = transfer.source_run(workspace, settings.init_from)
        settings = replace(settings, init_from=str(source_dir))
    run_dir = rundir.new_run_dir(workspace, options.run_name, settings.model, runs_dir)
    run = _Run(
        workspace=workspace,
        options=options,
        settings=settings,
        info=info,
        export_dir=export_dir,
        run_dir=run_dir,
        setup=setup,
        log=log,
        started=started,
        progress=progress,
        trunk_weights=trunk_weights,
    )
    try:
        return _train(run)
    except BaseException:
        rundir.remove_if_unstarted(run_dir)
        raise
    finally:
        reset_policy()


def _train(run: _Run) -> TrainResult:
    steps = math.ceil(run.train_examples / run.global_batch)
    config = rundir.write_run_config(
        run.run_dir,
        workspace=run.workspace,
        options=run.options,
        settings=run.settings,
        info=run.info,
        export_dir=run.export_dir,
        setup=run.setup,
        steps_per_epoch=steps,
    )
    model = _build(run, steps)
    history = _fit(run, model)
    return _finish(run, model, config, history)


def _build(run: _Run, steps_per_epoch: int):
    """The model, built in the distribution strategy's scope (its trunk from ``--init-from``,
    frozen with ``--freeze-trunk``) and compiled; its summary is logged."""
    settings = run.settings
    with run.setup.strategy_object.scope():
        model = build_model(
            settings.model,
            input_shape=settings.input_shape,
            num_classes=len(run.info["class_names"]),
            embedding_dim=settings.embedding_dim,
            backbone=settings.backbone,
            weights="none" if run.trunk_weights is not None else settings.weights,
        )
        if run.trunk_weights is not None:
            transfer.init_trunk(model, run.trunk_weights, settings.init_from)
        transfer.set_trunk_trainable(model, not settings.freeze_trunk)
        _compile(run, model, settings.lr, steps_per_epoch, settings.epochs)
    model.summary(print_fn=lambda line, *args, **kwargs: run.log(line), expand_nested=False)
    run.log(f"augmentation: {describe_run_augmentation(run, model)}")
    return model


def describe_run_augmentation(run: _Run, model) -> str:
    """What the run augments with: the model's own clip-consistent layers, ``--augment`` (made
    label-safe), the flips; ``none``."""
    from dataprep.train.inputs import augmentation
    from dataprep.train.motion_model import describe_augmentation

    parts = [describe_augmentation(model)]
    if run.settings.augment:
        _, _, notes = augmentation(run.settings, list(run.info["class_names"]))
        parts.append(f"loader: {run.settings.augment} (the same draw for every frame of a clip)")
        parts += notes
    return "; ".join(p for p in parts if p) or "none"


def _compile(run: _Run, model, lr: float, steps_per_epoch: int, epochs: int) -> None:
    settings = run.settings
    num_classes = len(run.info["class_names"])
    compile_model(
        model,
        settings.model,
        lr=lr,
        steps_per_epoch=steps_per_epoch,
        epochs=epochs,
        jit_compile=settings.xla,
        top_k=5 if num_classes > 5 else None,
        loss=settings.loss,
        mining=settings.mining,
        margin=settings.margin,
    )


def _phases(settings: TrainSettings) -> list[tuple[int, float, bool]]:
    """``(epochs, learning rate, trunk trainable)`` of each training phase."""
    phases = [(settings.epochs, settings.lr, not settings.freeze_trunk)]
    if settings.fine_tune_epochs:
        lr = settings.lr * transfer.FINE_TUNE_LR_FACTOR
        phases.append((settings.fine_tune_epochs, lr, True))
    return phases


def _fit(run: _Run, model) -> list[dict[str, float]]:
    """``fit`` on train, validating on val, phase after phase; returns one row per epoch."""
    from dataprep.data import naming_corrupt_shards

    settings, batch = run.settings, run.global_batch
    data = _training_data(run)
    phases = _phases(settings)
    total = sum(epochs for epochs, _, _ in phases)
    reporter = EpochReporter(
        run.log,
        run.train_examples,
        settings.frames_per_example,
        total,
        progress=run.progress,
        batches=data["steps"] or -(-run.train_examples // batch),
    )
    monitor, mode = run.monitor
    done = 0
    with warnings.catch_warnings(), naming_corrupt_shards(run.export_dir, "train", "val"):
        # A finite tf.data epoch is how we train; Keras' notes about it are noise here.
        warnings.filterwarnings("ignore", message=".*ran out of data.*")
        warnings.filterwarnings("ignore", message=".*`shuffle=True` was passed.*")
        # Made once: the checkpoint keeps the best epoch of all phases; early stopping starts
        # afresh with each phase (Keras resets it when a fit begins).
        callbacks = [*data["callbacks"], reporter]
        steps = data["steps"] or -(-run.train_examples // batch)
        callbacks += standard_callbacks(
            run.run_dir,
            patience=patience_epochs(settings.patience, steps),
            monitor=monitor,
            mode=mode,
        )
        for index, (epochs, lr, trainable) in enumerate(phases):
            if index:  # fine-tuning: the whole model at a lower rate
                transfer.set_trunk_trainable(model, trainable)
                _compile(run, model, lr, data["steps"] or run.train_examples // batch + 1, epochs)
            model.fit(
                data["train"],
                validation_data=data["val"],
                steps_per_epoch=data["steps"],
                initial_epoch=done,
                epochs=done + epochs,
                callbacks=callbacks,
                verbose=0,
            )
            done = len(reporter.rows)
    if len(phases) > 1:  # the best epoch may be in an earlier phase: its checkpoint
        model.load_weights(run.run_dir / rundir.RUN_FILES["checkpoint"])
    return reporter.rows


def _training_data(run: _Run) -> dict[str, Any]:
    """Training and validation inputs: the split's batches and val for the classifiers;
    class-balanced batches and few-shot validation episodes for the embedding models."""
    settings, batch = run.settings, run.global_batch
    if not settings.embedding:
        # repeated, with steps_per_epoch: Keras keeps one training iterator for the whole run
        train = make_dataset(
            run.export_dir, "train", settings, training=True, batch_size=batch, repeat=True
        )
        return {
            "train": train,
            "val": make_dataset(run.export_dir, "val", settings, training=False, batch_size=batch),
            "steps": max(1, math.ceil(run.train_examples / batch)),
            "callbacks": [],
        }
    keep = embedding.kept_labels(list(run.info["class_names"]), settings)
    return {
        "train": embedding.balanced_batches(run.export_dir, settings, keep=keep, batch=batch),
        "val": None,
        "steps": max(1, run.train_examples // batch),
        "callbacks": [embedding.FewShotValidation(run.export_dir, settings, keep, batch)],
    }


def _best_epoch(run: _Run, history) -> int:
    monitor, mode = run.monitor
    sign = 1.0 if mode == "min" else -1.0
    values = [sign * row.get(monitor, sign * math.inf) for row in history]
    return int(min(range(len(values)), key=values.__getitem__)) + 1


def _finish(run: _Run, model, config: dict[str, Any], history) -> TrainResult:
    """Saves the model and history, evaluates on test and writes ``metrics.json``."""
    run_dir, settings = run.run_dir, run.settings
    best_epoch = _best_epoch(run, history)
    if settings.embedding:  # --embedding-from features: the trunk's features
        model = embedding.final_model(model, settings)
    model.save(run_dir / rundir.RUN_FILES["model"])
    title = f"{settings.model} on {run.info.get('name')} ({run_dir.name})"
    rundir.write_history(run_dir, history, title)
    seconds = time.perf_counter() - run.started
    training = rundir.training_summary(history, settings, best_epoch, seconds)
    if settings.embedding:
        embedding.calibrate(model, run_dir, run.export_dir, settings, run.info["class_names"])
    metrics = evaluate.evaluate_model(model, run_dir, config, "test", training=training)
    training["seconds"] = time.perf_counter() - run.started
    gap = diagnose.fit_gap(history, best_epoch)
    if gap is not None:
        training["gap"] = gap
        run.log(diagnose.gap_line(gap))
        augmented = bool(settings.augment) or "clip-consistent" in describe_run_augmentation(
            run, model
        )
        warning = diagnose.overfit_warning(
            gap, train_examples=run.train_examples, augmented=augmented
        )
        if warning:
            run.log(warning)
    metrics["training"] = training
    reports.write_json(run_dir / rundir.RUN_FILES["metrics"], metrics)
    unit = "clips" if settings.frames_per_example > 1 else "examples"
    what = "test accuracy" if not settings.embedding else f"test {metrics['episode']} accuracy"
    run.log(
        f"{what} {metrics['test_accuracy']:.4f} on {metrics['examples']} {unit} "
        f"(best epoch {best_epoch}); run folder {run_dir}"
    )
    return TrainResult(
        run_id=run_dir.name,
        run_dir=run_dir,
        metrics=metrics,
        history=history,
        best_epoch=best_epoch,
        stopped_early=training["stopped_early"],
        seconds=training["seconds"],
        train_images_per_s=training["train_images_per_s"],
        train_clips_per_s=training["train_clips_per_s"],
        files=rundir.run_files(run_dir),
    )
