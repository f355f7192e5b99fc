"""Ingest with its on-disk index (dataprep.ingest_index, what ``--engine ray`` uses) against
ingest with its manifests in memory: the same manifests and the same report, run after run
(duplicates, label conflicts, changed and touched files, error rows, paths found twice), and a
driver whose memory does not grow with the number of files.

Real media written at test time, real Parquet manifests read back, real SQLite.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from memory_peaks import measure_peaks

from dataprep import manifests
from dataprep.errors import DataprepError
from dataprep.ingest import ingest
from dataprep.stages import load_stage
from dataprep.testing.media import write_bad_files, write_image, write_video
from dataprep.workspace import init_workspace


def _raw(root: Path) -> Path:
    raw = root / "raw"
    write_image(raw / "a" / "img0.png", 0)
    write_image(raw / "a" / "img1.png", 1)
    write_video(raw / "a" / "clip.mp4", 6, width=32, height=32)
    write_image(raw / "b" / "img2.jpg", 2)
    shutil.copyfile(raw / "a" / "img0.png", raw / "b" / "img0-copy.png")  # another label
    # sorts before a/ as a path ('-' < '/') but is walked after it: order must not matter
    shutil.copyfile(raw / "a" / "img0.png", raw / "a-first.png")
    write_bad_files(raw / "bad")
    os.mkfifo(raw / "b" / "pipe.mp4")  # not a regular file: skipped
    os.symlink(raw / "a", raw / "link-to-a")  # a link to a folder: skipped, not followed
    os.symlink(raw / "a" / "img0.png", raw / "b" / "link.png")  # its own path, same content
    return raw


def _state(ws, report) -> tuple:
    """What a run leaves: its report, both manifests, the stage's counts (workspace paths
    spelled relative to the workspace, so two workspaces compare)."""
    data = report.to_dict()
    del data["seconds"]
    data["label_conflicts"] = [m.replace(str(ws.root), "<ws>") for m in data["label_conflicts"]]
    media = manifests.load(ws, "media").drop(columns=["ingested_at"])
    media["path"] = media["path"].str.replace(str(ws.root), "<ws>", regex=False)
    files = manifests.load(ws, "files")
    counts = load_stage(ws, "ingest")["counts"]
    assert not (ws.state_dir / "ingest-index").exists(), "the index is removed after the run"
    return data, media.sort_values("media_id"), files.sort_values("path"), counts


def _same(a: tuple, b: tuple) -> None:
    assert a[0] == b[0]
    assert a[1].reset_index(drop=True).equals(b[1].reset_index(drop=True))
    assert a[2].reset_index(drop=True).equals(b[2].reset_index(drop=True))
    assert a[3] == b[3]


@pytest.mark.parametrize("mode", ["reference", "copy"])
def test_index_writes_what_memory_writes_run_after_run(tmp_path, mode):
    raw = _raw(tmp_path)
    spaces = {k: init_workspace(tmp_path / k, classes=["a", "b"]) for k in ("memory", "index")}

    def both(**options) -> tuple:
        states = []
        for kind, ws in spaces.items():
            report = ingest(ws, **options, mode=mode, jobs=1, index=kind == "index")
            states.append(_state(ws, report))
        _same(*states)
        return states[0]

    first = both(paths=[raw, raw / "a"], label_from_dir=True)  # a/ found twice
    assert first[0]["duplicates"] == 3 and first[0]["label_conflicts"]
    assert len(first[0]["errors"]) == 5
    skipped = {Path(s["path"]).name: s["reason"] for s in first[0]["skipped"]}
    assert skipped["pipe.mp4"] == skipped["link-to-a"] == "not a regular file"
    assert skipped["notes.txt"] == "not a media file"
    write_image(raw / "a" / "img1.png", 7)  # new content: the old row forgets the path
    os.utime(raw / "a" / "clip.mp4", ns=(1, 1))  # touched: the same bytes
    write_image(raw / "c" / "new.png", 3)
    second = both(paths=[raw], label_from_dir=True)
    # all but img1 (changed) and notes.txt (not media): clip.mp4 and the broken link re-read
    assert second[0]["added"] == 2 and second[0]["unchanged"] == first[0]["files"] - 2
    assert len(second[1]) == len(first[1]) + (1 if mode == "reference" else 2)
    third = both(paths=[raw])  # nothing changed: nothing read but the non-media notes
    assert third[0]["added"] == 0 and third[0]["bytes_read"] < 100


def test_index_stops_where_memory_stops_under_on_error_fail(tmp_path):
    raw = _raw(tmp_path)
    messages = []
    for kind in ("memory", "index"):
        ws = init_workspace(tmp_path / kind, classes=["a", "b"])
        with pytest.raises(DataprepError) as caught:
            ingest(ws, [raw], on_error="fail", jobs=1, index=kind == "index")
        messages.append(str(caught.value))
        files = manifests.load(ws, "files").sort_values("path").reset_index(drop=True)
        media = manifests.load(ws, "media").drop(columns=["ingested_at"])
        media = media.sort_values("media_id").reset_index(drop=True)
        if kind == "memory":
            expected = (files, media)
        else:
            assert files.equals(expected[0]) and media.equals(expected[1])
            assert not (ws.state_dir / "ingest-index").exists()
    assert messages[0] == messages[1] and "bad" in messages[0]


# -------------------------------------------------------------- the driver's memory


def _known_files(root: Path, n: int) -> tuple[Path, object]:
    """``n`` files (100 per folder) that a workspace's manifests already hold as unchanged."""
    from datetime import UTC, datetime

    folder = root / f"raw-{n}"
    files, media = [], []
    for i in range(n):
        path = folder / f"d{i // 100:04d}" / f"f{i:06d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
        info = path.stat()
        media_id = f"{i:016x}"
        files.append(
            {"path": str(path), "size_bytes": 0, "mtime_ns": info.st_mtime_ns, "media_id": media_id}
        )
        media.append(
            {
                "media_id": media_id,
                "path": str(path),
                "paths": [str(path)],
                "kind": "image",
                "status": "ok",
                "size_bytes": 0,
                "width": 8,
                "height": 8,
                "label": "a",
                "mode": "reference",
                "ingested_at": datetime(2026, 1, 1, tzinfo=UTC),
            }
        )
    ws = init_workspace(root / f"ws-{n}", classes=["a"])
    manifests.save(ws, "files", manifests.from_records("files", files))
    manifests.save(ws, "media", manifests.from_records("media", media))
    return folder, ws


