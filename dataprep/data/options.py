"""What both loaders share: the read options, and the plan made from them and the export."""

from __future__ import annotations

import copy
import dataclasses
import random
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from dataprep.data.checks import Verify, check_shards
from dataprep.data.info import read_info, shard_paths
from dataprep.errors import UsageError

DEFAULT_CYCLE = 8  # shards read at once (interleave)


@dataclass(frozen=True)
class ReadOptions:
    """How :func:`~dataprep.data.load` and :func:`~dataprep.data.iter_numpy` read an export.

    Attributes:
        batch_size: examples per batch.
        unit: frame or clip; must match the export (None: take the export's).
        augment: None, a preset name (``"light"``, ``"medium"``, ``"heavy"``) or pipeline file
            for ``dataprep.augment.load_pipeline``, or an albumentations pipeline. Its output
            must keep the clip length; when it changes the image size, pass ``image_size``
            (the resize comes after it).
        normalize: standardize with the export's stats (see the package doc).
        shuffle: shuffle shard order and examples (buffer ``shuffle_buffer``).
        repeat: repeat forever (reshuffled every epoch).
        image_size: resize to ``S`` or ``(H, W)``; required when stored frames vary in size
            (None or 0: keep the stored size).
        seed: seed of shuffling and augmentation (None: random).
        deterministic: fixed element order given the seed (slower); a seed of 0 when None.
        shuffle_buffer: examples in the shuffle buffer (default 1024 frames / 64 clips).
        cycle_length: shards read in parallel (default min(shards, 8)).
        drop_remainder: drop the last partial batch (static batch dimension).
        parallelism: ``load`` only: parallel calls of every map and interleave, and batches
            prefetched, with tf.data's autotuning off (None: AUTOTUNE throughout). An autotuned
            iterator's destructor waits for the autotune thread's timed wait to run out (seen
            as 10-40 s stalls at epoch ends); the trainer sets this (issue 13).
        flip: ``load`` only: ``(probability, mirror)``: flip each example horizontally (all
            frames of a clip alike) with that probability and map its label through the
            ``mirror`` table (label index -> index; :mod:`dataprep.flips`).
        verify: ``framing`` (default), ``full`` or ``none``: the shard check before reading.
    """

    batch_size: int
    unit: Literal["frame", "clip"] | None = None
    augment: Any = None
    normalize: bool = True
    shuffle: bool = True
    repeat: bool = False
    image_size: int | tuple[int, int] | None = None
    seed: int | None = None
    deterministic: bool = False
    shuffle_buffer: int | None = None
    cycle_length: int | None = None
    drop_remainder: bool = False
    verify: Verify = "framing"
    parallelism: int | None = None
    flip: tuple[float, tuple[int, ...]] | None = None


@dataclass(frozen=True)
class ReadPlan:
    """An export opened for reading with given options: everything both loaders derive."""

    export_dir: Path
    split: str
    info: dict
    paths: list[Path]
    options: ReadOptions
    unit: str
    size: tuple[int, int] | None  # (height, width) to resize to; None keeps the stored size
    stored: tuple[int | None, int | None]  # (height, width) of the stored frames, if fixed
    channels: int
    clip_len: int | None
    cycle: int
    shuffle_buffer: int
    pipeline: Any  # albumentations pipeline or None
    scale: np.ndarray  # images * scale + offset == normalized images
    offset: np.ndarray
    seed: int | None

    @property
    def clip(self) -> bool:
        return self.unit == "clip"

    def augment_base(self, rng: random.Random | None = None) -> int:
        """The base of the per-element augmentation seeds."""
        if self.seed is not None:
            return self.seed
        return (rng or random).randrange(2**31)


def read_options(options: ReadOptions | None, overrides: dict[str, Any]) -> ReadOptions:
    """``options`` (or the defaults) with keyword overrides applied.

    Raises:
        TypeError: for an unknown option or a missing ``batch_size``.
    """
    if options is None:
        return ReadOptions(**overrides)
    return dataclasses.replace(options, **overrides) if overrides else options


