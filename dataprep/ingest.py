"""``ingest``: find media under paths, hash and probe them, and record them in media.parquet.

Files are recognized by content; every bad file gets an error row and never stops the run;
exact duplicates share one row; a rerun re-hashes only files whose size or mtime changed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from dataprep import manifests
from dataprep.errors import MediaError, UsageError
from dataprep.sniff import HEAD_BYTES, kind_from_content, kind_from_extension
from dataprep.stages import load_stage, record_stage
from dataprep.workspace import Workspace

Mode = Literal["copy", "link", "reference"]
CHUNK = 1 << 20
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


@dataclass(frozen=True)
class Candidate:
    """A file that may be media: its path, stat and the kind its extension suggests."""

    path: str
    size: int | None
    mtime_ns: int | None
    hint: str | None


def discover(
    paths: Iterable[Path], *, recursive: bool = True
) -> tuple[list[Candidate], list[tuple[str, str]]]:
    """Lists candidate files under ``paths`` (files or folders), sorted, without reading them.

    Returns:
        (candidates, skipped): candidates have a media extension, are broken links with one, or
        have no media extension but may be media by content (checked later); skipped are folders
        that do not exist, and special files.
    """
    candidates: dict[str, Candidate] = {}
    skipped: list[tuple[str, str]] = []
    for root in paths:
        root = Path(root).expanduser()
        if root.is_dir():
            iterator = _walk(root, recursive)
        elif root.exists() or root.is_symlink():
            iterator = iter([root])
        else:
            raise UsageError(f"{root}: no such file or folder; check the path")
        for path in iterator:
            absolute = str(path.absolute())
            if absolute in candidates:
                continue
            try:
                info = path.stat()
            except FileNotFoundError:
                if path.is_symlink():
                    candidates[absolute] = Candidate(
                        absolute, None, None, kind_from_extension(path)
                    )
                continue
            except OSError as exc:
                candidates[absolute] = Candidate(absolute, None, None, kind_from_extension(path))
                del exc
                continue
            if not path.is_file():
                skipped.append((absolute, "not a regular file"))
                continue
            candidates[absolute] = Candidate(
                absolute, info.st_size, info.st_mtime_ns, kind_from_extension(path)
            )
    return [candidates[k] for k in sorted(candidates)], skipped


def _walk(root: Path, recursive: bool) -> Iterator[Path]:
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            if recursive:
                yield from _walk(path, recursive)
        else:
            yield path


def hash_file(path: str) -> tuple[str, int, bytes]:
    """Streams a file through SHA-256. Returns (media_id, size, first bytes)."""
    digest = hashlib.sha256()
    size = 0
    head = b""
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            if not head:
                head = chunk[:HEAD_BYTES]
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest()[:16], size, head


def path_id(path: str) -> str:
    """media_id for a file whose bytes cannot be read: derived from its path."""
    return "x" + hashlib.sha256(path.encode()).hexdigest()[:15]


def inspect_file(candidate: Candidate) -> dict[str, Any]:
    """Reads, hashes and probes one file. Never raises: problems become ``status=error``.

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
        if kind == "video":
            row.update(probe_video_safely(candidate.path))
        else:
            from dataprep.probe import probe_image

            row.update(probe_image(Path(candidate.path)))
            row["container"] = row["codec"] = _image_format(head)
    except MediaError as exc:
        return {**row, "status": "error", "error": str(exc)}
    return {**row, "status": "ok", "error": None}


def probe_video_safely(path: str) -> dict[str, Any]:
    from dataprep.probe import probe_video

    return probe_video(Path(path))


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


def _worth_a_pool(todo: list[Candidate]) -> bool:
    total = sum(c.size or 0 for c in todo)
    videos = sum(1 for c in todo if c.hint == "video")
    return total >= POOL_MIN_BYTES or videos >= POOL_MIN_VIDEOS or len(todo) >= POOL_MIN_FILES


def _inspect_all(todo: list[Candidate], jobs: int) -> Iterator[dict[str, Any]]:
    from dataprep.parallel import map_items

    jobs = jobs if _worth_a_pool(todo) else 1
    return map_items(inspect_file, todo, jobs, chunksize=1 if len(todo) < 64 else 4)


