"""Finding the files ingest looks at: folders walked (sorted, hidden entries skipped), paths
spelled once (resolved folders), special files and unreadable folders reported, not fatal."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from dataprep.errors import UsageError
from dataprep.sniff import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS


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
    for candidate in walk(paths, recursive=recursive, found=found, known=candidates.__contains__):
        candidates[candidate.path] = candidate
    found.candidates = [candidates[k] for k in sorted(candidates)]
    return found


def walk(
    paths: Iterable[Path], *, recursive: bool, found: Discovery, known: Callable[[str], bool]
) -> Iterator[Candidate]:
    """The candidates of :func:`discover` as a stream, in walk order (not sorted), each path
    once: ``known(path)`` says whether the consumer already holds it (a path met again under
    another root is not looked at twice). Skipped entries and unreadable folders are appended
    to ``found``; its ``candidates`` are left alone.

    Raises:
        UsageError: when a path does not exist (when the walk reaches it).
    """
    for root in paths:
        root = resolved_root(Path(root))
        if root.is_dir():
            iterator = _walk(str(root), recursive, found.unreadable)
        elif root.exists() or root.is_symlink():
            iterator = iter([str(root)])
        else:
            raise UsageError(_missing(root))
        for path in iterator:
            if not known(path):
                candidate = _candidate(path, found.skipped)
                if candidate is not None:
                    yield candidate


def check_roots(paths: Iterable[Path]) -> None:
    """Refuses a path that does not exist before any walking (what :func:`discover` raises
    when it reaches it).

    Raises:
        UsageError: naming the first path that does not exist.
    """
    for root in paths:
        root = resolved_root(Path(root))
        if not (root.exists() or root.is_symlink()):
            raise UsageError(_missing(root))


def _missing(root: Path) -> str:
    return f"{root}: no such file or folder; check the path"


def _candidate(path: str, skipped: list[tuple[str, str]]) -> Candidate | None:
    # plain strings and os calls: a pathlib.Path per file interns each name (a walk of
    # millions of files would grow the interpreter's table of interned strings)
    hint = _hint(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return Candidate(path, None, None, hint) if os.path.islink(path) else None
    except OSError:
        return Candidate(path, None, None, hint)
    if not stat.S_ISREG(info.st_mode):
        skipped.append((path, "not a regular file"))
        return None
    return Candidate(path, info.st_size, info.st_mtime_ns, hint)


def _hint(path: str) -> str | None:
    """:func:`dataprep.sniff.kind_from_extension` of a path given as a string."""
    name = os.path.basename(path)
    suffix = os.path.splitext(name)[1].lower() if not name.endswith(".") else ""
    if suffix in VIDEO_EXTENSIONS:
        return "video"
    if suffix in IMAGE_EXTENSIONS:
        return "image"
    return None


def _walk(root: str, recursive: bool, unreadable: list[tuple[str, str]]) -> Iterator[str]:
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as exc:
        unreadable.append((root, _folder_problem(exc)))
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            is_dir = entry.is_dir(follow_symlinks=False)
        except OSError:
            is_dir = False
        if is_dir:
            if recursive:
                yield from _walk(entry.path, recursive, unreadable)
        else:
            yield entry.path


def _folder_problem(exc: OSError) -> str:
    import errno

    if exc.errno in (errno.EACCES, errno.EPERM):
        return "folder cannot be read (permission denied); its files were not ingested"
    return f"folder cannot be read ({exc.strerror or exc}); its files were not ingested"
