"""A real Label Studio server for tests and examples.

:class:`LabelStudioServer` installs the ``label-studio`` package into its own virtual environment
(its pinned dependencies conflict with TensorFlow's), initializes a throw-away data folder with a
user and a legacy API token, starts the server on 127.0.0.1 and stops it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

LABEL_STUDIO_REQUIREMENT = "label-studio>=1.23,<2"
ENV_VENV = "DATAPREP_LS_VENV"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def default_venv(repo_root: Path) -> Path:
    """The server's virtualenv: ``$DATAPREP_LS_VENV`` or ``<repo>/.cache/labelstudio-venv``."""
    override = os.environ.get(ENV_VENV)
    return Path(override) if override else Path(repo_root) / ".cache" / "labelstudio-venv"


def ensure_venv(
    venv: Path, *, requirement: str = LABEL_STUDIO_REQUIREMENT, timeout_s: float = 1200
) -> Path:
    """Creates ``venv`` with ``label-studio`` installed unless it has it; returns its
    ``label-studio`` executable. A half-built environment (no marker) is rebuilt."""
    venv = Path(venv)
    exe = venv / "bin" / "label-studio"
    marker = venv / ".dataprep-installed"
    if exe.exists() and (marker.exists() or os.environ.get(ENV_VENV)):
        return exe
    if venv.exists():
        if os.environ.get(ENV_VENV) or not (venv / "pyvenv.cfg").exists():
            raise RuntimeError(
                f"{venv} exists but has no label-studio; install it there "
                f"(pip install '{requirement}') or remove the folder"
            )
        shutil.rmtree(venv)  # our own half-built environment
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            requirement,
        ],
        check=True,
        timeout=timeout_s,
    )
    marker.write_text(requirement + "\n")
    return exe


@dataclass
class LabelStudioServer:
    """A real Label Studio server on 127.0.0.1 with a throw-away data folder.

    Attributes:
        executable: the ``label-studio`` command of its virtualenv.
        data_dir: ``LABEL_STUDIO_BASE_DATA_DIR`` (database, uploads, logs).
        document_root: ``LOCAL_FILES_DOCUMENT_ROOT``: local files are served from its sub-folders.
        username, password, token: the user made at init; ``token`` is a legacy API token.
    """

    executable: Path
    data_dir: Path
    document_root: Path
    username: str = "dataprep@example.com"
    password: str = "dataprep-test-pw"
    token: str = field(default_factory=lambda: "dp" + uuid.uuid4().hex)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "server.log"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LABEL_STUDIO_")}
        env.update(
            {
                "LABEL_STUDIO_BASE_DATA_DIR": str(self.data_dir),
                "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
                "LOCAL_FILES_SERVING_ENABLED": "true",
                "LOCAL_FILES_DOCUMENT_ROOT": str(self.document_root),
                "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
                "COLLECT_ANALYTICS": "false",
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    def init(self, timeout_s: float = 300) -> None:
        """``label-studio init`` with the user and legacy token (about 30-40 s)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.document_root.mkdir(parents=True, exist_ok=True)
        with open(self.data_dir / "init.log", "wb") as log:
            done = subprocess.run(
                [
                    str(self.executable),
                    "init",
                    "--username",
                    self.username,
                    "--password",
                    self.password,
                    "--user-token",
                    self.token,
                    "--no-browser",
                ],
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=timeout_s,
                cwd=self.data_dir,
            )
        if done.returncode != 0:
            raise RuntimeError(f"label-studio init failed; see {self.data_dir / 'init.log'}")

    def start(self, timeout_s: float = 180) -> None:
        """``label-studio start`` and wait until ``/health`` answers."""
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the server process
        self.process = subprocess.Popen(
            [
                str(self.executable),
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--no-browser",
            ],
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.data_dir,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"label-studio start exited ({self.process.returncode}): {tail}")
            if self.healthy():
                return
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(
            f"Label Studio did not become healthy within {timeout_s}s; see {self.log_path}"
        )

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def stop(self, timeout_s: float = 30) -> None:
        """Stops the server (SIGTERM to its process group, then SIGKILL)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=timeout_s)


def _template_key(executable: Path) -> str:
    stat = Path(executable).resolve().stat()
    return f"{Path(executable).resolve()}:{stat.st_mtime_ns}"


def start_server(repo_root: Path, workdir: Path, *, reuse_init: bool = True) -> LabelStudioServer:
    """Installs (if needed), initializes and starts a server under ``workdir``.

    ``label-studio init`` (migrations of a fresh database: 30-100 s) runs once into
    ``<repo>/.cache/labelstudio-initialized`` and each session copies that folder (database, user,
    test token) into its own data folder, unless ``reuse_init`` is false.
    """
    executable = ensure_venv(default_venv(repo_root))
    workdir = Path(workdir)
    data_dir = workdir / "ls-data"
    document_root = workdir / "ls-files"
    document_root.mkdir(parents=True, exist_ok=True)
    if not reuse_init:
        server = LabelStudioServer(
            executable=executable, data_dir=data_dir, document_root=document_root
        )
        server.init()
        server.start()
        return server
    template = Path(repo_root) / ".cache" / "labelstudio-initialized"
    credentials_path = template / "dataprep-credentials.json"
    key = _template_key(executable)
    credentials = None
    if credentials_path.exists():
        credentials = json.loads(credentials_path.read_text())
        if credentials.get("key") != key:
            credentials = None
    if credentials is None:
        building = template.with_name(template.name + f".building-{os.getpid()}")
        shutil.rmtree(building, ignore_errors=True)
        fresh = LabelStudioServer(
            executable=executable, data_dir=building, document_root=document_root
        )
        fresh.init()
        credentials = {
            "key": key,
            "username": fresh.username,
            "password": fresh.password,
            "token": fresh.token,
        }
        (building / "dataprep-credentials.json").write_text(json.dumps(credentials))
        shutil.rmtree(template, ignore_errors=True)
        os.replace(building, template)
    shutil.copytree(template, data_dir, ignore=shutil.ignore_patterns("*.log"))
    server = LabelStudioServer(
        executable=executable,
        data_dir=data_dir,
        document_root=document_root,
        username=credentials["username"],
        password=credentials["password"],
        token=credentials["token"],
    )
    server.start()
    return server
