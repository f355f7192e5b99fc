"""``train_baseline``: train a reference model on an export and write ``runs/<run_id>/``.

The run is Keras 3 ``fit`` on the export's tf.data pipeline (:func:`dataprep.data.load`), with
early stopping on the validation loss, a checkpoint of the best epoch, TensorBoard logs, and a
final evaluation on the test split (:mod:`dataprep.train.evaluate`). Everything the run was given
goes to ``config.json``, so ``dataprep train-baseline --from-config runs/<id>/config.json``
repeats it.
"""

from __future__ import annotations

import json
import math
import re
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dataprep.errors import UsageError
from dataprep.train.models import MODEL_NAMES, build_model, compile_model, is_clip_model

RUN_FILES = {
    "model": "model.keras",
    "checkpoint": "checkpoints/best.keras",
    "history": "history.csv",
    "metrics": "metrics.json",
    "curves": "curves.png",
    "confusion": "confusion.png",
    "tensorboard": "tensorboard",
    "config": "config.json",
}
CNN_MIN_SIDE = 32  # the reference cnn's valid convolutions and 3 poolings need 32 px
_RUN_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@dataclass
class TrainOptions:
    """Every option of ``train-baseline`` (``None`` = take it from ``[train]`` or the export)."""

    export: str
    model: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    image_size: int | None = None
    clip_len: int | None = None
    augment: str | None = None
    mixed_precision: str | None = None
    xla: bool = False
    seed: int | None = None
    run_name: str | None = None
    patience: int | None = None


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

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["run_dir"] = str(self.run_dir)
        return data


def resolve_export(workspace, export: str) -> Path:
    """An export's folder from its name (``exports/<name>``) or a path.

    Raises:
        UsageError: when there is no complete export (no ``dataset_info.json``) there.
    """
    candidates = []
    if workspace is not None:
        candidates.append(workspace.exports_dir / export)
    candidates.append(Path(export).expanduser())
    for folder in candidates:
        if (folder / "dataset_info.json").is_file():
            return folder.resolve()
    where = " or ".join(str(c) for c in candidates)
    raise UsageError(
        f"no complete export at {where} (dataset_info.json missing); run `dataprep export` "
        f"first, or pass --export with an export name or folder"
    )


def _split_examples(info: dict[str, Any], split: str) -> int:
    return int(((info.get("splits") or {}).get(split) or {}).get("examples") or 0)


