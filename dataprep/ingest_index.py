"""``ingest``'s on-disk index: the manifests and the run's candidates in an SQLite file.

With ``--engine ray`` the ingest driver must not hold a Python object per file (10M videos).
:class:`IndexStore` is the :class:`dataprep.ingest_state.Store` it uses instead of dicts: an
SQLite database in ``.dataprep/ingest-index/`` (created empty by each run under the workspace
lock, removed at its end) with

* ``files`` and ``media``: the rows of ``files.parquet`` and ``media.parquet``, loaded batch by
  batch (:func:`dataprep.manifests.iter_manifest`), looked up by key, updated in place;
* ``candidates``: the files the walk found (inserted as the walk yields them, each path once),
  read back in path order a page at a time, with a flag for those to be inspected.

Every checkpoint and the final commit stream both tables, ordered by the manifest's key, through
a ``pyarrow`` ``ParquetWriter`` into a temporary file renamed over the manifest
(:mod:`dataprep.atomic`), each batch checked against ``schemas/<name>.yaml``. SQLite's own
memory is bounded by its page cache (``CACHE_KIB``); the rest lives in the file. The merge rules
are not here: they are :class:`dataprep.ingest_state.IngestState`'s, the same for both stores.
"""

from __future__ import annotations

import contextlib
import pickle
import shutil
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from dataprep.atomic import atomic_path
from dataprep.discovery import Candidate
from dataprep.errors import DiskError, os_error_message
from dataprep.manifests import _check_table, iter_manifest, load_schema
from dataprep.workspace import Workspace

PAGE = 2048  # candidates read back (and handed to the engine) at a time
BATCH_ROWS = 16384  # manifest rows per batch, in and out (a row group each)
CACHE_KIB = 16384  # SQLite's page cache

_TABLES = (
    "CREATE TABLE files (path TEXT PRIMARY KEY, size_bytes INTEGER, mtime_ns INTEGER,"
    " media_id TEXT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE media (media_id TEXT PRIMARY KEY, row BLOB NOT NULL) WITHOUT ROWID",
    "CREATE TABLE candidates (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, hint TEXT,"
    " todo INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID",
)
_FILE_COLUMNS = ("path", "size_bytes", "mtime_ns", "media_id")


def index_folder(workspace: Workspace) -> Path:
    """Where a run's index lives (inside the workspace's state folder)."""
    return workspace.state_dir / "ingest-index"


