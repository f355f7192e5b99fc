"""The frames manifest read one media at a time (export's plan, augment's plan), with the sizes
of its files when asked.

Every writer of ``manifests/frames.parquet`` sorts it by media (``media_id, frame_index,
copy_index``), so a media's rows are consecutive and the manifest can be read in batches of
:data:`BATCH_ROWS` rows without holding it whole. A manifest that is not in that order (written
by other tools) is sorted in Arrow first (the whole file in memory, once).

The sizes of the frame files (what the shard plan needs) are asked of a *sizer* a batch at a
time: on the Ray engine tasks stat them (a stat on a shared file system is a round trip), here
the driver does.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

from dataprep import manifests
from dataprep.workspace import Workspace

BATCH_ROWS = 65_536
COLUMNS = [
    "media_id",
    "frame_index",
    "copy_index",
    "timestamp_s",
    "path",
    "width",
    "height",
    "augmented",
    "mirrored",
]
Group = tuple[str, list[dict], dict[str, int]]  # media_id, its rows, {path: bytes}


def frame_size(path: str) -> int:
    """The size of a frame file in bytes, 0 when it cannot be read (its reader names it)."""
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def local_sizes(paths: list[str]) -> list[int]:
    """Sizes of files stat'ed by this process (0 for one that cannot be read)."""
    return [frame_size(path) for path in paths]


def frame_groups(
    workspace: Workspace, sizer: Callable[[list[str]], list[int]] | None = None
) -> tuple[Iterator[Group], int]:
    """The frames manifest's rows grouped by media, and its row count.

    Raises:
        ManifestError: when there is no frames manifest, or it does not match its schema.
    """
    import pyarrow.parquet as pq

    path = workspace.manifest_path("frames")
    if not path.exists():
        manifests.load(workspace, "frames")  # raises the usual "no frames yet" error
    with pq.ParquetFile(path) as parquet:
        rows = parquet.metadata.num_rows
    return _groups(workspace.root, _batches(path), sizer or local_sizes), rows


def media_rows(path: Path, columns: list[str] | None = None) -> Iterator[tuple[str, list[dict]]]:
    """``(media_id, rows)`` of the frames manifest at ``path``, a media at a time (in media
    order; its rows in manifest order); nothing when there is no manifest."""
    for media_id, rows, _ in _groups(Path("."), _batches(path, columns), None):
        yield media_id, rows


def _batches(path: Path, columns: list[str] | None = None) -> Iterator:
    """The manifest's batches (pyarrow tables) in media order."""
    columns = columns or COLUMNS
    if not path.exists():
        return
    if _grouped_by_media(path):
        yield from manifests.iter_manifest(path, "frames", batch_rows=BATCH_ROWS, columns=columns)
        return
    import pyarrow as pa

    tables = list(manifests.iter_manifest(path, "frames", columns=columns))
    table = pa.concat_tables(tables).sort_by(
        [("media_id", "ascending"), ("frame_index", "ascending"), ("copy_index", "ascending")]
    )
    del tables
    yield from (pa.Table.from_batches([b]) for b in table.to_batches(max_chunksize=BATCH_ROWS))


def _grouped_by_media(path: Path) -> bool:
    """True when the manifest's ``media_id`` never goes down (one pass over that column)."""
    import pyarrow.compute as pc

    last = None
    for table in manifests.iter_manifest(path, "frames", columns=["media_id"]):
        ids = table.column("media_id").combine_chunks()
        if not len(ids):
            continue
        if last is not None and ids[0].as_py() < last:
            return False
        if len(ids) > 1 and pc.any(pc.less(ids[1:], ids[:-1])).as_py():
            return False
        last = ids[-1].as_py()
    return True


def _groups(root: Path, batches: Iterator, sizer) -> Iterator[Group]:
    current: str | None = None
    rows: list[dict] = []
    sizes: dict[str, int] = {}
    for table in batches:
        batch = table.to_pylist()
        batch_sizes = {}
        if sizer is not None:
            paths = list(dict.fromkeys(row["path"] for row in batch))
            base = str(root)
            absolute = [os.path.join(base, p) for p in paths]
            batch_sizes = dict(zip(paths, sizer(absolute), strict=True))
        for row in batch:
            if row["media_id"] != current:
                if rows:
                    yield current, rows, sizes
                current, rows, sizes = row["media_id"], [], {}
            rows.append(row)
            if sizer is not None:
                sizes[row["path"]] = batch_sizes[row["path"]]
    if rows:
        yield current, rows, sizes


def frame_media_ids(workspace: Workspace) -> Iterator[str]:
    """The media ids of the frames manifest, batch by batch (one column; an id may recur)."""
    import pyarrow.compute as pc

    path = workspace.manifest_path("frames")
    for table in manifests.iter_manifest(path, "frames", columns=["media_id"]):
        yield from pc.unique(table.column("media_id")).to_pylist()


def first_frame_paths(workspace: Workspace, limit: int = 4096) -> list[str]:
    """Absolute paths of the first ``limit`` frame files of the manifest (what the engine's node
    check reads)."""
    path = workspace.manifest_path("frames")
    for table in manifests.iter_manifest(path, "frames", batch_rows=limit, columns=["path"]):
        return [str(workspace.root / p) for p in table.column("path").to_pylist()]
    return []
