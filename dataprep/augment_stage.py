"""The ``dataprep augment`` stage driver: plan the copies, write them, record the pipeline.

The pipelines, the per-media worker and the report live in :mod:`dataprep.augment`; writing the
copies (local or Ray, checkpointed) in :mod:`dataprep.augment_write`. This module imports both
and neither imports it, so the three have no import cycle.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from pathlib import Path

from dataprep import manifests
from dataprep.atomic import atomic_write_text
from dataprep.augment import (
    AugmentReport,
    _CopyPlan,
    _MediaWork,
    _save,
    load_pipeline,
    pipeline_fingerprint,
    pipeline_to_dict,
)
from dataprep.errors import DiskError, ManifestError, UsageError, os_error_message
from dataprep.flips import stage_flips
from dataprep.stage import StageRun, run_stage
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