def _peaks(folder: Path, ws, *, index: bool) -> tuple[int, int]:
    """(Python peak, Arrow peak) of a rerun of ingest over known files."""
    with measure_peaks() as peaks:
        report = ingest(ws, [folder], jobs=1, index=index)
    assert report.unchanged == report.files and report.added == 0
    return peaks.python, peaks.arrow


@pytest.mark.slow
def test_index_driver_memory_does_not_grow_with_the_files(tmp_path, monkeypatch):
    """A rerun over 4x the files (walk, unchanged checks, both manifests loaded and written
    back) takes about the same peak memory with the index; in memory it grows with them.

    The measured runs read manifests the index wrote (row groups of ``BATCH_ROWS``). A manifest
    written in one row group (the local engine's) is read page by page: Arrow's peak is bounded
    by Parquet's page size (1 MiB a column), reached at about 50k rows, so at this test's size it
    would still look like growth.
    """
    from dataprep import ingest_index

    monkeypatch.setattr(ingest_index, "PAGE", 256)  # pages and batches far below the files
    monkeypatch.setattr(ingest_index, "BATCH_ROWS", 500)
    n = 3000
    warm, small, large = (_known_files(tmp_path, k) for k in (300, n, 4 * n))
    for folder, ws in (warm, small, large):  # imports, caches; manifests in row groups
        _peaks(folder, ws, index=True)
    _peaks(*warm, index=False)
    small_peaks, large_peaks = _peaks(*small, index=True), _peaks(*large, index=True)
    assert large_peaks[0] < 1.3 * small_peaks[0] + 256 * 1024, (small_peaks, large_peaks)
    assert large_peaks[1] < 1.3 * small_peaks[1] + 256 * 1024, (small_peaks, large_peaks)
    memory = _peaks(*large, index=False)  # the same run with dicts: O(files)
    assert memory[0] > 4 * large_peaks[0], (memory, large_peaks)
    assert len(manifests.load(large[1], "files")) == 4 * n  # written back whole
