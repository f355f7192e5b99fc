"""Finding the files ingest looks at: folders walked (sorted, hidden entries skipped), paths
spelled once (resolved folders), special files and unreadable folders reported, not fatal."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from dataprep.errors import UsageError
from dataprep.sniff import kind_from_extension


@dataclass(frozen=True)
class Candidate:
    """A file that may be media: its path, stat and the kind its extension suggests."""

    path: str
    size: int | None
    mtime_ns: int | None
    hint: str | None


@dataclass
class Discovery:
    """What :func:`discover` found: candidates, skipped entries and unreadable folders."""

    candidates: list[Candidate]
    skipped: list[tuple[str, str]]  # (path, reason): special files
    unreadable: list[tuple[str, str]]  # (folder, reason): folders that cannot be listed


def resolved_root(path: Path) -> Path:
    """The spelling under which a path given to ingest is stored: absolute, ``~``, ``..`` and
    symbolic links of its *folders* resolved, so ``../raw`` and ``/data/raw`` are the same
    files. A symbolic link named directly (or met inside a folder) keeps its own name: it is
    its own file path (its folder gives its label), and its bytes give its media_id."""
    path = Path(path).expanduser()
    if path.is_dir():
        return path.resolve()
    return Path(os.path.realpath(path.parent)) / path.name


def discover(paths: Iterable[Path], *, recursive: bool = True) -> Discovery:
    """Lists candidate files under ``paths`` (files or folders), sorted, without reading them.

    Candidates have a media extension, are broken links with one, or have no media extension
    but may be media by content (checked later). Paths are stored as :func:`resolved_root`
    spells them. A folder that cannot be listed (permissions) is reported, never fatal.

    Raises:
        UsageError: when a path does not exist.
    """
    candidates: dict[str, Candidate] = {}
    found = Discovery([], [], [])
    for root in paths:
        root = resolved_root(Path(root))
        if root.is_dir():
            iterator = _walk(root, recursive, found.unreadable)
        elif root.exists() or root.is_symlink():
            iterator = iter([root])
        else:
            raise UsageError(f"{root}: no such file or folder; check the path")
        for path in iterator:
            key = str(path)
            if key not in candidates:
                candidate = _candidate(path, found.skipped)
                if candidate is not None:
                    candidates[key] = candidate
    found.candidates = [candidates[k] for k in sorted(candidates)]
    return found


def _candidate(path: Path, skipped: list[tuple[str, str]]) -> Candidate | None:
    hint = kind_from_extension(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        return Candidate(str(path), None, None, hint) if path.is_symlink() else None
    except OSError:
        return Candidate(str(path), None, None, hint)
    if not path.is_file():
        skipped.append((str(path), "not a regular file"))
        return None
    return Candidate(str(path), info.st_size, info.st_mtime_ns, hint)


def _walk(root: Path, recursive: bool, unreadable: list[tuple[str, str]]) -> Iterator[Path]:
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as exc:
        unreadable.append((str(root), _folder_problem(exc)))
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = Path(entry.path)
        try:
            is_dir = entry.is_dir(follow_symlinks=False)
        except OSError:
            is_dir = False
        if is_dir:
            if recursive:
                yield from _walk(path, recursive, unreadable)
        else:
            yield path


def _folder_problem(exc: OSError) -> str:
    import errno

    if exc.errno in (errno.EACCES, errno.EPERM):
        return "folder cannot be read (permission denied); its files were not ingested"
    return f"folder cannot be read ({exc.strerror or exc}); its files were not ingested"
