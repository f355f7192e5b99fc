"""Multi-worker data-parallel training: ``MultiWorkerMirroredStrategy`` and a custom step.

Keras 3 ``fit`` fails under ``MultiWorkerMirroredStrategy`` (keras-team/keras#20585: "Attempt
to convert a value (PerReplica...)"), so each step here goes through ``strategy.run`` with the
same Keras model and optimizer that single-machine training compiles; the run folder is the same
as :func:`dataprep.train.loop.train_baseline` writes (``config.json``, ``model.keras``,
``checkpoints/best.keras``, ``history.csv``, ``curves.png``, ``metrics.json``,
``confusion.png``, TensorBoard logs), written by the chief (worker 0), plus ``train_steps.csv``
(the loss of every step).

* **Cluster**: ``TF_CONFIG`` set by the user or a launcher (Kubernetes, Slurm), or
  :func:`launch_local` (``train-baseline --workers N``), which starts N worker processes on this
  machine with ``TF_CONFIG`` pointing at free localhost ports.
* **Input**: every worker builds the export's tf.data pipeline with the *global* batch; tf.data
  auto-sharding by file gives each worker its own shards (``AutoShardPolicy.FILE``; by example
  when the split has fewer shards than workers) and re-batches to ``global / replicas`` per
  replica. Each epoch is ``train examples // global batch`` steps on every worker (the stream
  repeats), so all workers run the same number of collective steps.
* **Validation and early stopping**: every worker evaluates the whole val split with its copy of
  the (identical) weights, so all take the same early-stopping decision without talking.
* **Batch normalization** statistics are per replica (as with ``MirroredStrategy``); losses
  match single-worker training step for step only for models without it (``cnn``).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from dataprep.errors import DataprepError, UsageError
from dataprep.train.launch import ERROR_PREFIX

STEPS_FILE = "train_steps.csv"


@dataclass(frozen=True)
class WorkerRole:
    """This process's place in the ``TF_CONFIG`` cluster."""

    index: int
    workers: int

    @property
    def chief(self) -> bool:
        return self.index == 0


def role_from_env() -> WorkerRole | None:
    """The worker role ``TF_CONFIG`` gives this process, or None when it is not set.

    Raises:
        UsageError: naming what is wrong with ``TF_CONFIG``.
    """
    text = os.environ.get("TF_CONFIG")
    if not text:
        return None
    try:
        config = json.loads(text)
        workers = config["cluster"]["worker"]
        task = config["task"]
        index = int(task["index"])
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(
            f"TF_CONFIG is not valid ({type(exc).__name__}: {exc}); it needs "
            '{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": i}}'
        ) from None
    if task.get("type") != "worker" or not 0 <= index < len(workers):
        raise UsageError(
            f"TF_CONFIG task {task!r}: use type 'worker' and an index below {len(workers)}"
        )
    return WorkerRole(index, len(workers))


def train_worker(
    workspace,
    options,
    *,
    run_name: str,
    runs_dir: Path | None = None,
    log=print,
    shuffle: bool = True,
):
    """One worker's part of a multi-worker run (``TF_CONFIG`` must be set).

    Args:
        workspace: the opened workspace (the same folder on every worker: a shared file system).
        options: a :class:`dataprep.train.options.TrainOptions`.
        run_name: the run's folder name (every worker must be given the same).
        runs_dir: where runs go (default ``<workspace>/runs``).
        log: where the chief's lines go (other workers log nothing).
        shuffle: shuffle training examples (off: shards interleaved in file order, so that a
            run on N workers sees the same examples per step as one worker; for tests).

    Returns:
        The run folder (chief) or None (other workers).
    """
    import tensorflow as tf

    role = role_from_env()
    if role is None:
        raise UsageError("multi-worker training needs TF_CONFIG (or --workers N on one machine)")
    # The collective runtime must exist before any other TensorFlow op runs.
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    worker = _Worker(workspace, options, role, strategy, log if role.chief else _quiet)
    worker.shuffle = shuffle
    return worker.run(run_name, runs_dir)


def _quiet(line: str) -> None:
    del line


