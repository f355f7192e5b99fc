"""The tf.data loader: :func:`load`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dataprep.data.checks import find_corrupt_record, is_damage_error
from dataprep.data.options import (
    ReadOptions,
    ReadPlan,
    augment_numpy,
    element_seed,
    plan_read,
)
from dataprep.tfrecord_reader import is_gzip_path


def load(export_dir: Path | str, split: str, options: ReadOptions | None = None, **overrides: Any):
    """A ``tf.data.Dataset`` of ``(images float32, labels int32)`` batches from an export.

    Interleaved parallel reads over the shards, parallel decode, optional augmentation through
    ``tf.numpy_function`` (parallel calls; one set of parameters per clip), resize, scaling,
    batch and prefetch, with AUTOTUNE throughout. Clip frames at positions ``>= length`` (the
    padding of short media) come out as exact zeros.

    Args:
        export_dir: ``exports/<name>`` of a ``--format tfrecord`` export.
        split: train, val or test.
        options: a :class:`ReadOptions`; or give its fields as keywords (``batch_size=32,
            shuffle=False``), which override those of ``options``.
        **overrides: fields of :class:`ReadOptions` (``batch_size`` is required).

    Raises:
        ExportNotReady, UsageError, CorruptShardError: see the package docstring. Iterating
        the dataset in Python raises a ``tf.errors.DataLossError`` that is also a
        ``CorruptShardError`` naming the shard and record when a record's data is damaged.
    """
    plan = plan_read(export_dir, split, options, overrides)  # before TF: fast refusals
    options = plan.options
    import tensorflow as tf

    parallel = options.parallelism or tf.data.AUTOTUNE
    examples = _records(tf, plan).map(
        _parser(tf, plan), num_parallel_calls=parallel, deterministic=options.deterministic
    )
    if plan.pipeline is not None:
        examples = examples.enumerate().map(
            _augmenter(tf, plan), num_parallel_calls=parallel, deterministic=options.deterministic
        )
    if options.flip is not None and options.flip[0] > 0:
        examples = examples.enumerate().map(
            _flipper(tf, plan), num_parallel_calls=parallel, deterministic=options.deterministic
        )
    return _naming_damage(_batched(tf, plan, examples), plan)


def _records(tf, plan: ReadPlan):
    """The serialized records: shard order shuffled, ``cycle`` shards interleaved, shuffled."""
    options = plan.options
    compression = "GZIP" if is_gzip_path(plan.paths[0]) else ""
    files = tf.data.Dataset.from_tensor_slices([str(p) for p in plan.paths])
    if options.shuffle:
        files = files.shuffle(len(plan.paths), seed=plan.seed, reshuffle_each_iteration=True)
    records = files.interleave(
        lambda f: tf.data.TFRecordDataset(f, compression_type=compression, buffer_size=1 << 20),
        cycle_length=plan.cycle,
        block_length=1,
        num_parallel_calls=min(options.parallelism, plan.cycle)
        if options.parallelism
        else tf.data.AUTOTUNE,
        deterministic=options.deterministic,
    )
    if options.shuffle:
        records = records.shuffle(
            plan.shuffle_buffer, seed=plan.seed, reshuffle_each_iteration=True
        )
    if options.repeat:
        records = records.repeat()
    return records


def _parser(tf, plan: ReadPlan):
    """serialized -> (uint8 images, label[, length]), resized here when nothing augments."""
    from dataprep.export.tfrecord import CLIP_CONTEXT, CLIP_SEQUENCE, FRAME_FEATURES, parse_spec

    channels = plan.channels
    jpeg = plan.info["image"].get("encoding") == "jpeg"

    def decode_one(data):
        if jpeg:
            image = tf.io.decode_jpeg(data, channels=channels, dct_method="INTEGER_ACCURATE")
        else:
            image = tf.io.decode_image(data, channels=channels, expand_animations=False)
        return tf.ensure_shape(image, [None, None, channels])

    if plan.clip:
        context = parse_spec(CLIP_CONTEXT, ("label", "length"), {"length": plan.clip_len})
        sequence = parse_spec(CLIP_SEQUENCE, ("frames",))

        def parse(serialized):
            ctx, seq = tf.io.parse_single_sequence_example(serialized, context, sequence)
            frames = tf.map_fn(
                decode_one,
                seq["frames"],
                fn_output_signature=tf.TensorSpec([None, None, channels], tf.uint8),
            )
            # the real frame count rides along as a third element until the batch is scaled
            return frames, tf.cast(ctx["label"], tf.int32), tf.cast(ctx["length"], tf.int32)
    else:
        spec = parse_spec(FRAME_FEATURES, ("image", "label"))

        def parse(serialized):
            parsed = tf.io.parse_single_example(serialized, spec)
            return decode_one(parsed["image"]), tf.cast(parsed["label"], tf.int32)

    resize = plan.size is not None and plan.size != plan.stored and plan.pipeline is None

    def parse_resized(serialized):
        images, *rest = parse(serialized)
        if resize:  # per example: stored sizes may differ
            images = tf.image.resize(images, plan.size, method="bilinear")
        return images, *rest

    return parse_resized


def _augmenter(tf, plan: ReadPlan):
    """(index, example) -> example augmented by ``tf.numpy_function`` (then resized)."""
    base = plan.augment_base()
    shape = [plan.clip_len, None, None, plan.channels] if plan.clip else [None, None, plan.channels]

    def run(array, element):
        return augment_numpy(plan.pipeline, array, element_seed(base, element), plan.clip)

    def augment_fn(index, example):
        images, *rest = example
        out = tf.numpy_function(run, [images, index], tf.uint8, stateful=False)
        out = tf.ensure_shape(out, shape)
        if plan.size is not None:  # the pipeline may have changed the size
            out = tf.image.resize(out, plan.size, method="bilinear")
        return out, *rest

    return augment_fn


def _flipper(tf, plan: ReadPlan):
    """(index, example) -> example flipped left-right with ``flip[0]`` probability (every frame
    of a clip alike), its label mapped through the mirror table (seeded per element)."""
    probability, table = plan.options.flip
    mirror = tf.constant(list(table), tf.int32)
    base = tf.constant(plan.augment_base() % (2**31), tf.int64)

    def flip_fn(index, example):
        images, label, *rest = example
        draw = tf.random.stateless_uniform([], seed=tf.stack([base, tf.cast(index, tf.int64)]))
        flipped = draw < probability
        images = tf.cond(flipped, lambda: tf.reverse(images, axis=[-2]), lambda: images)
        return (images, tf.where(flipped, tf.gather(mirror, label), label), *rest)

    return flip_fn


def _batched(tf, plan: ReadPlan, examples):
    """Batches, scales (zeroing clip padding), prefetches."""
    options = plan.options
    dataset = examples.batch(options.batch_size, drop_remainder=options.drop_remainder)
    scale, offset = plan.scale, plan.offset
    height, width = plan.size or plan.stored
    batch_shape = [None, *([plan.clip_len] if plan.clip else []), height, width, plan.channels]

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

    parallel = options.parallelism or tf.data.AUTOTUNE
    dataset = dataset.map(finish, num_parallel_calls=parallel, deterministic=options.deterministic)
    dataset = dataset.prefetch(options.parallelism or tf.data.AUTOTUNE)
    tf_options = tf.data.Options()
    tf_options.deterministic = options.deterministic
    if options.parallelism:  # no autotune thread: nothing for an iterator's destructor to wait on
        tf_options.autotune.enabled = False
    return dataset.with_options(tf_options)


def _naming_damage(dataset, plan: ReadPlan):
    """``dataset``, whose Python iterators name the shard and record of damage TensorFlow
    finds while reading (its ``DataLossError: corrupted record at N`` names neither).

    The error raised is a ``tf.errors.DataLossError`` (what callers caught so far) that is also
    a :class:`CorruptShardError` with the message of :func:`find_corrupt_record`. Keras ``fit``
    reads the dataset inside its own graph function: wrap it in :func:`naming_corrupt_shards`.
    """
    dataset.__class__ = _subclass(type(dataset), {"__iter__": _named_iter})
    dataset._dataprep_source = (plan.export_dir, plan.split)
    return dataset


_SUBCLASSES: dict[tuple[type, str], type] = {}


def _subclass(base: type, methods: dict) -> type:
    """A subclass of ``base`` (a tf.data dataset or iterator) overriding ``methods``, cached."""
    key = (base, ",".join(sorted(methods)))
    if key not in _SUBCLASSES:
        _SUBCLASSES[key] = type(f"Named{base.__name__}", (base,), dict(methods))
    return _SUBCLASSES[key]


def _named_iter(self):
    iterator = super(type(self), self).__iter__()
    iterator.__class__ = _subclass(type(iterator), {"__next__": _named_next})
    iterator._dataprep_source = self._dataprep_source
    return iterator


def _named_next(self):
    try:
        return super(type(self), self).__next__()
    except StopIteration:
        raise
    except Exception as exc:
        if not is_damage_error(exc):
            raise
        raise _named_error(exc, *self._dataprep_source) from None


def _named_error(exc: Exception, export_dir: Path, split: str) -> Exception:
    """The :class:`CorruptShardError` naming the damaged record, also a DataLossError; or
    ``exc`` itself when no damaged record is found."""
    import tensorflow as tf

    from dataprep.tfrecord_reader import CorruptShardError

    try:
        find_corrupt_record(export_dir, split)
    except CorruptShardError as found:
        message = str(found)
    else:
        return exc
    key = (tf.errors.DataLossError, "CorruptShardError")
    if key not in _SUBCLASSES:
        _SUBCLASSES[key] = type(
            "NamedDataLossError", (CorruptShardError, tf.errors.DataLossError), {}
        )
    return _SUBCLASSES[key](None, None, message)
