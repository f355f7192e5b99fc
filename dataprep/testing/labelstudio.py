"""Label Studio for tests and examples: export files, result JSON, and a real local server.

1. :func:`make_export` / :func:`write_export` build a Label Studio export (JSON or JSON_MIN) for
   given media rows and labels (whole-media choices, segments, box tracks), so the example
   pipeline can run ``dataprep labels import`` offline. Frames are given as the decoder's 0-based
   ``frame_index`` and boxes in pixels; the export holds what Label Studio would (1-based frames,
   percentages, key frames only).
2. :func:`choice_result`, :func:`timeline_result`, :func:`video_box_result`,
   :func:`image_box_result` build annotation results as Label Studio's editor saves them.
3. :class:`LabelStudioServer` installs the ``label-studio`` package into its own virtual
   environment (its pinned dependencies conflict with TensorFlow's), initializes a throw-away
   data folder with a user and a legacy API token, starts the server on 127.0.0.1 and stops it.
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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dataprep.labels import config_xml

LABEL_STUDIO_REQUIREMENT = "label-studio>=1.23,<2"
ENV_VENV = "DATAPREP_LS_VENV"

# --------------------------------------------------------------------------- results


def _rid() -> str:
    return uuid.uuid4().hex[:10]


def choice_result(label: str, *, to_name: str = config_xml.VIDEO_KEY) -> dict:
    """A whole-media ``Choices`` result."""
    return {
        "id": _rid(),
        "from_name": config_xml.CHOICES_NAME,
        "to_name": to_name,
        "type": "choices",
        "origin": "manual",
        "value": {"choices": [label]},
    }


def timeline_result(label: str, spans: Sequence[tuple[int, int]]) -> dict:
    """A ``TimelineLabels`` result; ``spans`` are decoder frame ranges (0-based, inclusive)."""
    return {
        "id": _rid(),
        "from_name": config_xml.TIMELINE_NAME,
        "to_name": config_xml.VIDEO_KEY,
        "type": "timelinelabels",
        "origin": "manual",
        "value": {
            "ranges": [{"start": first + 1, "end": last + 1} for first, last in spans],
            "timelinelabels": [label],
        },
    }


@dataclass
class Track:
    """A box track: key frames ``(frame_index, x, y, w, h, enabled)`` in pixels, 0-based frames."""

    label: str
    keyframes: list[tuple[int, float, float, float, float, bool]]


def video_box_result(
    track: Track, *, fps: float, width: int, height: int, frame_count: int
) -> dict:
    """A ``VideoRectangle`` result with key frames only, as Label Studio stores it."""
    sequence = [
        {
            "frame": frame_index + 1,
            "time": frame_index / fps,
            "enabled": bool(enabled),
            "rotation": 0,
            "x": 100.0 * x / width,
            "y": 100.0 * y / height,
            "width": 100.0 * w / width,
            "height": 100.0 * h / height,
        }
        for frame_index, x, y, w, h, enabled in track.keyframes
    ]
    return {
        "id": _rid(),
        "from_name": config_xml.BOX_LABELS_NAME,
        "to_name": config_xml.VIDEO_KEY,
        "type": "videorectangle",
        "origin": "manual",
        "value": {
            "framesCount": frame_count,
            "duration": frame_count / fps,
            "sequence": sequence,
            "labels": [track.label],
        },
    }


def image_box_result(
    label: str, box: tuple[float, float, float, float], *, width: int, height: int
) -> dict:
    """A ``RectangleLabels`` result for an image; ``box`` is (x, y, w, h) in pixels."""
    x, y, w, h = box
    return {
        "id": _rid(),
        "from_name": config_xml.BOX_LABELS_NAME,
        "to_name": config_xml.IMAGE_KEY,
        "type": "rectanglelabels",
        "origin": "manual",
        "original_width": width,
        "original_height": height,
        "image_rotation": 0,
        "value": {
            "x": 100.0 * x / width,
            "y": 100.0 * y / height,
            "width": 100.0 * w / width,
            "height": 100.0 * h / height,
            "rotation": 0,
            "rectanglelabels": [label],
        },
    }


# --------------------------------------------------------------------------- exports


@dataclass
class ExportAnnotation:
    """One annotator's labels for one media, in dataprep's terms (0-based frames, pixels)."""

    media_id: str
    choices: list[str] = field(default_factory=list)
    segments: list[tuple[str, int, int]] = field(default_factory=list)  # label, first, last
    tracks: list[Track] = field(default_factory=list)
    image_boxes: list[tuple[str, tuple[float, float, float, float]]] = field(default_factory=list)
    annotator: str = "annotator@example.com"
    ground_truth: bool = False


def results_for(annotation: ExportAnnotation, media_row: dict) -> list[dict]:
    """The Label Studio results of an :class:`ExportAnnotation` for its media row."""
    video = media_row["kind"] == "video"
    to_name = config_xml.VIDEO_KEY if video else config_xml.IMAGE_KEY
    results = [choice_result(label, to_name=to_name) for label in annotation.choices]
    by_label: dict[str, list[tuple[int, int]]] = {}
    for label, first, last in annotation.segments:
        by_label.setdefault(label, []).append((first, last))
    results += [timeline_result(label, spans) for label, spans in by_label.items()]
    for track in annotation.tracks:
        results.append(
            video_box_result(
                track,
                fps=float(media_row["fps"]),
                width=int(media_row["width"]),
                height=int(media_row["height"]),
                frame_count=int(media_row["frame_count"]),
            )
        )
    for label, box in annotation.image_boxes:
        results.append(
            image_box_result(
                label, box, width=int(media_row["width"]), height=int(media_row["height"])
            )
        )
    return results


def task_data(media_row: dict, media_root: str | Path | None = None) -> dict:
    """Task data as ``dataprep labels push`` writes it (local-files URL)."""
    video = media_row["kind"] == "video"
    path = Path(media_row["path"])
    if media_root is not None:
        relative = os.path.relpath(path, media_root).replace(os.sep, "/")
    else:
        relative = f"media/{path.name}"
    data = {
        config_xml.media_key(media_row["kind"]): f"/data/local-files/?d={relative}",
        config_xml.MEDIA_ID_KEY: media_row["media_id"],
        "file": path.name,
    }
    if video:
        data[config_xml.FPS_KEY] = float(media_row["fps"])
        data["frame_count"] = int(media_row["frame_count"])
    return data


def make_export(
    media_rows: Iterable[dict],
    annotations: Iterable[ExportAnnotation],
    *,
    fmt: str = "JSON",
    media_root: str | Path | None = None,
    with_media_id: bool = True,
) -> list[dict]:
    """A Label Studio export (list of tasks for JSON; flat annotation records for JSON_MIN).

    Args:
        media_rows: media manifest records (``manifests.records(media)``).
        annotations: the labels; several per media make several annotators.
        fmt: ``JSON`` or ``JSON_MIN``.
        media_root: folder the local-files URLs are relative to.
        with_media_id: put ``media_id`` in task data (False: match by file name only).
    """
    rows = {r["media_id"]: r for r in media_rows}
    by_media: dict[str, list[ExportAnnotation]] = {}
    for annotation in annotations:
        if annotation.media_id not in rows:
            raise KeyError(f"annotation for unknown media {annotation.media_id}")
        by_media.setdefault(annotation.media_id, []).append(annotation)
    users: dict[str, int] = {}
    stamp = datetime(2026, 1, 1, tzinfo=UTC)
    tasks, records = [], []
    annotation_id = 0
    for task_id, (media_id, media_row) in enumerate(sorted(rows.items()), 1):
        data = task_data(media_row, media_root)
        if not with_media_id:
            data.pop(config_xml.MEDIA_ID_KEY)
        task = {
            "id": task_id,
            "data": data,
            "annotations": [],
            "predictions": [],
            "project": 1,
            "created_at": stamp.isoformat().replace("+00:00", "Z"),
        }
        for annotation in by_media.get(media_id, []):
            annotation_id += 1
            user = users.setdefault(annotation.annotator, len(users) + 1)
            when = stamp.replace(minute=annotation_id % 60).isoformat().replace("+00:00", "Z")
            results = results_for(annotation, media_row)
            task["annotations"].append(
                {
                    "id": annotation_id,
                    "completed_by": {"id": user, "email": annotation.annotator},
                    "result": results,
                    "was_cancelled": False,
                    "ground_truth": annotation.ground_truth,
                    "created_at": when,
                    "updated_at": when,
                    "lead_time": 1.0,
                    "task": task_id,
                    "project": 1,
                }
            )
            record = {
                **data,
                "id": task_id,
                "annotator": annotation.annotator,
                "annotation_id": annotation_id,
                "created_at": when,
                "updated_at": when,
                "lead_time": 1.0,
            }
            for result in results:
                value = dict(result["value"])
                kind = result["type"]
                if kind == "choices":
                    record[result["from_name"]] = value["choices"][0]
                    continue
                value["type"] = {
                    "timelinelabels": "TimelineLabels",
                    "videorectangle": "Labels",
                    "rectanglelabels": "RectangleLabels",
                }[kind]
                for key in ("original_width", "original_height"):
                    if key in result:
                        value[key] = result[key]
                record.setdefault(result["from_name"], []).append(value)
            records.append(record)
        tasks.append(task)
    if fmt == "JSON":
        return tasks
    if fmt == "JSON_MIN":
        return records
    raise ValueError(f"fmt {fmt!r} must be JSON or JSON_MIN")


def write_export(
    path: Path, media_rows: Iterable[dict], annotations: Iterable[ExportAnnotation], **kwargs: Any
) -> Path:
    """Writes :func:`make_export` to ``path`` as JSON; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(make_export(media_rows, annotations, **kwargs), indent=1), encoding="utf-8"
    )
    return path


# --------------------------------------------------------------------------- server


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
