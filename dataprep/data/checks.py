"""Shard checks: record framing and checksums up front, and naming the damaged record when
TensorFlow reports damage while a dataset is read."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from dataprep.data.info import INFO_NAME, read_info, shard_paths
from dataprep.data.records import decode_images, decode_record
from dataprep.errors import UsageError
from dataprep.tfrecord_reader import CorruptShardError, iter_records, scan_framing

Verify = Literal["framing", "full", "none"]
_DECODE_WORDS = ("decode", "jpeg", "png", "image", "parse", "corrupt", "truncated")


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


def check_shards(export_dir: Path, split: str, verify: Verify) -> None:
    """The check a loader runs before reading: ``framing``, ``full`` or ``none``."""
    if verify == "none":
        return
    if verify not in ("framing", "full"):
        raise UsageError(f"verify={verify!r}: use framing, full or none")
    verify_export(export_dir, split, full=verify == "full")


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
            features = decode_record(data, info["unit"], path, index)
            decode_images(features, info["unit"], channels, path, index)


def is_damage_error(exc: BaseException) -> bool:
    """True for TensorFlow's errors about unreadable records (checksums, decompression,
    protobuf parsing, image decoding)."""
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
        if not is_damage_error(exc):
            raise
        for split in splits:
            find_corrupt_record(export_dir, split)
        raise
