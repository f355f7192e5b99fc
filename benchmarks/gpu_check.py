#!/usr/bin/env python3
"""GPU check of the reference models, for machines with JAX or PyTorch and no TensorFlow.

What it does (a few minutes):

1. Picks the Keras backend: ``KERAS_BACKEND`` if set, else ``jax`` when importable, else ``torch``
   (never TensorFlow: the point is to run without it), and reports the device it found (GPU name
   and count, or CPU: the script also runs on a CPU-only machine and says so).
2. Writes a small synthetic TFRecord export (the generated gestures, as frames and as clips) with
   dataprep's pure-Python TFRecord encoder, or uses ``--export DIR`` / ``--clip-export DIR``.
3. Measures, for ``cnn``, ``cnn-bn`` (frames) and ``cnn-lstm`` (clips):
   - loader: images/s of ``dataprep.data.iter_numpy`` (decode + normalize, no TensorFlow);
   - compute: images/s of training steps on batches already in memory, with mixed precision
     (``mixed_float16`` on a GPU, float32 on a CPU unless ``--precision`` says otherwise);
   - end to end: images/s of ``fit`` fed by ``iter_numpy``.
   It then says which is the limit: the input pipeline (loader slower than compute) or the
   device (compute slower than the loader).

Usage::

    KERAS_BACKEND=torch python3 benchmarks/gpu_check.py [--seconds 20] [--batch-size 128]
    python3 benchmarks/gpu_check.py --json results.json

Needs numpy, opencv-python-headless, keras>=3 and jax or torch; nothing else of dataprep's
dependencies (no TensorFlow, PyAV, pandas).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def choose_backend() -> str:
    """KERAS_BACKEND if set, else jax, else torch; set before Keras is imported."""
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    for name in ("jax", "torch"):
        if importlib.util.find_spec(name) is not None:
            os.environ["KERAS_BACKEND"] = name
            return name
    raise SystemExit("gpu_check: neither jax nor torch is installed; install one (with CUDA)")


def write_synthetic_export(
    folder: Path, unit: str, *, videos_per_class: int, size: int, frames: int, clip_len: int
) -> Path:
    """A TFRecord export of generated gestures (JPEG frames), written without TensorFlow."""
    import cv2
    import numpy as np

    from dataprep.testing.gestures import GESTURE_CLASSES, GestureSpec, gesture_frames
    from dataprep.tfrecord_reader import encode_example, encode_sequence_example, frame_record

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    spec = GestureSpec(size=size, frames=frames)
    records, pixels = [], []
    for label, name in enumerate(GESTURE_CLASSES):
        for video in range(videos_per_class):
            images = gesture_frames(name, rng, spec)
            pixels.append(np.stack(images)[::4])
            encoded = [
                cv2.imencode(
                    ".jpg", cv2.cvtColor(im, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90]
                )[1].tobytes()
                for im in images
            ]
            media_id = f"{name}-{video}"
            if unit == "frame":
                for index, data in enumerate(encoded):
                    records.append(
                        encode_example(
                            {
                                "image": data,
                                "height": size,
                                "width": size,
                                "channels": 3,
                                "label": label,
                                "label_name": name,
                                "media_id": media_id,
                                "frame_index": index,
                                "copy_index": 0,
                                "timestamp_s": index / 10,
                            }
                        )
                    )
            else:
                for start in range(0, frames - clip_len + 1, clip_len):
                    window = encoded[start : start + clip_len]
                    records.append(
                        encode_sequence_example(
                            {
                                "label": label,
                                "label_name": name,
                                "media_id": media_id,
                                "copy_index": 0,
                                "start_frame": start,
                                "end_frame": start + clip_len - 1,
                                "fps": 10.0,
                                "length": clip_len,
                                "height": size,
                                "width": size,
                                "channels": 3,
                            },
                            {"frames": window, "frame_index": list(range(start, start + clip_len))},
                        )
                    )
    order = np.random.default_rng(1).permutation(len(records))
    shard = "train-00000-of-00001.tfrecord"
    (folder / shard).write_bytes(b"".join(frame_record(records[i]) for i in order))
    stacked = np.concatenate(pixels).astype(np.float64) / 255.0
    info = {
        "format": "tfrecord",
        "unit": unit,
        "name": f"gpu-check-{unit}",
        "class_names": list(GESTURE_CLASSES),
        "num_classes": len(GESTURE_CLASSES),
        "image": {"height": size, "width": size, "channels": 3, "encoding": "jpeg"},
        "clip": {"length": clip_len, "stride": clip_len} if unit == "clip" else None,
        "splits": {"train": {"examples": len(records), "shards": [shard], "by_class": {}}},
        "compression": "none",
        "stats": {
            "mean": stacked.mean(axis=(0, 1, 2)).tolist(),
            "std": stacked.std(axis=(0, 1, 2)).tolist(),
            "scale": "0-1",
        },
        "augmentation": None,
        "feature_spec": {},
        "fingerprints": {},
        "dataprep_version": "gpu_check",
    }
    from dataprep.data.info import write_info

    write_info(folder, info)
    return folder


def loader_rate(export: Path, batch_size: int, seconds: float, frames_per_example: int):
    """Images/s of iter_numpy (repeat, shuffled), and a list of batches for the compute test."""
    from dataprep.data import iter_numpy

    batches, images = [], 0
    iterator = iter_numpy(
        export, "train", batch_size=batch_size, repeat=True, seed=0, drop_remainder=True
    )
    next(iterator)  # open files, warm caches
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        batch = next(iterator)
        if len(batches) < 4:
            batches.append(batch)
        images += len(batch[1]) * frames_per_example
    return images / (time.perf_counter() - started), batches


def compute_rate(model, batches, seconds: float, frames_per_example: int) -> float:
    """Images/s of train steps on in-memory batches (after two warm-up steps)."""
    for images, labels in batches[:2]:
        model.train_on_batch(images, labels)
    count, steps, started = 0, 0, time.perf_counter()
    while time.perf_counter() - started < seconds or steps < 3:
        images, labels = batches[steps % len(batches)]
        model.train_on_batch(images, labels)
        count += len(labels) * frames_per_example
        steps += 1
    _sync()
    return count / (time.perf_counter() - started)


def end_to_end_rate(
    model, export: Path, batch_size: int, seconds: float, frames_per_example: int
) -> float:
    """Images/s of fit() fed by iter_numpy for about ``seconds``."""
    from dataprep.data import iter_numpy

    iterator = iter_numpy(
        export, "train", batch_size=batch_size, repeat=True, seed=1, drop_remainder=True
    )
    model.fit(iterator, steps_per_epoch=2, epochs=1, verbose=0)  # warm-up
    steps, started, count = 4, time.perf_counter(), 0
    while time.perf_counter() - started < seconds:
        model.fit(iterator, steps_per_epoch=steps, epochs=1, verbose=0)
        count += steps * batch_size * frames_per_example
    _sync()
    return count / (time.perf_counter() - started)


def _sync() -> None:
    import keras

    if keras.backend.backend() == "torch":
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()


def check_model(
    name: str, export: Path, *, batch_size: int, seconds: float, clip_len: int, size: int
) -> dict:
    from dataprep.train.models import build_model, compile_model

    frames_per_example = clip_len if name == "cnn-lstm" else 1
    shape = (clip_len, size, size, 3) if name == "cnn-lstm" else (size, size, 3)
    load_rate, batches = loader_rate(export, batch_size, seconds, frames_per_example)
    model = build_model(name, input_shape=shape, num_classes=4)
    compile_model(model, name, lr=1e-3, steps_per_epoch=100, epochs=1)
    compute = compute_rate(model, batches, seconds, frames_per_example)
    both = end_to_end_rate(model, export, batch_size, seconds, frames_per_example)
    limit = "input pipeline" if load_rate < compute else "device (model compute)"
    return {
        "model": name,
        "batch_size": batch_size,
        "loader_images_per_s": load_rate,
        "compute_images_per_s": compute,
        "end_to_end_images_per_s": both,
        "clips_per_s": both / frames_per_example if frames_per_example > 1 else None,
        "limit": limit,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="per measurement")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="frames per batch (default 256 on a GPU, 32 on a CPU; clips / 8)",
    )
    parser.add_argument("--size", type=int, default=32, help="frame side in pixels")
    parser.add_argument(
        "--precision",
        choices=["auto", "mixed_float16", "mixed_bfloat16", "float32"],
        default="auto",
    )
    parser.add_argument("--models", default="cnn,cnn-bn,cnn-lstm")
    parser.add_argument("--export", type=Path, help="a frame export to read instead")
    parser.add_argument("--clip-export", type=Path, help="a clip export to read instead")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    backend = choose_backend()
    import keras

    from dataprep.train.devices import backend_devices

    device = backend_devices()
    precision = args.precision
    if precision == "auto":
        precision = "mixed_float16" if device["gpu"] else "float32"
    keras.mixed_precision.set_dtype_policy(precision)
    batch = args.batch_size or (256 if device["gpu"] else 32)
    where = f"{device['name']} x{device.get('count', 1)}" if device["gpu"] else "CPU (no GPU found)"
    print(
        f"backend {backend}; device {where}; precision {precision}; "
        f"tensorflow imported: {'tensorflow' in sys.modules}",
        flush=True,
    )

    clip_len = 8
    results = {"backend": backend, "device": device, "precision": precision, "models": []}
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        per_class = 40
        frame_export = args.export or write_synthetic_export(
            Path(tmp) / "frames",
            "frame",
            videos_per_class=per_class,
            size=args.size,
            frames=16,
            clip_len=clip_len,
        )
        clip_export = args.clip_export or write_synthetic_export(
            Path(tmp) / "clips",
            "clip",
            videos_per_class=per_class,
            size=args.size,
            frames=16,
            clip_len=clip_len,
        )
        for name in args.models.split(","):
            clips = name == "cnn-lstm"
            row = check_model(
                name,
                clip_export if clips else frame_export,
                batch_size=max(1, batch // clip_len) if clips else batch,
                seconds=args.seconds,
                clip_len=clip_len,
                size=args.size,
            )
            results["models"].append(row)
            extra = f", {row['clips_per_s']:.1f} clips/s" if row["clips_per_s"] else ""
            print(
                f"{name:9s} loader {row['loader_images_per_s']:9.0f} img/s | compute "
                f"{row['compute_images_per_s']:9.0f} img/s | fit on loader "
                f"{row['end_to_end_images_per_s']:9.0f} img/s{extra} | limit: {row['limit']}",
                flush=True,
            )
    results["tensorflow_imported"] = "tensorflow" in sys.modules
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
