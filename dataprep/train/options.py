"""The options of ``train-baseline``: as given (:class:`TrainOptions`) and as resolved
(:class:`TrainSettings`, frozen) against ``[train]`` of dataprep.toml and the export.

Values are validated in one place, :func:`dataprep.config.effective`: a bad value names
``--option`` when it was given on the command line and ``dataprep.toml: [train] key`` when it came
from the file. What depends on the export (unit, clip length, frame size, splits) is checked here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from dataprep.errors import UsageError
from dataprep.train.inputs import split_examples
from dataprep.train.models import is_clip_model, is_embedding_model

CNN_MIN_SIDE = 32  # the reference cnn's valid convolutions and 3 poolings need 32 px
# TrainOptions fields that are keys of [train] (validated together by config.effective).
CONFIG_KEYS = (
    "model",
    "epochs",
    "batch_size",
    "lr",
    "image_size",
    "mixed_precision",
    "seed",
    "patience",
    "loss",
    "mining",
    "margin",
    "embedding_dim",
    "per_class",
    "class_augment",
    "embedding_from",
    "backbone",
    "weights",
    "fine_tune_epochs",
)
EMBEDDING_KEYS = (
    "loss",
    "mining",
    "margin",
    "embedding_dim",
    "per_class",
    "class_augment",
    "embedding_from",
    "exclude_classes",
)
# cnn-lstm's recipe where neither the command nor [train] sets a value (benchmarks/bench_motion.py)
CLIP_DEFAULTS = {"batch_size": 16, "lr": 3e-3}
MIN_STEPS = 300  # a default cnn-lstm run takes at least this many optimizer steps


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
    # embedding models (siamese, siamese-lstm)
    loss: str | None = None
    mining: str | None = None
    margin: float | None = None
    embedding_dim: int | None = None
    per_class: int | None = None
    class_augment: str | None = None  # none, rotate, dihedral: variants as classes of their own
    embedding_from: str | None = None  # projection, features: what the saved model answers with
    exclude_classes: str | None = None  # "a,b,c": held out of training
    # transfer learning
    init_from: str | None = None
    freeze_trunk: bool = False
    fine_tune_epochs: int | None = None
    backbone: str | None = None
    weights: str | None = None


@dataclass(frozen=True)
class TrainSettings:
    """The values a run uses (stored as ``resolved`` in its ``config.json``).

    ``deterministic_data``: keep the input order deterministic while training (set once the
    devices are known: only where the run is bit-for-bit repeatable anyway). None: seeded runs
    are deterministic.
    """

    model: str
    epochs: int
    batch_size: int
    lr: float
    image_size: int | None
    input_height: int
    input_width: int
    channels: int
    clip_len: int | None
    augment: str | None
    mixed_precision: str
    xla: bool
    seed: int | None
    patience: int
    unit: str
    deterministic_data: bool | None = None
    loss: str = "triplet"
    mining: str = "semi-hard"
    margin: float = 0.2
    embedding_dim: int = 64
    per_class: int = 4
    class_augment: str = "none"
    embedding_from: str = "projection"
    exclude_classes: tuple[str, ...] = ()
    init_from: str | None = None
    freeze_trunk: bool = False
    fine_tune_epochs: int = 0
    backbone: str = "none"
    weights: str = "none"
    flip_map: dict[str, str] | None = None  # [augment] flip_map (dataprep/flips.py)

    @property
    def normalize(self) -> bool:
        """Whether the loader normalizes with the export's stats (a backbone preprocesses
        pixels in 0..255 itself)."""
        return self.backbone == "none"

    @property
    def embedding(self) -> bool:
        return is_embedding_model(self.model)

    @property
    def frames_per_example(self) -> int:
        return self.clip_len or 1

    @property
    def input_shape(self) -> tuple[int, ...]:
        shape = (self.input_height, self.input_width, self.channels)
        return (self.frames_per_example, *shape) if is_clip_model(self.model) else shape

    @classmethod
    def from_resolved(cls, resolved: dict[str, Any]) -> TrainSettings:
        """The settings stored in a run's ``config.json`` (``resolved``); unknown keys are
        ignored, so runs written by other versions still load."""
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in resolved.items() if key in known}
        values["exclude_classes"] = tuple(values.get("exclude_classes") or ())
        return cls(**values)


def _check_unit(model: str, info: dict[str, Any]) -> str:
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
    return unit


def _check_clip_len(clip_len: int | None, unit: str, info: dict[str, Any]) -> int | None:
    export_len = int((info.get("clip") or {}).get("length") or 0)
    if unit != "clip":
        if clip_len is not None:
            raise UsageError("--clip-len only applies to clip exports (--model cnn-lstm)")
        return None
    clip_len = export_len if clip_len is None else clip_len
    if not 1 <= clip_len <= export_len:
        raise UsageError(
            f"--clip-len {clip_len} does not fit the export's clips of {export_len} frames; "
            f"use 1..{export_len} or re-export with a longer --clip-len"
        )
    return clip_len


def _check_splits(info: dict[str, Any]) -> None:
    for split in ("train", "val", "test"):
        if split_examples(info, split) == 0:
            raise UsageError(
                f"export {info.get('name')!r} has no {split} examples; adjust `dataprep split` "
                f"ratios so every split gets media, then export again"
            )


def resolve_options(options: TrainOptions, workspace, info: dict[str, Any]) -> TrainSettings:
    """Fills the unset options from ``[train]`` and the export; checks they fit together.

    Raises:
        UsageError: naming the option that does not fit (bounds, model vs unit, clip length,
            frame size, splits).
        ConfigError: naming ``[train]`` and the key when a value in dataprep.toml is bad.
    """
    from dataprep.config import Config, effective

    config = workspace.config if workspace is not None else Config()
    overrides = {key: getattr(options, key) for key in CONFIG_KEYS}
    values = effective(config, "train", overrides)
    unit = _check_unit(values.model, info)
    clip_len = _check_clip_len(options.clip_len, unit, info)
    image = info.get("image") or {}
    image_size = values.image_size or None
    height = int(image_size or image.get("height") or 0)
    width = int(image_size or image.get("width") or 0)
    if values.model == "cnn" and min(height, width) < CNN_MIN_SIDE:
        raise UsageError(
            f"the reference cnn needs frames of at least {CNN_MIN_SIDE}x{CNN_MIN_SIDE} (valid "
            f"padding), the export's are {width}x{height}; pass --image-size {CNN_MIN_SIDE} or "
            f"more, or use --model cnn-bn"
        )
    _check_splits(info)
    _check_embedding_options(options, values.model)
    if options.freeze_trunk and not options.init_from and values.backbone == "none":
        raise UsageError(
            "--freeze-trunk keeps a trained trunk fixed; give --init-from RUN or a --backbone"
        )
    # Outside a workspace an unset seed stays unset (no [train] seed to default to).
    seed = values.seed if workspace is not None or options.seed is not None else None
    if values.model == "cnn" and values.backbone != "none":
        raise UsageError("--backbone replaces the trunk of cnn-bn, cnn-lstm or the siamese models")
    epochs, batch_size, lr = _recipe_defaults(values, options, config, info)
    return TrainSettings(
        model=values.model,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        image_size=image_size,
        input_height=height,
        input_width=width,
        channels=int(image.get("channels") or 3),
        clip_len=clip_len,
        augment=options.augment,
        mixed_precision=values.mixed_precision,
        xla=bool(options.xla),
        seed=seed,
        patience=values.patience,
        unit=unit,
        loss=values.loss,
        mining=values.mining,
        margin=values.margin or (1.0 if values.loss == "contrastive" else 0.2),
        embedding_dim=values.embedding_dim,
        per_class=values.per_class,
        class_augment=_check_class_augment(values.class_augment, height, width),
        embedding_from=values.embedding_from,
        exclude_classes=_excluded(options.exclude_classes, info),
        init_from=options.init_from,
        freeze_trunk=bool(options.freeze_trunk),
        fine_tune_epochs=values.fine_tune_epochs,
        backbone=values.backbone,
        weights=values.weights if values.backbone != "none" else "none",
        flip_map=config.augment.flip_map,
    )


def _recipe_defaults(values, options: TrainOptions, config, info) -> tuple[int, int, float]:
    """``(epochs, batch size, lr)``: cnn-lstm takes :data:`CLIP_DEFAULTS` and at least
    :data:`MIN_STEPS` optimizer steps where neither the command nor ``[train]`` chooses another
    value than the generic default (small exports need more epochs: 100 clips in batches of 16
    are 7 steps an epoch)."""
    import math

    epochs, batch_size, lr = values.epochs, values.batch_size, float(values.lr)
    if values.model != "cnn-lstm":
        return epochs, batch_size, lr
    # dataprep init writes the generic defaults into [train]; only other values are choices
    generic = type(config.train)()
    if options.batch_size is None and batch_size == generic.batch_size:
        batch_size = CLIP_DEFAULTS["batch_size"]
    if options.lr is None and lr == generic.lr:
        lr = CLIP_DEFAULTS["lr"]
    if options.epochs is None and epochs == generic.epochs:
        steps = math.ceil(max(1, split_examples(info, "train")) / batch_size)
        epochs = max(epochs, math.ceil(MIN_STEPS / steps))
    return epochs, batch_size, lr


def _check_embedding_options(options: TrainOptions, model: str) -> None:
    if is_embedding_model(model):
        return
    for key in EMBEDDING_KEYS:
        if getattr(options, key) is not None:
            flag = "--" + key.replace("_", "-")
            raise UsageError(
                f"{flag} applies to the embedding models; use --model siamese or siamese-lstm, "
                f"or leave {flag} out"
            )


def _check_class_augment(value: str, height: int, width: int) -> str:
    """``--class-augment``: rotations need square frames."""
    if value != "none" and height != width:
        raise UsageError(
            f"--class-augment {value} turns frames by quarter turns, which needs square frames; "
            f"the frames are {width}x{height}: pass --image-size S, or --class-augment none"
        )
    return value


def _excluded(text: str | None, info: dict[str, Any]) -> tuple[str, ...]:
    """The classes of ``--exclude-classes a,b`` (each a class of the export)."""
    names = [name.strip() for name in (text or "").split(",") if name.strip()]
    known = list(info.get("class_names") or [])
    unknown = [name for name in names if name not in known]
    if unknown:
        raise UsageError(
            f"--exclude-classes: {unknown[0]!r} is not a class of export {info.get('name')!r} "
            f"(classes: {', '.join(known)})"
        )
    if names and len(set(known) - set(names)) < 2:
        raise UsageError("--exclude-classes leaves fewer than 2 classes to train on")
    return tuple(names)


def command_line(options: TrainOptions, settings: TrainSettings) -> str:
    """The command that repeats this run (every option spelled out, seed included)."""
    parts = ["dataprep", "train-baseline", "--export", options.export]
    parts += ["--model", settings.model, "--epochs", str(settings.epochs)]
    parts += ["--batch-size", str(settings.batch_size), "--lr", repr(settings.lr)]
    parts += ["--mixed-precision", settings.mixed_precision, "--patience", str(settings.patience)]
    if settings.image_size:
        parts += ["--image-size", str(settings.image_size)]
    if settings.clip_len:
        parts += ["--clip-len", str(settings.clip_len)]
    if settings.augment:
        parts += ["--augment", settings.augment]
    if settings.xla:
        parts.append("--xla")
    if settings.seed is not None:
        parts += ["--seed", str(settings.seed)]
    if settings.embedding:
        parts += ["--loss", settings.loss, "--mining", settings.mining]
        parts += ["--margin", repr(settings.margin), "--embedding-dim", str(settings.embedding_dim)]
        parts += ["--per-class", str(settings.per_class)]
        parts += ["--class-augment", settings.class_augment]
        parts += ["--embedding-from", settings.embedding_from]
        if settings.exclude_classes:
            parts += ["--exclude-classes", ",".join(settings.exclude_classes)]
    if settings.init_from:
        parts += ["--init-from", settings.init_from]
    if settings.freeze_trunk:
        parts.append("--freeze-trunk")
    if settings.fine_tune_epochs:
        parts += ["--fine-tune-epochs", str(settings.fine_tune_epochs)]
    if settings.backbone != "none":
        parts += ["--backbone", settings.backbone, "--weights", settings.weights]
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
    if not is_embedding_model(str(saved.get("model"))):
        saved.update(dict.fromkeys(EMBEDDING_KEYS))
    if isinstance(saved.get("exclude_classes"), list):
        saved["exclude_classes"] = ",".join(saved["exclude_classes"])
    known = {f.name for f in fields(TrainOptions)}
    return TrainOptions(**{k: v for k, v in saved.items() if k in known})
