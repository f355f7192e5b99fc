"""Options shared by every command, and the one place errors become messages and exit codes."""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from dataprep import errors

WorkspaceOpt = Annotated[
    Path | None,
    typer.Option(
        "-w",
        "--workspace",
        help="Workspace folder (default: $DATAPREP_WORKSPACE, else the current folder).",
        show_default=False,
    ),
]
JobsOpt = Annotated[
    int | None,
    typer.Option("--jobs", "-j", min=1, help="Parallel worker processes (default: all cores)."),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print machine-readable JSON instead of tables.")
]
OverwriteOpt = Annotated[
    bool, typer.Option("--overwrite", help="Replace outputs made with other settings.")
]
OnErrorOpt = Annotated[
    str,
    typer.Option(
        "--on-error",
        help="What a bad item does: skip (record it and go on) or fail (stop at the first one; "
        "the items before it are kept).",
    ),
]

_state: dict[str, Any] = {"debug": False, "quiet": False, "workspace": None}


def set_global(*, debug: bool, quiet: bool, workspace: Path | None = None) -> None:
    """Options given before the command name (``dataprep -w DIR --quiet ingest ...``)."""
    _state["debug"] = debug or bool(os.environ.get("DATAPREP_DEBUG"))
    _state["quiet"] = quiet
    _state["workspace"] = workspace


def quiet() -> bool:
    """True when progress output should be suppressed (--quiet, or not on a terminal)."""
    return _state["quiet"] or not sys.stderr.isatty()


@functools.cache
def console():
    from rich.console import Console

    return Console()


@functools.cache
def err_console():
    from rich.console import Console

    return Console(stderr=True)


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str, sort_keys=False))


def mean_std_text(stats: dict) -> str:
    """``mean RGB [..], std RGB [..]`` of a stats result (4 decimals, on the 0-1 scale)."""
    mean = ", ".join(f"{v:.4f}" for v in stats["mean"])
    std = ", ".join(f"{v:.4f}" for v in stats["std"])
    return f"mean RGB [{mean}], std RGB [{std}]"


def print_failed(failures: list[dict], detail: Callable[[dict], str] = lambda f: "") -> None:
    """One red ``failed:`` line per failed media of a stage report (``media_id``, ``error``)."""
    for failure in failures:
        line = f"{failure['media_id']}: {failure['error']}{detail(failure)}"
        console().print(f"[red]failed:[/] {line}")


def fail(message: str, code: int = errors.EXIT_FAILED) -> typer.Exit:
    """Prints ``error: message`` on stderr and returns the Exit to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


@contextlib.contextmanager
def native_logs_silenced():
    """Sends what native libraries write to file descriptor 2 (TensorFlow's C++ logging: CUDA
    probing on GPU-less machines, oneDNN notes) to /dev/null, while Python's ``sys.stderr``
    (our messages, warnings, progress bars) keeps writing to the real stderr. Off with --debug,
    and when stderr is not a real file (e.g. under a test runner)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        real = not _state["debug"] and sys.stderr.fileno() == 2
    except (AttributeError, ValueError, io.UnsupportedOperation):
        real = False
    if not real:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    original = sys.stderr
    sys.stderr = os.fdopen(os.dup(saved), "w", buffering=1, errors="backslashreplace")
    try:
        yield
    finally:
        sys.stderr.flush()
        sys.stderr.close()
        sys.stderr = original
        os.dup2(saved, 2)
        os.close(saved)


def silence_native_logs(func):
    """Decorator: runs a command under :func:`native_logs_silenced`."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with native_logs_silenced():
            return func(*args, **kwargs)

    return wrapper


class PipeSafeStream:
    """Wraps stdout so that a reader that went away (``dataprep ... | head -1``) does not change
    the command's outcome: the first ``BrokenPipeError`` points file descriptor 1 at
    /dev/null, and the command goes on to its own exit code (its work is done; only the rest
    of its report is unread)."""

    def __init__(self, stream) -> None:
        self._stream = stream
        self.broken = False

    def _closed(self) -> None:
        self.broken = True
        with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)

    def write(self, text):
        if not self.broken:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._closed()
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._closed()

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def protect_stdout() -> None:
    """Installs :class:`PipeSafeStream` on ``sys.stdout`` (once; the console script does it)."""
    if not isinstance(sys.stdout, PipeSafeStream) and sys.stdout is not None:
        sys.stdout = PipeSafeStream(sys.stdout)


def flush_stdout() -> None:
    """Flushes stdout at exit; a reader that went away is not an error (see PipeSafeStream)."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.close(devnull)


def handle_errors(func):
    """Turns library exceptions into one-line messages and documented exit codes."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except errors.DataprepError as exc:
            if _state["debug"]:
                raise
            raise fail(str(exc), exc.exit_code) from None
        except KeyboardInterrupt:
            raise fail(
                "interrupted; rerun the command to finish the job", errors.EXIT_INTERRUPTED
            ) from None
        except Exception as exc:  # noqa: BLE001 - last resort: one line, traceback on --debug
            if _state["debug"]:
                raise
            raise fail(
                f"unexpected {type(exc).__name__}: {exc} (rerun with --debug for the traceback)",
                errors.EXIT_FAILED,
            ) from None

    return wrapper


def open_ws(workspace: Path | None):
    """Opens the workspace named by -w (or the default), as a library Workspace."""
    from dataprep.workspace import open_workspace

    return open_workspace(workspace or _state["workspace"])
