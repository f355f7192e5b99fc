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

import contextlib
import hashlib
import json
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from dataprep import manifests
from dataprep.atomic import atomic_write_text
from dataprep.augment_check import (
    check_transform,
    first_line,
    raise_on_ignored_arguments,
    read_pipeline_file,
)
from dataprep.errors import DiskError, ManifestError, UsageError, os_error_message
from dataprep.flips import copy_flipped, stage_flips
from dataprep.stage import StageReport, StageRun, run_stage
from dataprep.workspace import Workspace

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


def augment_frames(
    workspace: Workspace,
    *,
    pipeline: str | Path | None = None,
    copies: int | None = None,
    seed: int | None = None,
    jobs: int | None = None,
    overwrite: bool = False,
    on_error: str = "skip",
    progress: Callable[..., None] | None = None,
    engine=None,
) -> AugmentReport:
    """Materializes ``copies`` augmented copies of every extracted frame.

    Options left None come from ``[augment]`` in ``dataprep.toml``. A rerun keeps copies made
    with the same pipeline and seed and writes only the missing ones; copies of another
    pipeline or seed are refused unless ``overwrite``, which deletes them first. A media whose
    frames cannot be read is recorded and skipped (``on_error="skip"``) or stops the run
    (``"fail"``); the copies written before it are kept.

    Raises:
        UsageError: bad options or pipeline, or copies of another pipeline without ``overwrite``.
        ManifestError: when no frames have been extracted.
        ItemFailed: a media failed under ``on_error="fail"``.
        DiskError: a file could not be written (disk full...); a rerun resumes.
    """
    from dataprep.augment_write import write_copies
    from dataprep.config import effective

    started = time.monotonic()
    options = effective(
        workspace.config,
        "augment",
        {"pipeline": None if pipeline is None else str(pipeline), "copies": copies, "seed": seed},
    )
    spec = pipeline or options.pipeline
    compose = load_pipeline(spec)
    serialized = pipeline_to_dict(compose)
    safe = stage_flips(
        serialized,
        workspace.config.augment.flip_map,
        workspace.config.project.classes,
        seed=options.seed,
    )
    fingerprint = safe["fingerprint"] or pipeline_fingerprint(compose, options.seed)
    report = AugmentReport(
        pipeline=str(spec), fingerprint=fingerprint, copies=options.copies, notes=safe["notes"]
    )
    state = {
        "pipeline": serialized,
        # what made the copies: without a flip_map a HorizontalFlip is left out (dataprep.flips)
        "applied": serialized if safe["flip"] > 0 else safe["pipeline"],
        "spec": str(spec),
        "seed": options.seed,
        "copies": options.copies,
        "fingerprint": fingerprint,
        "flip": safe["flip"],
        "flip_map": workspace.config.augment.flip_map,
    }
    with run_stage(workspace, "augment", on_error=on_error) as run:
        try:
            plan = _plan_copies(workspace, run, fingerprint, options.copies, overwrite, report)
            works = _works(workspace, plan, options, fingerprint, safe)
            report.media = len(works)
            report.rows, report.mirrored = write_copies(
                workspace, run, plan, works, (jobs, engine), report, progress
            )
            _save_state(workspace, state)
        except OSError as exc:
            where = exc.filename or workspace.frames_dir
            raise DiskError(os_error_message(where, exc)) from None
        report.seconds = time.monotonic() - started
        counted = ("media", "written", "kept", "removed", "rows", "mirrored")
        run.finish(
            settings={"pipeline": str(spec)}
            | {k: state[k] for k in ("copies", "seed", "fingerprint", "flip")},
            counts={k: getattr(report, k) for k in counted} | {"failed": len(report.failed)},
        )
    return report


@dataclass
class _CopyPlan:
    """The extracted frames, and the copies a run keeps."""

    sources: list[dict]  # extracted frame rows (what copies are made of)
    by_media: dict[str, list[dict]]  # the same, by media id (sorted)
    kept: list[dict]  # augmented rows kept (same pipeline and seed, file present)
    have: dict[str, set]  # media id -> {(frame_index, copy_index)} kept


