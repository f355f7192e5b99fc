from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dataprep import manifests
from dataprep.errors import ManifestError


def _splits(rows):
    return manifests.from_records("splits", rows)


def test_round_trip_stamps_schema(tmp_path):
    path = tmp_path / "splits.parquet"
    frame = _splits([{"media_id": "a", "group_key": "a", "split": "train"}])
    manifests.write_manifest(path, "splits", frame)
    metadata = pq.read_schema(path).metadata
    assert metadata[b"dataprep.schema"] == b"splits"
    assert metadata[b"dataprep.schema_version"] == b"1"
    back = manifests.read_manifest(path, "splits")
    pd.testing.assert_frame_equal(back, frame)


def test_every_schema_builds_and_round_trips_empty(tmp_path):
    for name in manifests.schema_names():
        schema = manifests.load_schema(name)
        assert schema.columns, name
        assert all(c.description for c in schema.columns), name
        path = tmp_path / f"{name}.parquet"
        manifests.write_manifest(path, name, manifests.from_records(name, []))
        assert len(manifests.read_manifest(path, name)) == 0


def test_foreign_parquet_is_refused(tmp_path):
    path = tmp_path / "foreign.parquet"
    pq.write_table(pa.table({"media_id": ["a"], "split": ["train"]}), path)
    with pytest.raises(ManifestError, match="no dataprep schema stamp"):
        manifests.read_manifest(path, "splits")


def test_other_manifest_is_refused(tmp_path):
    path = tmp_path / "splits.parquet"
    manifests.write_manifest(path, "splits", _splits([]))
    with pytest.raises(ManifestError, match="expected a media manifest.*'splits'"):
        manifests.read_manifest(path, "media")


def test_not_parquet_is_refused(tmp_path):
    path = tmp_path / "splits.parquet"
    path.write_text("garbage")
    with pytest.raises(ManifestError, match="not a readable Parquet file"):
        manifests.read_manifest(path, "splits")


def test_missing_manifest(tmp_path):
    with pytest.raises(ManifestError, match="no splits manifest yet"):
        manifests.read_manifest(tmp_path / "x.parquet", "splits")
    assert list(
        manifests.read_manifest(tmp_path / "x.parquet", "splits", missing_ok=True).columns
    ) == ["media_id", "group_key", "split"]


def test_write_validates_allowed_values_and_nulls(tmp_path):
    path = tmp_path / "splits.parquet"
    bad = pd.DataFrame({"media_id": ["a"], "group_key": ["a"], "split": ["holdout"]})
    with pytest.raises(ManifestError, match="allowed: train, val, test"):
        manifests.write_manifest(path, "splits", bad)
    nulls = pd.DataFrame({"media_id": [None], "group_key": ["a"], "split": ["train"]})
    with pytest.raises(ManifestError, match="media_id has 1 empty"):
        manifests.write_manifest(path, "splits", nulls)
    extra = pd.DataFrame({"media_id": ["a"], "group_key": ["a"], "split": ["train"], "x": [1]})
    with pytest.raises(ManifestError, match="not in schemas/splits.yaml"):
        manifests.write_manifest(path, "splits", extra)
    assert not path.exists()


def test_failed_write_keeps_previous(tmp_path):
    path = tmp_path / "splits.parquet"
    good = _splits([{"media_id": "a", "group_key": "a", "split": "val"}])
    manifests.write_manifest(path, "splits", good)
    with pytest.raises(ManifestError):
        manifests.write_manifest(path, "splits", pd.DataFrame({"media_id": ["b"]}))
    pd.testing.assert_frame_equal(manifests.read_manifest(path, "splits"), good)
    assert [p.name for p in tmp_path.iterdir()] == ["splits.parquet"]


def test_wrong_column_type_is_refused(tmp_path):
    path = tmp_path / "files.parquet"
    table = manifests.load_schema("files").arrow_schema()
    schema = table.set(table.get_field_index("size_bytes"), pa.field("size_bytes", pa.string()))
    pq.write_table(
        pa.table(
            {"path": ["p"], "size_bytes": ["1"], "mtime_ns": [1], "media_id": ["m"]}, schema=schema
        ),
        path,
    )
    with pytest.raises(ManifestError, match="size_bytes is string, expected int64"):
        manifests.read_manifest(path, "files")
