"""The ``frames`` stage's per-media work: decode one media, resize, encode, write its frames.

:func:`extract_media` writes one media's frames into a temporary folder next to its final one
(the stage driver, :mod:`dataprep.frames`, swaps it into place); :func:`run_jobs` runs it over
the media in this process or over a pool of worker processes (parallel over media, the decoder
threads shared out between them). Encoding and file writes run in a helper thread while the
decoder goes on (:func:`write_pipelined`).
"""

from __future__ import annotations

import os
import queue
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dataprep.decode import decode_selected, frame_to_image
from dataprep.errors import MediaError, os_error_message
from dataprep.frame_settings import FrameSettings
from dataprep.imageops import encode_bgr, read_image_bgr
from dataprep.imageops import resize as resize_image
from dataprep.workspace import Workspace

TMP_PREFIX = ".tmp-"


@dataclass(frozen=True)
class MediaJob:
    media_id: str
    path: str
    kind: str
    settings: FrameSettings
    frames_dir: str  # absolute frames/ folder
    root: str  # workspace root, rows hold paths relative to it
    threads: int


class WriteFailed(Exception):
    """A frame file could not be written (disk full, permissions): the stage stops, as any
    other media would fail the same way."""


class _FrameWriter:
    """Encodes frames into a media's temporary folder and collects their manifest rows."""

    def __init__(self, job: MediaJob, tmp_dir: Path, progress: Callable[[int], None] | None):
        self.settings = job.settings
        self.tmp_dir = tmp_dir
        self.final_rel = Path(job.frames_dir).relative_to(job.root) / job.media_id
        self.progress = progress
        self.rows: list[dict[str, Any]] = []

    def __call__(self, frame_index: int, timestamp_s: float, image_bgr: np.ndarray) -> None:
        name = f"{frame_index:06d}.{self.settings.format}"
        data = encode_bgr(image_bgr, self.settings.format, self.settings.quality)
        try:
            (self.tmp_dir / name).write_bytes(data)
        except OSError as exc:
            raise WriteFailed(os_error_message(self.tmp_dir / name, exc)) from None
        height, width = image_bgr.shape[:2]
        self.rows.append(
            {
                "frame_index": int(frame_index),
                "timestamp_s": float(timestamp_s),
                "path": str(self.final_rel / name),
                "width": int(width),
                "height": int(height),
            }
        )
        if self.progress:
            self.progress(1)