def plan_read(
    export_dir: Path | str,
    split: str,
    options: ReadOptions | None,
    overrides: dict[str, Any],
    *,
    reader_checks_data: bool = False,
) -> ReadPlan:
    """The opening of both loaders: the options (see :func:`read_options`), then
    ``dataset_info.json`` read, the options checked against it and the shards checked
    (``options.verify``; ``full`` is done as ``framing`` when ``reader_checks_data``: that
    reader checks every record's data as it reads).

    Raises:
        ExportNotReady, UsageError, CorruptShardError: see the package docstring.
    """
    options = read_options(options, overrides)
    verify: Verify = options.verify
    if reader_checks_data and verify == "full":
        verify = "framing"
    export_dir = Path(export_dir)
    info = read_info(export_dir)
    paths = shard_paths(export_dir, split, info)
    unit = _unit(info, options.unit)
    size = _image_size(info, options.image_size)
    channels = int(info["image"].get("channels") or 3)
    check_shards(export_dir, split, verify)
    scale, offset = _scale_offset(_mean_std(info, options.normalize), channels)
    seed = 0 if options.deterministic and options.seed is None else options.seed
    return ReadPlan(
        export_dir=export_dir,
        split=split,
        info=info,
        paths=paths,
        options=options,
        unit=unit,
        size=size,
        stored=(info["image"].get("height"), info["image"].get("width")),
        channels=channels,
        clip_len=int(info["clip"]["length"]) if unit == "clip" else None,
        cycle=min(len(paths), options.cycle_length or DEFAULT_CYCLE),
        shuffle_buffer=options.shuffle_buffer or (1024 if unit == "frame" else 64),
        pipeline=_pipeline(options.augment),
        scale=scale,
        offset=offset,
        seed=seed,
    )


def _image_size(info: dict, image_size: int | tuple[int, int] | None) -> tuple[int, int] | None:
    """The (height, width) to resize to, or None to keep the stored size (which must be fixed)."""
    if image_size:  # None or 0: keep the stored size
        if isinstance(image_size, int):
            return image_size, image_size
        height, width = image_size
        return int(height), int(width)
    if info["image"].get("height") is None or info["image"].get("width") is None:
        raise UsageError(
            f"the frames of this export vary in size ({info['image'].get('sizes')}); pass "
            "image_size=(height, width) to resize them for batching"
        )
    return None


def _unit(info: dict, unit: str | None) -> str:
    if unit is not None and unit != info["unit"]:
        raise UsageError(
            f"unit={unit!r} but the export holds {info['unit']}s; "
            f"use unit={info['unit']!r} or export with --unit {unit}"
        )
    return info["unit"]


def _mean_std(info: dict, normalize: bool) -> tuple[np.ndarray, np.ndarray] | None:
    if not normalize:
        return None
    stats = info.get("stats")
    if not stats:
        warnings.warn(
            "the export has no normalization stats (run `dataprep stats` before "
            "exporting); images are only scaled to [0, 1]",
            stacklevel=4,  # the caller of load / iter_numpy
        )
        return np.zeros(3, np.float32), np.ones(3, np.float32)
    return np.asarray(stats["mean"], np.float32), np.asarray(stats["std"], np.float32)


def _scale_offset(mean_std, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """``images * scale + offset`` == ``(images / 255 - mean) / std`` (float32, per channel);
    scale 1 and offset 0 without normalization."""
    if mean_std is None:
        return np.ones(channels, np.float32), np.zeros(channels, np.float32)
    mean, std = (np.asarray(v, np.float32)[:channels] for v in mean_std)
    return (np.float32(1.0 / 255.0) / std).astype(np.float32), (-mean / std).astype(np.float32)


def _pipeline(augment):
    """None, or an albumentations pipeline from a preset name / file path (or given as is)."""
    if augment is None or augment is False:
        return None
    if isinstance(augment, (str, Path)):
        from dataprep.augment import load_pipeline

        return load_pipeline(augment)
    return augment


_THREAD_PIPELINES = threading.local()


def augment_numpy(pipeline, images: np.ndarray, seed: int, clip: bool) -> np.ndarray:
    """Augments with a per-thread copy of ``pipeline`` (seeding is pipeline state, and
    ``tf.numpy_function`` runs calls in parallel threads)."""
    from dataprep.augment import augment_clip, augment_image

    copies = getattr(_THREAD_PIPELINES, "copies", None)
    if copies is None:
        copies = _THREAD_PIPELINES.copies = {}
    local = copies.get(id(pipeline))
    if local is None:
        local = copies[id(pipeline)] = copy.deepcopy(pipeline)
    if clip:
        return np.asarray(augment_clip(local, images, int(seed)), np.uint8)
    return np.asarray(augment_image(local, images, int(seed)), np.uint8)


def element_seed(base: int, element: int) -> int:
    """The augmentation seed of the ``element``-th example (the same in both loaders)."""
    return (int(base) * 1_000_003 + int(element)) % (2**31)
