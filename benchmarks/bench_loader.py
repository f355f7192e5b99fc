"""Loader images/s for 224 px JPEG frames: the full pipeline (decode + normalize, and with the
medium augmentation preset) against decode_jpeg alone with the same parallelism (the limit),
and against pre-decoded tensors in memory. Target: the pipeline adds at most 20% over decode."""

from __future__ import annotations

import time
from pathlib import Path

from common import row

BENCH = "loader"
BATCH = 64


def _rate(dataset, max_batches: int | None = None) -> tuple[float, int]:
    """Images per second over one pass (after a one-batch warm-up)."""
    iterator = iter(dataset)
    next(iterator)
    count = 0
    started = time.perf_counter()
    for i, (images, _) in enumerate(iterator):
        count += int(images.shape[0])
        if max_batches and i + 1 >= max_batches:
            break
    return count / (time.perf_counter() - started), count


def run(workdir: Path, quick: bool) -> list[dict]:
    import numpy as np
    import tensorflow as tf
    from bench_export import make_workspace

    from dataprep.data import iter_numpy, load, read_info, shard_paths
    from dataprep.export.dataset import export_dataset

    n_media, per_media = (12, 50) if quick else (30, 100)
    ws = make_workspace(workdir / "ws", n_media, per_media)
    (ws.manifests / "stats.json").write_text(
        '{"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25], "scale": "0-1", '
        '"count_pixels": 1, "count_frames": 1, "split": "train", "fingerprint": "bench"}'
    )
    export_dataset(ws, name="bench", shard_size="4MB")
    folder = ws.exports_dir / "bench"
    info = read_info(folder)
    paths = [str(p) for p in shard_paths(folder, "train", info)]
    autotune = tf.data.AUTOTUNE

    def decode_only():
        spec = {
            "image": tf.io.FixedLenFeature([], tf.string),
            "label": tf.io.FixedLenFeature([], tf.int64),
        }
        files = tf.data.Dataset.from_tensor_slices(paths)
        records = files.interleave(
            tf.data.TFRecordDataset,
            cycle_length=min(len(paths), 8),
            num_parallel_calls=autotune,
            deterministic=False,
        )

        def parse(serialized):
            parsed = tf.io.parse_single_example(serialized, spec)
            image = tf.io.decode_jpeg(parsed["image"], channels=3, dct_method="INTEGER_ACCURATE")
            return image, parsed["label"]

        return (
            records.map(parse, num_parallel_calls=autotune, deterministic=False)
            .batch(BATCH)
            .prefetch(autotune)
        )

    def decode_float():
        def to_float(x, y):
            return tf.cast(x, tf.float32), y

        return decode_only().map(to_float, num_parallel_calls=autotune)

    # the machine may be shared: alternate the variants and keep each one's best pass
    repeats = 3 if quick else 5
    rates: dict[str, list[float]] = {"decode": [], "float": [], "load": []}
    for _ in range(repeats):
        rates["decode"].append(_rate(decode_only())[0])
        rates["float"].append(_rate(decode_float())[0])
        rates["load"].append(_rate(load(folder, "train", batch_size=BATCH))[0])
    decode_rate, float_rate, plain_rate = (max(rates[k]) for k in ("decode", "float", "load"))
    aug_rate, _ = _rate(load(folder, "train", batch_size=BATCH, augment="medium"))
    images = np.stack([img for img, _ in decode_only().unbatch().take(512).as_numpy_iterator()])
    scale = tf.constant(np.full(3, 1 / 255 / 0.25, np.float32))
    offset = tf.constant(np.full(3, -2.0, np.float32))

    @tf.function(jit_compile=True)
    def scale_batch(x):  # the same fused normalization as load()
        return tf.cast(x, tf.float32) * scale + offset

    def scale_pair(x, y):
        return scale_batch(x), y

    memory = (
        tf.data.Dataset.from_tensor_slices((images, np.zeros(len(images), np.int32)))
        .repeat(4)
        .batch(BATCH)
        .map(scale_pair, num_parallel_calls=autotune)
        .prefetch(autotune)
    )
    memory_rate = max(_rate(memory)[0] for _ in range(repeats))
    numpy_rate, _ = _rate(
        ((x, y) for x, y in iter_numpy(folder, "train", batch_size=BATCH)),
        max_batches=10 if quick else 20,
    )
    n = info["splits"]["train"]["examples"]
    note = f"{n} train frames 224x224 JPEG q90, batch {BATCH}, CPU"
    return [
        row(BENCH, "decode_jpeg alone (the limit)", decode_rate, "images/s", notes=note),
        row(
            BENCH,
            "decode_jpeg + cast to float32 (no normalize)",
            float_rate,
            "images/s",
            limit="decode_jpeg alone, same parallelism",
            limit_value=decode_rate,
            ratio=decode_rate / float_rate,
            notes="the cost of the float32 output alone (4x the bytes of uint8)",
        ),
        row(
            BENCH,
            "load(): decode + normalize + shuffle",
            plain_rate,
            "images/s",
            limit="decode_jpeg alone, same parallelism",
            limit_value=decode_rate,
            ratio=decode_rate / plain_rate,
            notes="ratio = time per image ours / decode alone; target <= 1.2; best of "
            f"{repeats} alternating passes",
        ),
        row(
            BENCH,
            "load(): + medium augmentation",
            aug_rate,
            "images/s",
            limit="decode_jpeg alone, same parallelism",
            limit_value=decode_rate,
            ratio=decode_rate / aug_rate,
            notes="albumentations through tf.numpy_function (parallel calls)",
        ),
        row(
            BENCH,
            "pre-decoded tensors in memory + normalize",
            memory_rate,
            "images/s",
            limit="load(): decode + normalize",
            limit_value=plain_rate,
            ratio=plain_rate / memory_rate,
            notes="the ceiling without decoding; ratio = time in-memory / time ours",
        ),
        row(
            BENCH,
            "iter_numpy (no TensorFlow, decode threads)",
            numpy_rate,
            "images/s",
            limit="load(): decode + normalize",
            limit_value=plain_rate,
            ratio=plain_rate / numpy_rate,
            notes="pure Python TFRecord + cv2 decode",
        ),
    ]