def extract_media(job: MediaJob, progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Extracts one media item into a temporary folder next to its final one. Never raises.

    Returns:
        ``{"media_id", "status": "ok"|"error", "error", "rows", "tmp_dir"}``; ``rows`` are the
        frames written before any failure. ``"disk_error": True`` is added when a file could not
        be written (the error then names the path and says what to do).
    """
    tmp_dir = Path(job.frames_dir) / f"{TMP_PREFIX}{job.media_id}-{os.getpid()}"
    writer = _FrameWriter(job, tmp_dir, progress)

    def result(status: str, error: str | None = None, **extra: Any) -> dict[str, Any]:
        return {
            "media_id": job.media_id,
            "status": status,
            "error": error,
            "rows": writer.rows,
            "tmp_dir": str(tmp_dir),
            **extra,
        }

    try:
        if tmp_dir.exists():
            shutil.rmtree(tmp_dir)
        tmp_dir.mkdir(parents=True)
    except OSError as exc:
        return result("error", os_error_message(tmp_dir, exc, "create"), disk_error=True)
    try:
        _decode_into(job, writer)
    except WriteFailed as exc:
        return result("error", str(exc), disk_error=True)
    except MediaError as exc:
        return result("error", str(exc).replace(f"{job.path}: ", ""))
    except Exception as exc:  # noqa: BLE001 - a per-media failure must not stop the run
        return result("error", f"unexpected {type(exc).__name__}: {exc}")
    if not writer.rows:
        return result("error", "no frames decoded")
    return result("ok")


def _decode_into(job: MediaJob, write: _FrameWriter) -> None:
    settings = job.settings
    if job.kind == "image":
        write(0, 0.0, resize_image(read_image_bgr(job.path), settings.size))
        return
    frames = decode_selected(Path(job.path), settings.sampling, threads=job.threads)

    def convert_and_write(frame_index, timestamp_s, frame, rotation):
        write(frame_index, timestamp_s, frame_to_image(frame, rotation, settings.size, "bgr24"))

    write_pipelined(frames, convert_and_write)


def write_pipelined(frames: Iterator[tuple], write: Callable[..., None]) -> None:
    """Encodes and writes frames in a helper thread while the decoder goes on (OpenCV and file
    writes release the GIL). Errors of either side propagate; frames decoded before an error are
    written first."""
    pending: queue.Queue = queue.Queue(maxsize=16)
    failure: list[BaseException] = []

    def writer() -> None:
        while True:
            item = pending.get()
            if item is None:
                return
            if failure:
                continue
            try:
                write(*item)
            except BaseException as exc:  # noqa: BLE001 - handed to the decoding thread
                failure.append(exc)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        for item in frames:
            if failure:
                break
            pending.put(item)
    finally:
        pending.put(None)
        thread.join()
    if failure:
        raise failure[0]


# --------------------------------------------------------------------------------------------
# Running the media: in this process or over a pool
# --------------------------------------------------------------------------------------------


def _threads_per_job(jobs: int, n_media: int) -> int:
    cores = os.cpu_count() or 1
    parallel = max(1, min(jobs, n_media))
    return max(1, cores // parallel)


def run_jobs(
    workspace: Workspace,
    todo: list[dict],
    settings: FrameSettings,
    jobs: int | None,
    on_frames: Callable[[int], None],
    executor=None,
) -> Iterator[dict[str, Any]]:
    """Yields :func:`extract_media`'s result for every media row in ``todo`` as each finishes
    (with a Ray ``executor`` of :mod:`dataprep.engine`: in ``todo``'s order, one task each).

    Closing the generator early cancels the media not started yet.
    """
    jobs = jobs or os.cpu_count() or 1
    threads = _threads_per_job(jobs, len(todo))
    work = [
        MediaJob(
            media_id=row["media_id"],
            path=row["path"],
            kind=row["kind"],
            settings=settings,
            frames_dir=str(workspace.frames_dir),
            root=str(workspace.root),
            threads=threads,
        )
        for row in todo
    ]
    if executor is not None and executor.kind != "local":
        yield from _run_on_engine(executor, work, on_frames)
        return
    if jobs <= 1 or len(work) <= 1:
        for job in work:
            yield extract_media(job, on_frames)
        return
    from concurrent.futures import FIRST_COMPLETED, wait

    from dataprep.parallel import context, process_pool

    counter = context().Queue()
    with process_pool(jobs, _worker_init, (counter,)) as pool:
        pending = {pool.submit(_extract_in_worker, job) for job in work}
        try:
            while pending:
                finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                _drain(counter, on_frames)
                for future in finished:
                    yield future.result()
            _drain(counter, on_frames)
        finally:
            for future in pending:
                future.cancel()


def _run_on_engine(executor, work: list[MediaJob], on_frames) -> Iterator[dict[str, Any]]:
    """One task per media (decoder threads = the task's CPUs). The rows stay staged in
    Parquet (``result["rows"]`` is a :class:`~dataprep.engine.StagedRows`, or an empty list):
    the driver merges the files into the manifest (:mod:`dataprep.frames_save`)."""
    from dataclasses import replace

    from dataprep.engine import StagedRows

    threads = max(1, int(executor.spec.num_cpus))
    jobs = [replace(job, threads=threads) for job in work]
    for result in executor.map(extract_media, jobs, rows_key="rows"):
        rows = result["rows"]
        on_frames(rows.count if isinstance(rows, StagedRows) else len(rows))
        yield result


_worker_counter = None


def _worker_init(counter) -> None:
    global _worker_counter
    _worker_counter = counter


def _extract_in_worker(job: MediaJob) -> dict[str, Any]:
    batch = [0, time.monotonic()]

    def report(n: int) -> None:
        batch[0] += n
        if time.monotonic() - batch[1] > 0.2:
            _worker_counter.put(batch[0])
            batch[0] = 0
            batch[1] = time.monotonic()

    result = extract_media(job, report)
    if batch[0]:
        _worker_counter.put(batch[0])
    return result


def _drain(counter, on_frames: Callable[[int], None]) -> None:
    while True:
        try:
            n = counter.get_nowait()
        except queue.Empty:
            return
        on_frames(n)
