"""Exceptions the library raises, and the exit codes the CLI maps them to.

Every message is one line that names the file or record at fault and says what to do.
"""

from __future__ import annotations

# Exit codes (documented in docs/reference/exit-codes.md).
EXIT_OK = 0
EXIT_PARTIAL = 1  # the run finished but some inputs were rejected (see the summary)
EXIT_USAGE = 2  # bad options or configuration
EXIT_FAILED = 3  # the run could not be done (nothing was changed)
EXIT_LOCKED = 4  # another dataprep process holds the workspace
EXIT_INTERRUPTED = 130


class DataprepError(Exception):
    """Base class: a problem the user can act on. ``str()`` is the one-line message."""

    exit_code = EXIT_FAILED


class UsageError(DataprepError):
    """Bad options or configuration."""

    exit_code = EXIT_USAGE


class ConfigError(UsageError):
    """``dataprep.toml`` is missing a key, has an unknown one, or a value out of range."""


class WorkspaceNotFound(UsageError):
    """The command was run outside a workspace."""


class WorkspaceLocked(DataprepError):
    """Another dataprep process is writing to the workspace."""

    exit_code = EXIT_LOCKED


class ManifestError(DataprepError):
    """A manifest is missing, foreign, of another schema version, or does not match its schema."""


class MediaError(DataprepError):
    """A media file cannot be read or decoded."""


def os_error_message(path: object, exc: OSError, action: str = "write") -> str:
    """One line for an OSError on ``path``: disk full, permissions, or the OS's own words."""
    import errno

    if exc.errno == errno.ENOSPC:
        return (
            f"{path}: cannot {action}: the disk is full; free some space and rerun the command "
            "(finished work is kept and the rerun resumes)"
        )
    if exc.errno == errno.EDQUOT:
        return f"{path}: cannot {action}: disk quota exceeded; free some space and rerun"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"{path}: cannot {action}: permission denied; check the folder's permissions"
    if exc.errno == errno.EROFS:
        return f"{path}: cannot {action}: the file system is read-only"
    return f"{path}: cannot {action}: {exc.strerror or exc}"


class DiskError(DataprepError):
    """A file could not be written (disk full, permissions); finished work is kept."""
