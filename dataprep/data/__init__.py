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
checks both while reading. Damage found by TensorFlow while a ``load`` dataset is iterated in
Python raises a ``tf.errors.DataLossError`` that is also a ``CorruptShardError`` naming the file
and record; inside Keras ``fit``/``evaluate``/``predict`` (their own graph functions)
:func:`naming_corrupt_shards` turns TensorFlow's error into the same one.

Modules: ``info`` (dataset_info.json, shard list), ``records`` (record and image decoding),
``checks`` (shard verification, naming damage), ``options`` (:class:`ReadOptions` and the read
plan both loaders share), ``tfdata`` (:func:`load`) and ``numpy_loader`` (:func:`iter_numpy`).
"""

from __future__ import annotations

from dataprep.data.checks import (
    Verify,
    check_shards,
    find_corrupt_record,
    naming_corrupt_shards,
    verify_export,
)
from dataprep.data.info import INFO_NAME, ExportNotReady, read_info, shard_paths, write_info
from dataprep.data.numpy_loader import iter_numpy
from dataprep.data.options import DEFAULT_CYCLE, ReadOptions
from dataprep.data.records import decode_image, decode_record, iter_examples
from dataprep.data.tfdata import load

__all__ = [
    "DEFAULT_CYCLE",
    "INFO_NAME",
    "ExportNotReady",
    "ReadOptions",
    "Verify",
    "check_shards",
    "decode_image",
    "decode_record",
    "find_corrupt_record",
    "iter_examples",
    "iter_numpy",
    "load",
    "naming_corrupt_shards",
    "read_info",
    "shard_paths",
    "verify_export",
    "write_info",
]
