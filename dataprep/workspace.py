"""The workspace: a folder with ``dataprep.toml`` at its root, its layout, and its lock."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from dataprep.atomic import atomic_write_text
from dataprep.config import CONFIG_NAME, Config, dump_config, load_config, validate_config
from dataprep.errors import UsageError, WorkspaceLocked, WorkspaceNotFound

ENV_WORKSPACE = "DATAPREP_WORKSPACE"
ENV_LOCK_TIMEOUT = "DATAPREP_LOCK_TIMEOUT"
LOCK_NAME = ".dataprep.lock"
FOLDERS = ("media", "frames", "manifests", "exports", "runs")


@dataclass(frozen=True)
class Workspace:
    """An opened workspace. Paths are absolute."""

    root: Path
    config: Config

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_NAME

    @property
    def manifests(self) -> Path:
        return self.root / "manifests"

    @property
    def media_dir(self) -> Path:
        return self.root / "media"

    @property
    def frames_dir(self) -> Path:
        return self.root / "frames"

    @property
    def exports_dir(self) -> Path:
        return self.root / "exports"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def state_dir(self) -> Path:
        """Internal bookkeeping (sync cursors, stage records); never holds secrets."""
        return self.root / ".dataprep"

    def manifest_path(self, name: str) -> Path:
        return self.manifests / f"{name}.parquet"

    def save_config(self, config: Config) -> Workspace:
        """Validates and writes ``config``; returns the workspace with it."""
        config = validate_config(config.model_dump())
        atomic_write_text(self.config_path, dump_config(config))
        return Workspace(self.root, config)

    @contextlib.contextmanager
    def lock(self, timeout: float | None = None) -> Iterator[None]:
        """Holds the workspace's exclusive write lock.

        Waits up to ``timeout`` seconds (default: env ``DATAPREP_LOCK_TIMEOUT`` or 30) for
        another dataprep process to finish, then refuses with :class:`WorkspaceLocked`.
        The lock is an OS file lock: it is released when the holder dies, even by kill -9.
        """
        if timeout is None:
            timeout = float(os.environ.get(ENV_LOCK_TIMEOUT, "30"))
        path = self.root / LOCK_NAME
        handle = open(path, "a+")  # noqa: SIM115 - held for the duration of the context
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                    if time.monotonic() >= deadline:
                        handle.seek(0)
                        holder = handle.read().strip() or "another process"
                        raise WorkspaceLocked(
                            f"workspace {self.root} is in use by {holder}; wait for it to finish "
                            f"(or raise {ENV_LOCK_TIMEOUT}) and run the command again"
                        ) from None
                    time.sleep(0.2)
            handle.seek(0)
            handle.truncate()
            handle.write(f"dataprep pid {os.getpid()}")
            handle.flush()
            self._remove_stale_temporaries()
            yield
        finally:
            handle.close()

    def _remove_stale_temporaries(self) -> None:
        """Deletes half-written manifest files left by a killed run (we hold the lock, so no
        other process is writing them)."""
        for folder in (self.manifests, self.state_dir, self.state_dir / "stages"):
            for stale in folder.glob(".*.tmp") if folder.is_dir() else ():
                with contextlib.suppress(OSError):
                    stale.unlink()


def init_workspace(
    directory: Path,
    *,
    classes: list[str] | None = None,
    label_type: str = "classification",
    name: str | None = None,
    exist_ok: bool = False,
) -> Workspace:
    """Creates a workspace: ``dataprep.toml`` and the folders of the layout.

    Raises:
        UsageError: when ``directory`` already holds a workspace and ``exist_ok`` is false.
        ConfigError: when a value is not allowed.
    """
    root = Path(directory).expanduser().resolve()
    config_path = root / CONFIG_NAME
    if config_path.exists():
        if not exist_ok:
            raise UsageError(
                f"{config_path} already exists; edit it, or use another folder for a new workspace"
            )
        workspace = open_workspace(root)
    else:
        data = {
            "project": {
                "name": name or root.name,
                "classes": list(classes or []),
                "label_type": label_type,
            }
        }
        config = validate_config(data, "init options")
        root.mkdir(parents=True, exist_ok=True)
        atomic_write_text(config_path, dump_config(config))
        workspace = Workspace(root, config)
    for folder in FOLDERS:
        (root / folder).mkdir(exist_ok=True)
    workspace.state_dir.mkdir(exist_ok=True)
    return workspace


def find_workspace_root(start: Path | None = None) -> Path:
    """Resolves which workspace a command acts on.

    Order: ``start`` when given, else env ``DATAPREP_WORKSPACE``, else the current folder or
    the nearest parent that holds ``dataprep.toml``.

    Raises:
        WorkspaceNotFound: with the command that makes one.
    """
    if start is None and os.environ.get(ENV_WORKSPACE):
        start = Path(os.environ[ENV_WORKSPACE])
    if start is not None:
        root = Path(start).expanduser().resolve()
        if (root / CONFIG_NAME).is_file():
            return root
        raise WorkspaceNotFound(
            f"{root} is not a dataprep workspace (no {CONFIG_NAME}); "
            f"create one with `dataprep init {root}`"
        )
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_NAME).is_file():
            return folder
    raise WorkspaceNotFound(
        f"{here} is not inside a dataprep workspace (no {CONFIG_NAME}); create one with "
        f"`dataprep init DIR`, then pass -w DIR or set {ENV_WORKSPACE}"
    )


def open_workspace(start: Path | None = None) -> Workspace:
    """Opens the workspace at ``start`` (see :func:`find_workspace_root`); validates its config."""
    root = find_workspace_root(start)
    return Workspace(root, load_config(root / CONFIG_NAME))
