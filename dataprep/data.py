"""Input pipelines over a TFRecord export: ``load`` (tf.data) and ``iter_numpy`` (no TensorFlow).

Both read ``exports/<name>/`` as written by ``dataprep export --format tfrecord`` and yield
``(images, labels)`` batches: images float32 ``[B, H, W, C]`` (frames) or ``[B, T, H, W, C]``
(clips), labels int32 ``[B]`` (indices into ``dataset_info.json``'s ``class_names``).

Per example: decode -> augment (optional; albumentations, the same parameters for every frame
of a clip) -> resize to ``image_size`` (bilinear) -> scale. With ``normalize=True`` pixels are
scaled to [0, 1] and standardized with the export's stats (``(x - mean) / std``, RGB); when the
export has no stats they are only scaled to [0, 1] (a warning says so). With ``normalize=False``
images are float32 in [0, 255], for models with their own rescaling layer.

Clips: the export pads a clip of a media shorter than the clip length by repeating its last
frame and stores the real frame count in the context feature ``length``. Both loaders set every
frame at a position ``>= length`` to exactly zero, last (after augmentation and normalization),
so a padded frame is all zeros in both, and a model masks the time steps whose frame is all
zeros (``PaddedFrameMask`` of the ``cnn-lstm``). A real frame after normalization is never
exactly all-zero (every pixel would have to equal the export's mean).

Before reading, every shard's record framing is checked (cheap: one 12-byte read per record), so
a truncated or damaged shard raises :class:`~dataprep.tfrecord_reader.CorruptShardError` naming
the file and the record, instead of a ``DataLossError`` deep inside TensorFlow. ``verify="full"``
also checks each record's data checksum up front (reads the export once); ``iter_numpy`` always
checks both while reading. Damage found by TensorFlow while a ``load`` dataset is iterated
(``DataLossError``) is turned into the same error by :func:`naming_corrupt_shards`.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import random
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np

from dataprep.errors import DataprepError, UsageError
from dataprep.tfrecord_reader import (
    CorruptShardError,
    is_gzip_path,
    iter_records,
    parse_example,
    parse_sequence_example,
    scan_framing,
)

INFO_NAME = "dataset_info.json"
Verify = Literal["framing", "full", "none"]
DEFAULT_CYCLE = 8  # shards read at once (interleave)


class ExportNotReady(DataprepError):
    """The folder is not a complete dataprep TFRecord export."""


# ------------------------------------------------------------------------------ export access


def read_info(export_dir: Path | str) -> dict[str, Any]:
    """Reads ``dataset_info.json`` of an export.

    Raises:
        ExportNotReady: when the file is absent (the export is missing or unfinished).
    """
    path = Path(export_dir) / INFO_NAME
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ExportNotReady(
            f"{path} is missing: {export_dir} is not a finished export; run `dataprep export` "
            "(again) to complete it"
        ) from None
    except ValueError as exc:
        raise ExportNotReady(f"{path}: not valid JSON ({exc}); re-run `dataprep export`") from None


def shard_paths(export_dir: Path | str, split: str, info: dict | None = None) -> list[Path]:
    """The shard files of ``split``, in their written order.

    Raises:
        UsageError: when the export is not TFRecord or has no such split, or it is empty.
    """
    info = info or read_info(export_dir)
    if info.get("format") != "tfrecord":
        raise UsageError(
            f"{export_dir} is a {info.get('format')} export; the loaders read tfrecord exports "
            "(use keras.utils.image_dataset_from_directory or pandas for the others)"
        )
    if split not in info["splits"]:
        raise UsageError(
            f"split {split!r} is not in {export_dir}; use one of {', '.join(info['splits'])}"
        )
    shards = info["splits"][split]["shards"]
    if not shards:
        raise UsageError(
            f"split {split!r} of {export_dir} has no examples; check "
            "`dataprep split` and the labels"
        )
    return [Path(export_dir) / name for name in shards]


def verify_export(
    export_dir: Path | str, split: str | None = None, *, full: bool = True
) -> dict[str, int]:
    """Checks every shard of an export (or of one split); returns ``{shard name: records}``.

    Args:
        export_dir: the export folder.
        split: one split, or all.
        full: check each record's data checksum too (reads everything), not only the framing.

    Raises:
        CorruptShardError: naming the first damaged file and record.
        ExportNotReady: when the export is unfinished.
    """
    info = read_info(export_dir)
    counts: dict[str, int] = {}
    for name in [split] if split else [s for s, v in info["splits"].items() if v["shards"]]:
        expected = info["splits"][name]["examples"]
        found = 0
        for path in shard_paths(export_dir, name, info):
            count = sum(1 for _ in iter_records(path)) if full else scan_framing(path)
            counts[path.name] = count
            found += count
        if found != expected:
            raise CorruptShardError(
                f"{export_dir}: split {name} has {found} records in its shards but "
                f"{INFO_NAME} says {expected}; re-run `dataprep export --overwrite`"
            )
    return counts


def find_corrupt_record(export_dir: Path | str, split: str) -> None:
    """Looks for the damaged record of a split; raises when it finds one, else returns.

    Checks every record's framing and data checksums (:func:`verify_export` with ``full``),
    then that every record parses and every image in it decodes. Reads (and decodes) the whole
    split: meant for after a failure, to name its cause.

    Raises:
        CorruptShardError: naming the first damaged file and record.
    """
    verify_export(export_dir, split, full=True)
    info = read_info(export_dir)
    channels = int(info["image"].get("channels") or 3)
    for path in shard_paths(export_dir, split, info):
        for index, data in enumerate(iter_records(path)):
            features = _decode_record(data, info["unit"], path, index)
            images = features["frames"] if info["unit"] == "clip" else [features["image"]]
            for image in images:
                try:
                    decode_image(image, channels)
                except ValueError:
                    raise CorruptShardError(
                        f"{path.name}: record {index}: an image does not decode; the shard "
                        f"{path} is damaged, re-run `dataprep export --overwrite`"
                    ) from None


_DECODE_WORDS = ("decode", "jpeg", "png", "image", "parse", "corrupt", "truncated")


def _is_damage_error(exc: BaseException) -> bool:
    """True for TensorFlow's errors about unreadable records (checksums, decompression,
    protobuf parsing, image decoding)."""
    import sys

    tf = sys.modules.get("tensorflow")
    if tf is None:
        return False
    if isinstance(exc, tf.errors.DataLossError):
        return True
    if isinstance(exc, tf.errors.InvalidArgumentError):
        message = str(exc).lower()
        return any(word in message for word in _DECODE_WORDS)
    return False


@contextlib.contextmanager
def naming_corrupt_shards(export_dir: Path | str, *splits: str) -> Iterator[None]:
    """Turns TensorFlow's errors about damaged records, raised while iterating :func:`load`
    datasets of ``splits`` (``fit``, ``evaluate``, ``predict``, a plain ``for``), into a
    :class:`CorruptShardError` naming the file and record.

    ``load`` checks only the record framing up front (cheap), so a flipped bit inside a
    record's data surfaces as ``tf.errors.DataLossError`` during iteration. Then this looks for
    the culprit (:func:`find_corrupt_record`) and raises its error; when it finds none, the
    original error propagates unchanged.

    Example::

        with naming_corrupt_shards(export_dir, "train", "val"):
            model.fit(load(export_dir, "train", ...), validation_data=load(export_dir, "val", ...))

    Raises:
        CorruptShardError: naming the damaged file and record.
    """
    try:
        yield
    except Exception as exc:
        if not _is_damage_error(exc):
            raise
        for split in splits:
            find_corrupt_record(export_dir, split)
        raise


def _check(export_dir: Path, split: str, verify: Verify) -> None:
    if verify == "none":
        return
    if verify not in ("framing", "full"):
        raise UsageError(f"verify={verify!r}: use framing, full or none")
    verify_export(export_dir, split, full=verify == "full")


def _image_size(info: dict, image_size: int | tuple[int, int] | None) -> tuple[int, int] | None:
    """The (height, width) to resize to, or None to keep the stored size (which must be fixed)."""
    if image_size:  # None or 0: keep the stored size
        if isinstance(image_size, int):
            return image_size, image_size
        height, width = image_size
        return int(height), int(width)
    if info["image"].get("height") is None or info["image"].get("width") is None:
        raise UsageError(
            f"the frames of this export vary in size ({info['image'].get('sizes')}); pass "
            "image_size=(height, width) to resize them for batching"
        )
    return None


def _unit(info: dict, unit: str | None) -> str:
    if unit is not None and unit != info["unit"]:
        raise UsageError(
            f"unit={unit!r} but the export holds {info['unit']}s; "
            f"use unit={info['unit']!r} or export with --unit {unit}"
        )
    return info["unit"]


def _mean_std(info: dict, normalize: bool) -> tuple[np.ndarray, np.ndarray] | None:
    if not normalize:
        return None
    stats = info.get("stats")
    if not stats:
        warnings.warn(
            "the export has no normalization stats (run `dataprep stats` before "
            "exporting); images are only scaled to [0, 1]",
            stacklevel=3,
        )
        return np.zeros(3, np.float32), np.ones(3, np.float32)
    return np.asarray(stats["mean"], np.float32), np.asarray(stats["std"], np.float32)


def _scale_offset(mean_std, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """``images * scale + offset`` == ``(images / 255 - mean) / std`` (float32, per channel);
    scale 1 and offset 0 without normalization."""
    if mean_std is None:
        return np.ones(channels, np.float32), np.zeros(channels, np.float32)
    mean, std = (np.asarray(v, np.float32)[:channels] for v in mean_std)
    return (np.float32(1.0 / 255.0) / std).astype(np.float32), (-mean / std).astype(np.float32)


def _pipeline(augment):
    """None, or an albumentations pipeline from a preset name / file path (or given as is)."""
    if augment is None or augment is False:
        return None
    if isinstance(augment, (str, Path)):
        from dataprep.augment import load_pipeline

        return load_pipeline(augment)
    return augment


_THREAD_PIPELINES = threading.local()


def _augment_numpy(pipeline, images: np.ndarray, seed: int, clip: bool) -> np.ndarray:
    """Augments with a per-thread copy of ``pipeline`` (seeding is pipeline state, and
    ``tf.numpy_function`` runs calls in parallel threads)."""
    from dataprep.augment import augment_clip, augment_image

    copies = getattr(_THREAD_PIPELINES, "copies", None)
    if copies is None:
        copies = _THREAD_PIPELINES.copies = {}
    local = copies.get(id(pipeline))
    if local is None:
        local = copies[id(pipeline)] = copy.deepcopy(pipeline)
    if clip:
        return np.asarray(augment_clip(local, images, int(seed)), np.uint8)
    return np.asarray(augment_image(local, images, int(seed)), np.uint8)


# --------------------------------------------------------------------------------- tf.data


def load(
    export_dir: Path | str,
    split: str,
    *,
    batch_size: int,
    unit: Literal["frame", "clip"] | None = None,
    augment: Any = None,
    normalize: bool = True,
    shuffle: bool = True,
    repeat: bool = False,
    image_size: int | tuple[int, int] | None = None,
    seed: int | None = None,
    deterministic: bool = False,
    shuffle_buffer: int | None = None,
    cycle_length: int | None = None,
    drop_remainder: bool = False,
    verify: Verify = "framing",
):
    """A ``tf.data.Dataset`` of ``(images float32, labels int32)`` batches from an export.

    Interleaved parallel reads over the shards, parallel decode, optional augmentation through
    ``tf.numpy_function`` (parallel calls; one set of parameters per clip), resize, scaling,
    batch and prefetch, with AUTOTUNE throughout. Clip frames at positions ``>= length`` (the
    padding of short media) come out as exact zeros.

    Args:
        export_dir: ``exports/<name>`` of a ``--format tfrecord`` export.
        split: train, val or test.
        batch_size: examples per batch.
        unit: frame or clip; must match the export (None: take the export's).
        augment: None, a preset name (``"light"``, ``"medium"``, ``"heavy"``) or pipeline file
            for ``dataprep.augment.load_pipeline``, or an albumentations pipeline. Its output
            must keep the clip length; when it changes the image size, pass ``image_size``
            (the resize comes after it).
        normalize: standardize with the export's stats (see the module doc).
        shuffle: shuffle shard order and examples (buffer ``shuffle_buffer``).
        repeat: repeat forever (reshuffled every epoch).
        image_size: resize to ``S`` or ``(H, W)``; required when stored frames vary in size
            (None or 0: keep the stored size).
        seed: seed of shuffling and augmentation (None: random).
        deterministic: fixed element order given the seed (slower); a seed of 0 when None.
        shuffle_buffer: examples in the shuffle buffer (default 1024 frames / 64 clips).
        cycle_length: shards read in parallel (default min(shards, 8)).
        drop_remainder: drop the last partial batch (static batch dimension).
        verify: ``framing`` (default), ``full`` or ``none``: the shard check before reading.

    Raises:
        ExportNotReady, UsageError, CorruptShardError: see the module docstring.
    """
    import tensorflow as tf

    export_dir = Path(export_dir)
    info = read_info(export_dir)
    paths = shard_paths(export_dir, split, info)
    unit = _unit(info, unit)
    size = _image_size(info, image_size)
    channels = int(info["image"].get("channels") or 3)
    clip_len = int(info["clip"]["length"]) if unit == "clip" else None
    _check(export_dir, split, verify)
    if deterministic and seed is None:
        seed = 0
    autotune = tf.data.AUTOTUNE
    compression = "GZIP" if is_gzip_path(paths[0]) else ""
    cycle = min(len(paths), cycle_length or DEFAULT_CYCLE)
    pipeline = _pipeline(augment)
    mean_std = _mean_std(info, normalize)
    jpeg = info["image"].get("encoding") == "jpeg"

    files = tf.data.Dataset.from_tensor_slices([str(p) for p in paths])
    if shuffle:
        files = files.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    records = files.interleave(
        lambda f: tf.data.TFRecordDataset(f, compression_type=compression, buffer_size=1 << 20),
        cycle_length=cycle,
        block_length=1,
        num_parallel_calls=autotune,
        deterministic=deterministic,
    )
    if shuffle:
        buffer = shuffle_buffer or (1024 if unit == "frame" else 64)
        records = records.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        records = records.repeat()

    def decode_one(data):
        if jpeg:
            image = tf.io.decode_jpeg(data, channels=channels, dct_method="INTEGER_ACCURATE")
        else:
            image = tf.io.decode_image(data, channels=channels, expand_animations=False)
        return tf.ensure_shape(image, [None, None, channels])

    if unit == "frame":
        spec = {
            "image": tf.io.FixedLenFeature([], tf.string),
            "label": tf.io.FixedLenFeature([], tf.int64),
        }

        def parse(serialized):
            parsed = tf.io.parse_single_example(serialized, spec)
            return decode_one(parsed["image"]), tf.cast(parsed["label"], tf.int32)
    else:
        context = {
            "label": tf.io.FixedLenFeature([], tf.int64),
            "length": tf.io.FixedLenFeature([], tf.int64, default_value=clip_len),
        }
        sequence = {"frames": tf.io.FixedLenSequenceFeature([], tf.string)}

        def parse(serialized):
            ctx, seq = tf.io.parse_single_sequence_example(serialized, context, sequence)
            frames = tf.map_fn(
                decode_one,
                seq["frames"],
                fn_output_signature=tf.TensorSpec([None, None, channels], tf.uint8),
            )
            # the real frame count rides along as a third element until the batch is scaled
            return frames, tf.cast(ctx["label"], tf.int32), tf.cast(ctx["length"], tf.int32)

    stored = (info["image"].get("height"), info["image"].get("width"))
    resize = size is not None and size != stored  # per example: stored sizes may differ

    def parse_resized(serialized):
        images, *rest = parse(serialized)
        if resize and pipeline is None:
            images = tf.image.resize(images, size, method="bilinear")
        return images, *rest

    examples = records.map(parse_resized, num_parallel_calls=autotune, deterministic=deterministic)

    if pipeline is not None:
        base = seed if seed is not None else random.randrange(2**31)
        clip = unit == "clip"

        def augment_fn(index, example):
            images, *rest = example

            def run(array, element):
                element_seed = (int(base) * 1_000_003 + int(element)) % (2**31)
                return _augment_numpy(pipeline, array, element_seed, clip)

            out = tf.numpy_function(run, [images, index], tf.uint8, stateful=False)
            shape = [clip_len, None, None, channels] if clip else [None, None, channels]
            out = tf.ensure_shape(out, shape)
            if size is not None:  # the pipeline may have changed the size
                out = tf.image.resize(out, size, method="bilinear")
            return out, *rest

        examples = examples.enumerate().map(
            augment_fn, num_parallel_calls=autotune, deterministic=deterministic
        )

    dataset = examples.batch(batch_size, drop_remainder=drop_remainder)
    scale, offset = _scale_offset(mean_std, channels)
    height, width = size or stored
    batch_shape = [None, *([clip_len] if unit == "clip" else []), height, width, channels]

    # XLA fuses cast, multiply and add into one pass: a per-channel broadcast in plain graph
    # mode costs ~15x more (about 1 ms per 224 px image on a CPU core)
    @tf.function(jit_compile=True)
    def scale_batch(images):
        return tf.cast(images, tf.float32) * scale + offset

    @tf.function(jit_compile=True)
    def scale_clips(images, lengths):
        real = tf.sequence_mask(lengths, tf.shape(images)[1])[:, :, None, None, None]
        return tf.where(real, tf.cast(images, tf.float32) * scale + offset, 0.0)

    def finish(images, label, *lengths):
        scaled = scale_clips(images, lengths[0]) if lengths else scale_batch(images)
        return tf.ensure_shape(scaled, batch_shape), label

    dataset = dataset.map(finish, num_parallel_calls=autotune, deterministic=deterministic)
    dataset = dataset.prefetch(autotune)
    options = tf.data.Options()
    options.deterministic = deterministic
    return dataset.with_options(options)


# ------------------------------------------------------------------------------- numpy only


def decode_image(data: bytes, channels: int = 3) -> np.ndarray:
    """Decodes an encoded image to uint8 RGB ``[H, W, C]`` with OpenCV.

    Raises:
        ValueError: when the bytes are not a decodable image.
    """
    import cv2

    flag = cv2.IMREAD_GRAYSCALE if channels == 1 else cv2.IMREAD_COLOR
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
    if image is None:
        raise ValueError("not a decodable image")
    if channels == 1:
        return image[:, :, None]
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def iter_examples(export_dir: Path | str, split: str) -> Iterator[dict[str, Any]]:
    """Yields every example of a split as a dict of its decoded features, in file order.

    Frame exports give the ``tf.train.Example`` features (``image`` as encoded bytes); clip
    exports give the context features plus ``frames`` (list of encoded bytes) and
    ``frame_index`` (list of ints). Scalars are unwrapped; bytes names become str.
    """
    info = read_info(export_dir)
    for path in shard_paths(export_dir, split, info):
        for index, data in enumerate(iter_records(path)):
            yield _decode_record(data, info["unit"], path, index)


def _decode_record(data: bytes, unit: str, path: Path | None, index: int) -> dict[str, Any]:
    try:
        if unit == "frame":
            features = parse_example(data)
            lists = {}
        else:
            parsed = parse_sequence_example(data)
            features = parsed.context
            lists = parsed.feature_lists
    except ValueError as exc:
        where = path.name if path else "record"
        raise CorruptShardError(
            f"{where}: record {index}: {exc}; re-run `dataprep export --overwrite`"
        ) from None
    out: dict[str, Any] = {}
    for key, values in features.items():
        value = values[0] if len(values) == 1 else values
        if key in ("label_name", "media_id") and isinstance(value, bytes):
            value = value.decode("utf-8")
        out[key] = value
    if lists:
        out["frames"] = [step[0] for step in lists.get("frames", [])]
        out["frame_index"] = [step[0] for step in lists.get("frame_index", [])]
    return out


def iter_numpy(
    export_dir: Path | str,
    split: str,
    *,
    batch_size: int,
    unit: Literal["frame", "clip"] | None = None,
    augment: Any = None,
    normalize: bool = True,
    shuffle: bool = True,
    repeat: bool = False,
    image_size: int | tuple[int, int] | None = None,
    seed: int | None = None,
    deterministic: bool = False,
    shuffle_buffer: int | None = None,
    cycle_length: int | None = None,
    drop_remainder: bool = False,
    verify: Verify = "framing",
    num_workers: int | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yields ``(images float32, labels int32)`` numpy batches without importing TensorFlow.

    The same options and per-example processing as :func:`load` (OpenCV decode and bilinear
    resize), for PyTorch, JAX or Keras on another backend. Records are read in the same
    interleaved order as :func:`load` with ``shuffle=False``; every record's checksums are
    checked while reading. Decoding runs in ``num_workers`` threads (default min(4, cores));
    the order never depends on them (``deterministic`` is accepted for symmetry with
    :func:`load`: here the order is always a function of ``seed``).

    Raises:
        ExportNotReady, UsageError, CorruptShardError: naming the file and record.
    """
    import cv2

    del deterministic  # always deterministic given the seed
    export_dir = Path(export_dir)
    info = read_info(export_dir)
    paths = shard_paths(export_dir, split, info)
    unit = _unit(info, unit)
    size = _image_size(info, image_size)
    channels = int(info["image"].get("channels") or 3)
    _check(export_dir, split, verify if verify != "full" else "framing")
    pipeline = _pipeline(augment)
    scale, offset = _scale_offset(_mean_std(info, normalize), channels)
    rng = random.Random(seed)
    aug_base = seed if seed is not None else rng.randrange(2**31)
    cycle = min(len(paths), cycle_length or DEFAULT_CYCLE)
    buffer_size = shuffle_buffer or (1024 if unit == "frame" else 64)

    def records() -> Iterator[tuple[bytes, Path, int]]:
        epoch = 0
        while True:
            order = list(paths)
            if shuffle:
                rng.shuffle(order)
            yield from _located(order, cycle)
            epoch += 1
            if not repeat:
                return

    def shuffled(stream):
        if not shuffle:
            yield from stream
            return
        buffer: list = []
        for item in stream:
            if len(buffer) < buffer_size:
                buffer.append(item)
                continue
            slot = rng.randrange(buffer_size)
            yield buffer[slot]
            buffer[slot] = item
        rng.shuffle(buffer)
        yield from buffer

    def prepare(index: int, data: bytes, path: Path, record: int):
        features = _decode_record(data, unit, path, record)
        try:
            if unit == "frame":
                images = decode_image(features["image"], channels)
            else:
                images = np.stack([decode_image(f, channels) for f in features["frames"]])
        except ValueError:
            raise CorruptShardError(
                f"{path.name}: record {record}: an image does not decode; "
                "re-run `dataprep export --overwrite`"
            ) from None
        if pipeline is not None:
            element_seed = (int(aug_base) * 1_000_003 + index) % (2**31)
            images = _augment_numpy(pipeline, images, element_seed, unit == "clip")
        if size is not None and images.shape[-3:-1] != size:
            images = images.astype(np.float32)
            height, width = size
            if unit == "frame":
                images = cv2.resize(images, (width, height), interpolation=cv2.INTER_LINEAR)
            else:
                images = np.stack(
                    [cv2.resize(f, (width, height), interpolation=cv2.INTER_LINEAR) for f in images]
                )
            if channels == 1:
                images = images[..., None]
        images = images.astype(np.float32, copy=False) * scale + offset
        if unit == "clip":  # padding: exactly zero from the real length on (see the module doc)
            images[max(0, int(features.get("length", len(images)))) :] = 0.0
        return images, int(features["label"])

    from dataprep.export.shards import read_ahead

    workers = num_workers or min(4, os.cpu_count() or 1)
    stream = enumerate(shuffled(records()))
    batch_images: list[np.ndarray] = []
    batch_labels: list[int] = []
    for _, (images, label) in read_ahead(
        stream, lambda item: prepare(item[0], *item[1]), workers=workers, window=4 * workers
    ):
        batch_images.append(images)
        batch_labels.append(label)
        if len(batch_images) == batch_size:
            yield np.stack(batch_images), np.asarray(batch_labels, np.int32)
            batch_images, batch_labels = [], []
    if batch_images and not drop_remainder:
        yield np.stack(batch_images), np.asarray(batch_labels, np.int32)


def _located(paths: list[Path], cycle: int) -> Iterator[tuple[bytes, Path, int]]:
    """Like :func:`_interleave`, but yields ``(record, shard path, record number)``."""
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
