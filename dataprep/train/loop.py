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
from dataprep.train import evaluate, reports, rundir
from dataprep.train.callbacks import EpochReporter, standard_callbacks
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

    @property
    def global_batch(self) -> int:
        return self.settings.batch_size * self.setup.replicas

    @property
    def train_examples(self) -> int:
        return split_examples(self.info, "train")


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
    """The compiled model, built in the distribution strategy's scope; its summary is logged."""
    settings = run.settings
    num_classes = len(run.info["class_names"])
    with run.setup.strategy_object.scope():
        model = build_model(
            settings.model, input_shape=settings.input_shape, num_classes=num_classes
        )
        compile_model(
            model,
            settings.model,
            lr=settings.lr,
            steps_per_epoch=steps_per_epoch,
            epochs=settings.epochs,
            jit_compile=settings.xla,
            top_k=5 if num_classes > 5 else None,
        )
    model.summary(print_fn=lambda line, *args, **kwargs: run.log(line), expand_nested=False)
    return model


def _fit(run: _Run, model) -> list[dict[str, float]]:
    """``fit`` on train, validating on val; returns one row per epoch."""
    from dataprep.data import naming_corrupt_shards

    settings, batch = run.settings, run.global_batch
    train_ds = make_dataset(run.export_dir, "train", settings, training=True, batch_size=batch)
    val_ds = make_dataset(run.export_dir, "val", settings, training=False, batch_size=batch)
    reporter = EpochReporter(
        run.log,
        run.train_examples,
        settings.frames_per_example,
        settings.epochs,
        progress=run.progress,
        batches=-(-run.train_examples // batch),
    )
    callbacks = [reporter, *standard_callbacks(run.run_dir, patience=settings.patience)]
    with warnings.catch_warnings(), naming_corrupt_shards(run.export_dir, "train", "val"):
        # A finite tf.data epoch is how we train; Keras' notes about it are noise here.
        warnings.filterwarnings("ignore", message=".*ran out of data.*")
        warnings.filterwarnings("ignore", message=".*`shuffle=True` was passed.*")
        model.fit(
            train_ds,
            validation_data=val_ds,
            epochs=settings.epochs,
            callbacks=callbacks,
            verbose=0,
        )
    return reporter.rows


def _finish(run: _Run, model, config: dict[str, Any], history) -> TrainResult:
    """Saves the model and history, evaluates on test and writes ``metrics.json``."""
    run_dir, settings = run.run_dir, run.settings
    val_losses = [row.get("val_loss", math.inf) for row in history]
    best_epoch = int(min(range(len(val_losses)), key=val_losses.__getitem__)) + 1
    model.save(run_dir / rundir.RUN_FILES["model"])
    title = f"{settings.model} on {run.info.get('name')} ({run_dir.name})"
    rundir.write_history(run_dir, history, title)
    seconds = time.perf_counter() - run.started
    training = rundir.training_summary(history, settings, best_epoch, seconds)
    metrics = evaluate.evaluate_model(model, run_dir, config, "test", training=training)
    training["seconds"] = time.perf_counter() - run.started
    metrics["training"] = training
    reports.write_json(run_dir / rundir.RUN_FILES["metrics"], metrics)
    unit = "clips" if settings.frames_per_example > 1 else "examples"
    run.log(
        f"test accuracy {metrics['test_accuracy']:.4f} on {metrics['examples']} {unit} "
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
