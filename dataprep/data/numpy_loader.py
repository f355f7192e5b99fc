"""The loader without TensorFlow: :func:`iter_numpy`."""

from __future__ import annotations

import os
import random
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from dataprep.data.options import (
    ReadOptions,
    ReadPlan,
    augment_numpy,
    element_seed,
    plan_read,
)
from dataprep.data.records import decode_images, decode_record
from dataprep.tfrecord_reader import iter_records


def iter_numpy(
    export_dir: Path | str,
    split: str,
    options: ReadOptions | None = None,
    *,
    num_workers: int | None = None,
    **overrides: Any,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yields ``(images float32, labels int32)`` numpy batches without importing TensorFlow.

    The same options (:class:`ReadOptions`, or its fields as keywords) and per-example
    processing as :func:`load` (OpenCV decode and bilinear resize), for PyTorch, JAX or Keras on
    another backend. Records are read in the same interleaved order as :func:`load` with
    ``shuffle=False``; every record's checksums are checked while reading. Decoding runs in
    ``num_workers`` threads (default min(4, cores)); the order never depends on them
    (``deterministic`` is accepted for symmetry with :func:`load`: here the order is always a
    function of ``seed``).

    Raises:
        ExportNotReady, UsageError, CorruptShardError: naming the file and record.
    """
    from dataprep.export.shards import read_ahead

    plan = plan_read(export_dir, split, options, overrides, reader_checks_data=True)
    options = plan.options
    rng = random.Random(options.seed)
    base = options.seed if options.seed is not None else rng.randrange(2**31)
    stream = enumerate(_shuffled(_records(plan, rng), plan, rng))
    workers = num_workers or min(4, os.cpu_count() or 1)
    batch_images: list[np.ndarray] = []
    batch_labels: list[int] = []
    for _, (images, label) in read_ahead(
        stream,
        lambda item: _prepare(plan, base, item[0], *item[1]),
        workers=workers,
        window=4 * workers,
    ):
        batch_images.append(images)
        batch_labels.append(label)
        if len(batch_images) == options.batch_size:
            yield np.stack(batch_images), np.asarray(batch_labels, np.int32)
            batch_images, batch_labels = [], []
    if batch_images and not options.drop_remainder:
        yield np.stack(batch_images), np.asarray(batch_labels, np.int32)


def _records(plan: ReadPlan, rng: random.Random) -> Iterator[tuple[bytes, Path, int]]:
    """``(record, shard, record number)`` epoch after epoch (one without ``repeat``)."""
    while True:
        order = list(plan.paths)
        if plan.options.shuffle:
            rng.shuffle(order)
        yield from _located(order, plan.cycle)
        if not plan.options.repeat:
            return


def _shuffled(stream: Iterable, plan: ReadPlan, rng: random.Random) -> Iterator:
    """A shuffle buffer of ``plan.shuffle_buffer`` items, like ``tf.data``'s."""
    if not plan.options.shuffle:
        yield from stream
        return
    size = plan.shuffle_buffer
    buffer: list = []
    for item in stream:
        if len(buffer) < size:
            buffer.append(item)
            continue
        slot = rng.randrange(size)
        yield buffer[slot]
        buffer[slot] = item
    rng.shuffle(buffer)
    yield from buffer


def _prepare(plan: ReadPlan, base: int, index: int, data: bytes, path: Path, record: int):
    """One example: decode, augment, resize, scale (clip padding zeroed); runs in threads."""
    import cv2

    features = decode_record(data, plan.unit, path, record)
    images = decode_images(features, plan.unit, plan.channels, path, record)
    if plan.pipeline is not None:
        images = augment_numpy(plan.pipeline, images, element_seed(base, index), plan.clip)
    if plan.size is not None and images.shape[-3:-1] != plan.size:
        images = images.astype(np.float32)
        height, width = plan.size
        frames = images if plan.clip else [images]
        resized = [cv2.resize(f, (width, height), interpolation=cv2.INTER_LINEAR) for f in frames]
        images = np.stack(resized) if plan.clip else resized[0]
        if plan.channels == 1:
            images = images[..., None]
    images = images.astype(np.float32, copy=False) * plan.scale + plan.offset
    if plan.clip:  # padding: exactly zero from the real length on (see the package doc)
        images[max(0, int(features.get("length", len(images)))) :] = 0.0
    return images, int(features["label"])


def _located(paths: list[Path], cycle: int) -> Iterator[tuple[bytes, Path, int]]:
    """Yields ``(record, shard path, record number)`` from ``cycle`` shards at a time, one
    record of each in turn: the order of ``tf.data``'s ``interleave`` with ``block_length=1``."""
    pending = list(paths)
    slots: list = []

    def opened(path: Path):
        return ((data, path, i) for i, data in enumerate(iter_records(path)))

    while pending and len(slots) < cycle:
        slots.append(opened(pending.pop(0)))
    while any(s is not None for s in slots):
        for i in range(len(slots)):
            if slots[i] is None:
                continue
            try:
                yield next(slots[i])
            except StopIteration:  # like tf.data: the next shard takes the slot on the next turn
                slots[i] = opened(pending.pop(0)) if pending else None
