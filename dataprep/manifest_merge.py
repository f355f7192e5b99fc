"""Streaming commits of a manifest: the previous file plus staged Parquet parts, batch by batch.

With ``--engine ray`` the workers write the rows they produce to Parquet files (the engine's
:class:`~dataprep.engine.StagedRows`) and the driver never holds them: it keeps the paths of
those files and small per-media summaries (ids, counts, status). Each checkpoint and the final
commit of the manifest is :func:`merge_manifest`:

* the rows of the manifest as it is on disk, read batch by batch, minus those a ``keep``
  predicate drops (media being replaced, forgotten, or redone),
* plus the rows of every staged :class:`Part` (one media's rows each; columns they share, such
  as ``media_id``, added as constants),

conformed to the declared schema (``schemas/<name>.yaml``), written with a ``ParquetWriter``
into a temporary file next to the manifest, and renamed over it (:mod:`dataprep.atomic`), so a
killed run leaves the previous manifest readable. The output is sorted by the schema's key when
the previous file is (every writer of a manifest sorts it): parts are merged into the stream by
their group (the key's first column), so at most about ``batch_rows`` rows, plus the rows of one
media, are in memory at once, whatever the size of the manifest.

:class:`PartStore` keeps the staged files the driver has taken over from the engine's staging
folder (which goes away when the engine closes) until a commit has merged them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dataprep.atomic import atomic_path
from dataprep.errors import ManifestError
from dataprep.manifests import ManifestSchema, _check_table, iter_manifest, load_schema

if TYPE_CHECKING:
    import pyarrow as pa

BATCH_ROWS = 65536
KeepFn = Callable[["pa.Table"], "pa.Array"]  # a batch of the previous manifest -> bool mask


@dataclass(frozen=True)
class Part:
    """Rows staged in a Parquet file, all of one group (``media_id``).

    Attributes:
        path: the Parquet file.
        group: the value of the schema key's first column in every row.
        constants: columns every row shares, added when the file lacks them.
        count: the number of rows (from the writer; informative).
    """

    path: str
    group: str
    constants: dict[str, Any] = field(default_factory=dict)
    count: int = 0


@dataclass
class MergeResult:
    """What a merge wrote: rows in all, and the number of true values of each tallied
    boolean column (counted while writing: nobody reads the manifest back for them)."""

    rows: int = 0
    true_counts: Counter = field(default_factory=Counter)


def merge_manifest(
    target: str | Path,
    name: str,
    parts: Sequence[Part],
    *,
    keep: KeepFn | None = None,
    tally: Iterable[str] = (),
    batch_rows: int = BATCH_ROWS,
) -> MergeResult:
    """Rewrites manifest ``name`` at ``target``: its kept rows plus ``parts``, streamed.

    Args:
        target: the manifest file (its rows are the base; absent: no base).
        name: the schema.
        parts: staged rows to add (any order; merged in by group).
        keep: which rows of the base to keep (default: all).
        tally: boolean columns whose true values are counted into the result.
        batch_rows: rows read from the base per batch, and parts taken per write.

    Raises:
        ManifestError: the base or a part does not match the schema (nothing is written).
    """
    import pyarrow.parquet as pq

    schema = load_schema(name)
    arrow = schema.arrow_schema()
    out = _Output(schema, arrow, sorted(parts, key=lambda p: p.group), tuple(tally), batch_rows)
    base = (t.cast(arrow) for t in iter_manifest(target, name, batch_rows=batch_rows))
    with (
        atomic_path(Path(target)) as tmp,
        pq.ParquetWriter(tmp, arrow, compression="zstd") as writer,
    ):
        out.writer = writer
        for chunk in _whole_groups(base, schema):
            if keep is not None and chunk.num_rows:
                chunk = chunk.filter(keep(chunk))
            out.emit(chunk, upto=_last_group(chunk, schema))
        out.emit(arrow.empty_table(), upto=None)
    return out.result


def _whole_groups(tables: Iterator[pa.Table], schema: ManifestSchema) -> Iterator[pa.Table]:
    """Re-cuts a stream sorted by group so that no group is split between two tables (the rows
    of the last group of each batch wait for the next one)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    group = schema.key[0]
    carry = None
    for table in tables:
        if carry is not None:
            table = pa.concat_tables([carry, table])
        if not table.num_rows:
            continue
        last = pc.equal(table[group], table[group][-1])
        carry = table.filter(last)
        head = table.filter(pc.invert(last))
        if head.num_rows:
            yield head.combine_chunks()
    if carry is not None and carry.num_rows:
        yield carry.combine_chunks()


def _last_group(table: pa.Table, schema: ManifestSchema) -> str:
    import pyarrow.compute as pc

    if not table.num_rows:
        return ""  # nothing of the base here: no part is due yet
    return pc.max(table[schema.key[0]]).as_py()


