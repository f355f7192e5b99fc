"""``labels sync``: annotations from Label Studio into ``manifests/labels.parquet``.

Incremental: the cursor in ``.dataprep/labelstudio-sync.json`` remembers each task's
``updated_at`` (Label Studio bumps it when an annotation is created, changed, cancelled or
deleted). A sync lists the project's tasks without annotations, fetches annotations only of tasks
that are new or changed, replaces the rows of tasks that changed or vanished, and keeps the rest.
Labels of media the project does not show are kept unless ``replace`` (merge by media).
``--full`` re-reads everything and gives the same manifest. Nothing is written until every
request succeeded, and then atomically: a failed or killed sync leaves the previous manifest.
The cursor never holds the API key.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dataprep.atomic import atomic_write_text
from dataprep.errors import UsageError
from dataprep.hashing import file_sha256
from dataprep.labels.client import LabelStudioClient
from dataprep.labels.convert import Row, parse_time
from dataprep.labels.merge import LabelsWriteReport, merge_rows, previous_rows, save_labels
from dataprep.labels.push import connect
from dataprep.labels.tasks import (
    ClockCache,
    ProgressFn,
    check_options,
    convert_workspace_tasks,
    record_labels_stage,
)
from dataprep.workspace import Workspace

STATE_NAME = "labelstudio-sync.json"
STATE_VERSION = 1


@dataclass
class SyncReport(LabelsWriteReport):
    """What one sync did (see :class:`LabelsWriteReport` for the counts)."""

    url: str
    project_id: int
    mode: str  # full | incremental
    policy: str
    tasks_total: int = 0
    tasks_fetched: int = 0
    tasks_removed: int = 0

    @property
    def ok(self) -> bool:
        return not (self.conversion.errors or self.conversion.rejected)


@dataclass
class _Plan:
    """Which tasks a sync fetches, and what it knows from the cursor."""

    incremental: bool
    current: dict[str, str | None]  # task id -> updated_at
    known: dict[str, str | None]  # the cursor's tasks (incremental only)
    changed: list[int]
    removed: list[str]
    project_tasks: set[int]  # tasks of this project the last sync saw (cursor of this project)


def state_path(workspace: Workspace) -> Path:
    return workspace.state_dir / STATE_NAME


def _labels_digest(path: Path) -> str | None:
    return file_sha256(path)[0] if path.exists() else None


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


def _plan(
    workspace: Workspace,
    client: LabelStudioClient,
    project_id: int,
    policy: str,
    full: bool,
) -> _Plan:
    """Lists the project's tasks and compares them with the cursor."""
    state = load_state(workspace) or {}
    same_project = state.get("url") == client.url and state.get("project_id") == project_id
    incremental = bool(
        not full
        and same_project
        and state.get("policy") == policy
        and state.get("labels_sha256") == _labels_digest(workspace.manifest_path("labels"))
    )
    current = {str(t["id"]): _stamp(t["updated_at"]) for t in client.list_tasks(project_id)}
    known: dict[str, str | None] = state.get("tasks", {}) if incremental else {}
    if incremental:
        changed = [int(i) for i, stamp in current.items() if known.get(i) != stamp]
        removed = [i for i in known if i not in current]
    else:
        changed, removed = [int(i) for i in current], []
    seen = {int(i) for i in state.get("tasks", {})} if same_project else set()
    return _Plan(incremental, current, known, changed, removed, seen)


def _merge(
    workspace: Workspace, plan: _Plan, new_rows: list[Row], report: SyncReport, replace: bool
) -> tuple[list[Row], set[str]]:
    """Combines the fetched rows with labels.parquet (see :mod:`dataprep.labels.merge`).

    Incremental: the rows of converted and vanished tasks are replaced. Full: the labels of the
    media the project shows are replaced, and rows of this project's vanished tasks dropped;
    labels of other media are kept unless ``replace``.

    Raises:
        UsageError: when a full sync finds no annotation at all for media that have labels
            (without ``replace``): nothing is written.
    """
    previous = previous_rows(workspace)
    converted = report.conversion.converted_media
    if plan.incremental:
        gone = set(report.conversion.converted_task_ids) | {int(i) for i in plan.removed}
        rows, report.merge, kept = merge_rows(
            previous, new_rows, (), drop=lambda r: r["task_id"] in gone
        )
        report.merge.media_updated = len(set(converted))
        return rows, kept
    no_annotations = not (report.conversion.annotations or report.conversion.cancelled)
    labelled = {r["media_id"] for r in previous} & set(converted)
    if no_annotations and labelled and not replace:
        raise UsageError(
            f"project {report.project_id} holds no annotations, and labels.parquet has labels "
            f"of {len(labelled)} of its media; nothing synced, labels.parquet untouched (pass "
            "--replace to clear those labels)"
        )
    vanished = plan.project_tasks - {int(i) for i in plan.current}
    rows, report.merge, kept = merge_rows(
        previous, new_rows, converted, replace=replace, drop=lambda r: r["task_id"] in vanished
    )
    return rows, kept


