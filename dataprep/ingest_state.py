"""What ``ingest`` knows during a run, and the one place its rows are merged.

:class:`IngestState` holds the rules (is a file unchanged; a new file's files row; a new media
row or a path added to the media row of the same content; a path whose content changed
forgotten by its old media row). It works against a *store* of the two manifests' rows:

* :class:`MemoryStore` (the local engine): both manifests as dicts, written with pandas;
* :class:`dataprep.ingest_index.IndexStore` (``--engine ray``): an SQLite file under
  ``.dataprep/`` that the manifests are streamed into and out of, so the driver's memory does
  not grow with the number of files.

A store also keeps the run's candidates (the files found) and which of them are to be inspected
(:class:`CandidateList` in memory; the index keeps them on disk). Both stores see the same calls
in the same order, so they write the same manifests.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from dataprep import manifests
from dataprep.discovery import Candidate
from dataprep.errors import DiskError, os_error_message
from dataprep.workspace import Workspace

if TYPE_CHECKING:
    from dataprep.config import IngestConfig


class Store(Protocol):
    """The rows of ``files.parquet`` (by path) and ``media.parquet`` (by media_id)."""

    def file(self, path: str) -> dict[str, Any] | None: ...
    def put_file(self, row: dict[str, Any]) -> None: ...
    def media(self, media_id: str) -> dict[str, Any] | None: ...
    def put_media(self, row: dict[str, Any]) -> None: ...
    def drop_media(self, media_id: str) -> None: ...
    def media_total(self) -> int: ...
    def save(self, workspace: Workspace) -> None: ...


class Candidates(Protocol):
    """The files a run found, in path order, and which of them are to be inspected."""

    total: int

    def pages(self) -> Iterator[list[Candidate]]: ...
    def set_todo(self, todo: list[Candidate]) -> None: ...
    def todo_summary(self) -> tuple[int, int, int]: ...  # (files, bytes, videos)
    def todo_pages(self) -> Iterator[list[Candidate]]: ...


class MemoryStore:
    """Both manifests held in dicts (the local engine)."""

    def __init__(self, media: dict[str, dict], files: dict[str, dict]):
        self._media = media
        self._files = files

    @classmethod
    def load(cls, workspace: Workspace) -> MemoryStore:
        media_frame = manifests.load(workspace, "media", missing_ok=True)
        files_frame = manifests.load(workspace, "files", missing_ok=True)
        media = {row["media_id"]: row for row in manifests.records(media_frame)}
        for row in media.values():
            row["paths"] = list(row["paths"])
        files = {row["path"]: row for row in manifests.records(files_frame)}
        return cls(media, files)

    def file(self, path: str) -> dict[str, Any] | None:
        return self._files.get(path)

    def put_file(self, row: dict[str, Any]) -> None:
        self._files[row["path"]] = row

    def media(self, media_id: str) -> dict[str, Any] | None:
        return self._media.get(media_id)

    def put_media(self, row: dict[str, Any]) -> None:
        self._media[row["media_id"]] = row

    def drop_media(self, media_id: str) -> None:
        del self._media[media_id]

    def media_total(self) -> int:
        return len(self._media)

    def save(self, workspace: Workspace) -> None:
        """Writes both manifests atomically, media first (a kill between the two writes only
        costs re-hashing, never a lost row).

        Raises:
            DiskError: naming the manifest that could not be written (disk full...).
        """
        media = manifests.from_records("media", [self._media[k] for k in sorted(self._media)])
        files = manifests.from_records("files", [self._files[k] for k in sorted(self._files)])
        for name, frame in (("media", media), ("files", files)):
            try:
                manifests.save(workspace, name, frame)
            except OSError as exc:
                path = workspace.manifest_path(name)
                raise DiskError(os_error_message(path, exc, "write")) from None

    def close(self) -> None:
        """Nothing to release (the index store removes its file)."""


class CandidateList:
    """The candidates of :func:`dataprep.discovery.discover`, held in a list: one page."""

    def __init__(self, candidates: list[Candidate]):
        self.candidates = candidates
        self.total = len(candidates)
        self.todo: list[Candidate] = []

    def pages(self) -> Iterator[list[Candidate]]:
        yield self.candidates

    def set_todo(self, todo: list[Candidate]) -> None:
        self.todo.extend(todo)

    def todo_summary(self) -> tuple[int, int, int]:
        total = sum(c.size or 0 for c in self.todo)
        videos = sum(1 for c in self.todo if c.hint == "video")
        return len(self.todo), total, videos

    def todo_pages(self) -> Iterator[list[Candidate]]:
        if self.todo:
            yield self.todo


class IngestState:
    """The merge rules of ingest, over a :class:`Store` (see the module docstring)."""

    def __init__(self, store: Store):
        self.store = store

    def known(self, candidate: Candidate) -> dict[str, Any] | None:
        """The media row of a file whose size and mtime are as recorded (None: inspect it)."""
        if candidate.size is None:
            return None
        known = self.store.file(candidate.path)
        if not known or known["size_bytes"] != candidate.size:
            return None
        if known["mtime_ns"] != candidate.mtime_ns:
            return None
        return self.store.media(known["media_id"])

    def add(
        self, workspace: Workspace, result: dict, *, settings: IngestConfig, report: Any
    ) -> None:
        """Commits one inspected file: its files row, and a new or extended media row
        (``report``: the run's :class:`dataprep.ingest.IngestReport`, counted into)."""
        mode, label_from_dir = settings.mode, settings.label_from_dir
        path, media_id = result["path"], result["media_id"]
        previous = self.store.file(path)
        if previous and previous["media_id"] != media_id:
            self._forget_path(previous["media_id"], path)
        self.store.put_file(
            {
                "path": path,
                "size_bytes": result.get("size_bytes"),
                "mtime_ns": result.get("mtime_ns"),
                "media_id": media_id,
            }
        )
        # the parent folder's name (os.path: a pathlib.Path per file would intern its name)
        label = os.path.basename(os.path.dirname(path)) if label_from_dir else None
        if result["status"] == "error":
            report.errors.append((path, result["error"]))
        row = self.store.media(media_id)
        if row is not None:
            self._extend(row, path, label, label_from_dir, report)
            return
        stored = store_media(workspace, result, mode) if result["status"] == "ok" else path
        self.store.put_media(new_media_row(result, stored, label, mode))
        report.added += 1

    def _extend(self, row: dict, path: str, label, label_from_dir: bool, report: Any) -> None:
        """Same content as a known media row: the path joins its paths."""
        changed = False
        if path not in row["paths"]:
            row["paths"] = sorted({*row["paths"], path})
            report.duplicates += 1
            changed = True
        else:  # touched but the same bytes
            report.unchanged += 1
        if label_from_dir and row.get("label") and label != row["label"]:
            report.label_conflicts.append(
                f"{path}: same content as {row['path']} but in folder {label!r}, not "
                f"{row['label']!r}; keeping {row['label']!r}"
            )
        elif label_from_dir and not row.get("label"):
            row["label"] = label
            changed = True
        if changed:
            self.store.put_media(row)

    def _forget_path(self, media_id: str, path: str) -> None:
        row = self.store.media(media_id)
        if row is None:
            return
        row["paths"] = [p for p in row["paths"] if p != path]
        if not row["paths"] and row["mode"] == "reference":
            self.store.drop_media(media_id)
        else:
            self.store.put_media(row)

    def save(self, workspace: Workspace) -> None:
        self.store.save(workspace)


def new_media_row(result: dict, stored: str, label: str | None, mode: str) -> dict[str, Any]:
    """The media row of content seen for the first time."""
    return {
        "media_id": result["media_id"],
        "path": stored,
        "paths": [result["path"]],
        "kind": result["kind"] or "video",
        "status": result["status"],
        "error": result["error"],
        "size_bytes": result.get("size_bytes"),
        "container": result.get("container"),
        "codec": result.get("codec"),
        "width": result.get("width"),
        "height": result.get("height"),
        "rotation": result.get("rotation"),
        "fps": result.get("fps"),
        "frame_count": result.get("frame_count"),
        "duration_s": result.get("duration_s"),
        "variable_frame_rate": result.get("variable_frame_rate"),
        "label": label,
        "mode": mode if result["status"] == "ok" else "reference",
        "ingested_at": _now(),
    }


def store_media(workspace: Workspace, result: dict, mode: str) -> str:
    """Where the workspace holds a new media: the source (reference), or a copy or link in
    ``media/`` named by its media_id.

    Raises:
        DiskError: the copy or link cannot be written.
    """
    source = Path(result["path"])
    if mode == "reference":
        return str(source)
    target = workspace.media_dir / f"{result['media_id']}{source.suffix.lower()}"
    if not target.exists():
        tmp = target.with_name(f".{target.name}.tmp")
        try:
            if mode == "link":
                try:
                    os.link(source, tmp)
                except OSError:  # another file system: fall back to a symbolic link
                    os.symlink(source.resolve(), tmp)
            else:
                shutil.copyfile(source, tmp)
            os.replace(tmp, target)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise DiskError(os_error_message(target, exc, "write")) from None
    return str(target)


def _now():
    """Now, in UTC, to the microsecond (a plain datetime: 20x cheaper than pandas' per file)."""
    from datetime import UTC, datetime

    return datetime.now(UTC)
