"""Reading an export's records without TensorFlow: image decoding and record parsing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from dataprep.data.info import read_info, shard_paths
from dataprep.tfrecord_reader import (
    CorruptShardError,
    iter_records,
    parse_example,
    parse_sequence_example,
)


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
    ``frame_index`` (list of ints). Scalars are unwrapped; text features become str.
    """
    info = read_info(export_dir)
    for path in shard_paths(export_dir, split, info):
        for index, data in enumerate(iter_records(path)):
            yield decode_record(data, info["unit"], path, index)


def decode_record(data: bytes, unit: str, path: Path | None, index: int) -> dict[str, Any]:
    """The features of one serialized record (see :func:`iter_examples`).

    Raises:
        CorruptShardError: naming the shard and record when the message does not parse.
    """
    from dataprep.export.tfrecord import CLIP_SEQUENCE, TEXT_FEATURES

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
        if key in TEXT_FEATURES and isinstance(value, bytes):
            value = value.decode("utf-8")
        out[key] = value
    if lists:
        for key in CLIP_SEQUENCE:
            out[key] = [step[0] for step in lists.get(key, [])]
    return out


def decode_images(features: dict[str, Any], unit: str, channels: int, path: Path, record: int):
    """The decoded image (frames) or stacked frames (clips) of a decoded record.

    Raises:
        CorruptShardError: naming the shard and record when an image does not decode.
    """
    try:
        if unit == "frame":
            return decode_image(features["image"], channels)
        return np.stack([decode_image(f, channels) for f in features["frames"]])
    except ValueError:
        raise CorruptShardError(
            f"{path.name}: record {record}: an image does not decode; the shard "
            f"{path} is damaged, re-run `dataprep export --overwrite`"
        ) from None
