"""``ingest``: find media under paths, hash and probe them, and record them in media.parquet.

Files are recognized by content; every bad file (unreadable, not media, truncated, larger than
``[ingest] max_pixels``) gets an error row and, under the default ``--on-error skip``, never
stops the run; exact duplicates share one row; a rerun re-hashes only files whose size or mtime
changed. Finding the files is :mod:`dataprep.discovery`; the stage follows
:func:`dataprep.stage.run_stage`. The merge rules are :mod:`dataprep.ingest_state`'s, over the
manifests in memory (local engine) or in an on-disk index (:mod:`dataprep.ingest_index`, with
``--engine ray``: the driver's memory does not grow with the number of files).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from dataprep.config import IngestConfig, effective
from dataprep.discovery import (  # noqa: F401 - Candidate and discover: this module's API
    Candidate,
    Discovery,
    check_roots,
    discover,
    resolved_root,
    walk,
)
from dataprep.errors import DiskError, MediaError
from dataprep.hashing import file_sha256
from dataprep.ingest_state import CandidateList, Candidates, IngestState, MemoryStore
from dataprep.sniff import HEAD_BYTES, kind_from_content
from dataprep.stage import StageRun, run_stage
from dataprep.stages import load_stage
from dataprep.workspace import Workspace

Mode = Literal["copy", "link", "reference"]
ProgressFn = Callable[[int, int, int], None]  # (files done, files total, bytes done)


@dataclass
class IngestReport:
    """What one ingest run did."""

    added: int = 0  # new media rows
    unchanged: int = 0  # files already known: same size and mtime, or same content at same path
    duplicates: int = 0  # files whose content was already known under another path
    errors: list[tuple[str, str]] = field(default_factory=list)  # (path, one-line reason)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # not media: (path, reason)
    files: int = 0
    bytes_read: int = 0
    seconds: float = 0.0
    label_conflicts: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def counts(self) -> dict[str, int]:
        """The counts written into the stage record."""
        return {
            "files": self.files,
            "added": self.added,
            "unchanged": self.unchanged,
            "duplicates": self.duplicates,
            "rejected": len(self.errors),
            "skipped": len(self.skipped),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "added": self.added,
            "unchanged": self.unchanged,
            "duplicates": self.duplicates,
            "errors": [{"path": p, "error": e} for p, e in self.errors],
            "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
            "label_conflicts": self.label_conflicts,
            "bytes_read": self.bytes_read,
            "seconds": round(self.seconds, 3),
        }


def hash_file(path: str) -> tuple[str, int, bytes]:
    """Streams a file through SHA-256. Returns (media_id, size, first bytes)."""
    digest, size, head = file_sha256(path, head=HEAD_BYTES)
    return digest[:16], size, head


def path_id(path: str) -> str:
    """media_id for a file whose bytes cannot be read: derived from its path."""
    return "x" + hashlib.sha256(path.encode()).hexdigest()[:15]


def inspect_file(candidate: Candidate, max_pixels: int | None = None) -> dict[str, Any]:
    """Reads, hashes and probes one file. Never raises: problems become ``status=error``.

    Images and videos larger than ``max_pixels`` are refused from their header, before any
    pixel is decoded, so one file cannot take the run's memory.

    Returns a dict with ``path``, ``media_id``, ``kind`` (None for non-media), ``status``,
    ``error``, ``size_bytes`` and the probe's fields.
    """
    row: dict[str, Any] = {
        "path": candidate.path,
        "size_bytes": candidate.size,
        "mtime_ns": candidate.mtime_ns,
        "kind": candidate.hint,
    }
    if candidate.size is None:
        target = os.readlink(candidate.path) if os.path.islink(candidate.path) else None
        reason = f"broken symbolic link to {target}" if target else "cannot be read"
        return {**row, "media_id": path_id(candidate.path), "status": "error", "error": reason}
    try:
        media_id, size, head = hash_file(candidate.path)
    except OSError as exc:
        return {
            **row,
            "media_id": path_id(candidate.path),
            "status": "error",
            "error": f"cannot be read ({exc.strerror or exc})",
        }
    row.update(media_id=media_id, size_bytes=size)
    if size == 0:
        return {**row, "status": "error", "error": "empty file (0 bytes)"}
    kind = kind_from_content(head)
    if kind is None:
        if candidate.hint is None:
            return {**row, "kind": None, "status": "skip", "error": "not a media file"}
        what = "video" if candidate.hint == "video" else "image"
        return {
            **row,
            "status": "error",
            "error": f"not a{'n' if what == 'image' else ''} {what}: the content is no known "
            f"{what} format despite the {Path(candidate.path).suffix} extension",
        }
    row["kind"] = kind
    try:
        row.update(_probe(candidate.path, kind, head, max_pixels))
    except MediaError as exc:
        return {**row, "status": "error", "error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - one bad file is one error row, never a stopped run
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return {
            **row,
            "status": "error",
            "error": f"cannot be probed ({type(exc).__name__}"
            + (f": {reason[:200]})" if reason else ")"),
        }
    return {**row, "status": "ok", "error": None}


def _probe(path: str, kind: str, head: bytes, max_pixels: int | None) -> dict[str, Any]:
    from dataprep.probe import probe_image, probe_video

    if kind == "video":
        return probe_video(Path(path), max_pixels)
    fields = probe_image(Path(path), max_pixels)
    fields["container"] = fields["codec"] = _image_format(head)
    return fields


def _image_format(head: bytes) -> str:
    if head.startswith(b"\xff\xd8"):
        return "jpeg"
    if head.startswith(b"\x89PNG"):
        return "png"
    if head.startswith(b"BM"):
        return "bmp"
    if head[8:12] == b"WEBP":
        return "webp"
    if head[:3] == b"GIF":
        return "gif"
    return "tiff"


# Starting worker processes costs about 0.3 s; below this much work one process is faster
# (measured: 400 small images take 0.14 s in one process, 0.45 s with a pool of two).
POOL_MIN_BYTES = 2 * 1024**3  # about 1.5 s of hashing and demuxing
POOL_MIN_VIDEOS = 64
POOL_MIN_FILES = 2000


def _worth_a_pool(files: int, size: int, videos: int) -> bool:
    return size >= POOL_MIN_BYTES or videos >= POOL_MIN_VIDEOS or files >= POOL_MIN_FILES


def _inspect_all(candidates: Candidates, work: _Work, max_pixels: int) -> Iterator[dict[str, Any]]:
    """The files to inspect, inspected, in path order (a page at a time from the index)."""
    from dataprep.engine import open_engine

    remote = _remote(work.engine)
    files, size, videos = candidates.todo_summary()
    jobs = work.jobs if remote or _worth_a_pool(files, size, videos) else 1
    inspect = functools.partial(inspect_file, max_pixels=max_pixels)
    engine = work.engine if files else None
    with open_engine(engine, jobs=jobs, reads=work.roots if remote else ()) as executor:
        for page in candidates.todo_pages():
            yield from executor.map(inspect, page, chunksize=1 if files < 64 else 4)


def _remote(engine) -> bool:
    return engine is not None and engine.kind != "local"


def ingest_settings(
    workspace: Workspace, *, max_pixels: int | None = None, **overrides: Any
) -> IngestConfig:
    """``[ingest]`` of dataprep.toml with the given options applied, validated in one place
    (:func:`dataprep.config.effective`)."""
    return effective(workspace.config, "ingest", {**overrides, "max_pixels": max_pixels})


def ingest(
    workspace: Workspace,
    paths: Iterable[Path],
    *,
    recursive: bool | None = None,
    label_from_dir: bool | None = None,
    mode: Mode | None = None,
    jobs: int | None = None,
    on_error: str = "skip",
    max_pixels: int | None = None,
    progress: ProgressFn | None = None,
    engine=None,
    index: bool | None = None,
) -> IngestReport:
    """Ingests media under ``paths`` into ``workspace`` (see the module docstring).

    Options left as None take their value from ``[ingest]`` in ``dataprep.toml``. Runs as
    the ``ingest`` stage (:func:`dataprep.stage.run_stage`): under the workspace lock, with
    checkpoints every few seconds, so a killed run keeps what it finished and a rerun
    completes the rest. ``on_error="skip"`` (default) records a bad file as an error row and
    goes on; ``"fail"`` stops at the first one, keeping the files before it.

    ``index``: keep the manifests and the files found in an on-disk index
    (:mod:`dataprep.ingest_index`) instead of in memory, so the driver's memory does not grow
    with the number of files; default: with a remote engine (``--engine ray``). The manifests
    written are the same either way.

    Raises:
        UsageError: for a bad option or a path that does not exist.
        ItemFailed: under ``on_error="fail"``, naming the first bad file.
        DiskError: when the workspace cannot be written (disk full); a rerun resumes.
    """
    settings = ingest_settings(
        workspace,
        recursive=recursive,
        label_from_dir=label_from_dir,
        mode=mode,
        max_pixels=max_pixels,
    )
    paths = [resolved_root(Path(p)) for p in paths]
    roots = [str(p) for p in paths]
    started = time.monotonic()
    streamed = _remote(engine) if index is None else index
    if streamed:
        check_roots(paths)  # the walk itself goes into the index, under the lock
        found = Discovery([], [], [])
    else:
        found = discover(paths, recursive=settings.recursive)
    report = IngestReport(skipped=found.skipped, files=len(found.candidates))
    with run_stage(workspace, "ingest", on_error=on_error) as run:
        store = _open_store(workspace, streamed)
        with contextlib.closing(store):
            state = IngestState(store)
            try:
                if streamed:  # the walk, streamed into the index (path order comes from it)
                    store.add_candidates(
                        walk(paths, recursive=settings.recursive, found=found, known=store.has)
                    )
                    report.files = store.total
                for folder, reason in found.unreadable:
                    report.errors.append((folder, reason))
                    run.item_failed(folder, reason)
                candidates = store if streamed else CandidateList(found.candidates)
                work = _Work(candidates, settings, jobs or os.cpu_count() or 1, engine, roots)
                _run(run, state, work, progress, report)
            except BaseException:
                if run.changed:  # keep the finished files; the error raised says what happened
                    with contextlib.suppress(DiskError, OSError):
                        state.save(workspace)
                raise
            state.save(workspace)
            media_total = store.media_total()
        report.seconds = time.monotonic() - started
        run.finish(
            settings=_record_settings(workspace, paths, settings),
            counts={**report.counts(), "media_total": media_total},
        )
    return report


def _open_store(workspace: Workspace, streamed: bool):
    """The manifests as the run keeps them: an on-disk index, or dicts."""
    if streamed:
        from dataprep.ingest_index import IndexStore

        return IndexStore.load(workspace)
    return MemoryStore.load(workspace)


@dataclass(frozen=True)
class _Work:
    """What the per-file loop runs: the files found, the settings, where the work runs."""

    candidates: Candidates
    settings: IngestConfig
    jobs: int
    engine: Any  # dataprep.engine.EngineSpec or None (local)
    roots: list[str]  # the folders given (what every Ray node must be able to read)


def _run(
    run: StageRun,
    state: IngestState,
    work: _Work,
    progress: ProgressFn | None,
    report: IngestReport,
) -> None:
    """The per-file loop: skip what is unchanged, inspect the rest, commit and checkpoint."""
    candidates, settings = work.candidates, work.settings
    for page in candidates.pages():
        todo = []
        for candidate in page:
            known = state.known(candidate)
            if known is not None:
                report.unchanged += 1
                if known["status"] == "error":
                    report.errors.append((candidate.path, known["error"]))
                    run.item_failed(candidate.path, known["error"])
            else:
                todo.append(candidate)
        candidates.set_todo(todo)
    done = report.unchanged
    if progress:
        progress(done, candidates.total, 0)
    for result in _inspect_all(candidates, work, settings.max_pixels):
        done += 1
        report.bytes_read += result.get("size_bytes") or 0
        if result["status"] == "skip":
            report.skipped.append((result["path"], result["error"]))
        else:
            run.mark_changed()
            state.add(run.workspace, result, settings=settings, report=report)
            if result["status"] == "error":
                run.item_failed(result["path"], result["error"])
        if progress:
            progress(done, candidates.total, report.bytes_read)
        run.checkpoint(lambda: state.save(run.workspace))


def _record_settings(
    workspace: Workspace, paths: list[Path], settings: IngestConfig
) -> dict[str, Any]:
    previous = load_stage(workspace, "ingest") or {"settings": {}}
    all_paths = {*previous["settings"].get("paths", []), *(str(p) for p in paths)}
    return {"paths": sorted(all_paths), **settings.model_dump()}