def resolve_options(options: TrainOptions, workspace, info: dict[str, Any]) -> dict[str, Any]:
    """Fills the unset options from ``[train]`` and the export; checks they fit together.

    Raises:
        UsageError: naming the option that does not fit (model vs unit, clip length, splits).
    """
    train_cfg = workspace.config.train if workspace is not None else None

    def pick(value, key, default):
        if value is not None:
            return value
        return getattr(train_cfg, key) if train_cfg is not None else default

    model = pick(options.model, "model", "cnn-bn")
    if model not in MODEL_NAMES:
        raise UsageError(f"--model {model!r} is not known; use one of {', '.join(MODEL_NAMES)}")
    unit = info.get("unit", "frame")
    if is_clip_model(model) and unit != "clip":
        raise UsageError(
            f"--model {model} trains on clips but export {info.get('name')!r} has unit {unit!r}; "
            f"export with --unit clip (or pick cnn / cnn-bn)"
        )
    if not is_clip_model(model) and unit != "frame":
        raise UsageError(
            f"--model {model} trains on frames but export {info.get('name')!r} has unit {unit!r}; "
            f"use --model cnn-lstm, or export with --unit frame"
        )
    export_len = int((info.get("clip") or {}).get("length") or 0)
    clip_len = options.clip_len
    if unit == "clip":
        clip_len = clip_len or export_len
        if not 1 <= clip_len <= export_len:
            raise UsageError(
                f"--clip-len {clip_len} does not fit the export's clips of {export_len} frames; "
                f"use 1..{export_len} or re-export with a longer --clip-len"
            )
    elif clip_len is not None:
        raise UsageError("--clip-len only applies to clip exports (--model cnn-lstm)")
    image = info.get("image") or {}
    image_size = pick(options.image_size, "image_size", 0) or None
    if image_size is not None and image_size < 8:
        raise UsageError(f"--image-size {image_size} is too small; use 8 or more")
    height = int(image_size or image.get("height") or 0)
    width = int(image_size or image.get("width") or 0)
    if model == "cnn" and min(height, width) < CNN_MIN_SIDE:
        raise UsageError(
            f"the reference cnn needs frames of at least {CNN_MIN_SIDE}x{CNN_MIN_SIDE} (valid "
            f"padding), the export's are {width}x{height}; pass --image-size {CNN_MIN_SIDE} or "
            f"more, or use --model cnn-bn"
        )
    for split in ("train", "val", "test"):
        if _split_examples(info, split) == 0:
            raise UsageError(
                f"export {info.get('name')!r} has no {split} examples; adjust `dataprep split` "
                f"ratios so every split gets media, then export again"
            )
    return {
        "model": model,
        "epochs": int(pick(options.epochs, "epochs", 20)),
        "batch_size": int(pick(options.batch_size, "batch_size", 32)),
        "lr": float(pick(options.lr, "lr", 1e-3)),
        "image_size": image_size,
        "input_height": int(image_size or image.get("height")),
        "input_width": int(image_size or image.get("width")),
        "channels": int(image.get("channels") or 3),
        "clip_len": clip_len,
        "augment": options.augment,
        "mixed_precision": pick(options.mixed_precision, "mixed_precision", "auto"),
        "xla": bool(options.xla),
        "seed": pick(options.seed, "seed", None),
        "patience": int(pick(options.patience, "patience", 5)),
        "unit": unit,
    }


def new_run_dir(workspace, run_name: str | None, model: str, runs_dir: Path | None = None) -> Path:
    """Creates ``runs/<run_id>/`` (``<run_name>``, or ``<UTC time>-<model>``).

    Raises:
        UsageError: when the name has odd characters or that run already exists.
    """
    base = Path(runs_dir) if runs_dir is not None else workspace.runs_dir
    if run_name is not None:
        if not _RUN_NAME_RE.match(run_name):
            raise UsageError(
                f"--run-name {run_name!r}: use letters, digits, '.', '_' or '-' (up to 100)"
            )
        run_id = run_name
    else:
        run_id = f"{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}-{model}"
    run_dir = base / run_id
    suffix = 1
    while run_name is None and run_dir.exists():
        suffix += 1
        run_dir = base / f"{run_id}-{suffix}"
    try:
        run_dir.mkdir(parents=True)
    except FileExistsError:
        raise UsageError(
            f"run {run_dir} already exists; choose another --run-name or delete that folder"
        ) from None
    return run_dir


