"""Ingest throughput against the raw read+hash speed of the same bytes, and peak memory."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
from common import python_peak_rss_mb, row, timed


def _raw_read_hash(paths: list[Path]) -> None:
    for path in paths:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)


def _raw_video(path: Path, megabytes: int, width: int = 640, height: int = 480) -> Path:
    """A valid rawvideo/AVI file of about ``megabytes`` MB (fast to write, real to demux)."""
    import av

    frames = max(2, megabytes * 1_000_000 // (width * height * 3))
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 255, (height, width, 3), np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("rawvideo", rate=Fraction(25))
        stream.width, stream.height, stream.pix_fmt = width, height, "rgb24"
        for i in range(frames):
            noise[0, 0, 0] = i % 256
            for packet in stream.encode(av.VideoFrame.from_ndarray(noise, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _ingest_seconds(paths_root: Path, workdir: Path, jobs: int) -> float:
    from dataprep.ingest import ingest
    from dataprep.workspace import init_workspace

    target = workdir / f"ws-{jobs}"

    def once():
        shutil.rmtree(target, ignore_errors=True)
        ingest(init_workspace(target), [paths_root], jobs=jobs)

    return timed(once, repeat=2)


def _case(name: str, root: Path, workdir: Path) -> list[dict]:
    files = sorted(p for p in root.rglob("*") if p.is_file())
    total_mb = sum(p.stat().st_size for p in files) / 1e6
    _raw_read_hash(files)  # warm the page cache for both sides
    raw = timed(lambda: _raw_read_hash(files), repeat=3)
    raw_mbs = total_mb / raw
    rows = []
    cores = os.cpu_count() or 1
    for jobs in sorted({1, cores}):
        seconds = _ingest_seconds(root, workdir, jobs)
        rows.append(
            row(
                "ingest",
                f"{name}: {len(files)} files, {total_mb:,.0f} MB, --jobs {jobs}",
                total_mb / seconds,
                "MB/s",
                limit="sha256 read+hash, 1 thread",
                limit_value=raw_mbs,
                ratio=(total_mb / seconds) / raw_mbs,
                notes=f"{len(files) / seconds:,.0f} files/s",
            )
        )
    return rows


def run(workdir: Path, quick: bool) -> list[dict]:
    from dataprep.testing.media import write_image

    small = workdir / "small"
    rng = np.random.default_rng(1)
    for i in range(60 if quick else 400):
        image = rng.integers(0, 255, (96, 128, 3), np.uint8)
        write_image(small / f"{i:04d}.png", image=image)
    large = workdir / "large"
    large.mkdir()
    for i in range(3):
        _raw_video(large / f"big{i}.avi", 20 if quick else 150)
    rows = _case("small images", small, workdir) + _case("large videos", large, workdir)

    huge_dir = workdir / "huge"
    huge_dir.mkdir()
    huge = _raw_video(huge_dir / "huge.avi", 300 if quick else 2500, 1280, 720)
    size_gb = huge.stat().st_size / 1e9
    code = (
        "from dataprep.ingest import ingest\n"
        "from dataprep.workspace import init_workspace\n"
        f"ingest(init_workspace({str(workdir / 'ws-huge')!r}), [{str(huge_dir)!r}], jobs=1)\n"
    )
    peak_mb, seconds = python_peak_rss_mb(
        code, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    )
    baseline_mb, _ = python_peak_rss_mb(
        "from dataprep.ingest import ingest\nimport av, cv2, pandas, pyarrow.parquet\n"
    )
    rows.append(
        row(
            "ingest",
            f"peak memory, one {size_gb:.1f} GB video",
            peak_mb,
            "MB",
            limit="same imports, no work",
            limit_value=baseline_mb,
            ratio=peak_mb / baseline_mb,
            notes=f"{size_gb * 1000 / seconds:,.0f} MB/s; streams: memory does not grow with size",
        )
    )
    huge.unlink()
    return rows
