"""Peak memory of a block of code: Python allocations (tracemalloc) and Arrow's pool."""

from __future__ import annotations

import contextlib
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa

_POOLS: list = []  # never freed: buffers a pool allocated may outlive the block


@dataclass
class Peaks:
    python: int = 0
    arrow: int = 0


@contextlib.contextmanager
def measure_peaks() -> Iterator[Peaks]:
    """Measures the block's peaks into the yielded :class:`Peaks` (filled when it ends)."""
    pool = pa.proxy_memory_pool(pa.default_memory_pool())
    _POOLS.append(pool)
    previous = pa.default_memory_pool()
    pa.set_memory_pool(pool)
    peaks = Peaks()
    tracemalloc.start()
    try:
        yield peaks
        peaks.python = tracemalloc.get_traced_memory()[1]
        peaks.arrow = pool.max_memory()
    finally:
        tracemalloc.stop()
        pa.set_memory_pool(previous)
