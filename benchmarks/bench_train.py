"""Training throughput of the reference models on this machine, next to the loader's throughput.

For each model (``cnn`` and ``cnn-bn`` on frames, ``cnn-lstm`` on clips of 8 frames) the row gives
training images/s (frames/s; clips/s in the notes) measured by ``train_baseline`` itself (epochs
after the first, which includes tracing), and as its limit the throughput of the same
``dataprep.data.load`` pipeline alone (decode + normalize + shuffle + batch). ``ratio`` =
training rate / loader rate: well below 1 means the input pipeline is not the bottleneck.

Inputs: the generated gestures (32x32 videos) through ingest, frames, split, stats and export.
"""

from __future__ import annotations

import time
from pathlib import Path

from common import row

BENCH = "train"


def _workspace(workdir: Path, per_class: int):
    from dataprep.export.dataset import export_dataset
    from dataprep.frames import extract_frames
    from dataprep.ingest import ingest
    from dataprep.split import split_media
    from dataprep.stats import compute_stats
    from dataprep.testing.gestures import GESTURE_CLASSES, GestureSpec, write_gesture_set
    from dataprep.workspace import init_workspace

    write_gesture_set(workdir / "raw", GestureSpec(per_class=per_class, frames=16, size=32))
    ws = init_workspace(workdir / "ws", classes=list(GESTURE_CLASSES))
    ingest(ws, [workdir / "raw"], label_from_dir=True, jobs=2)
    extract_frames(ws, sampling="all", size="32", jobs=2)
    split_media(ws, ratios=[0.7, 0.15, 0.15], seed=0)
    compute_stats(ws, jobs=2)
    export_dataset(ws, format="tfrecord", unit="clip", clip_len=8, clip_stride=8, name="clips")
    export_dataset(ws, format="tfrecord", unit="frame", name="frames")
    return ws


def _loader_rate(export_dir: Path, batch_size: int, frames_per_example: int) -> float:
    from dataprep.data import load

    dataset = load(export_dir, "train", batch_size=batch_size, shuffle=True, seed=0)
    for _ in dataset.take(1):
        pass
    images, started = 0, time.perf_counter()
    for _ in range(2):
        for batch, _labels in dataset:
            images += int(batch.shape[0]) * frames_per_example
    return images / (time.perf_counter() - started)


def run(workdir: Path, quick: bool) -> list[dict]:
    from dataprep.train.loop import TrainOptions, train_baseline

    ws = _workspace(Path(workdir), per_class=12 if quick else 50)
    epochs = 2 if quick else 3
    rows = []
    for model, export, batch, frames in (
        ("cnn", "frames", 64, 1),
        ("cnn-bn", "frames", 64, 1),
        ("cnn-lstm", "clips", 16, 8),
    ):
        loader = _loader_rate(ws.exports_dir / export, batch, frames)
        result = train_baseline(
            ws,
            TrainOptions(
                export=export,
                model=model,
                epochs=epochs,
                batch_size=batch,
                seed=0,
                patience=epochs,
                run_name=f"bench-{model}",
            ),
            log=lambda line: None,
        )
        rate = result.train_images_per_s
        clips = (
            f"; {result.train_clips_per_s:.1f} clips/s (loader {loader / frames:.1f} clips/s)"
            if result.train_clips_per_s
            else ""
        )
        rows.append(
            row(
                BENCH,
                f"{model}: training images/s (CPU, batch {batch})",
                rate,
                "images/s",
                limit="dataprep.data.load alone",
                limit_value=loader,
                ratio=rate / loader,
                notes=f"ratio = training / loader; < 1: the loader is not the bottleneck{clips}",
            )
        )
    return rows