def _plan_copies(
    workspace: Workspace,
    run: StageRun,
    fingerprint: str,
    copies: int,
    overwrite: bool,
    report: AugmentReport,
) -> _CopyPlan:
    """Refuses copies of another pipeline (without ``overwrite``), removes stale copies, and
    lists the copies to keep."""
    import pandas as pd

    frame = manifests.load(workspace, "frames", missing_ok=True)
    is_aug = frame["augmented"].astype(bool) if len(frame) else pd.Series([], dtype=bool)
    sources = frame[~is_aug] if len(frame) else frame
    if not len(sources):
        raise ManifestError(
            f"{workspace.manifest_path('frames')}: no frames yet; run `dataprep frames` first"
        )
    existing = frame[is_aug] if len(frame) else frame
    other = existing[existing["fingerprint"] != fingerprint]
    if len(other) and not overwrite:
        raise UsageError(
            f"{len(other)} augmented copies were made with another pipeline or seed; pass "
            "--overwrite to replace them, or use the same pipeline"
        )
    same = existing["fingerprint"] == fingerprint
    in_range = existing["copy_index"].astype(int) <= copies
    stale = pd.concat([other, existing[same & ~in_range]])
    keep = existing[same & in_range]
    keep = keep[[(workspace.root / p).is_file() for p in keep["path"]]]
    if len(stale):
        run.mark_changed()
        # The manifest stops naming the stale copies before their files go.
        _save(workspace, manifests.records(sources), manifests.records(keep))
        for rel in stale["path"]:
            with contextlib.suppress(FileNotFoundError):
                (workspace.root / rel).unlink()
    report.removed = len(stale)
    report.kept = len(keep)
    kept_rows = manifests.records(keep)
    have: dict[str, set] = {}
    for row in kept_rows:
        have.setdefault(row["media_id"], set()).add((row["frame_index"], row["copy_index"]))
    return _CopyPlan(
        sources=manifests.records(sources),
        by_media={
            str(media_id): manifests.records(group)
            for media_id, group in sources.groupby("media_id", sort=True)
        },
        kept=kept_rows,
        have=have,
    )


def _works(workspace: Workspace, plan: _CopyPlan, options, fingerprint: str, safe: dict):
    """One :class:`_MediaWork` per media with extracted frames."""
    return [
        _MediaWork(
            media_id=media_id,
            sources=sources,
            copies=options.copies,
            seed=options.seed,
            fingerprint=fingerprint,
            pipeline=safe["pipeline"],
            flip=safe["flip"],
            root=str(workspace.root),
            quality=workspace.config.frames.quality,
            have=frozenset(plan.have.get(media_id, set())),
        )
        for media_id, sources in plan.by_media.items()
    ]


STATE_NAME = "augment.json"  # under .dataprep/


def _save_state(workspace: Workspace, state: dict) -> None:
    atomic_write_text(workspace.state_dir / STATE_NAME, json.dumps(state, default=str))


def materialized_pipeline(workspace: Workspace) -> dict | None:
    """The albumentations dict of the pipeline that made the augmented copies now in the frames
    manifest (what ``dataprep augment`` last wrote, as applied: a HorizontalFlip that was left
    out for want of a ``flip_map`` is not in it), or None when there are none."""
    path = workspace.state_dir / STATE_NAME
    frame = manifests.load(workspace, "frames", missing_ok=True)
    if not path.exists() or not len(frame) or not frame["augmented"].astype(bool).any():
        return None
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    used = set(frame.loc[frame["augmented"].astype(bool), "fingerprint"])
    if state.get("fingerprint") not in used:
        return None
    applied = state.get("applied", state["pipeline"])
    if applied is None:  # the pipeline was a HorizontalFlip alone, left out
        return {"pipeline": None, "note": "HorizontalFlip left out (no [augment] flip_map)"}
    return applied


def _save(workspace: Workspace, sources: list[dict], augmented: list[dict]):
    frame = manifests.from_records("frames", sources + augmented)
    order = ["media_id", "frame_index", "copy_index"]
    frame = frame.sort_values(order, kind="stable").reset_index(drop=True)
    manifests.save(workspace, "frames", frame)
    return frame