def ingest(
    workspace: Workspace,
    paths: Iterable[Path],
    *,
    recursive: bool | None = None,
    label_from_dir: bool | None = None,
    mode: Mode | None = None,
    jobs: int | None = None,
    progress: ProgressFn | None = None,
) -> IngestReport:
    """Ingests media under ``paths`` into ``workspace`` (see the module docstring).

    Options left as None take their value from ``[ingest]`` in ``dataprep.toml``.
    Holds the workspace lock; checkpoints the manifests every few seconds, so a killed run
    keeps what it finished and a rerun completes the rest.
    """
    paths = [Path(p) for p in paths]
    settings = workspace.config.ingest
    recursive = settings.recursive if recursive is None else recursive
    label_from_dir = settings.label_from_dir if label_from_dir is None else label_from_dir
    mode = mode or settings.mode
    if mode not in ("copy", "link", "reference"):
        raise UsageError(f"--mode {mode!r} is not allowed; use copy, link or reference")
    jobs = jobs or os.cpu_count() or 1
    started = time.monotonic()
    candidates, skipped = discover(paths, recursive=recursive)
    report = IngestReport(skipped=skipped, files=len(candidates))
    with workspace.lock():
        state = _State.load(workspace)
        todo = []
        for candidate in candidates:
            if state.unchanged(candidate):
                report.unchanged += 1
                known = state.media[state.files[candidate.path]["media_id"]]
                if known["status"] == "error":
                    report.errors.append((candidate.path, known["error"]))
            else:
                todo.append(candidate)
        done = report.unchanged
        if progress:
            progress(done, len(candidates), 0)
        last_save = time.monotonic()
        checkpoint_s = float(os.environ.get("DATAPREP_CHECKPOINT_SECONDS", "5"))
        for result in _inspect_all(todo, jobs):
            done += 1
            report.bytes_read += result.get("size_bytes") or 0
            if result["status"] == "skip":
                report.skipped.append((result["path"], result["error"]))
            else:
                state.add(
                    workspace, result, mode=mode, label_from_dir=label_from_dir, report=report
                )
            if progress:
                progress(done, len(candidates), report.bytes_read)
            if time.monotonic() - last_save > checkpoint_s:
                state.save(workspace)
                last_save = time.monotonic()
        checkpoint_s = float(os.environ.get("DATAPREP_CHECKPOINT_SECONDS", "5"))
        state.save(workspace)
        report.seconds = time.monotonic() - started
        previous = load_stage(workspace, "ingest") or {"settings": {}}
        all_paths = {*previous["settings"].get("paths", []), *(str(p.absolute()) for p in paths)}
        record_stage(
            workspace,
            "ingest",
            settings={
                "paths": sorted(all_paths),
                "recursive": recursive,
                "label_from_dir": label_from_dir,
                "mode": mode,
            },
            counts={
                "files": report.files,
                "added": report.added,
                "unchanged": report.unchanged,
                "duplicates": report.duplicates,
                "rejected": len(report.errors),
                "skipped": len(report.skipped),
                "media_total": len(state.media),
            },
            failures=[{"path": p, "error": e} for p, e in report.errors],
        )
    return report


class _State:
    """The media and files manifests held in memory during a run."""

    def __init__(self, media: dict[str, dict], files: dict[str, dict]):
        self.media = media
        self.files = files

    @classmethod
    def load(cls, workspace: Workspace) -> _State:
        media_frame = manifests.load(workspace, "media", missing_ok=True)
        files_frame = manifests.load(workspace, "files", missing_ok=True)
        media = {row["media_id"]: row for row in manifests.records(media_frame)}
        for row in media.values():
            row["paths"] = list(row["paths"])
        files = {row["path"]: row for row in manifests.records(files_frame)}
        return cls(media, files)

    def unchanged(self, candidate: Candidate) -> bool:
        known = self.files.get(candidate.path)
        return bool(
            known
            and known["media_id"] in self.media
            and known["size_bytes"] == candidate.size
            and known["mtime_ns"] == candidate.mtime_ns
            and candidate.size is not None
        )

    def add(
        self,
        workspace: Workspace,
        result: dict,
        *,
        mode: str,
        label_from_dir: bool,
        report: IngestReport,
    ) -> None:
        path, media_id = result["path"], result["media_id"]
        previous = self.files.get(path)
        if previous and previous["media_id"] != media_id:
            self._forget_path(previous["media_id"], path)
        self.files[path] = {
            "path": path,
            "size_bytes": result.get("size_bytes"),
            "mtime_ns": result.get("mtime_ns"),
            "media_id": media_id,
        }
        label = Path(path).parent.name if label_from_dir else None
        if result["status"] == "error":
            report.errors.append((path, result["error"]))
        row = self.media.get(media_id)
        if row is not None:
            if path not in row["paths"]:
                row["paths"] = sorted({*row["paths"], path})
                report.duplicates += 1
            else:  # touched but the same bytes
                report.unchanged += 1
            if label_from_dir and row.get("label") and label != row["label"]:
                report.label_conflicts.append(
                    f"{path}: same content as {row['path']} but in folder {label!r}, not "
                    f"{row['label']!r}; keeping {row['label']!r}"
                )
            elif label_from_dir and not row.get("label"):
                row["label"] = label
            return
        stored = self._store(workspace, result, mode) if result["status"] == "ok" else path
        self.media[media_id] = {
            "media_id": media_id,
            "path": stored,
            "paths": [path],
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
        report.added += 1

    def _forget_path(self, media_id: str, path: str) -> None:
        row = self.media.get(media_id)
        if row is None:
            return
        row["paths"] = [p for p in row["paths"] if p != path]
        if not row["paths"] and row["mode"] == "reference":
            del self.media[media_id]

    @staticmethod
    def _store(workspace: Workspace, result: dict, mode: str) -> str:
        source = Path(result["path"])
        if mode == "reference":
            return str(source)
        target = workspace.media_dir / f"{result['media_id']}{source.suffix.lower()}"
        if not target.exists():
            tmp = target.with_name(f".{target.name}.tmp")
            if mode == "link":
                try:
                    os.link(source, tmp)
                except OSError:  # another file system: fall back to a symbolic link
                    os.symlink(source.resolve(), tmp)
            else:
                shutil.copyfile(source, tmp)
            os.replace(tmp, target)
        return str(target)

    def save(self, workspace: Workspace) -> None:
        media_frame = manifests.from_records("media", [self.media[k] for k in sorted(self.media)])
        files_frame = manifests.from_records("files", [self.files[k] for k in sorted(self.files)])
        # media first: a kill between the two writes only costs re-hashing, never a lost row
        manifests.save(workspace, "media", media_frame)
        manifests.save(workspace, "files", files_frame)


def _now():
    import pandas as pd

    return pd.Timestamp.now(tz="UTC").floor("us")
