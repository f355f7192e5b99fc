"""Sharding by bytes, atomic shard files, bounded read-ahead of frame files, image headers."""

from __future__ import annotations

import contextlib
import gzip
import io
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO, TypeVar

from dataprep.errors import DiskError, MediaError, os_error_message

T = TypeVar("T")
R = TypeVar("R")
_SIZE_UNITS = {
    "": 1,
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "KIB": 2**10,
    "MIB": 2**20,
    "GIB": 2**30,
}


def parse_bytes(value: str | int) -> int:
    """Parses ``"128MB"``, ``"64KiB"`` or ``1000000`` into a byte count.

    Raises:
        ValueError: for anything else, or a size under 1 KB (the words name no option: the
            caller, :class:`dataprep.config.ExportConfig`, says where the value came from).
    """
    text = str(value).strip().upper().replace(" ", "")
    number = text.rstrip("KMGIB")
    unit = text[len(number) :]
    try:
        size = int(float(number) * _SIZE_UNITS[unit])
    except (ValueError, KeyError, OverflowError):
        raise ValueError("not a size; use one like 128MB, 512KB or 1GiB") from None
    if size < 1000:
        raise ValueError("too small; use at least 1KB")
    return size


def shard_names(split: str, count: int, suffix: str) -> list[str]:
    """The names of a split's ``count`` shards, in order."""
    return [shard_name(split, i, count, suffix) for i in range(count)]


def shard_name(split: str, index: int, count: int, suffix: str) -> str:
    """``<split>-NNNNN-of-MMMMM<suffix>``."""
    return f"{split}-{index:05d}-of-{count:05d}{suffix}"


@contextlib.contextmanager
def shard_file(target: Path, *, compression: str = "none") -> Iterator[BinaryIO]:
    """Opens ``.<name>.tmp`` next to ``target`` for writing, renames it to ``target`` on success.

    With ``compression="gzip"`` the stream is gzip-compressed with a zero timestamp and no file
    name in the header, so equal content gives equal bytes.
    """
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        raw = open(tmp, "wb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise DiskError(os_error_message(tmp, exc)) from None
    try:
        if compression == "gzip":
            with gzip.GzipFile(
                filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6
            ) as stream:
                yield stream  # type: ignore[misc]
        else:
            yield raw
        raw.flush()
        os.fsync(raw.fileno())
        raw.close()
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            raw.close()
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if isinstance(exc, OSError):
            raise DiskError(os_error_message(target, exc)) from None
        raise


def read_ahead(
    items: Iterable[T], read: Callable[[T], R], *, workers: int = 4, window: int = 64
) -> Iterator[tuple[T, R]]:
    """Yields ``(item, read(item))`` in order, reading up to ``window`` items ahead in threads.

    Memory stays bounded by the window, whatever the number of items.
    """
    iterator = iter(items)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: list = []
        for item in iterator:
            pending.append((item, pool.submit(read, item)))
            if len(pending) >= window:
                first, future = pending.pop(0)
                yield first, future.result()
        for item, future in pending:
            yield item, future.result()


def image_info(data: bytes, where: str) -> tuple[int, int, int, str]:
    """``(height, width, channels, encoding)`` of an encoded JPEG, PNG or WebP, from its header
    (Pillow opens lazily: nothing is decoded).

    Raises:
        MediaError: naming ``where`` when the bytes are not such an image.
    """
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data), formats=_PIL_FORMATS) as image:
            width, height = image.size
            channels = 3 if image.mode in ("P", "PA") else len(image.getbands())
            encoding = image.format.lower()
    except Exception:  # noqa: BLE001 - Pillow raises many kinds for damaged headers
        raise MediaError(
            f"{where}: not a readable JPEG, PNG or WebP frame; re-run `dataprep frames`"
        ) from None
    return height, width, channels, encoding


_PIL_FORMATS = ("JPEG", "PNG", "WEBP")
