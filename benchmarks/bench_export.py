"""Export throughput (MB/s, examples/s) against copying the same bytes, and peak memory at two
dataset sizes (the export streams: memory must not grow with the number of frames)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from common import dir_bytes, python_peak_rss_mb, row

BENCH = "export"


def make_workspace(root: Path, n_media: int, frames_per_media: int, size: int = 224):
    """A workspace of ``n_media`` x ``frames_per_media`` 224 px JPEG frames, labelled by media,
    built straight through the manifests (extraction is benchmarked elsewhere)."""
    import datetime as dt

    import cv2
    import numpy as np

    from dataprep import manifests
    from dataprep.split import split_media
    from dataprep.workspace import init_workspace

    ws = init_workspace(root, classes=["a", "b", "c"])
    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur(rng.integers(0, 255, (size, size, 3), np.uint8), (0, 0), 3)
    media_rows, frame_rows = [], []
    now = dt.datetime.now(dt.UTC)
    for m in range(n_media):
        media_id = f"{m:016x}"
        media_rows.append(
            {
                "media_id": media_id,
                "path": f"/bench/{media_id}.mp4",
                "paths": [f"/bench/{media_id}.mp4"],
                "kind": "video",
                "status": "ok",
                "label": "abc"[m % 3],
                "mode": "reference",
                "ingested_at": now,
                "fps": 10.0,
                "width": size,
                "height": size,
            }
        )
        folder = ws.frames_dir / media_id
        folder.mkdir(parents=True)
        for f in range(frames_per_media):
            image = np.roll(base, (m * 7 + f * 3) % size, axis=1)
            noise = rng.integers(0, 24, image.shape, np.uint8)
            data = cv2.imencode(".jpg", cv2.add(image, noise), [cv2.IMWRITE_JPEG_QUALITY, 90])[
                1
            ].tobytes()
            (folder / f"{f:06d}.jpg").write_bytes(data)
            frame_rows.append(
                {
                    "media_id": media_id,
                    "frame_index": f,
                    "timestamp_s": f / 10,
                    "path": f"frames/{media_id}/{f:06d}.jpg",
                    "width": size,
                    "height": size,
                    "augmented": False,
                    "copy_index": 0,
                    "fingerprint": "bench",
                }
            )
    manifests.save(ws, "media", manifests.from_records("media", media_rows))
    manifests.save(ws, "frames", manifests.from_records("frames", frame_rows))
    split_media(ws)
    return ws


def _copy_bytes(ws, target: Path) -> float:
    """The limit: read every frame file and append its bytes to one file."""
    started = time.perf_counter()
    with open(target, "wb") as out:
        for path in sorted(ws.frames_dir.rglob("*.jpg")):
            out.write(path.read_bytes())
        out.flush()
        os.fsync(out.fileno())
    return time.perf_counter() - started


def run(workdir: Path, quick: bool) -> list[dict]:
    from dataprep.export.dataset import export_dataset

    n_media, per_media = (20, 25) if quick else (40, 100)
    ws = make_workspace(workdir / "ws", n_media, per_media)
    frame_bytes = dir_bytes(ws.frames_dir)
    copy_s = min(_copy_bytes(ws, workdir / f"copy{i}.bin") for i in range(2))
    rows = []
    for unit, extra in (("frame", {}), ("clip", {"clip_len": 16, "clip_stride": 8})):
        for compression in ("none", "gzip"):
            started = time.perf_counter()
            report = export_dataset(
                ws,
                unit=unit,
                compression=compression,
                name=f"{unit}-{compression}",
                shard_size="16MB",
                **extra,
            )
            seconds = time.perf_counter() - started
            examples = sum(report.examples.values())
            read_mb = frame_bytes / 1e6 * (1 if unit == "frame" else 2)  # clips overlap 2x
            mb_s = read_mb / seconds
            copy_mb_s = frame_bytes / 1e6 / copy_s
            rows.append(
                row(
                    BENCH,
                    f"{unit}s, compression {compression}",
                    mb_s,
                    "MB/s",
                    limit="copy the same frame bytes",
                    limit_value=copy_mb_s,
                    ratio=copy_mb_s / mb_s,
                    notes=f"{examples / seconds:,.0f} examples/s; {examples} examples, "
                    f"{report.bytes_written / 1e6:,.1f} MB written in {seconds:.2f}s; "
                    "ratio = time ours / time copy",
                )
            )
    # peak memory: the same export at two sizes, each in a fresh interpreter
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    peaks = []
    small, large = (10, 40) if quick else (20, 80)
    for n in (small, large):
        folder = workdir / f"mem{n}"
        make_workspace(folder, n, per_media)
        code = (
            "from dataprep.workspace import open_workspace\n"
            "from dataprep.export.dataset import export_dataset\n"
            f"export_dataset(open_workspace({str(folder)!r}), shard_size='16MB')\n"
        )
        peak_mb, _ = python_peak_rss_mb(code, env=env)
        peaks.append((n * per_media, peak_mb))
    baseline_mb, _ = python_peak_rss_mb(
        "import dataprep.export.dataset, pandas, pyarrow.parquet, cv2\n", env=env
    )
    (n_small, mb_small), (n_large, mb_large) = peaks
    rows.append(
        row(
            BENCH,
            f"peak memory, {n_large} frames",
            mb_large,
            "MB",
            limit=f"same export of {n_small} frames",
            limit_value=mb_small,
            ratio=mb_large / mb_small,
            notes=f"{n_large // n_small}x the frames; imports alone {baseline_mb:.0f} MB; "
            "ratio near 1 = streaming",
        )
    )
    return rows
