"""The examples of one split of an export, in their final order, on disk when they are many.

An export's order is a 64-bit hash of each example's key (:func:`example_hash`), so the
examples whose hashes share their top ``bits`` bits are a contiguous range of the final order: a
*bucket*. The selection adds examples in manifest order; each goes to its bucket's buffer, and
full buffers are appended to the bucket's file (pickled lists, in a folder of the running export
that the export removes; nobody else writes there), with ``(hash, key, size)`` of each example in
the bucket's index. :meth:`ExampleStore.finish` plans the shards from the indexes, one bucket at
a time in order (the total size is summed as examples are added, so one pass is enough:
:func:`shard_counts`). Reading the examples back loads and sorts one bucket at a time. With
``bits=0`` (one bucket: few examples) nothing touches the disk.

The memory of an export's plan is therefore one bucket (about :data:`BUCKET_FRAMES` frames of
examples), whatever the export's size, and the order, the shards and their bytes are the same
as with everything in memory.
"""

from __future__ import annotations

import hashlib
import math
import pickle
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

BUCKET_FRAMES = 250_000  # frames referenced by one bucket's examples (~150-200 MB of objects)
FLUSH_EXAMPLES = 20_000  # examples buffered over all buckets before they go to their files


def example_hash(key: str) -> int:
    """A stable 64-bit hash of an example key (the order of examples in an export)."""
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big")


def bucket_bits(frame_refs: int) -> int:
    """Bits of hash that cut ``frame_refs`` frames of examples into buckets of at most about
    :data:`BUCKET_FRAMES` (0: one bucket)."""
    if frame_refs <= BUCKET_FRAMES:
        return 0
    return min(16, math.ceil(math.log2(frame_refs / BUCKET_FRAMES)))


def shard_counts(sizes: Iterable[int], total: int, shard_size: int) -> list[int]:
    """How many consecutive items each shard holds, for items of ``sizes`` (in order) that add
    up to ``total``: ``ceil(total / shard_size)`` shards, an item in the shard that holds its
    middle byte (balanced shards), empty shards (items larger than a shard) left out.

    One pass, memory of one count per shard: the plan of an export of any size.
    """
    planner = _ShardPlanner(total, shard_size)
    planner.feed(sizes)
    return planner.counts()


class _ShardPlanner:
    """:func:`shard_counts` fed a piece at a time (bucket by bucket)."""

    def __init__(self, total: int, shard_size: int):
        self.total = total
        self.count = max(1, math.ceil(total / shard_size))
        self.per_shard = [0] * self.count
        self.offset = 0
        self.items = 0

    def feed(self, sizes: Iterable[int]) -> None:
        count, total, per_shard = self.count, self.total, self.per_shard
        for size in sizes:
            middle = self.offset + size / 2
            per_shard[min(count - 1, int(middle * count / total) if total else 0)] += 1
            self.offset += size
            self.items += 1

    def counts(self) -> list[int]:
        return [c for c in self.per_shard if c] if self.items else []


class ExampleStore:
    """The examples of one split (see the module docstring). Add with :meth:`add`, then
    :meth:`finish`; then iterate (final order) or :meth:`shards`."""

    def __init__(self, directory: Path | None, bits: int = 0):
        self.directory = directory
        self.bits = bits if directory is not None else 0
        self.count = 0
        self.total_size = 0  # sum of the examples' estimated sizes in a shard (bytes)
        self.counts: list[int] = []  # examples per planned shard, after finish()
        self._buffers: list[list[tuple[int, str, Any]]] = [[] for _ in range(1 << self.bits)]
        self._buffered = 0
        self._spilled: set[int] = set()
        self._memory: list | None = None  # the sorted examples when nothing was spilled
        self._finished = False

    def add(self, example) -> None:
        """Adds an example (with its ``size``) to its bucket."""
        if self._finished:
            raise RuntimeError("ExampleStore.add after finish")
        digest = example_hash(example.key)
        self._buffers[digest >> (64 - self.bits) if self.bits else 0].append(
            (digest, example.key, example)
        )
        self.count += 1
        self.total_size += example.size
        self._buffered += 1
        if self.bits and self._buffered >= FLUSH_EXAMPLES:  # one bucket: bounded, stays here
            self._flush()

    def _bucket_path(self, bucket: int, kind: str = "examples") -> Path:
        return self.directory / f"bucket-{bucket:05d}.{kind}.pickle"

    def _flush(self) -> None:
        """Appends each bucket's buffer to its file, and ``(hash, key, size)`` of each example
        to the bucket's index (what the shard plan reads: small, quick to load)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for bucket, buffer in enumerate(self._buffers):
            if buffer:
                with self._bucket_path(bucket).open("ab") as stream:
                    pickle.dump(buffer, stream, protocol=pickle.HIGHEST_PROTOCOL)
                index = [(digest, key, example.size) for digest, key, example in buffer]
                with self._bucket_path(bucket, "index").open("ab") as stream:
                    pickle.dump(index, stream, protocol=pickle.HIGHEST_PROTOCOL)
                self._spilled.add(bucket)
                self._buffers[bucket] = []
        self._buffered = 0

    def _load(self, bucket: int, kind: str = "examples") -> list:
        """A bucket's entries in the final order (loaded and sorted here)."""
        entries = []
        with self._bucket_path(bucket, kind).open("rb") as stream:
            while True:
                try:
                    entries.extend(pickle.load(stream))  # noqa: S301 - written by this export
                except EOFError:
                    break
        entries.sort(key=lambda entry: (entry[0], entry[1]))
        return entries

    def finish(self, shard_size: int | None = None) -> None:
        """Sorts every bucket into the final order and plans the shards (``shard_size`` bytes)
        on the way."""
        planner = _ShardPlanner(self.total_size, shard_size or 1)
        if not self._spilled:
            entries = [entry for buffer in self._buffers for entry in buffer]
            entries.sort(key=lambda entry: (entry[0], entry[1]))
            self._memory = [entry[2] for entry in entries]
            self._buffers = []
            planner.feed(e.size for e in self._memory)
        else:
            self._flush()
            for bucket in sorted(self._spilled):
                planner.feed(size for _, _, size in self._load(bucket, "index"))
        self._finished = True
        self.counts = planner.counts() if shard_size else []

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator:
        if not self._finished:
            raise RuntimeError("ExampleStore read before finish")
        if self._memory is not None:
            yield from self._memory
            return
        for bucket in sorted(self._spilled):
            yield from (example for _, _, example in self._load(bucket))

    def shards(self) -> Iterator[list]:
        """The examples of each planned shard, in order (needs ``finish(shard_size)``)."""
        counts = iter(self.counts)
        chosen: list = []
        wanted = next(counts, 0)
        for example in self:
            chosen.append(example)
            if len(chosen) == wanted:
                yield chosen
                chosen, wanted = [], next(counts, 0)

    def remove(self) -> None:
        """Deletes the store's files."""
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