class _Worker:
    def __init__(self, workspace, options, role: WorkerRole, strategy, log):
        from dataprep.data import read_info
        from dataprep.train.devices import setup_devices
        from dataprep.train.inputs import check_backend, resolve_export
        from dataprep.train.options import resolve_options

        self.workspace, self.role, self.strategy, self.log = workspace, role, strategy, log
        self.options = replace(options, run_name=None)
        self.export_dir = resolve_export(workspace, options.export)
        self.info = read_info(self.export_dir)
        settings = resolve_options(self.options, workspace, self.info)
        check_backend("train-baseline")
        local = setup_devices(mixed_precision=settings.mixed_precision, seed=settings.seed)
        self.settings = replace(settings, deterministic_data=local.deterministic)
        self.setup = replace(
            local,
            strategy="MultiWorkerMirroredStrategy",
            replicas=strategy.num_replicas_in_sync,
            notes=[*local.notes, f"{role.workers} workers"],
            strategy_object=strategy,
        )
        self.global_batch = self.settings.batch_size * self.setup.replicas
        self.shuffle = True

    def run(self, run_name: str, runs_dir: Path | None) -> Path | None:
        from dataprep.train import rundir
        from dataprep.train.inputs import split_examples

        if self.role.chief:
            self.log(self.setup.describe())
            run_dir = rundir.new_run_dir(self.workspace, run_name, self.settings.model, runs_dir)
        else:  # other workers write nothing the run keeps
            run_dir = Path(tempfile.mkdtemp(prefix=f"dataprep-worker{self.role.index}-"))
        try:
            self.steps = max(1, split_examples(self.info, "train") // self.global_batch)
            config = rundir.write_run_config(
                run_dir,
                workspace=self.workspace,
                options=replace(self.options, run_name=run_name),
                settings=self.settings,
                info=self.info,
                export_dir=self.export_dir,
                setup=self.setup,
                steps_per_epoch=self.steps,
            )
            model = self._build()
            history, step_losses = _Loop(self, model, run_dir).train()
            if self.role.chief:
                _finish(self, model, run_dir, config, history, step_losses)
                return run_dir
            return None
        except BaseException:
            if self.role.chief:
                rundir.remove_if_unstarted(run_dir)
            raise
        finally:
            if not self.role.chief:
                shutil.rmtree(run_dir, ignore_errors=True)

    def _build(self):
        from dataprep.train.models import build_model, compile_model

        num_classes = len(self.info["class_names"])
        with self.strategy.scope():
            model = build_model(
                self.settings.model, input_shape=self.settings.input_shape, num_classes=num_classes
            )
            compile_model(
                model,
                self.settings.model,
                lr=self.settings.lr,
                steps_per_epoch=self.steps,
                epochs=self.settings.epochs,
                jit_compile=False,
            )
            model.optimizer.build(model.trainable_variables)
        if model.optimizer is None or not hasattr(model, "loss"):
            raise UsageError(f"model {self.settings.model} cannot be trained on several workers")
        if getattr(self.settings, "embedding", False):  # siamese models: metric losses
            raise UsageError(
                "multi-worker training covers the classifiers (cnn, cnn-bn, cnn-lstm); train "
                f"{self.settings.model} on one machine"
            )
        return model

    def dataset(self, split: str, *, training: bool):
        import tensorflow as tf

        from dataprep.data import load, shard_paths
        from dataprep.train.inputs import make_dataset

        if training and not self.shuffle:
            dataset = load(
                self.export_dir,
                split,
                batch_size=self.global_batch,
                normalize=self.settings.normalize,
                shuffle=False,
                image_size=self.settings.image_size,
                deterministic=True,
            )
        else:
            dataset = make_dataset(
                self.export_dir,
                split,
                self.settings,
                training=training,
                batch_size=self.global_batch,
            )
        if not training:
            return dataset
        shards = len(shard_paths(self.export_dir, split, self.info))
        policy = tf.data.experimental.AutoShardPolicy
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = (
            policy.FILE if shards >= self.role.workers else policy.DATA
        )
        return self.strategy.experimental_distribute_dataset(dataset.repeat().with_options(options))


class _Loop:
    """The epochs: distributed train steps, local validation, early stopping, checkpoints."""

    def __init__(self, worker: _Worker, model, run_dir: Path):
        self.worker, self.model, self.run_dir = worker, model, run_dir

    def train(self) -> tuple[list[dict[str, float]], list[float]]:
        from dataprep.train.callbacks import _epoch_line
        from dataprep.train.rundir import RUN_FILES

        w, settings = self.worker, self.worker.settings
        step = self._train_step()
        evaluate = self._eval_step()
        iterator = iter(w.dataset("train", training=True))
        history: list[dict[str, float]] = []
        step_losses: list[float] = []
        best, best_weights, waited = math.inf, None, 0
        writer = _summary_writer(self.run_dir / RUN_FILES["tensorboard"], w.role.chief)
        for epoch in range(settings.epochs):
            start = time.perf_counter()
            loss_sum = correct = seen = 0.0
            for _ in range(w.steps):
                loss, right, count = (float(x) for x in step(iterator))
                step_losses.append(loss)
                loss_sum, correct, seen = loss_sum + loss, correct + right, seen + count
            train_s = time.perf_counter() - start
            val_loss, val_accuracy = self._validate(evaluate)
            row = _row(epoch, loss_sum / w.steps, correct / max(seen, 1), val_loss, val_accuracy)
            row.update(_speed(seen, train_s, time.perf_counter() - start, settings))
            history.append(row)
            w.log(_epoch_line(row, settings.epochs, settings.frames_per_example))
            _write_summary(writer, row)
            if val_loss < best:
                best, best_weights, waited = val_loss, self.model.get_weights(), 0
                if w.role.chief:
                    (self.run_dir / "checkpoints").mkdir(exist_ok=True)
                    self.model.save(self.run_dir / RUN_FILES["checkpoint"])
            else:
                waited += 1
                if waited >= settings.patience:
                    break
        if best_weights is not None:
            self.model.set_weights(best_weights)
        return history, step_losses

    def _train_step(self):
        import keras
        import tensorflow as tf

        model, strategy, global_batch = self.model, self.worker.strategy, self.worker.global_batch
        loss_fn = keras.losses.SparseCategoricalCrossentropy(reduction=None)
        sum_ = tf.distribute.ReduceOp.SUM

        def replica_step(images, labels):
            with tf.GradientTape() as tape:
                probs = model(images, training=True)
                per_example = loss_fn(labels, probs)
                loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)
                if model.losses:
                    loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
            grads = tape.gradient(loss, model.trainable_variables)
            model.optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
            hits = tf.equal(tf.argmax(probs, axis=-1, output_type=labels.dtype), labels)
            count = tf.cast(tf.shape(labels)[0], tf.float32)
            return loss, tf.reduce_sum(tf.cast(hits, tf.float32)), count

        @tf.function
        def step(iterator):
            outputs = strategy.run(replica_step, args=next(iterator))
            return tuple(strategy.reduce(sum_, value, axis=None) for value in outputs)

        return step

    def _eval_step(self):
        import keras
        import tensorflow as tf

        model = self.model
        loss_fn = keras.losses.SparseCategoricalCrossentropy(reduction="sum")

        @tf.function
        def evaluate(images, labels):
            probs = model(images, training=False)
            hits = tf.equal(tf.argmax(probs, axis=-1, output_type=labels.dtype), labels)
            return loss_fn(labels, probs), tf.reduce_sum(tf.cast(hits, tf.float32))

        return evaluate

    def _validate(self, evaluate) -> tuple[float, float]:
        from dataprep.data import naming_corrupt_shards

        total = right = count = 0.0
        with naming_corrupt_shards(self.worker.export_dir, "val"):
            for images, labels in self.worker.dataset("val", training=False):
                loss, hits = evaluate(images, labels)
                total, right, count = total + float(loss), right + float(hits), count + len(labels)
        if not count:
            return math.inf, 0.0
        return total / count, right / count