def make_dataset(
    export_dir: Path, split: str, settings: dict[str, Any], *, training: bool, batch_size: int
):
    """The tf.data pipeline of one split for this run's settings (see :func:`dataprep.data.load`).

    Training batches are shuffled (seeded) and augmented with ``--augment``; evaluation batches
    are in file order (one shard after the other, the order of :func:`dataprep.data.iter_examples`,
    so metrics can name each example's media). Clips are cut to the run's ``clip_len`` (their
    first frames).
    """
    from dataprep.data import load

    seed = settings.get("seed")
    dataset = load(
        export_dir,
        split,
        batch_size=batch_size,
        augment=settings.get("augment") if training else None,
        normalize=True,
        shuffle=training,
        repeat=False,
        image_size=settings.get("image_size"),
        seed=seed,
        deterministic=settings.get("deterministic_data", seed is not None) or not training,
        cycle_length=None if training else 1,
    )
    clip_len = settings.get("clip_len")
    if settings["unit"] == "clip" and clip_len:
        dataset = dataset.map(lambda images, labels: (images[:, :clip_len], labels))
    return dataset


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

            def on_train_batch_end(self, batch, logs=None):
                if progress:
                    progress(batch + 1, batches)

            def on_test_begin(self, logs=None):
                if self._train_end is None:
                    self._train_end = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                logs = dict(logs or {})
                now = time.perf_counter()
                train_s = (self._train_end or now) - self._start
                seconds = now - self._start
                images_per_s = examples * frames_per_example / train_s if train_s else 0.0
                row = {
                    "epoch": epoch + 1,
                    **{k: float(v) for k, v in logs.items()},
                    "seconds": seconds,
                    "train_seconds": train_s,
                    "images_per_s": images_per_s,
                }
                if frames_per_example > 1:
                    row["clips_per_s"] = examples / train_s if train_s else 0.0
                self.rows.append(row)
                clips = f" {row['clips_per_s']:.1f} clips/s" if frames_per_example > 1 else ""
                log(
                    f"epoch {epoch + 1}/{epochs}: loss {logs.get('loss', float('nan')):.4f} "
                    f"accuracy {logs.get('accuracy', float('nan')):.4f} "
                    f"val_loss {logs.get('val_loss', float('nan')):.4f} "
                    f"val_accuracy {logs.get('val_accuracy', float('nan')):.4f} "
                    f"{seconds:.1f}s {images_per_s:.0f} images/s{clips}"
                )

        return _Reporter()


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
    from dataprep.train import evaluate, reports
    from dataprep.train.devices import reset_policy, setup_devices

    started = time.perf_counter()
    if workspace is None and runs_dir is None:
        raise UsageError(
            "train-baseline writes runs/<run_id>/ inside a workspace; run it in one or pass -w DIR"
        )
    export_dir = resolve_export(workspace, options.export)
    from dataprep.data import read_info

    info = read_info(export_dir)
    settings = resolve_options(options, workspace, info)
    _check_backend("train-baseline")
    setup = setup_devices(
        mixed_precision=settings["mixed_precision"], xla=settings["xla"], seed=settings["seed"]
    )
    log(setup.describe())
    run_dir = new_run_dir(workspace, options.run_name, settings["model"], runs_dir)
    try:
        return _train(
            workspace,
            options,
            settings,
            info,
            export_dir,
            run_dir,
            setup,
            log,
            started,
            evaluate,
            reports,
            progress,
        )
    except BaseException:
        _remove_if_unstarted(run_dir)
        raise
    finally:
        reset_policy()


def _remove_if_unstarted(run_dir: Path) -> None:
    """Removes a run folder that holds nothing but its config (failed before the first epoch).

    A run that trained for a while keeps its folder: checkpoint, TensorBoard logs and config
    stay readable after a crash or Ctrl-C.
    """
    import shutil

    checkpoint = run_dir / RUN_FILES["checkpoint"]
    if not checkpoint.exists():
        shutil.rmtree(run_dir, ignore_errors=True)


