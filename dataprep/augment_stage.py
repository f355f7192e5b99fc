"""The ``dataprep augment`` stage driver: plan the copies, write them, record the pipeline.

The pipelines, the per-media worker and the report live in :mod:`dataprep.augment`; the plan
(what to keep, remove and make, read a media at a time) in :mod:`dataprep.augment_plan`;
writing the copies (local or Ray, checkpointed) in :mod:`dataprep.augment_write`. This module
imports them and none imports it, so they have no import cycle.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from dataprep import manifests
from dataprep.atomic import atomic_write_text
from dataprep.augment import (
    AugmentReport,
    load_pipeline,
    pipeline_fingerprint,
    pipeline_to_dict,
)
from dataprep.augment_plan import media_works, plan_copies
from dataprep.errors import DiskError, os_error_message
from dataprep.flips import stage_flips
from dataprep.stage import run_stage
from dataprep.workspace import Workspace


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
            plan = plan_copies(workspace, run, fingerprint, options.copies, overwrite)
            report.media, report.kept, report.removed = plan.media, plan.kept, plan.removed
            works = media_works(workspace, plan, _work_settings(workspace, options, safe, plan))
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


def _work_settings(workspace: Workspace, options, safe: dict, plan) -> dict:
    """The fields of every media's work that do not depend on the media."""
    return {
        "copies": options.copies,
        "seed": options.seed,
        "fingerprint": plan.fingerprint,
        "pipeline": safe["pipeline"],
        "flip": safe["flip"],
        "root": str(workspace.root),
        "quality": workspace.config.frames.quality,
    }


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
