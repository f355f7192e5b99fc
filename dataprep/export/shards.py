"""Sharding by bytes, atomic shard files, bounded read-ahead of frame files, image headers."""

from __future__ import annotations

import contextlib
import gzip
import math
import os
import struct
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO, TypeVar

from dataprep.errors import MediaError, UsageError

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
        UsageError: for anything else, or a size under 1 KB.
    """
    text = str(value).strip().upper().replace(" ", "")
    number = text.rstrip("KMGIB")
    unit = text[len(number) :]
    try:
        size = int(float(number) * _SIZE_UNITS[unit])
    except (ValueError, KeyError):
        raise UsageError(f"--shard-size {value!r}: use a size like 128MB, 512KB or 1GiB") from None
    if size < 1000:
        raise UsageError(f"--shard-size {value!r} is too small; use at least 1KB")
    return size


def plan_shards(sizes: list[int], shard_size: int) -> list[list[int]]:
    """Cuts items (in order) into contiguous shards of about ``shard_size`` bytes each.

    The number of shards is ``ceil(total / shard_size)``; an item goes to the shard that holds its
    middle byte, so shards are balanced; empty shards (items larger than a shard) are removed.

    Returns:
        Lists of item indices, one per shard.
    """
    total = sum(sizes)
    if not sizes:
        return []
    count = max(1, math.ceil(total / shard_size))
    shards: list[list[int]] = [[] for _ in range(count)]
    offset = 0
    for index, size in enumerate(sizes):
        middle = offset + size / 2
        shards[min(count - 1, int(middle * count / total) if total else 0)].append(index)
        offset += size
    return [shard for shard in shards if shard]


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
    raw = open(tmp, "wb")  # noqa: SIM115 - closed below
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
    except BaseException:
        raw.close()
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
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
    """``(height, width, channels, encoding)`` of an encoded JPEG, PNG or WebP, from its header.

    Raises:
        MediaError: naming ``where`` when the bytes are not such an image.
    """
    if data[:2] == b"\xff\xd8":
        pos = 2
        while pos + 4 <= len(data):
            if data[pos] != 0xFF:
                pos += 1
                continue
            marker = data[pos + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
                pos += 1 if marker == 0xFF else 2
                continue
            (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
                return height, width, data[pos + 9], "jpeg"
            pos += 2 + length
    elif data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 26:
        width, height = struct.unpack(">II", data[16:24])
        channels = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}.get(data[25], 3)
        return height, width, channels, "png"
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        import cv2
        import numpy as np

        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        if image is not None:
            channels = 1 if image.ndim == 2 else image.shape[2]
            return image.shape[0], image.shape[1], channels, "webp"
    raise MediaError(f"{where}: not a readable JPEG, PNG or WebP frame; re-run `dataprep frames`")
