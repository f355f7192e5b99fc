"""``labels sync``: annotations from Label Studio into ``manifests/labels.parquet``.

Incremental: the cursor in ``.dataprep/labelstudio-sync.json`` remembers each task's
``updated_at`` (Label Studio bumps it when an annotation is created, changed, cancelled or
deleted). A sync lists the project's tasks without annotations, fetches annotations only of tasks
that are new or changed, drops the rows of tasks that changed or vanished, and keeps the rest.
``--full`` re-reads everything and gives the same manifest. Nothing is written until every
request succeeded, and then atomically: a failed or killed sync leaves the previous manifest.
The cursor never holds the API key.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dataprep import manifests
from dataprep.atomic import atomic_write_text
from dataprep.errors import UsageError
from dataprep.labels.client import LabelStudioClient
from dataprep.labels.convert import parse_time
from dataprep.labels.push import connect
from dataprep.labels.resolve import POLICIES
from dataprep.labels.tasks import (
    ClockCache,
    ConvertReport,
    MediaTable,
    ProgressFn,
    convert_tasks,
    finish_rows,
    record_labels_stage,
)
from dataprep.workspace import Workspace

STATE_NAME = "labelstudio-sync.json"
STATE_VERSION = 1


@dataclass
class SyncReport:
    """What one sync did."""

    url: str
    project_id: int
    mode: str  # full | incremental
    policy: str
    tasks_total: int = 0
    tasks_fetched: int = 0
    tasks_removed: int = 0
    rows: int = 0
    resolved_rows: int = 0
    seconds: float = 0.0
    conversion: ConvertReport = field(default_factory=ConvertReport)

    @property
    def ok(self) -> bool:
        return not (self.conversion.errors or self.conversion.rejected)

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "project_id": self.project_id,
            "mode": self.mode,
            "resolve": self.policy,
            "tasks_total": self.tasks_total,
            "tasks_fetched": self.tasks_fetched,
            "tasks_removed": self.tasks_removed,
            "rows": self.rows,
            "resolved_rows": self.resolved_rows,
            "seconds": round(self.seconds, 3),
            **self.conversion.to_dict(),
        }


def state_path(workspace: Workspace):
    return workspace.state_dir / STATE_NAME


def _file_digest(path) -> str | None:
    if not path.exists():
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_state(workspace: Workspace) -> dict[str, Any] | None:
    """The sync cursor, or None when absent or unreadable (then the next sync is full)."""
    path = state_path(workspace)
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) and state.get("version") == STATE_VERSION else None


def _stamp(value: Any) -> str | None:
    if value is None:
        return None
    parsed = parse_time(value)
    return parsed.astimezone(UTC).isoformat() if parsed else str(value)


def sync(
    workspace: Workspace,
    *,
    url: str | None = None,
    project: str | None = None,
    resolve: str | None = None,
    full: bool = False,
    on_error: str = "fail",
    progress: ProgressFn | None = None,
    client: LabelStudioClient | None = None,
) -> SyncReport:
    """Pulls annotations of a Label Studio project into ``manifests/labels.parquet``.

    Args:
        workspace: the workspace.
        url: server URL (default ``[labelstudio] url``).
        project: project id or title (default ``[labelstudio] project``).
        resolve: ``majority``, ``latest`` or ``ground-truth`` (default ``[labelstudio] resolve``).
        full: re-read every task instead of only those changed since the last sync.
        on_error: ``fail`` stops on a malformed annotation (nothing written); ``skip`` leaves
            that task out (reported, fetched again next time).
        progress: ``progress(done, total)`` over fetched tasks.
        client: an already connected client (tests); default connects with the env key.

    Raises:
        LabelStudioError: server unreachable, key refused, project missing, request failed.
        ConversionError: a malformed annotation with ``on_error="fail"``.
    """
    started = time.monotonic()
    settings = workspace.config.labelstudio
    policy = resolve or settings.resolve
    if policy not in POLICIES:
        raise UsageError(f"--resolve {policy!r} is not allowed; use one of {', '.join(POLICIES)}")
    if on_error not in ("fail", "skip"):
        raise UsageError(f"--on-error {on_error!r} is not allowed; use fail or skip")
    client = client or connect(workspace, url)
    found = client.find_project(project or settings.project)
    project_id = int(found.id)
    media = MediaTable.load(workspace)
    clocks = ClockCache(media)
    labels_path = workspace.manifest_path("labels")

    with workspace.lock():
        state = load_state(workspace)
        incremental = bool(
            not full
            and state
            and state.get("url") == client.url
            and state.get("project_id") == project_id
            and state.get("policy") == policy
            and state.get("labels_sha256") == _file_digest(labels_path)
        )
        report = SyncReport(
            url=client.url,
            project_id=project_id,
            mode="incremental" if incremental else "full",
            policy=policy,
        )
        listing = client.list_tasks(project_id)
        report.tasks_total = len(listing)
        known: dict[str, str | None] = (state or {}).get("tasks", {}) if incremental else {}
        current = {str(t["id"]): _stamp(t["updated_at"]) for t in listing}
        if incremental:
            changed = [int(i) for i, stamp in current.items() if known.get(i) != stamp]
            removed = [i for i in known if i not in current]
        else:
            changed = [int(i) for i in current]
            removed = []
        fetched = client.tasks_with_annotations(project_id, changed) if changed else []
        report.tasks_fetched = len(fetched)
        report.tasks_removed = len(removed)
        users = (
            client.users()
            if any(
                isinstance(a.get("completed_by"), int) for t in fetched for a in t["annotations"]
            )
            else {}
        )
        new_rows = convert_tasks(
            fetched,
            media,
            clocks,
            classes=workspace.config.project.classes,
            media_root=settings.media_root or None,
            url_prefix=settings.media_url_prefix or None,
            server_url=client.url,
            users=users,
            on_error=on_error,
            report=report.conversion,
            progress=progress,
            total=len(fetched),
        )
        kept: list[dict] = []
        if incremental:
            dropped = {int(i) for i in changed} | {int(i) for i in removed}
            previous = manifests.load(workspace, "labels", missing_ok=True)
            kept = [
                r
                for r in manifests.records(previous)
                if not r["resolved"] and r["task_id"] not in dropped
            ]
        frame = finish_rows(kept + new_rows, policy, clocks, workspace.config.project.classes)
        manifests.save(workspace, "labels", frame)
        report.rows = int(len(frame))
        report.resolved_rows = int(frame["resolved"].sum()) if len(frame) else 0
        converted = {str(i) for i in report.conversion.converted_task_ids}
        fetched_stamps = {str(t["id"]): _stamp(t["updated_at"]) for t in fetched}
        tasks_state = {}
        for task_id, stamp in current.items():
            if task_id in converted:
                tasks_state[task_id] = fetched_stamps.get(task_id, stamp)
            elif incremental and task_id in known and int(task_id) not in changed:
                tasks_state[task_id] = known[task_id]
        new_state = {
            "version": STATE_VERSION,
            "url": client.url,
            "project_id": project_id,
            "policy": policy,
            "synced_at": datetime.now(UTC).isoformat(),
            "labels_sha256": _file_digest(labels_path),
            "tasks": tasks_state,
        }
        atomic_write_text(state_path(workspace), json.dumps(new_state, indent=1, sort_keys=True))
        record_labels_stage(
            workspace,
            {
                "source": "sync",
                "url": client.url,
                "project_id": project_id,
                "resolve": policy,
                "mode": report.mode,
            },
            {
                "rows": report.rows,
                "resolved_rows": report.resolved_rows,
                "tasks_fetched": report.tasks_fetched,
                "tasks_total": report.tasks_total,
            },
            report.conversion,
        )
    report.seconds = time.monotonic() - started
    return report