def _train(
    workspace,
    options,
    settings,
    info,
    export_dir,
    run_dir,
    setup,
    log,
    started,
    evaluate,
    reports,
    progress=None,
) -> TrainResult:
    import keras

    from dataprep.data import naming_corrupt_shards

    model_name = settings["model"]
    class_names = list(info["class_names"])
    num_classes = len(class_names)
    frames_per_example = settings["clip_len"] or 1
    shape = (settings["input_height"], settings["input_width"], settings["channels"])
    input_shape = (frames_per_example, *shape) if is_clip_model(model_name) else shape
    global_batch = settings["batch_size"] * setup.replicas
    train_examples = _split_examples(info, "train")
    steps = math.ceil(train_examples / global_batch)
    top_k = 5 if num_classes > 5 else None

    # Deterministic element order costs input throughput; only worth it where the run is
    # bit-for-bit repeatable anyway (seeded, CPU op determinism on).
    settings["deterministic_data"] = setup.deterministic
    config = {
        "run_id": run_dir.name,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "options": asdict(options),
        "resolved": settings,
        "command": _command_line(options, settings),
        "export": {
            "dir": str(export_dir),
            "name": info.get("name"),
            "format": info.get("format"),
            "unit": info.get("unit"),
            "clip": info.get("clip"),
            "image": info.get("image"),
            "class_names": class_names,
            "examples": {s: _split_examples(info, s) for s in ("train", "val", "test")},
            "fingerprints": info.get("fingerprints"),
            "stats": info.get("stats"),
            "augmentation": info.get("augmentation"),
            "dataprep_version": info.get("dataprep_version"),
        },
        "frames": _frame_settings(workspace),
        "input_shape": list(input_shape),
        "global_batch_size": global_batch,
        "steps_per_epoch": steps,
        "devices": setup.to_dict(),
        "versions": _versions(),
    }
    reports.write_json(run_dir / RUN_FILES["config"], config)

    with setup.strategy_object.scope():
        model = build_model(model_name, input_shape=input_shape, num_classes=num_classes)
        compile_model(
            model,
            model_name,
            lr=settings["lr"],
            steps_per_epoch=steps,
            epochs=settings["epochs"],
            jit_compile=settings["xla"],
            top_k=top_k,
        )
    model.summary(print_fn=lambda line, *args, **kwargs: log(line), expand_nested=False)

    train_ds = make_dataset(export_dir, "train", settings, training=True, batch_size=global_batch)
    val_ds = make_dataset(export_dir, "val", settings, training=False, batch_size=global_batch)
    reporter = EpochReporter(
        log,
        train_examples,
        frames_per_example,
        settings["epochs"],
        progress=progress,
        batches=-(-train_examples // global_batch),
    )
    checkpoint = run_dir / RUN_FILES["checkpoint"]
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    stopper = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=settings["patience"], restore_best_weights=True
    )
    callbacks = [
        reporter,
        stopper,
        keras.callbacks.ModelCheckpoint(str(checkpoint), monitor="val_loss", save_best_only=True),
        keras.callbacks.TensorBoard(
            log_dir=str(run_dir / RUN_FILES["tensorboard"]), write_graph=False, profile_batch=0
        ),
    ]
    with warnings.catch_warnings(), naming_corrupt_shards(export_dir, "train", "val"):
        # A finite tf.data epoch is how we train; Keras' notes about it are noise here.
        warnings.filterwarnings("ignore", message=".*ran out of data.*")
        warnings.filterwarnings("ignore", message=".*`shuffle=True` was passed.*")
        model.fit(
            train_ds,
            validation_data=val_ds,
            epochs=settings["epochs"],
            callbacks=callbacks,
            verbose=0,
        )
    history = reporter.rows
    val_losses = [row.get("val_loss", math.inf) for row in history]
    best_epoch = int(min(range(len(val_losses)), key=val_losses.__getitem__)) + 1
    model.save(run_dir / RUN_FILES["model"])
    reports.write_history_csv(run_dir / RUN_FILES["history"], history)
    reports.plot_curves(
        run_dir / RUN_FILES["curves"],
        history,
        title=f"{model_name} on {info.get('name')} ({run_dir.name})",
    )

    timed = history[1:] or history  # the first epoch includes tracing/compilation
    images_per_s = sum(r["images_per_s"] for r in timed) / len(timed)
    clips_per_s = (
        sum(r["clips_per_s"] for r in timed) / len(timed) if frames_per_example > 1 else None
    )
    training = {
        "epochs_run": len(history),
        "best_epoch": best_epoch,
        "stopped_early": len(history) < settings["epochs"],
        "train_images_per_s": images_per_s,
        "train_clips_per_s": clips_per_s,
        "seconds": time.perf_counter() - started,
    }
    metrics = evaluate.evaluate_model(model, run_dir, config, "test", training=training)
    training["seconds"] = time.perf_counter() - started
    metrics["training"] = training
    reports.write_json(run_dir / RUN_FILES["metrics"], metrics)
    log(
        f"test accuracy {metrics['test_accuracy']:.4f} on {metrics['examples']} "
        f"{'clips' if frames_per_example > 1 else 'examples'} (best epoch {best_epoch}); "
        f"run folder {run_dir}"
    )
    return TrainResult(
        run_id=run_dir.name,
        run_dir=run_dir,
        metrics=metrics,
        history=history,
        best_epoch=best_epoch,
        stopped_early=training["stopped_early"],
        seconds=training["seconds"],
        train_images_per_s=images_per_s,
        train_clips_per_s=clips_per_s,
        files={key: str(run_dir / name) for key, name in RUN_FILES.items()},
    )


