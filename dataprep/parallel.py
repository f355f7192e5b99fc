"""Worker process pools that do not outlive the process that started them.

A pool's workers exit on their own when their parent dies, even by ``kill -9`` (a watchdog
thread notices the parent change), so a killed run leaves no orphan decoding into folders the
next run cleans up.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor

WATCH_SECONDS = 0.5


def _watch_parent(parent_pid: int) -> None:
    while True:
        time.sleep(WATCH_SECONDS)
        if os.getppid() != parent_pid:
            os._exit(1)


def _init(parent_pid: int, initializer: Callable | None, initargs: tuple) -> None:
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()
    if initializer is not None:
        initializer(*initargs)


def process_pool(jobs: int, initializer: Callable | None = None, initargs: tuple = ()):
    """A ``ProcessPoolExecutor`` of ``jobs`` spawned workers that die with their parent."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=context,
        initializer=_init,
        initargs=(os.getpid(), initializer, initargs),
    )


def map_items(func: Callable, items: list, jobs: int | None, *, chunksize: int = 1) -> Iterator:
    """``func`` over ``items`` in order: in this process when one job (or item) is enough,
    else over a :func:`process_pool` of ``min(jobs, len(items))`` workers."""
    jobs = jobs or os.cpu_count() or 1
    if jobs <= 1 or len(items) <= 1:
        yield from map(func, items)
        return
    with process_pool(min(jobs, len(items))) as pool:
        yield from pool.map(func, items, chunksize=chunksize)


def context():
    """The multiprocessing context the pools use (for queues shared with workers)."""
    import multiprocessing

    return multiprocessing.get_context("spawn")
