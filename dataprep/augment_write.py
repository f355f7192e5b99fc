"""Writing ``dataprep augment``'s copies media by media, on this machine or on the Ray engine.

The copies of each media are made by :func:`dataprep.augment._augment_media` (a worker process
or a Ray task) and committed into ``manifests/frames.parquet`` at every checkpoint and at the
end. With the local engine the new rows come back to the driver and the manifest is rebuilt
from them (:class:`_InMemory`). With the Ray engine each task stages its rows to Parquet and the
driver keeps only the paths (:class:`_Streamed`): every save is a streaming merge of the
manifest on disk with the parts staged since the previous save
(:func:`dataprep.manifest_merge.merge_manifest`), and the counts the report needs are tallied
while writing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from dataprep.augment import (
    _DISK_PREFIX,
    AugmentReport,
    _augment_media,
    _CopyPlan,
    _MediaWork,
    _save,
)
from dataprep.errors import DiskError
from dataprep.stage import StageRun
from dataprep.workspace import Workspace

PARTS_FOLDER = "augment-parts"  # under .dataprep/


def write_copies(
    workspace: Workspace,
    run: StageRun,
    plan: _CopyPlan,
    works: list[_MediaWork],
    where: tuple,  # (local jobs, dataprep.engine.EngineSpec or None)
    report: AugmentReport,
    progress: Callable[..., None] | None,
) -> tuple[int, int]:
    """Writes the missing copies media by media, checkpointing the manifest. On any exception
    the copies written so far are saved first.

    Returns:
        The augmented rows in the saved manifest, and how many of them are mirrored.
    """
    jobs, engine = where
    streamed = engine is not None and engine.kind != "local" and bool(works)
    total = len(plan.sources) * report.copies - report.kept
    if progress:
        progress(0, total)
    if works:
        run.mark_changed()
    _remove_partial_writes(workspace, works)
    saver = _Streamed(workspace, plan) if streamed else _InMemory(workspace, plan)
    try:
        for work, (rows, error) in zip(works, _map_media(workspace, works, where), strict=True):
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


class _InMemory:
    """The local engine: new rows in this process, the manifest rebuilt from the plan's rows."""

    def __init__(self, workspace: Workspace, plan: _CopyPlan):
        self.workspace, self.plan = workspace, plan
        self.new_rows: list[dict] = []

    def add(self, work: _MediaWork, rows: list[dict]) -> int:
        self.new_rows.extend(rows)
        return len(rows)

    def save(self) -> tuple[int, int]:
        saved = _save(self.workspace, self.plan.sources, self.plan.kept + self.new_rows)
        return int(saved["augmented"].astype(bool).sum()), int(saved["mirrored"].astype(bool).sum())

    def close(self) -> None:
        pass


class _Streamed:
    """The Ray engine: staged parts merged into the manifest on disk; no rows held here.

    The manifest on disk is made equal to the plan's rows first (extracted frames and the
    copies kept) when it is not already (copies whose files are missing are dropped), so that
    every later save only adds parts.
    """

    def __init__(self, workspace: Workspace, plan: _CopyPlan):
        import pyarrow.parquet as pq

        from dataprep.manifest_merge import PartStore

        self.workspace = workspace
        self.path = workspace.manifest_path("frames")
        with pq.ParquetFile(self.path) as parquet:  # the row count from the file's metadata
            on_disk = parquet.metadata.num_rows
        if on_disk != len(plan.sources) + len(plan.kept):
            _save(workspace, plan.sources, plan.kept)
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


def _remove_partial_writes(workspace: Workspace, works: list[_MediaWork]) -> None:
    """Removes the temporary files of copies a killed run was writing (``.<name>.*.tmp``)."""
    for work in works:
        for tmp in (workspace.frames_dir / work.media_id).glob(".*.tmp"):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


def _map_media(workspace: Workspace, works: list[_MediaWork], where: tuple):
    """``(rows, error)`` per work item in order; with the Ray engine ``rows`` is a
    :class:`~dataprep.engine.StagedRows` (or an empty list), never read here."""
    from dataprep.engine import open_engine

    jobs, engine = where
    writes = [workspace.frames_dir] if engine else []
    with open_engine(engine if works else None, jobs=jobs, writes=writes) as executor:
        yield from executor.map(_augment_media, works, rows_key=0)
