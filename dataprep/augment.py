"""Augmentation with albumentations: pipelines, clip-consistent draws, materialized copies.

* A pipeline is albumentations' own serialization (``A.save``/``A.load``, YAML or JSON); the
  presets ``light``, ``medium`` and ``heavy`` ship as such files in ``dataprep/presets/``.
  A user file is checked transform by transform, so an error names the bad transform or
  argument instead of failing deep inside albumentations (or, worse, warning and ignoring it).
* A clip gets one draw of random parameters for all of its frames (albumentations' ``images``
  target): a flip flips every frame of the clip or none.
* ``dataprep augment`` materializes N augmented copies of every extracted frame. Copy k of a
  media uses one draw for all of that media's frames (so copies are valid clips too) and is
  reproducible from (seed, media_id, k). Rows are flagged ``augmented`` with ``copy_index`` k and
  keep the ``media_id``/``frame_index`` of the frame they came from, so they follow their media
  into its split and never leak into validation or test data.
* Copies are label-safe (:mod:`dataprep.flips`, as in training): a pipeline's ``HorizontalFlip``
  is applied only when ``[augment] flip_map`` declares how labels mirror. The stage then flips
  copy k of a media (all its frames alike) with the flip's probability and flags its rows
  ``mirrored``; export gives them the label mirrored through ``flip_map``. Without a map no copy
  is flipped, and the run says so in one line (``notes``).
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from dataprep.augment_check import (
    check_transform,
    first_line,
    raise_on_ignored_arguments,
    read_pipeline_file,
)
from dataprep.errors import UsageError, os_error_message
from dataprep.flips import copy_flipped
from dataprep.stage import StageReport

PRESETS = ("light", "medium", "heavy")


def preset_path(name: str) -> Path:
    """The shipped YAML file of preset ``name``."""
    return Path(str(resources.files("dataprep") / "presets" / f"{name}.yaml"))


def load_pipeline(spec: str | Path):
    """Loads an albumentations pipeline from a preset name or a YAML/JSON file.

    Args:
        spec: ``light``, ``medium``, ``heavy``, or a path to a file written by ``A.save``.

    Returns:
        An ``albumentations.Compose`` (or another composition, as serialized).

    Raises:
        UsageError: one line naming the file and the bad transform or argument.
    """
    if isinstance(spec, str) and spec in PRESETS:
        path = preset_path(spec)
    else:
        path = Path(spec).expanduser()
        if not path.is_file():
            raise UsageError(
                f"pipeline {spec!s}: no such preset or file; use {', '.join(PRESETS)} "
                "or a YAML/JSON "
                "file written by albumentations.save"
            )
    data = read_pipeline_file(path)
    return pipeline_from_dict(data, source=str(path))


def pipeline_from_dict(data: dict, *, source: str = "pipeline"):
    """Validates and builds a pipeline from albumentations' serialized dict.

    Raises:
        UsageError: naming ``source`` and the bad transform or argument.
    """
    import albumentations as A

    transform = data.get("transform") if "transform" in data else data
    if not isinstance(transform, dict):
        raise UsageError(f"{source}: `transform` must be a mapping with __class_fullname__")
    check_transform(transform, source, "transform")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            pipeline = A.from_dict({"transform": transform})
        except (ValueError, TypeError, KeyError) as exc:
            raise UsageError(f"{source}: {first_line(exc)}; fix the pipeline file") from None
    raise_on_ignored_arguments(caught, source, "transform")
    return pipeline


def pipeline_to_dict(pipeline) -> dict:
    """Albumentations' own serialization of ``pipeline`` (for dataset_info.json)."""
    import albumentations as A

    return A.to_dict(pipeline)


def pipeline_fingerprint(pipeline, seed: int | None = None) -> str:
    """A short hash of the serialized pipeline (and seed)."""
    from dataprep.hashing import settings_fingerprint

    data = pipeline_to_dict(pipeline)
    data.pop("__version__", None)
    return settings_fingerprint({"pipeline": data, "seed": seed})


