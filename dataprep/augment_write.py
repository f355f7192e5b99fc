"""Writing ``dataprep augment``'s copies media by media, on this machine or on the Ray engine.

The copies of each media are made by :func:`dataprep.augment._augment_media` (a worker process
or a Ray task) and committed into ``manifests/frames.parquet`` at every checkpoint and at the
end, with either engine the same way (:class:`_Streamed`): the rows of each media are a staged
Parquet part (written by the Ray task; here, from the rows a local worker returned), the driver
keeps only the paths, and every save is a streaming merge of the manifest on disk with the parts
staged since the previous save (:func:`dataprep.manifest_merge.merge_manifest`); the counts the
report needs are tallied while writing. Neither the plan (:mod:`dataprep.augment_plan`) nor the
commits hold the manifest's rows.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterable
from typing import Any

from dataprep.augment import _DISK_PREFIX, AugmentReport, _augment_media, _MediaWork
from dataprep.augment_plan import CopyPlan
from dataprep.errors import DiskError
from dataprep.stage import StageRun
from dataprep.workspace import Workspace

PARTS_FOLDER = "augment-parts"  # under .dataprep/


def write_copies(
    workspace: Workspace,
    run: StageRun,
    plan: CopyPlan,
    works: Iterable[_MediaWork],
    where: tuple,  # (local jobs, dataprep.engine.EngineSpec or None)
    report: AugmentReport,
    progress: Callable[..., None] | None,
) -> tuple[int, int]:
    """Writes the missing copies media by media, checkpointing the manifest. On any exception
    the copies written so far are saved first.

    Returns:
        The augmented rows in the saved manifest, and how many of them are mirrored.
    """
    total = plan.sources * report.copies - plan.kept
    if progress:
        progress(0, total)
    if plan.media:
        run.mark_changed()
    saver = _Streamed(workspace)
    mine, theirs = itertools.tee(works)  # the map takes them as its window moves on
    try:
        results = _map_media(workspace, theirs, where, plan)
        for work, (rows, error) in zip(mine, results, strict=True):
            written = saver.add(work, rows)
            report.written += written
            if progress:
                progress(report.written, total)
            if error is not None:
                if error.startswith(_DISK_PREFIX):
                    raise DiskError(error.removeprefix(_DISK_PREFIX))
                report.failed.append({"media_id": work.media_id, "error": error})
                run.item_failed(work.media_id, error, copies_written=written)
            run.checkpoint(saver.save)
    except BaseException:
        with contextlib.suppress(Exception):  # keep what was written; the first error wins
            saver.save()
        saver.close()
        raise
    try:
        return saver.save()
    finally:
        saver.close()


class _Streamed:
    """Staged parts merged into the manifest on disk; no rows held here. The plan has made the
    manifest hold the extracted frames and the copies kept, so every save only adds parts."""

    def __init__(self, workspace: Workspace):
        from dataprep.manifest_merge import PartStore

        self.workspace = workspace
        self.path = workspace.manifest_path("frames")
        self.store = PartStore(workspace.state_dir / PARTS_FOLDER)
        self.pending: list[Any] = []

    def add(self, work: _MediaWork, rows) -> int:
        from dataprep.engine import StagedRows

        if isinstance(rows, StagedRows):
            self.pending.append(self.store.take(rows, work.media_id))
            return rows.count
        if rows:
            self.pending.append(self.store.write(rows, work.media_id))
        return len(rows)

    def save(self) -> tuple[int, int]:
        from dataprep.manifest_merge import PartStore, merge_manifest

        result = merge_manifest(self.path, "frames", self.pending, tally=["augmented", "mirrored"])
        PartStore.discard(self.pending)
        self.pending = []
        return result.true_counts["augmented"], result.true_counts["mirrored"]

    def close(self) -> None:
        self.store.remove()


def _map_media(workspace: Workspace, works: Iterable[_MediaWork], where: tuple, plan: CopyPlan):
    """``(rows, error)`` per work item in order; with the Ray engine ``rows`` is a
    :class:`~dataprep.engine.StagedRows` (or an empty list), never read here."""
    from dataprep.engine import open_engine

    jobs, engine = where
    writes = [workspace.frames_dir] if engine else []
    with open_engine(engine if plan.media else None, jobs=jobs, writes=writes) as executor:
        yield from executor.map(_augment_media, works, rows_key=0)
