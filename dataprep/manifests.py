"""Manifests: Parquet tables whose schemas are declared once, in ``schemas/<name>.yaml``.

Every read and write is validated against the declared schema; the schema name and version are
stamped into the Parquet metadata, so a foreign file or another version is refused with a clear
message instead of being mis-read. Writes are atomic.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dataprep.atomic import atomic_path
from dataprep.errors import ManifestError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

SCHEMA_KEY = b"dataprep.schema"
VERSION_KEY = b"dataprep.schema_version"
TYPES = (
    "string",
    "int32",
    "int64",
    "float32",
    "float64",
    "bool",
    "timestamp",
    "binary",
    "list<string>",
    "list<float32>",
)


def schemas_dir() -> Path:
    """The folder of schema files.

    Env ``DATAPREP_SCHEMAS``, else ``schemas/`` of the source tree (editable installs), else the
    copy a regular install puts in ``<prefix>/share/dataprep/schemas``.
    """
    import sys

    override = os.environ.get("DATAPREP_SCHEMAS")
    if override:
        return Path(override)
    source = Path(__file__).resolve().parent.parent / "schemas"
    if source.is_dir():
        return source
    return Path(sys.prefix) / "share" / "dataprep" / "schemas"


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    nullable: bool
    description: str
    allowed: tuple[str, ...] | None = None
    default: object = None  # a column added later: its value in rows and files without it


@dataclass(frozen=True)
class ManifestSchema:
    """One manifest's declared schema."""

    name: str
    version: int
    file: str
    description: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def arrow_schema(self) -> pa.Schema:
        import pyarrow as pa

        fields = [pa.field(c.name, _arrow_type(c.type), nullable=c.nullable) for c in self.columns]
        metadata = {SCHEMA_KEY: self.name.encode(), VERSION_KEY: str(self.version).encode()}
        return pa.schema(fields, metadata=metadata)

    def empty(self) -> pd.DataFrame:
        """An empty frame with this schema's columns and dtypes."""
        return self.arrow_schema().empty_table().to_pandas()


def _arrow_type(name: str) -> pa.DataType:
    import pyarrow as pa

    return {
        "string": pa.string(),
        "int32": pa.int32(),
        "int64": pa.int64(),
        "float32": pa.float32(),
        "float64": pa.float64(),
        "bool": pa.bool_(),
        "timestamp": pa.timestamp("us", tz="UTC"),
        "binary": pa.binary(),
        "list<string>": pa.list_(pa.string()),
        "list<float32>": pa.list_(pa.float32()),
    }[name]