def augment_clip(pipeline, frames: np.ndarray, seed: int | None = None) -> np.ndarray:
    """Augments a clip with ONE draw of random parameters applied to all its frames.

    Args:
        pipeline: from :func:`load_pipeline`.
        frames: ``uint8 [T, H, W, C]`` (all frames the same size).
        seed: makes the draw reproducible; None continues the pipeline's own random stream.

    Returns:
        ``uint8 [T, H', W', C]``.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4:
        raise ValueError(f"a clip must be [T, H, W, C], got shape {frames.shape}")
    if seed is not None:
        pipeline.set_random_seed(int(seed))
    return np.asarray(pipeline(images=frames)["images"])


def augment_image(pipeline, image: np.ndarray, seed: int | None = None) -> np.ndarray:
    """Augments one image (``uint8 [H, W, C]``); ``seed`` as in :func:`augment_clip`."""
    if seed is not None:
        pipeline.set_random_seed(int(seed))
    return pipeline(image=image)["image"]


def copy_seed(seed: int, media_id: str, copy_index: int) -> int:
    """The draw seed of augmented copy ``copy_index`` of a media (same for all its frames)."""
    digest = hashlib.sha256(f"{seed}:{media_id}:{copy_index}".encode()).hexdigest()
    return int(digest[:8], 16)


def augmented_name(frame_index: int, copy_index: int, extension: str) -> str:
    return f"{frame_index:06d}_aug{copy_index:02d}.{extension}"


# ---- Materialized copies -------------------------------------------------------------------


@dataclass
class AugmentReport(StageReport):
    """What one ``augment_frames`` run did."""

    pipeline: str = ""
    fingerprint: str = ""
    copies: int = 0
    media: int = 0
    written: int = 0
    kept: int = 0  # copies already present for the same pipeline and seed
    removed: int = 0  # stale copies deleted (other pipeline with --overwrite, or beyond N)
    seconds: float = 0.0
    rows: int = 0  # augmented rows in the manifest after the run
    failed: list[dict[str, Any]] = field(default_factory=list)  # media_id, error
    mirrored: int = 0  # augmented rows flipped left-right (label mirrored at export)
    notes: list[str] = field(default_factory=list)  # what became of flips (dataprep.flips)


@dataclass(frozen=True)
class _MediaWork:
    media_id: str
    sources: list[dict] = field(hash=False)
    copies: int = 1
    seed: int = 0
    fingerprint: str = ""
    pipeline: dict | None = field(default=None, hash=False)  # without its HorizontalFlip
    flip: float = 0.0  # probability of flipping a copy (0 without a flip_map)
    root: str = ""
    quality: int = 90
    have: frozenset = frozenset()  # (frame_index, copy_index) already written


_DISK_PREFIX = "disk: "


def _augment_media(work: _MediaWork) -> tuple[list[dict], str | None]:
    """Writes the missing copies of one media's frames (worker process).

    Returns:
        The rows written, and None or the error that stopped the media (a frame that cannot be
        read; a file that cannot be written is prefixed with ``_DISK_PREFIX``).
    """
    from dataprep.errors import MediaError

    rows: list[dict] = []
    try:
        _augment_copies(work, rows)
    except MediaError as exc:
        return rows, str(exc)
    except OSError as exc:
        where = exc.filename or Path(work.root) / "frames" / work.media_id
        return rows, _DISK_PREFIX + os_error_message(where, exc)
    return rows, None


def _augment_copies(work: _MediaWork, rows: list[dict]) -> None:
    from dataprep.atomic import atomic_write_bytes
    from dataprep.imageops import encode_rgb, read_image_rgb

    pipeline = pipeline_from_dict(work.pipeline, source="pipeline") if work.pipeline else None
    root = Path(work.root)
    for copy_index in range(1, work.copies + 1):
        draw = copy_seed(work.seed, work.media_id, copy_index)
        mirrored = copy_flipped(work.flip, draw)
        for source in work.sources:
            if (source["frame_index"], copy_index) in work.have:
                continue
            source_path = root / source["path"]
            extension = source_path.suffix.lstrip(".")
            target_rel = Path(source["path"]).parent / augmented_name(
                source["frame_index"], copy_index, extension
            )
            image = read_image_rgb(source_path)
            if mirrored:
                image = np.ascontiguousarray(image[:, ::-1])
            if pipeline is not None:
                image = augment_image(pipeline, image, seed=draw)
            atomic_write_bytes(root / target_rel, encode_rgb(image, extension, work.quality))
            height, width = image.shape[:2]
            rows.append(
                {
                    "media_id": work.media_id,
                    "frame_index": int(source["frame_index"]),
                    "timestamp_s": float(source["timestamp_s"]),
                    "path": str(target_rel),
                    "width": int(width),
                    "height": int(height),
                    "augmented": True,
                    "copy_index": copy_index,
                    "fingerprint": work.fingerprint,
                    "mirrored": mirrored,
                }
            )
