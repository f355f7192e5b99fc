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