class _Output:
    """The writing side of a merge: base chunks and parts interleaved in group order."""

    def __init__(self, schema, arrow, parts: list[Part], tally: tuple, batch_rows: int):
        self.schema, self.arrow, self.parts = schema, arrow, parts
        self.tally, self.batch_rows = tally, batch_rows
        self.next_part = 0
        self.writer = None
        self.result = MergeResult()

    def emit(self, chunk: pa.Table, *, upto: str | None) -> None:
        """Writes ``chunk`` (whole groups) with the parts whose group is at most ``upto``
        (None: all that are left), in bundles of about ``batch_rows`` rows."""
        import pyarrow as pa
        import pyarrow.compute as pc

        group = self.schema.key[0]
        while self.next_part < len(self.parts) and (
            upto is None or self.parts[self.next_part].group <= upto
        ):
            bundle = self._bundle(upto)
            bound = self.parts[self.next_part - 1].group
            if chunk.num_rows:
                before = pc.less_equal(chunk[group], bound)
                bundle.append(chunk.filter(before))
                chunk = chunk.filter(pc.invert(before))
            self._write(pa.concat_tables(bundle))
        if chunk.num_rows:
            self._write(chunk)

    def _bundle(self, upto: str | None) -> list[pa.Table]:
        """The next parts, whole groups, up to about ``batch_rows`` rows."""
        tables: list[pa.Table] = []
        rows = 0
        while self.next_part < len(self.parts):
            part = self.parts[self.next_part]
            if upto is not None and part.group > upto:
                break
            if rows >= self.batch_rows and part.group != self.parts[self.next_part - 1].group:
                break
            table = read_part(part, self.schema, self.arrow)
            tables.append(table)
            rows += table.num_rows
            self.next_part += 1
        return tables

    def _write(self, table: pa.Table) -> None:
        import pyarrow.compute as pc

        if not table.num_rows:
            return
        table = table.sort_by([(k, "ascending") for k in self.schema.key])
        self.writer.write_table(table)
        self.result.rows += table.num_rows
        for column in self.tally:
            self.result.true_counts[column] += int(pc.sum(table[column]).as_py() or 0)


def read_part(part: Part, schema: ManifestSchema, arrow: pa.Schema) -> pa.Table:
    """One staged part, with its constant and default columns, cast to the manifest's schema.

    Raises:
        ManifestError: naming the file, when its rows do not fit the schema.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        with pq.ParquetFile(part.path) as parquet:  # not read_table: no pyarrow.dataset import
            table = parquet.read()
    except (pa.ArrowInvalid, OSError) as exc:
        raise ManifestError(f"{part.path}: staged rows cannot be read ({exc})") from None
    values = {c.name: c.default for c in schema.columns} | dict(part.constants)
    for column in arrow:
        if column.name not in table.column_names:
            value = values.get(column.name)
            table = table.append_column(
                column.name, pa.array([value] * table.num_rows, type=column.type)
            )
    extra = sorted(set(table.column_names) - set(arrow.names))
    if extra:
        raise ManifestError(
            f"{part.path}: staged column(s) {', '.join(extra)} are not in "
            f"schemas/{schema.name}.yaml"
        )
    table = table.select(arrow.names)
    for column in schema.columns:
        if not column.nullable and table[column.name].null_count:
            raise ManifestError(
                f"{part.path}: column {column.name} has {table[column.name].null_count} empty "
                "value(s)"
            )
    try:
        table = table.cast(arrow)
    except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError) as exc:
        raise ManifestError(
            f"{part.path}: staged rows do not match schema {schema.name}: {exc}"
        ) from None
    _check_table(schema, table, part.path)
    return table


def member_mask(column: pa.ChunkedArray | pa.Array, sorted_values: Sequence[str]) -> pa.Array:
    """Which values of a string ``column`` are in ``sorted_values`` (a sorted list, possibly
    of millions of ids): only the slice between the column's least and greatest value is
    hashed, so a batch of a sorted manifest costs about its own size."""
    import bisect

    import pyarrow as pa
    import pyarrow.compute as pc

    if not len(column) or not sorted_values:
        return pa.array([False] * len(column), type=pa.bool_())
    low, high = pc.min(column).as_py(), pc.max(column).as_py()
    values = sorted_values[
        bisect.bisect_left(sorted_values, low) : bisect.bisect_right(sorted_values, high)
    ]
    if not values:
        return pa.array([False] * len(column), type=pa.bool_())
    mask = pc.is_in(column, value_set=pa.array(values, type=pa.string()))
    return mask.combine_chunks() if isinstance(mask, pa.ChunkedArray) else mask


class PartStore:
    """A folder of staged parts the driver owns until they are committed.

    The engine's staging folder is removed when the engine closes; a stage that commits after
    that (its final save, or the save after an error) moves each staged file here first.
    Created empty (leftovers of a killed run are removed: the caller holds the workspace lock).
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True, exist_ok=True)

    def take(self, staged, group: str, **constants: Any) -> Part:
        """Moves a :class:`~dataprep.engine.StagedRows` file here; returns it as a part."""
        path = self.folder / f"{_safe(group)}-{uuid.uuid4().hex[:8]}.parquet"
        shutil.move(staged.path, path)
        return Part(str(path), group, constants, staged.count)

    def write(self, rows: list[dict[str, Any]], group: str, **constants: Any) -> Part:
        """Stages ``rows`` (one group's, already in this process) as a part."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = self.folder / f"{_safe(group)}-{uuid.uuid4().hex[:8]}.parquet"
        pq.write_table(pa.Table.from_pylist(rows), path)
        return Part(str(path), group, constants, len(rows))

    @staticmethod
    def discard(parts: Iterable[Part]) -> None:
        """Removes parts that a commit has merged (or that are not wanted)."""
        for part in parts:
            with contextlib.suppress(FileNotFoundError):
                os.remove(part.path)

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _safe(group: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in group)[:64]
