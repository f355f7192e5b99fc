"""``labels import``: a Label Studio export file (JSON or JSON_MIN) into labels.parquet.

Tasks are matched to media by ``media_id`` in the task data, falling back to the media file name.
The labels of the media the export mentions are replaced and those of other media are kept
(``replace=True`` replaces the whole manifest); the manifest is written atomically. A file that is
not a Label Studio export, or holds no annotations, is refused and labels.parquet is untouched.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dataprep.errors import UsageError
from dataprep.labels import config_xml
from dataprep.labels.convert import min_value_to_results
from dataprep.labels.merge import LabelsWriteReport, merge_rows, previous_rows, save_labels
from dataprep.labels.sync import state_path
from dataprep.labels.tasks import (
    ClockCache,
    ProgressFn,
    check_options,
    convert_workspace_tasks,
    record_labels_stage,
)
from dataprep.workspace import Workspace

#: JSON_MIN keys that describe the annotation, not the task data.
MIN_META_KEYS = (
    "id",
    "annotator",
    "annotation_id",
    "created_at",
    "updated_at",
    "lead_time",
    "agreement",
)


@dataclass
class ImportReport(LabelsWriteReport):
    """What one import did (see :class:`LabelsWriteReport` for the counts)."""

    path: str
    format: str  # JSON | JSON_MIN
    policy: str

    @property
    def ok(self) -> bool:
        return not (self.conversion.errors or self.conversion.rejected or self.conversion.unmatched)


def detect_format(records: list) -> str:
    """``JSON`` (tasks with an ``annotations`` list) or ``JSON_MIN`` (flat annotation records)."""
    if any(isinstance(r, dict) and isinstance(r.get("annotations"), list) for r in records):
        return "JSON"
    return "JSON_MIN"


def tasks_from_min(
    records: list[dict], choice_names: tuple[str, ...] = (config_xml.CHOICES_NAME,)
) -> list[dict]:
    """Rebuilds JSON-format tasks (data + annotations) from JSON_MIN records.

    A record's list/dict fields are results (their control tag named by the key); a bare
    string is a single choice only under a known choices name (``label`` in dataprep's configs);
    every other field is task data.
    """
    tasks: dict[Any, dict] = {}
    for position, record in enumerate(records):
        if not isinstance(record, dict):
            raise UsageError(f"JSON_MIN record {position} is not an object")
        data, results = {}, []
        for key, value in record.items():
            if key in MIN_META_KEYS:
                continue
            converted = min_value_to_results(value, key, choice_names)
            if converted:
                results += converted
            elif not isinstance(value, (list, dict)):
                data[key] = value
        task_id = record.get("id", f"record-{position}")
        task = tasks.setdefault(task_id, {"id": record.get("id"), "data": data, "annotations": []})
        if record.get("annotation_id") is None and not results:
            continue  # a task without annotations
        task["annotations"].append(
            {
                "id": record.get("annotation_id"),
                "completed_by": record.get("annotator"),
                "updated_at": record.get("updated_at") or record.get("created_at"),
                "result": results,
                "ground_truth": False,
                "was_cancelled": False,
            }
        )
    return list(tasks.values())


def read_export(path: Path) -> tuple[str, list[dict]]:
    """The format and tasks of a Label Studio export file.

    Raises:
        UsageError: naming the file, when it is missing, not JSON, not shaped like a Label
            Studio export (a list of tasks or of JSON_MIN records), or holds no annotations.
    """
    expected = "a Label Studio export (JSON or JSON_MIN: a list of tasks)"
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"{path}: cannot be read ({exc.strerror}); check the path") from None
    except ValueError as exc:
        raise UsageError(
            f"{path}: not valid JSON ({exc}); export again as JSON or JSON_MIN"
        ) from None
    if not isinstance(records, list):
        kind = "object" if isinstance(records, dict) else type(records).__name__
        raise UsageError(
            f"{path}: is a JSON {kind}, expected {expected}; nothing imported, "
            "labels.parquet untouched"
        )
    if not records:
        raise UsageError(
            f"{path}: holds no tasks (expected {expected}); nothing imported, "
            "labels.parquet untouched"
        )
    for position, record in enumerate(records):
        if not isinstance(record, dict):
            raise UsageError(
                f"{path}: item {position} is a {type(record).__name__}, expected {expected}"
            )
    fmt = detect_format(records)
    tasks = records if fmt == "JSON" else tasks_from_min(records)
    for position, task in enumerate(tasks):
        if not isinstance(task.get("data", {}), dict):
            raise UsageError(f"{path}: task {position} is not an object with a data object")
    if not any(task.get("annotations") for task in tasks):
        raise UsageError(
            f"{path}: {len(tasks)} tasks but no annotations (expected {expected} with "
            "annotations); nothing imported, labels.parquet untouched"
        )
    return fmt, tasks


def import_export(
    workspace: Workspace,
    path: Path,
    *,
    resolve: str | None = None,
    on_error: str = "fail",
    replace: bool = False,
    progress: ProgressFn | None = None,
) -> ImportReport:
    """Converts a Label Studio export file into ``manifests/labels.parquet``.

    By default the labels of the media the export mentions are replaced and the labels of other
    media are kept (merge by media); ``replace`` replaces the whole manifest.

    Raises:
        UsageError: when the file is missing, not JSON, not a Label Studio export, or holds no
            annotations (labels.parquet untouched).
        ConversionError: on a malformed annotation, one wholly outside its media, or a class name
            that cannot be a folder name, with ``on_error="fail"`` (nothing written).
    """
    started = time.monotonic()
    policy = check_options(workspace, resolve, on_error)
    path = Path(path)
    fmt, tasks = read_export(path)
    clocks = ClockCache.load(workspace)
    report = ImportReport(path=str(path), format=fmt, policy=policy)
    rows = convert_workspace_tasks(
        workspace,
        tasks,
        clocks,
        server_url=workspace.config.labelstudio.url,
        on_error=on_error,
        report=report.conversion,
        progress=progress,
    )
    with workspace.lock():
        rows, report.merge, kept = merge_rows(
            previous_rows(workspace), rows, report.conversion.converted_media, replace=replace
        )
        counts = save_labels(workspace, rows, report, kept, policy, clocks)
        state_path(workspace).unlink(missing_ok=True)  # the next sync must be full
        record_labels_stage(
            workspace,
            {
                "source": "import",
                "path": str(path),
                "format": fmt,
                "resolve": policy,
                "mode": report.merge.mode,
            },
            {
                **counts,
                "tasks": report.conversion.tasks,
                "media_updated": report.merge.media_updated,
                "media_kept": report.merge.media_kept,
            },
            report.conversion,
        )
    report.seconds = round(time.monotonic() - started, 3)
    return report