def _check_backend(command: str) -> None:
    """The CLI commands run on the TensorFlow backend (their input is a tf.data pipeline).

    Raises:
        UsageError: when ``KERAS_BACKEND`` selects another backend.
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        raise UsageError(
            f"{command} runs with the TensorFlow backend (KERAS_BACKEND is "
            f"{keras.backend.backend()!r}); unset KERAS_BACKEND, or see benchmarks/gpu_check.py "
            f"for training on JAX/PyTorch with dataprep.data.iter_numpy"
        )


def _frame_settings(workspace) -> dict[str, Any] | None:
    """How the workspace's frames were made, for ``predict`` to repeat on new media.

    Taken from the record of the last ``dataprep frames`` run (the settings actually used, CLI
    options included), else from ``[frames]`` of dataprep.toml. Keys: ``sampling``, ``fps``,
    ``every``, ``count``, ``size`` (``"32"``, ``"64x48"`` or None for original), ``resize``,
    ``format``, ``quality``, ``source``.
    """
    if workspace is None:
        return None
    from dataprep.stages import load_stage

    config = workspace.config.frames
    record = load_stage(workspace, "frames")
    if not record:
        return {**config.model_dump(), "source": "dataprep.toml"}
    settings = record["settings"]
    mode = settings["sampling"]["mode"]
    value = settings["sampling"].get("value")
    size_text = settings.get("size", "original")
    if size_text == "original":
        size, resize = None, "shorter"
    else:
        resize, _, size = size_text.partition("=")
    return {
        "sampling": mode,
        "fps": value if mode == "fps" else None,
        "every": value if mode == "every" else None,
        "count": value if mode == "count" else None,
        "size": size,
        "resize": resize,
        "format": settings["format"],
        "quality": settings["quality"],
        "source": "frames stage record",
    }


def _versions() -> dict[str, str]:
    import keras
    import tensorflow as tf

    from dataprep import __version__

    return {
        "dataprep": __version__,
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
        "backend": keras.backend.backend(),
    }


def _command_line(options: TrainOptions, settings: dict[str, Any]) -> str:
    """The command that repeats this run (every option spelled out, seed included)."""
    parts = [
        "dataprep",
        "train-baseline",
        "--export",
        options.export,
        "--model",
        settings["model"],
        "--epochs",
        str(settings["epochs"]),
        "--batch-size",
        str(settings["batch_size"]),
        "--lr",
        repr(settings["lr"]),
        "--mixed-precision",
        settings["mixed_precision"],
        "--patience",
        str(settings["patience"]),
    ]
    if settings["image_size"]:
        parts += ["--image-size", str(settings["image_size"])]
    if settings["clip_len"]:
        parts += ["--clip-len", str(settings["clip_len"])]
    if settings["augment"]:
        parts += ["--augment", settings["augment"]]
    if settings["xla"]:
        parts.append("--xla")
    if settings["seed"] is not None:
        parts += ["--seed", str(settings["seed"])]
    return " ".join(parts)


def options_from_config(path: Path, run_name: str | None = None) -> TrainOptions:
    """The options of an earlier run, read from its ``config.json`` (to repeat it).

    The values the run actually used (``resolved``) win over the options as given, so a change of
    ``[train]`` in dataprep.toml since then does not change the repeat. The export is the one the
    run read (its folder).

    Raises:
        UsageError: when the file is not a run's config.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        saved = dict(data["options"])
        saved.update({k: v for k, v in data["resolved"].items() if k in saved})
        saved["export"] = data["export"]["dir"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise UsageError(f"{path}: not a run's config.json ({exc})") from None
    saved["run_name"] = run_name
    known = {f for f in TrainOptions.__dataclass_fields__}
    return TrainOptions(**{k: v for k, v in saved.items() if k in known})