class IndexStore:
    """The manifests and candidates of one ingest run in SQLite (see the module docstring).

    Created empty (a killed run's leftover is removed: the caller holds the workspace lock).
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.folder / "index.sqlite", isolation_level=None)
        # a scratch file: thrown away by the next run if this one dies, so no journal, no fsync
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "locking_mode=EXCLUSIVE",
                       "temp_store=FILE", f"cache_size=-{CACHE_KIB}"):  # fmt: skip
            self.db.execute(f"PRAGMA {pragma}")
        for statement in _TABLES:
            self.db.execute(statement)
        self.total = 0

    @classmethod
    def load(cls, workspace: Workspace) -> IndexStore:
        """An index holding ``workspace``'s manifests, read batch by batch.

        Raises:
            ManifestError: a manifest that is not readable or does not match its schema.
        """
        store = cls(index_folder(workspace))
        try:
            with store._transaction():
                for table in iter_manifest(
                    workspace.manifest_path("files"), "files", batch_rows=BATCH_ROWS
                ):
                    columns = [table[c].to_pylist() for c in _FILE_COLUMNS]
                    store.db.executemany(
                        "INSERT INTO files VALUES (?, ?, ?, ?)", zip(*columns, strict=True)
                    )
                for table in iter_manifest(
                    workspace.manifest_path("media"), "media", batch_rows=BATCH_ROWS
                ):
                    store.db.executemany(
                        "INSERT INTO media VALUES (?, ?)",
                        ((row["media_id"], _pack(row)) for row in table.to_pylist()),
                    )
        except BaseException:
            store.close()
            raise
        return store

    # -- the rows (dataprep.ingest_state.Store) ---------------------------------------------

    def file(self, path: str) -> dict[str, Any] | None:
        found = self.db.execute("SELECT * FROM files WHERE path = ?", (path,)).fetchone()
        return dict(zip(_FILE_COLUMNS, found, strict=True)) if found else None

    def put_file(self, row: dict[str, Any]) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?)", [row[c] for c in _FILE_COLUMNS]
        )

    def media(self, media_id: str) -> dict[str, Any] | None:
        found = self.db.execute("SELECT row FROM media WHERE media_id = ?", (media_id,)).fetchone()
        return pickle.loads(found[0]) if found else None

    def put_media(self, row: dict[str, Any]) -> None:
        self.db.execute("INSERT OR REPLACE INTO media VALUES (?, ?)", (row["media_id"], _pack(row)))

    def drop_media(self, media_id: str) -> None:
        self.db.execute("DELETE FROM media WHERE media_id = ?", (media_id,))

    def media_total(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM media").fetchone()[0]

    # -- the candidates (dataprep.ingest_state.Candidates) ----------------------------------

    def has(self, path: str) -> bool:
        """Whether ``path`` is among the candidates."""
        found = self.db.execute("SELECT 1 FROM candidates WHERE path = ?", (path,)).fetchone()
        return found is not None

    def add_candidates(self, candidates: Iterable[Candidate]) -> None:
        """Takes in a stream of candidates (each path once, in any order)."""
        with self._transaction():
            for c in candidates:
                self.db.execute(
                    "INSERT INTO candidates (path, size, mtime_ns, hint) VALUES (?, ?, ?, ?)",
                    (c.path, c.size, c.mtime_ns, c.hint),
                )
                self.total += 1

    def pages(self, *, todo: bool = False) -> Iterator[list[Candidate]]:
        """The candidates (or those to inspect) in path order, ``PAGE`` at a time (each page
        read whole: the caller may write to the index between two pages)."""
        where = " AND todo = 1" if todo else ""
        query = "SELECT path, size, mtime_ns, hint FROM candidates WHERE {} ORDER BY path LIMIT ?"
        rows = self.db.execute(query.format("1" + where), (PAGE,)).fetchall()
        while rows:
            yield [Candidate(*row) for row in rows]
            after = (rows[-1][0], PAGE)
            rows = self.db.execute(query.format("path > ?" + where), after).fetchall()

    def set_todo(self, todo: list[Candidate]) -> None:
        with self._transaction():
            self.db.executemany(
                "UPDATE candidates SET todo = 1 WHERE path = ?", ((c.path,) for c in todo)
            )

    def todo_summary(self) -> tuple[int, int, int]:
        """(files, bytes, videos) to inspect."""
        count, size, videos = self.db.execute(
            "SELECT COUNT(*), TOTAL(size), TOTAL(hint = 'video') FROM candidates WHERE todo = 1"
        ).fetchone()
        return count, int(size), int(videos)

    def todo_pages(self) -> Iterator[list[Candidate]]:
        return self.pages(todo=True)

    # -- the commit -------------------------------------------------------------------------

    def save(self, workspace: Workspace) -> None:
        """Streams both manifests out of the index, media first (see the module docstring).

        Raises:
            DiskError: naming the manifest that could not be written (disk full...).
            ManifestError: a row that does not match its schema (nothing is replaced then).
        """
        media = (
            [pickle.loads(blob) for (blob,) in rows]
            for rows in self._batches("SELECT row FROM media ORDER BY media_id")
        )
        files = (
            [dict(zip(_FILE_COLUMNS, row, strict=True)) for row in rows]
            for rows in self._batches("SELECT * FROM files ORDER BY path")
        )
        for name, batches in (("media", media), ("files", files)):
            path = workspace.manifest_path(name)
            try:
                _write_manifest(path, name, batches)
            except OSError as exc:
                raise DiskError(os_error_message(path, exc, "write")) from None

    def _batches(self, query: str) -> Iterator[list[tuple]]:
        cursor = self.db.execute(query)
        try:
            while rows := cursor.fetchmany(BATCH_ROWS):
                yield rows
        finally:
            cursor.close()

    def close(self) -> None:
        """Closes and removes the index."""
        self.db.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")


def _write_manifest(path: Path, name: str, batches: Iterable[list[dict[str, Any]]]) -> None:
    """Rows (batches of dicts, in key order) into manifest ``name`` at ``path``, atomically,
    each batch validated against the schema.

    Raises:
        ManifestError: a batch does not match the schema.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from dataprep.errors import ManifestError

    schema = load_schema(name)
    arrow = schema.arrow_schema()
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, arrow, compression="zstd") as writer:
        for rows in batches:
            try:
                table = pa.Table.from_pylist(rows, schema=arrow)
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as exc:
                raise ManifestError(
                    f"{name} rows do not match schemas/{name}.yaml: {exc}"
                ) from None
            _check_table(schema, table, f"{name} manifest for {path}")
            writer.write_table(table)


def _pack(row: dict[str, Any]) -> bytes:
    """A media row as stored in the index (written and read by this process only)."""
    return pickle.dumps(row, protocol=pickle.HIGHEST_PROTOCOL)
