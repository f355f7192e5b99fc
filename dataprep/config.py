"""The workspace configuration file, ``dataprep.toml``: its model, defaults and validation.

Every section is a pydantic model that forbids unknown keys, so a typo is an error that names the
key, never a silently ignored setting.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from dataprep.errors import ConfigError

DEFAULT_MAX_PIXELS = 100_000_000  # [ingest] max_pixels: images and videos above are refused

CONFIG_NAME = "dataprep.toml"
LabelType = Literal["classification", "segments", "boxes"]


class _Section(BaseModel):
    # allow_inf_nan=False: inf and nan are refused for every float key and option.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class ProjectConfig(_Section):
    name: str = "dataprep-project"
    classes: list[str] = Field(default_factory=list)
    label_type: LabelType = "classification"

    @field_validator("classes")
    @classmethod
    def _unique_classes(cls, value: list[str]) -> list[str]:
        from dataprep.safepath import class_name_problem

        seen = set()
        for name in value:
            problem = class_name_problem(name)
            if problem:
                raise ValueError(f"class name {name!r} {problem}")
            if name in seen:
                raise ValueError(f"class {name!r} is listed twice")
            seen.add(name)
        return value


class IngestConfig(_Section):
    mode: Literal["copy", "link", "reference"] = "reference"
    recursive: bool = True
    label_from_dir: bool = False
    # images (and video frames) above this many pixels are refused from their header, before
    # decoding: a 1 MB PNG can claim 20000x20000 (1.6 GB decoded)
    max_pixels: int = Field(DEFAULT_MAX_PIXELS, ge=1)


class FramesConfig(_Section):
    sampling: Literal["fps", "every", "count", "keyframes", "all"] = "fps"
    fps: float = Field(5.0, gt=0)
    every: int = Field(1, ge=1)
    count: int = Field(16, ge=1)
    size: str = "224"
    resize: Literal["shorter", "fit", "crop", "stretch"] = "shorter"
    format: Literal["jpg", "png", "webp"] = "jpg"
    quality: int = Field(90, ge=1, le=100)

    @field_validator("every", "count", mode="before")
    @classmethod
    def _whole(cls, value: Any) -> Any:
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(f"must be a whole number, not {value!r}")
        return value

    @field_validator("size")
    @classmethod
    def _size(cls, value: str) -> str:
        if value.strip().lower() != "original":  # original: keep each media's own size
            parse_size(value)
        return value


class AugmentConfig(_Section):
    pipeline: str = "medium"
    copies: int = Field(1, ge=1)
    seed: int = 0
    # how labels mirror under a horizontal flip ({left = "right", right = "left"}; {} when no
    # class has a direction); unset: pipelines flip nothing in training (dataprep/flips.py)
    flip_map: dict[str, str] | None = None


class SplitConfig(_Section):
    ratios: list[float] = Field(default_factory=lambda: [0.8, 0.1, 0.1])
    group_by: str = "media"
    stratify: bool = True
    seed: int = 0

    @field_validator("ratios")
    @classmethod
    def _ratios(cls, value: list[float]) -> list[float]:
        if len(value) != 3 or any(r < 0 for r in value) or abs(sum(value) - 1.0) > 1e-6:
            raise ValueError(
                "ratios must be three non-negative numbers (train, val, test) summing to 1"
            )
        return value


class ExportConfig(_Section):
    format: Literal["tfrecord", "imagefolder", "parquet"] = "tfrecord"
    unit: Literal["frame", "clip"] = "frame"
    clip_len: int = Field(16, ge=1)
    clip_stride: int = Field(8, ge=1)
    shard_size: str = "128MB"
    compression: Literal["none", "gzip"] = "none"
    unlabelled: Literal["drop", "background"] = "drop"

    @field_validator("shard_size")
    @classmethod
    def _shard_size(cls, value: str) -> str:
        from dataprep.export.shards import parse_bytes

        parse_bytes(value)  # ValueError: "not a size; ..." / "too small; ..."
        return value


class LabelStudioConfig(_Section):
    url: str = "http://localhost:8080"
    project: str = ""
    api_key_env: str = "LABEL_STUDIO_API_KEY"
    media_root: str = ""
    media_url_prefix: str = ""
    resolve: Literal["majority", "latest", "ground-truth"] = "majority"
    timeout_s: float = Field(30.0, gt=0)
    retries: int = Field(3, ge=0, le=10)


class TrainConfig(_Section):
    """Defaults of ``dataprep train-baseline`` (its options override them)."""

    model: Literal["cnn", "cnn-bn", "cnn-lstm", "siamese", "siamese-lstm"] = "cnn-bn"
    epochs: int = Field(20, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(1e-3, gt=0)
    image_size: int = Field(0, ge=0)  # 0: the export's frame size; else resize to SxS (>= 8)
    patience: int = Field(5, ge=1)  # early stopping: epochs without a lower val_loss
    mixed_precision: Literal["auto", "on", "off"] = "auto"
    seed: int = 0
    # embedding models (siamese, siamese-lstm); docs/training.md
    loss: Literal["triplet", "contrastive", "prototypical"] = "triplet"
    mining: Literal["semi-hard", "hard"] = "semi-hard"
    margin: float = Field(0.0, ge=0, le=2)  # 0: 0.2 (triplet) or 1.0 (contrastive)
    embedding_dim: int = Field(64, ge=2, le=4096)
    per_class: int = Field(4, ge=2)  # examples of each class in a training batch
    class_augment: Literal["none", "rotate", "dihedral"] = "none"  # variants as new classes
    embedding_from: Literal["projection", "features"] = "projection"  # what the model answers
    # transfer learning
    backbone: Literal["none", "MobileNetV3Small", "EfficientNetB0"] = "none"
    weights: str = "imagenet"  # backbone weights: imagenet, none or a weights file
    fine_tune_epochs: int = Field(0, ge=0)

    @field_validator("image_size")
    @classmethod
    def _image_size(cls, value: int) -> int:
        if 0 < value < 8:
            raise ValueError("too small; use 8 or more (or 0 for the export's size)")
        return value


class EngineConfig(_Section):
    """Where per-item work runs (``--engine``); see docs/scaling.md."""

    kind: Literal["local", "ray"] = "local"
    address: str = ""  # ray: "" starts a Ray instance on this machine; "auto" or ray://host:10001
    num_cpus: float = Field(1.0, gt=0)  # ray: CPUs reserved per task
    memory_mb: int = Field(0, ge=0)  # ray: memory reserved per task (0: none)
    max_in_flight: int = Field(0, ge=0)  # ray: tasks submitted at once (0: 2 x cluster CPUs)
    ship_package: bool = False  # ray: upload this dataprep to workers (runtime_env py_modules)


class AuditConfig(_Section):
    """Thresholds of ``dataprep audit`` (docs/audit.md)."""

    dup_distance: float = Field(0.15, gt=0, le=2)  # mean 1 - cosine of aligned frame structure
    dup_colour: float = Field(4.5, gt=0, le=255)  # mean thumbnail difference (0..255)
    dup_overlap: float = Field(0.8, gt=0, le=1)  # aligned share of the shorter media
    min_class_media: int = Field(10, ge=1)  # fewer media in a class: a finding
    drift: float = Field(0.1, gt=0, le=1)  # split vs whole class-share distance (TVD)
    dark_level: float = Field(40.0, ge=0, le=255)  # 99th-percentile luma below: dark
    blur_ratio: float = Field(0.1, gt=0, le=1)  # sharpness below this x the median: blurry
    frozen_seconds: float = Field(1.0, gt=0)  # identical frames this long: frozen


class Config(_Section):
    """The whole ``dataprep.toml``."""

    project: ProjectConfig = Field(default_factory=ProjectConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    frames: FramesConfig = Field(default_factory=FramesConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)
    labelstudio: LabelStudioConfig = Field(default_factory=LabelStudioConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    audit: AuditConfig = Field(default_factory=AuditConfig)
    engine: EngineConfig = Field(default_factory=EngineConfig)


_SIZE_RE = re.compile(r"^\s*(\d+)\s*(?:[xX]\s*(\d+))?\s*$")


def parse_size(value: str | int) -> tuple[int, int | None]:
    """Parses ``"224"`` into ``(224, None)`` (shorter side) and ``"320x240"`` into ``(320, 240)``.

    Raises:
        ValueError: when the value is neither ``S`` nor ``WxH`` with positive integers.
    """
    match = _SIZE_RE.match(str(value))
    if not match:
        raise ValueError(f"size {value!r} must be S (shorter side) or WxH, e.g. 224 or 320x240")
    first = int(match.group(1))
    second = int(match.group(2)) if match.group(2) else None
    if first <= 0 or (second is not None and second <= 0):
        raise ValueError(f"size {value!r} must be positive")
    return first, second


def _describe(error: dict) -> str:
    where = ".".join(str(part) for part in error["loc"])
    section, _, key = where.partition(".")
    place = f"[{section}] {key}" if key else f"[{section}]" if section else "top level"
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"unknown key {place}; remove it or check the spelling"
    if kind == "literal_error":
        allowed = error.get("ctx", {}).get("expected", "")
        return f"{place} = {error.get('input')!r} is not allowed; use one of {allowed}"
    return f"{place}: {error['msg']}"


def validate_config(data: dict, source: str = CONFIG_NAME) -> Config:
    """Validates a parsed config mapping.

    Raises:
        ConfigError: naming the first bad key and the allowed values.
    """
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_describe(e) for e in exc.errors())
        raise ConfigError(f"{source}: {problems}") from None


def effective(
    config: Config,
    section: str,
    overrides: dict[str, Any] | None = None,
    *,
    flags: dict[str, str] | None = None,
    source: str = CONFIG_NAME,
):
    """The effective settings of a command: ``[section]`` of the config with the command's
    overrides (those not None) applied, validated together by the section's model.

    This is the one place option values are checked; commands do not repeat the bounds.

    Args:
        config: the workspace's validated config.
        section: the ``dataprep.toml`` section (``"frames"``, ``"export"``...).
        overrides: values given on the command line (or by a library caller); None = not given.
        flags: the option spelling of a key when it differs from ``--key-with-dashes``.
        source: the config file's name for messages.

    Raises:
        UsageError: naming ``--option`` when the bad value came from the command line, and the
            file, ``[section]`` and key when it came from the file.
    """
    from dataprep.errors import UsageError

    base = getattr(config, section)
    given = {key: value for key, value in (overrides or {}).items() if value is not None}
    unknown = set(given) - set(type(base).model_fields)
    if unknown:
        raise TypeError(f"[{section}] has no key {sorted(unknown)[0]!r}")
    merged = {**base.model_dump(), **given}
    try:
        return type(base).model_validate(merged)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = str(error["loc"][0]) if error["loc"] else ""
        message = _problem(error)
        joint = " is " if error["type"] == "literal_error" else ": "
        if key in given:
            flag = (flags or {}).get(key, "--" + key.replace("_", "-"))
            raise UsageError(f"{flag} {given[key]!r}{joint}{message}") from None
        place = f"[{section}] {key}" if key else f"[{section}]"
        raise ConfigError(
            f"{source}: {place} = {merged.get(key)!r}{joint}{message}; fix it in the file or "
            "override it on the command line"
        ) from None


def _problem(error: dict) -> str:
    if error["type"] == "literal_error":
        allowed = str(error.get("ctx", {}).get("expected", "")).replace("'", "")
        return f"not allowed; use one of {allowed}"
    return error["msg"].removeprefix("Value error, ")


def load_config(path: Path) -> Config:
    """Reads and validates ``dataprep.toml``."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix the file or re-create it") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from None
    return validate_config(data, str(path))


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):  # an inline table, e.g. [augment] flip_map
        pairs = ", ".join(f"{_toml_value(str(k))} = {_toml_value(v)}" for k, v in value.items())
        return "{" + pairs + "}"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def dump_config(config: Config) -> str:
    """Renders a config as TOML text, one table per section."""
    lines = ["# dataprep workspace configuration (docs/concepts.md explains every key)"]
    for section, values in config.model_dump().items():
        lines.append("")
        lines.append(f"[{section}]")
        for key, value in values.items():
            if value is not None:  # unset optional keys (e.g. [augment] flip_map) stay out
                lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"
