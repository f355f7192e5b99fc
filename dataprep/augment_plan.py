"""Planning ``dataprep augment``: which copies to keep, remove and make, read a media at a time.

The plan never holds the frames manifest. One pass over a few of its columns (in batches)
counts the extracted frames and the augmented copies, refuses copies of another pipeline or
seed without ``--overwrite`` (before anything changes), and notes the stale copies: those of
another pipeline (with ``--overwrite``), those beyond ``--copies``, and those whose file is
gone. When there are stale copies the manifest is rewritten without them (a streaming merge,
:func:`dataprep.manifest_merge.merge_manifest`) *before* their files are deleted, so that it
never names a missing file. The work of each media (its extracted frames, the copies it already
has) is then read from the manifest one media at a time (:func:`media_works`) as the workers
take it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from dataprep.augment import _MediaWork
from dataprep.errors import ManifestError, UsageError
from dataprep.frame_rows import media_rows
from dataprep.stage import StageRun
from dataprep.workspace import Workspace

STALE_LIST = "augment-stale.txt"  # under .dataprep/: paths of stale copies, deleted after commit
PLAN_COLUMNS = ["media_id", "frame_index", "copy_index", "path", "augmented", "fingerprint"]
WORK_COLUMNS = [*PLAN_COLUMNS, "timestamp_s"]


@dataclass
class CopyPlan:
    """What a run starts from (counts only; the rows stay in the manifest)."""

    fingerprint: str
    copies: int
    sources: int = 0  # extracted frames (what copies are made of)
    media: int = 0  # media with extracted frames
    kept: int = 0  # copies kept (same pipeline and seed, in range, file present)
    removed: int = 0  # stale copies deleted (another pipeline with overwrite, beyond copies)
    missing: set[str] = field(default_factory=set)  # kept-looking copies whose file is gone


def plan_copies(
    workspace: Workspace, run: StageRun, fingerprint: str, copies: int, overwrite: bool
) -> CopyPlan:
    """Counts, refuses or removes stale copies (see the module docstring).

    Raises:
        ManifestError: when no frames have been extracted.
        UsageError: copies of another pipeline or seed, without ``overwrite``.
    """
    path = workspace.manifest_path("frames")
    plan = CopyPlan(fingerprint, copies)
    stale_list = workspace.state_dir / STALE_LIST
    other = stale = 0
    with stale_list.open("w", encoding="utf-8") as stale_paths:
        for _, rows in media_rows(path, PLAN_COLUMNS):
            if any(not row["augmented"] for row in rows):
                plan.media += 1
            for row in rows:
                if not row["augmented"]:
                    plan.sources += 1
                    continue
                if row["fingerprint"] != fingerprint:
                    other += 1
                elif row["copy_index"] <= copies and (workspace.root / row["path"]).is_file():
                    plan.kept += 1
                    continue
                elif row["copy_index"] <= copies:
                    plan.missing.add(row["path"])
                stale += 1
                stale_paths.write(row["path"] + "\n")
    if not plan.sources:
        stale_list.unlink()
        raise ManifestError(f"{path}: no frames yet; run `dataprep frames` first")
    if other and not overwrite:
        stale_list.unlink()
        raise UsageError(
            f"{other} augmented copies were made with another pipeline or seed; pass "
            "--overwrite to replace them, or use the same pipeline"
        )
    if stale:
        run.mark_changed()
        _drop_stale(path, plan)  # the manifest stops naming them before their files go
        _delete_listed(workspace.root, stale_list)
    stale_list.unlink(missing_ok=True)
    plan.removed = stale - len(plan.missing)  # the others' files were gone already
    return plan


def _drop_stale(path: Path, plan: CopyPlan) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc

    from dataprep.manifest_merge import member_mask, merge_manifest

    missing = sorted(plan.missing)

    def keep(batch: pa.Table) -> pa.Array:
        augmented = batch.column("augmented")
        stale = pc.or_(
            pc.or_(
                pc.not_equal(batch.column("fingerprint"), plan.fingerprint),
                pc.greater(batch.column("copy_index"), plan.copies),
            ),
            member_mask(batch.column("path"), missing),
        )
        return pc.invert(pc.and_(augmented, stale)).combine_chunks()

    merge_manifest(path, "frames", [], keep=keep)


def _delete_listed(root: Path, listing: Path) -> None:
    with listing.open(encoding="utf-8") as lines:
        for line in lines:
            with contextlib.suppress(FileNotFoundError):
                (root / line.rstrip("\n")).unlink()


def media_works(workspace: Workspace, plan: CopyPlan, settings: dict) -> Iterator[_MediaWork]:
    """One :class:`_MediaWork` per media with extracted frames, read from the manifest as it
    is taken (after :func:`plan_copies`: the augmented rows left are the copies kept).

    Args:
        settings: the work's fields shared by every media (seed, pipeline, flip, quality...).
    """
    for media_id, rows in media_rows(workspace.manifest_path("frames"), WORK_COLUMNS):
        sources = [_source(row) for row in rows if not row["augmented"]]
        if not sources:
            continue
        sources.sort(key=lambda row: row["frame_index"])
        have = frozenset(
            (row["frame_index"], row["copy_index"]) for row in rows if row["augmented"]
        )
        for tmp in (workspace.frames_dir / media_id).glob(".*.tmp"):  # a killed run's
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        yield _MediaWork(media_id=media_id, sources=sources, have=have, **settings)


def _source(row: dict) -> dict:
    return {k: row[k] for k in ("media_id", "frame_index", "timestamp_s", "path")}