def _save_state(
    workspace: Workspace,
    client: LabelStudioClient,
    plan: _Plan,
    fetched: list[dict],
    report: SyncReport,
) -> None:
    """Writes the cursor (after the manifest): each converted task's ``updated_at``."""
    converted = {str(i) for i in report.conversion.converted_task_ids}
    fetched_stamps = {str(t["id"]): _stamp(t["updated_at"]) for t in fetched}
    changed = set(plan.changed)
    tasks_state = {}
    for task_id, stamp in plan.current.items():
        if task_id in converted:
            tasks_state[task_id] = fetched_stamps.get(task_id, stamp)
        elif plan.incremental and task_id in plan.known and int(task_id) not in changed:
            tasks_state[task_id] = plan.known[task_id]
    new_state = {
        "version": STATE_VERSION,
        "url": client.url,
        "project_id": report.project_id,
        "policy": report.policy,
        "synced_at": datetime.now(UTC).isoformat(),
        "labels_sha256": _labels_digest(workspace.manifest_path("labels")),
        "tasks": tasks_state,
    }
    atomic_write_text(state_path(workspace), json.dumps(new_state, indent=1, sort_keys=True))


def _fetch_rows(
    workspace: Workspace,
    client: LabelStudioClient,
    plan: _Plan,
    report: SyncReport,
    clocks: ClockCache,
    on_error: str,
    progress: ProgressFn | None,
) -> tuple[list[dict], list[Row]]:
    """Fetches the annotations of new and changed tasks and converts them into rows."""
    project_id = report.project_id
    fetched = client.tasks_with_annotations(project_id, plan.changed) if plan.changed else []
    report.tasks_fetched = len(fetched)
    by_id = any(isinstance(a.get("completed_by"), int) for t in fetched for a in t["annotations"])
    rows = convert_workspace_tasks(
        workspace,
        fetched,
        clocks,
        server_url=client.url,
        users=client.users() if by_id else {},
        on_error=on_error,
        report=report.conversion,
        progress=progress,
    )
    return fetched, rows


def sync(
    workspace: Workspace,
    *,
    url: str | None = None,
    project: str | None = None,
    resolve: str | None = None,
    full: bool = False,
    on_error: str = "fail",
    replace: bool = False,
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
        on_error: ``fail`` stops on a malformed annotation or one wholly outside its media
            (nothing written); ``skip`` leaves that task out (reported, fetched again next time).
        replace: replace all labels; by default the labels of media the project does not show
            are kept (merge by media).
        progress: ``progress(done, total)`` over fetched tasks.
        client: an already connected client (tests); default connects with the env key.

    Raises:
        LabelStudioError: server unreachable, key refused, project missing, request failed.
        ConversionError: a malformed annotation with ``on_error="fail"``.
        UsageError: a full sync without any annotation would clear labels (without ``replace``).
    """
    started = time.monotonic()
    policy = check_options(workspace, resolve, on_error)
    client = client or connect(workspace, url)
    project_id = int(client.find_project(project or workspace.config.labelstudio.project).id)
    clocks = ClockCache.load(workspace)
    with workspace.lock():
        plan = _plan(workspace, client, project_id, policy, full)
        report = SyncReport(
            url=client.url,
            project_id=project_id,
            mode="incremental" if plan.incremental else "full",
            policy=policy,
            tasks_total=len(plan.current),
            tasks_removed=len(plan.removed),
        )
        fetched, new_rows = _fetch_rows(workspace, client, plan, report, clocks, on_error, progress)
        rows, kept = _merge(workspace, plan, new_rows, report, replace)
        counts = save_labels(workspace, rows, report, kept, policy, clocks)
        _save_state(workspace, client, plan, fetched, report)
        record_labels_stage(
            workspace,
            {
                "source": "sync",
                "url": client.url,
                "project_id": project_id,
                "resolve": policy,
                "mode": report.mode,
                "merge": report.merge.mode,
            },
            {
                **counts,
                "tasks_fetched": report.tasks_fetched,
                "tasks_total": report.tasks_total,
            },
            report.conversion,
        )
    report.seconds = round(time.monotonic() - started, 3)
    return report