@functools.cache
def load_schema(name: str) -> ManifestSchema:
    """Loads ``schemas/<name>.yaml``.

    Raises:
        ManifestError: when the file is missing or malformed.
    """
    import yaml

    path = schemas_dir() / f"{name}.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError:
        raise ManifestError(
            f"no schema file {path}; is the dataprep source tree complete?"
        ) from None
    try:
        columns = tuple(
            Column(
                name=c["name"],
                type=c["type"],
                nullable=bool(c["nullable"]),
                description=str(c.get("description", "")).strip(),
                allowed=tuple(c["allowed"]) if c.get("allowed") else None,
                default=c.get("default"),
            )
            for c in data["columns"]
        )
        schema = ManifestSchema(
            name=data["name"],
            version=int(data["version"]),
            file=data.get("file", f"manifests/{name}.parquet"),
            description=" ".join(str(data.get("description", "")).split()),
            key=tuple(data.get("key", [])),
            columns=columns,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ManifestError(f"{path}: malformed schema ({exc!r})") from None
    for column in columns:
        if column.type not in TYPES:
            raise ManifestError(f"{path}: column {column.name} has unknown type {column.type!r}")
    return schema


def schema_names() -> list[str]:
    """Names of all declared manifests."""
    return sorted(p.stem for p in schemas_dir().glob("*.yaml"))


def _validate_frame(schema: ManifestSchema, frame: pd.DataFrame, where: str) -> pa.Table:
    import pyarrow as pa

    added = {c.name: c.default for c in schema.columns if c.default is not None}
    frame = frame.assign(**{k: v for k, v in added.items() if k not in frame.columns})
    missing = [c for c in schema.column_names if c not in frame.columns]
    if missing:
        raise ManifestError(
            f"{where}: missing column(s) {', '.join(missing)} of schema {schema.name}"
        )
    extra = [c for c in frame.columns if c not in schema.column_names]
    if extra:
        raise ManifestError(
            f"{where}: column(s) {', '.join(map(str, extra))} are not in "
            f"schemas/{schema.name}.yaml; declare them there first"
        )
    frame = frame[schema.column_names]
    for column in schema.columns:
        empty = int(frame[column.name].isna().sum()) if not column.nullable else 0
        if empty:
            raise ManifestError(f"{where}: column {column.name} has {empty} empty value(s)")
    try:
        table = pa.Table.from_pandas(frame, schema=schema.arrow_schema(), preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError, TypeError) as exc:
        raise ManifestError(f"{where}: does not match schema {schema.name}: {exc}") from None
    _check_table(schema, table, where)
    return table


def _check_table(
    schema: ManifestSchema, table: pa.Table, where: str, names: list[str] | None = None
) -> None:
    import pyarrow.compute as pc

    for column in schema.columns:
        if names is not None and column.name not in names:
            continue
        values = table.column(column.name)
        if not column.nullable and values.null_count:
            raise ManifestError(
                f"{where}: column {column.name} has {values.null_count} empty value(s)"
            )
        if column.allowed:
            bad = pc.unique(
                pc.filter(values, pc.invert(pc.is_in(values, pa_array(column.allowed))))
            )
            bad = [v for v in bad.to_pylist() if v is not None]
            if bad:
                raise ManifestError(
                    f"{where}: column {column.name} has value(s) {bad[:3]}; allowed: "
                    f"{', '.join(column.allowed)}"
                )


def pa_array(values):
    import pyarrow as pa

    return pa.array(list(values))


def write_manifest(path: Path, name: str, frame: pd.DataFrame) -> None:
    """Validates ``frame`` against schema ``name`` and writes it to ``path`` atomically.

    Raises:
        ManifestError: when a column is missing, unknown, of the wrong type, null where it
            must not be, or outside its allowed values. Nothing is written then.
    """
    import pyarrow.parquet as pq

    schema = load_schema(name)
    table = _validate_frame(schema, frame, f"{name} manifest for {path}")
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def read_manifest(path: Path, name: str, *, missing_ok: bool = False) -> pd.DataFrame:
    """Reads the manifest at ``path``, checking it is schema ``name`` at the current version.

    Args:
        path: the Parquet file.
        name: the expected schema.
        missing_ok: return an empty frame with the schema's columns when the file is absent.

    Raises:
        ManifestError: when the file is absent (unless ``missing_ok``), not Parquet, written
            for another schema or version, or not matching the declared columns.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = load_schema(name)
    path = Path(path)
    if not path.exists():
        if missing_ok:
            return to_pandas(schema.arrow_schema().empty_table())
        raise ManifestError(f"{path}: no {name} manifest yet; run the stage that writes it first")
    try:
        # ParquetFile, not read_table: it does not import pyarrow.dataset (0.3 s per command)
        with pq.ParquetFile(path) as parquet:
            table = parquet.read()
    except (pa.ArrowInvalid, OSError) as exc:
        raise ManifestError(
            f"{path}: not a readable Parquet file ({exc}); restore or delete it"
        ) from None
    _check_stamp(schema, table.schema, path)
    return to_pandas(_conform(schema, table, path))


def _check_stamp(schema: ManifestSchema, file_schema: pa.Schema, path: Path) -> None:
    """Refuses a file written for another schema or version."""
    metadata = file_schema.metadata or {}
    found = metadata.get(SCHEMA_KEY, b"").decode() or None
    if found != schema.name:
        what = f"schema {found!r}" if found else "no dataprep schema stamp"
        raise ManifestError(f"{path}: expected a {schema.name} manifest but the file has {what}")
    version = metadata.get(VERSION_KEY, b"").decode()
    if version != str(schema.version):
        raise ManifestError(
            f"{path}: {schema.name} manifest version {version} but this dataprep reads version "
            f"{schema.version}; re-run the stage to rewrite it"
        )


def _conform(
    schema: ManifestSchema, table: pa.Table, path: Path, names: list[str] | None = None
) -> pa.Table:
    """``table`` (read from ``path``) with the declared columns (or ``names`` of them), in
    order, checked."""
    import pyarrow as pa

    expected = schema.arrow_schema()
    if names is not None:
        expected = pa.schema([expected.field(n) for n in names], metadata=expected.metadata)
    for field in expected:
        column = next(c for c in schema.columns if c.name == field.name)
        if field.name not in table.schema.names and column.default is not None:
            # written before the column was added (a backward-compatible addition)
            values = pa.array([column.default] * table.num_rows, type=field.type)
            table = table.append_column(field.name, values)
        if field.name not in table.schema.names:
            raise ManifestError(f"{path}: column {field.name} is missing")
        actual = table.schema.field(field.name).type
        if actual != field.type:
            raise ManifestError(f"{path}: column {field.name} is {actual}, expected {field.type}")
    table = table.select(expected.names)
    _check_table(schema, table, str(path), expected.names)
    return table


def iter_manifest(
    path: Path, name: str, *, batch_rows: int = 65536, columns: list[str] | None = None
) -> Iterator[pa.Table]:
    """Manifest ``name`` at ``path`` read batch by batch (at most ``batch_rows`` rows each),
    checked as :func:`read_manifest` checks the whole file; nothing when the file is absent.

    Args:
        columns: only these columns (default: all declared ones).

    Raises:
        ManifestError: as :func:`read_manifest`.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = load_schema(name)
    path = Path(path)
    if not path.exists():
        return
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ManifestError(
            f"{path}: not a readable Parquet file ({exc}); restore or delete it"
        ) from None
    with parquet:
        _check_stamp(schema, parquet.schema_arrow, path)
        present = [n for n in (columns or schema.column_names) if n in parquet.schema_arrow.names]
        for batch in parquet.iter_batches(batch_size=batch_rows, columns=present):
            yield _conform(schema, pa.Table.from_batches([batch]), path, columns)


def to_pandas(table: pa.Table) -> pd.DataFrame:
    """Converts to pandas keeping integers and booleans exact (nullable dtypes, ``pd.NA``)."""
    import pandas as pd
    import pyarrow as pa

    mapping = {
        pa.int32(): pd.Int32Dtype(),
        pa.int64(): pd.Int64Dtype(),
        pa.bool_(): pd.BooleanDtype(),
    }
    return table.to_pandas(types_mapper=mapping.get)


def from_records(name: str, rows: list[dict]) -> pd.DataFrame:
    """Builds a frame of schema ``name`` from dicts, with exact (nullable) dtypes.

    Raises:
        ManifestError: when a value does not fit its column's type.
    """
    import pyarrow as pa

    schema = load_schema(name)
    defaults = {c.name: c.default for c in schema.columns}
    try:
        table = pa.Table.from_pylist(
            [{c: row.get(c, default) for c, default in defaults.items()} for row in rows],
            schema=schema.arrow_schema(),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as exc:
        raise ManifestError(f"{name} rows do not match schemas/{name}.yaml: {exc}") from None
    return to_pandas(table)


def records(frame: pd.DataFrame) -> list[dict]:
    """Rows as plain dicts, with missing values as None (not NaN or pd.NA)."""
    import pandas as pd

    rows = frame.to_dict("records")
    for row in rows:
        for key, value in row.items():
            if value is pd.NA or (isinstance(value, float) and value != value) or value is pd.NaT:
                row[key] = None
    return rows


def load(workspace, name: str, *, missing_ok: bool = False) -> pd.DataFrame:
    """Reads manifest ``name`` of ``workspace`` (see :func:`read_manifest`)."""
    return read_manifest(workspace.manifest_path(name), name, missing_ok=missing_ok)


def save(workspace, name: str, frame: pd.DataFrame) -> None:
    """Writes manifest ``name`` of ``workspace`` atomically (see :func:`write_manifest`)."""
    write_manifest(workspace.manifest_path(name), name, frame)
