"""Label Studio for tests and examples: export files, result JSON, and a real local server.

1. :func:`make_export` / :func:`write_export` build a Label Studio export (JSON or JSON_MIN) for
   given media rows and labels (whole-media choices, segments, box tracks), so the example
   pipeline can run ``dataprep labels import`` offline. Frames are given as the decoder's 0-based
   ``frame_index`` and boxes in pixels; the export holds what Label Studio would (1-based frames,
   percentages, key frames only).
2. :func:`choice_result`, :func:`timeline_result`, :func:`video_box_result`,
   :func:`image_box_result` build annotation results as Label Studio's editor saves them.
3. The real local server (:class:`LabelStudioServer`, :func:`start_server`, :func:`free_port`)
   lives in :mod:`dataprep.testing.labelstudio_server` and is re-exported here.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dataprep.labels import config_xml
from dataprep.testing.labelstudio_server import (  # noqa: F401 - re-exported for tests
    ENV_VENV,
    LABEL_STUDIO_REQUIREMENT,
    LabelStudioServer,
    default_venv,
    ensure_venv,
    free_port,
    start_server,
)

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


def _min_record(
    data: dict,
    task_id: int,
    annotation: ExportAnnotation,
    annotation_id: int,
    when: str,
    results: list[dict],
) -> dict:
    """One JSON_MIN record: task data, annotation fields and results flattened by control."""
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
    return record


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
            records.append(_min_record(data, task_id, annotation, annotation_id, when, results))
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
