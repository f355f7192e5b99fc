"""TFRecord shards written as engine tasks (``export --engine ray``): one task per planned shard.

The driver plans the shards exactly as the local writer does (example order by hash, sizes from
the frame files, :func:`~dataprep.export.plan_store.shard_counts`; the sizes are stat'ed by tasks
of :data:`SIZE_CHUNK` files, not by the driver), and each task writes one shard
with dataprep's own encoder (:func:`~dataprep.export.tfrecord.serialize`, ``frame_record``) to
a temporary name renamed into place, so the shards are byte-identical to ``--engine local``
whichever node writes them. A task returns only the shard's name and size, the image headers
it saw and the examples it left out; the driver records finished shards in
``.export-progress.jsonl`` in plan order, as the local writer does, so a rerun after a kill keeps
them.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dataprep.export.selection import Example


@dataclass(frozen=True)
class ShardJob:
    """Everything one shard task needs (plain, picklable values)."""

    workspace_root: str
    target: str
    unit: str
    class_names: tuple[str, ...]
    compression: str
    on_error: str
    examples: tuple[Example, ...]


def write_shard_task(job: ShardJob) -> dict[str, Any]:
    """Writes one shard (runs in a worker). Never raises for an unreadable frame file: the
    examples left out are returned (``failed``); under ``--on-error fail`` the shard is not
    written (``size`` None) and the driver stops at the first of them.
    """
    from dataprep.export.context import ExportContext
    from dataprep.export.selection import Selection
    from dataprep.export.tfrecord import write_shard
    from dataprep.stage import ItemFailed, StageRun
    from dataprep.workspace import open_workspace

    workspace = open_workspace(Path(job.workspace_root))
    run = StageRun(workspace, "export", job.on_error)  # collects failures; no lock, no record
    ctx = ExportContext(
        workspace=workspace,
        out_dir=Path(job.target).parent,
        selection=Selection(unit=job.unit, class_names=list(job.class_names), examples={}),
        compression=job.compression,
        shard_size=0,
        progress=None,
        done_shards={},
        finished=lambda name, size, images: None,
        run=run,
    )
    size = None
    with contextlib.suppress(ItemFailed):  # the failure is in run.failures
        size = write_shard(ctx, Path(job.target), list(job.examples))
    return {
        "name": Path(job.target).name,
        "size": size,
        "images": [[list(header), count] for header, count in ctx.images.items()],
        "failed": run.failures,
        "read": ctx.written,
    }


def write_split_on_engine(ctx, executor, split: str, examples) -> list[str]:
    """``tfrecord.write_split`` with one ``executor`` task per shard still to write; the jobs
    are made as the executor takes them (it keeps a bounded number in flight)."""
    from dataprep.export.shards import shard_names
    from dataprep.export.tfrecord import suffix

    names = shard_names(split, len(examples.counts), suffix(ctx.compression))

    def jobs():
        for name, chosen in zip(names, examples.shards(), strict=True):
            if name in ctx.done_shards:  # finished by an interrupted run with the same inputs
                ctx.skip(name, chosen)
                continue
            yield ShardJob(
                workspace_root=str(ctx.workspace.root),
                target=str(ctx.out_dir / name),
                unit=ctx.selection.unit,
                class_names=tuple(ctx.selection.class_names),
                compression=ctx.compression,
                on_error=ctx.run.on_error if ctx.run is not None else "fail",
                examples=tuple(chosen),
            )

    for result in executor.map(write_shard_task, jobs()):
        _commit(ctx, result)
    return names


SIZE_CHUNK = 4096  # frame files stat'ed per task when planning shards


def engine_sizer(executor):
    """A sizer for :func:`dataprep.export.selection.select` whose stats run as ``executor``
    tasks of :data:`SIZE_CHUNK` files: the plan needs every frame's size, a stat on a shared
    file system is a round trip, and 150M of them from the driver alone would take hours. The
    sizes are the same whoever reads them, so the plan (and the shards) do not change."""
    from dataprep.frame_rows import frame_size

    def sizes(paths: list[str]) -> list[int]:
        return list(executor.map(frame_size, paths, chunksize=SIZE_CHUNK))

    return sizes


def _commit(ctx, result: dict[str, Any]) -> None:
    """Accounts for one shard task's result in plan order (failures, progress, the record)."""
    images = Counter({tuple(header): count for header, count in result["images"]})
    ctx.images.update(images)
    ctx.written += result["read"]
    for failure in result["failed"]:
        ctx.failed.add(failure["item"])
        if ctx.run is None:
            from dataprep.errors import MediaError

            raise MediaError(failure["error"])
        ctx.run.item_failed(failure["item"], failure["error"])  # raises under "fail"
    ctx._report_progress()
    if result["size"] is not None:
        ctx.bytes_written += result["size"]
        ctx.finished(result["name"], result["size"], images)
