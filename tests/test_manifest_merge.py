"""Streaming commits of manifests (dataprep.manifest_merge), as the Ray engine's drivers use them.

Real Parquet files written and read back; the memory test measures the merge itself (Python
objects with tracemalloc, Arrow buffers with a memory pool of its own).
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from memory_peaks import measure_peaks

from dataprep import manifests
from dataprep.errors import ManifestError
from dataprep.manifest_merge import Part, PartStore, member_mask, merge_manifest

KEY = ["media_id", "frame_index", "copy_index"]


def _extracted(media_id: str, n: int, start: int = 0) -> list[dict]:
    return [
        {
            "frame_index": i,
            "timestamp_s": i / 10,
            "path": f"frames/{media_id}/{i:06d}.jpg",
            "width": 32,
            "height": 24,
        }
        for i in range(start, start + n)
    ]


def _full(media_id: str, rows: list[dict], *, augmented=False, copy=0, mirrored=False):
    return [
        {
            **row,
            "media_id": media_id,
            "augmented": augmented,
            "copy_index": copy,
            "fingerprint": "aug" if augmented else "fp",
            "mirrored": mirrored,
        }
        for row in rows
    ]


def _constants(media_id: str) -> dict:
    return {"media_id": media_id, "augmented": False, "copy_index": 0, "fingerprint": "fp"}


def _write_part(folder: Path, group: str, rows: list[dict], constants: dict) -> Part:
    path = folder / f"{group}-{len(list(folder.iterdir()))}.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    return Part(str(path), group, constants, len(rows))


def test_merge_drops_adds_and_keeps_the_manifest_sorted(tmp_path):
    target = tmp_path / "frames.parquet"
    base = []
    for media_id in ("a", "c", "e"):
        base += _full(media_id, _extracted(media_id, 3))
        base += _full(media_id, _extracted(media_id, 1), augmented=True, copy=1, mirrored=True)
    manifests.write_manifest(target, "frames", manifests.from_records("frames", base))
    parts_dir = tmp_path / "parts"
    parts_dir.mkdir()
    parts = [
        _write_part(parts_dir, "d", _extracted("d", 4), _constants("d")),
        _write_part(parts_dir, "b", _extracted("b", 2), _constants("b")),
        _write_part(parts_dir, "c", _extracted("c", 5), _constants("c")),  # c redone
    ]

    def keep(table):  # e forgotten; c's extracted rows replaced, its copy kept
        drop = member_mask(table["media_id"], ["e"])
        redo = pc.and_(member_mask(table["media_id"], ["c"]), pc.invert(table["augmented"]))
        return pc.invert(pc.or_(drop, redo))

    result = merge_manifest(
        target, "frames", parts, keep=keep, tally=["augmented", "mirrored"], batch_rows=2
    )
    expected = [
        r for r in base if r["media_id"] == "a" or (r["media_id"] == "c" and r["augmented"])
    ]
    for media_id, n in (("b", 2), ("c", 5), ("d", 4)):
        expected += _full(media_id, _extracted(media_id, n))
    want = manifests.from_records("frames", expected).sort_values(KEY).reset_index(drop=True)
    got = manifests.read_manifest(target, "frames")
    assert got.equals(want)  # sorted by key as written, no sorting here
    assert result.rows == len(want) == 16
    assert result.true_counts == {"augmented": 2, "mirrored": 2}


def test_merge_without_a_previous_manifest_and_a_bad_part(tmp_path):
    target = tmp_path / "frames.parquet"
    good = _write_part(tmp_path, "m1", _extracted("m1", 3), _constants("m1"))
    result = merge_manifest(target, "frames", [good])
    assert result.rows == 3 and len(manifests.read_manifest(target, "frames")) == 3
    before = target.read_bytes()
    rows = [{**row, "width": "wide"} for row in _extracted("m2", 2)]
    bad = _write_part(tmp_path, "m2", rows, _constants("m2"))
    with pytest.raises(ManifestError, match=rf"{bad.path}: staged rows do not match schema"):
        merge_manifest(target, "frames", [good, bad])
    constants = {k: v for k, v in _constants("m3").items() if k != "fingerprint"}
    missing = _write_part(tmp_path, "m3", _extracted("m3", 1), constants)
    with pytest.raises(ManifestError, match=rf"{missing.path}: column fingerprint has 1 empty"):
        merge_manifest(target, "frames", [missing])
    assert target.read_bytes() == before, "a failed merge leaves the manifest as it was"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_member_mask_slices_a_sorted_id_list():
    column = pa.chunked_array([["b", "c", "d"], ["d", "f"]])
    ids = ["a", "c", "d", "g"]
    assert member_mask(column, ids).to_pylist() == [False, True, True, True, False]
    assert member_mask(column, []).to_pylist() == [False] * 5
    assert member_mask(column, ["x", "y"]).to_pylist() == [False] * 5


def _merge_peaks(tmp_path: Path, n_parts: int, rows_per_part: int) -> tuple[int, int, int]:
    """(Python peak, Arrow peak, rows) of merging ``n_parts`` staged parts into a manifest."""
    folder = tmp_path / f"parts-{n_parts}"
    folder.mkdir()
    parts = [
        _write_part(
            folder, f"m{i:05d}", _extracted(f"m{i:05d}", rows_per_part), _constants(f"m{i:05d}")
        )
        for i in range(n_parts)
    ]
    target = tmp_path / f"frames-{n_parts}.parquet"
    base = _full("a-first", _extracted("a-first", rows_per_part))
    manifests.write_manifest(target, "frames", manifests.from_records("frames", base))
    with measure_peaks() as peaks:
        result = merge_manifest(target, "frames", parts, batch_rows=1000)
    return peaks.python, peaks.arrow, result.rows


def test_merge_memory_does_not_grow_with_the_staged_rows(tmp_path):
    """The driver-side commit holds about one batch: merging 4x the rows takes about the same
    peak memory, far below what the rows take once materialized."""
    small = _merge_peaks(tmp_path, 30, 200)
    large = _merge_peaks(tmp_path, 120, 200)
    assert large[2] == 4 * small[2] - 3 * 200  # every staged row was written
    folder = tmp_path / "parts-120"
    tracemalloc.start()
    rows = [row for part in sorted(folder.iterdir()) for row in pq.read_table(part).to_pylist()]
    materialized = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(rows) == 120 * 200
    assert large[0] < 1.5 * small[0] + 256 * 1024, (small, large)
    assert large[0] * 10 < materialized, (large, materialized)
    assert 0 < large[1] < 1.5 * small[1] + 256 * 1024, (small, large)
    arrow_rows = sum(pq.ParquetFile(part).read().nbytes for part in folder.iterdir())
    assert large[1] * 3 < arrow_rows, (large, arrow_rows)


def test_part_store_takes_staged_files_and_starts_empty(tmp_path):
    from dataprep.engine import StagedRows

    staged = tmp_path / "staging" / "000000001-0.parquet"
    staged.parent.mkdir()
    pq.write_table(pa.Table.from_pylist(_extracted("m", 2)), staged)
    store = PartStore(tmp_path / "parts")
    part = store.take(StagedRows(str(staged), 2), "m", media_id="m")
    assert not staged.exists() and Path(part.path).parent == tmp_path / "parts"
    assert (part.group, part.count, part.constants) == ("m", 2, {"media_id": "m"})
    written = store.write(_extracted("n", 1), "n")
    PartStore.discard([written])
    assert not Path(written.path).exists()
    again = PartStore(tmp_path / "parts")  # a new run: leftovers of the last one are gone
    assert list(again.folder.iterdir()) == []
    again.remove()
    assert not again.folder.exists()