def _row(epoch, loss, accuracy, val_loss, val_accuracy) -> dict[str, float]:
    return {
        "epoch": epoch + 1,
        "accuracy": accuracy,
        "loss": loss,
        "val_accuracy": val_accuracy,
        "val_loss": val_loss,
    }


def _speed(seen: float, train_s: float, seconds: float, settings) -> dict[str, float]:
    row = {
        "seconds": seconds,
        "train_seconds": train_s,
        "images_per_s": seen * settings.frames_per_example / train_s if train_s else 0.0,
    }
    if settings.frames_per_example > 1:
        row["clips_per_s"] = seen / train_s if train_s else 0.0
    return row


def _summary_writer(folder: Path, chief: bool):
    import tensorflow as tf

    return tf.summary.create_file_writer(str(folder / "train")) if chief else None


def _write_summary(writer, row: dict[str, float]) -> None:
    import tensorflow as tf

    if writer is None:
        return
    with writer.as_default():
        for key in ("loss", "accuracy", "val_loss", "val_accuracy", "images_per_s"):
            tf.summary.scalar(key, row[key], step=int(row["epoch"]))
    writer.flush()


def _finish(worker: _Worker, model, run_dir: Path, config, history, step_losses) -> None:
    """The chief saves the model, history and per-step losses and evaluates on test."""
    from dataprep.train import evaluate, reports, rundir

    settings = worker.settings
    val_losses = [row["val_loss"] for row in history]
    best_epoch = int(min(range(len(val_losses)), key=val_losses.__getitem__)) + 1
    model.save(run_dir / rundir.RUN_FILES["model"])
    lines = ["step,loss", *(f"{i + 1},{loss!r}" for i, loss in enumerate(step_losses))]
    (run_dir / STEPS_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
    title = f"{settings.model} on {worker.info.get('name')} ({run_dir.name})"
    rundir.write_history(run_dir, history, title)
    seconds = sum(row["seconds"] for row in history)
    training = rundir.training_summary(history, settings, best_epoch, seconds)
    training["workers"] = worker.role.workers
    # Evaluated by the chief alone, on a plain copy of the model (outside the strategy).
    plain = evaluate.load_run_model(run_dir)
    metrics = evaluate.evaluate_model(plain, run_dir, config, "test", training=training)
    reports.write_json(run_dir / rundir.RUN_FILES["metrics"], metrics)
    worker.log(
        f"test accuracy {metrics['test_accuracy']:.4f} on {metrics['examples']} examples "
        f"(best epoch {best_epoch}, {worker.role.workers} workers); run folder {run_dir}"
    )


# -- train-baseline --workers N / TF_CONFIG -------------------------------------------------


def train_distributed(workspace, options, *, workers: int | None = None, log=print):
    """``train-baseline`` on several workers: ``workers`` local processes, or this process as
    the ``TF_CONFIG`` worker a launcher started.

    Returns:
        The run folder on the chief; None on the other workers.

    Raises:
        UsageError: without a workspace, or under ``TF_CONFIG`` without ``--run-name`` (every
            worker must write the same run).
    """
    from datetime import UTC, datetime

    if workspace is None:
        raise UsageError("multi-worker training writes runs/ inside a workspace; pass -w DIR")
    if workers is not None:
        from dataprep.train.launch import launch_local

        model = options.model or workspace.config.train.model
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        run_name = options.run_name or f"{stamp}-{model}-{workers}workers"
        return launch_local(workspace.root, options, workers, run_name=run_name, log=log)
    if not options.run_name:
        raise UsageError(
            "under TF_CONFIG every worker must be given the same --run-name (the run folder)"
        )
    return train_worker(workspace, options, run_name=options.run_name, log=log)


def main(argv: list[str] | None = None) -> int:
    """Entry of a launched worker: ``python -m dataprep.train.distributed JOB_JSON``."""
    from dataprep.train.options import TrainOptions
    from dataprep.workspace import open_workspace

    job = json.loads((argv or sys.argv[1:])[0])
    workspace = open_workspace(Path(job["workspace"]))
    runs_dir = Path(job["runs_dir"]) if job["runs_dir"] else None
    try:
        train_worker(
            workspace,
            TrainOptions(**job["options"]),
            run_name=job["run_name"],
            runs_dir=runs_dir,
            log=lambda line: print(line, flush=True),
            shuffle=job.get("shuffle", True),
        )
    except DataprepError as exc:
        print(f"{ERROR_PREFIX}{exc}", file=sys.stderr, flush=True)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
