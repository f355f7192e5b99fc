"""Between Label Studio tasks and the workspace: media URLs, task-path safety, matching tasks to
media, converting a batch of tasks into rows, and writing labels.parquet.

Task data is untrusted: a media path that leaves the media root (``..``, absolute paths, URLs to
other hosts) is rejected and never read.
"""

from __future__ import annotations

import math
import os
import posixpath
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlparse

from dataprep import manifests
from dataprep.errors import DataprepError, UsageError
from dataprep.labels import config_xml
from dataprep.labels.convert import (
    AnnotationInfo,
    ConversionError,
    ConversionReport,
    FrameClock,
    MediaInfo,
    Row,
    annotator_name,
    convert_annotation,
    parse_time,
)
from dataprep.labels.resolve import POLICIES, Policy, resolve_all
from dataprep.stage import check_on_error
from dataprep.workspace import Workspace

LOCAL_FILES_PREFIX = "/data/local-files/?d="
ProgressFn = Callable[[int, int | None], None]


class UnsafeTaskPath(DataprepError):
    """A task's media path points outside the media root."""


@dataclass
class MediaTable:
    """The workspace's ok media, indexed for matching tasks."""

    rows: dict[str, dict]
    by_name: dict[str, list[str]]

    @classmethod
    def load(cls, workspace: Workspace) -> MediaTable:
        frame = manifests.load(workspace, "media", missing_ok=True)
        rows = {r["media_id"]: r for r in manifests.records(frame) if r["status"] == "ok"}
        by_name: dict[str, list[str]] = {}
        for media_id, row in rows.items():
            paths = row.get("paths")
            names = {Path(p).name for p in (list(paths) if paths is not None else [])}
            names.add(Path(row["path"]).name)
            for name in names:
                by_name.setdefault(name, []).append(media_id)
        return cls(rows, by_name)


def media_url(path: str, *, media_root: str | None, url_prefix: str | None) -> str:
    """The URL a task uses for the media at ``path``.

    Local files (no ``url_prefix``): ``/data/local-files/?d=<path relative to media_root>``, where
    ``media_root`` is the server's ``LOCAL_FILES_DOCUMENT_ROOT``. With ``url_prefix``:
    ``<prefix>/<path relative to media_root>``.

    Raises:
        UnsafeTaskPath: when ``path`` is not inside ``media_root``.
    """
    if not media_root:
        raise UsageError("no media root: pass --media-root DIR (or set [labelstudio] media_root)")
    root = os.path.abspath(media_root)
    absolute = os.path.abspath(path)
    if os.path.commonpath([root, absolute]) != root or absolute == root:
        raise UnsafeTaskPath(
            f"{path} is outside the media root {root}; pass the folder that holds the media as "
            "--media-root (Label Studio's LOCAL_FILES_DOCUMENT_ROOT) or use --media-url-prefix"
        )
    relative = PurePosixPath(*Path(os.path.relpath(absolute, root)).parts).as_posix()
    if url_prefix:
        return url_prefix.rstrip("/") + "/" + quote(relative, safe="/")
    return LOCAL_FILES_PREFIX + quote(relative, safe="/")


def _safe_relative(relative: str, what: str) -> str:
    relative = relative.replace("\\", "/")
    if not relative or relative.startswith("/") or (len(relative) > 1 and relative[1] == ":"):
        raise UnsafeTaskPath(
            f"{what}: absolute path {relative!r} rejected (outside the media root)"
        )
    parts = PurePosixPath(relative).parts
    if ".." in parts or posixpath.normpath(relative).startswith(".."):
        raise UnsafeTaskPath(f"{what}: path {relative!r} leaves the media root; rejected, not read")
    return posixpath.normpath(relative)


def task_media_path(
    url: str, *, media_root: str | None, url_prefix: str | None, server_url: str | None, what: str
) -> str:
    """The media path a task's URL names, relative to the media root, after safety checks.

    Accepted: Label Studio local-files URLs (``/data/local-files/?d=REL``), URLs under the
    configured ``url_prefix``, and Label Studio uploads (``/data/upload/...``, same server).

    Raises:
        UnsafeTaskPath: for ``..``, absolute paths, ``file:`` URLs, or URLs to other hosts.
    """
    if not isinstance(url, str) or not url.strip():
        raise UnsafeTaskPath(f"{what}: no media URL in the task data")
    url = url.strip()
    if url.startswith("/data/local-files/"):
        values = parse_qs(urlparse(url).query).get("d")
        if not values:
            raise UnsafeTaskPath(f"{what}: local-files URL {url!r} has no d= path")
        relative = _safe_relative(values[0], what)
        if media_root:
            root = os.path.realpath(media_root)
            target = os.path.realpath(os.path.join(root, relative))
            if os.path.commonpath([root, target]) != root:
                raise UnsafeTaskPath(f"{what}: path {relative!r} resolves outside the media root")
        return relative
    if url.startswith("/data/upload/"):
        return _safe_relative(url[len("/data/") :], what)
    parsed = urlparse(url)
    if parsed.scheme in ("http", "https"):
        if url_prefix and url.startswith(url_prefix.rstrip("/") + "/"):
            return _safe_relative(
                unquote(url[len(url_prefix.rstrip("/")) + 1 :].split("?")[0]), what
            )
        if (
            server_url
            and parsed.netloc == urlparse(server_url).netloc
            and parsed.path.startswith("/data/")
        ):
            return task_media_path(
                url[len(parsed.scheme) + 3 + len(parsed.netloc) :],
                media_root=media_root,
                url_prefix=url_prefix,
                server_url=None,
                what=what,
            )
        raise UnsafeTaskPath(
            f"{what}: URL {url!r} points to another host than the media URL prefix; rejected"
        )
    raise UnsafeTaskPath(f"{what}: media path {url!r} is not a Label Studio media URL; rejected")


@dataclass
class ConvertReport:
    """What a conversion of tasks did.

    Attributes:
        converted_media: media of the tasks converted (their labels are replaced on merge).
        clipped: regions partly outside their media, clipped to it (one line each).
    """

    tasks: int = 0
    annotations: int = 0
    cancelled: int = 0
    rows: int = 0
    converted_task_ids: list[int] = field(default_factory=list)
    converted_media: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    clipped: list[str] = field(default_factory=list)
    unknown_labels: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def video_timestamps(path: str) -> tuple[float, ...]:
    """Every frame's presentation time (seconds from the first frame), by demuxing with PyAV."""
    import av

    with av.open(str(path), metadata_errors="ignore") as container:
        stream = container.streams.video[0]
        base = float(stream.time_base)
        stamps = []
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            stamp = packet.pts if packet.pts is not None else packet.dts
            if stamp is not None:
                stamps.append(stamp * base)
    stamps.sort()
    first = stamps[0] if stamps else 0.0
    return tuple(s - first for s in stamps)


class ClockCache:
    """Frame clocks per media, reading VFR timestamps from the media file once per run."""

    def __init__(self, media: MediaTable) -> None:
        self.media = media
        self._timestamps: dict[str, tuple[float, ...]] = {}

    @classmethod
    def load(cls, workspace: Workspace) -> ClockCache:
        """The clocks of the workspace's media (media.parquet read now)."""
        return cls(MediaTable.load(workspace))

    def clock(self, media_id: str, task_fps: Any = None) -> FrameClock | None:
        row = self.media.rows.get(media_id)
        if row is None or row["kind"] != "video":
            return None
        fps = _float(task_fps) or _float(row.get("fps"))
        if fps is None:
            return None
        timestamps = None
        if row.get("variable_frame_rate"):
            if media_id not in self._timestamps:
                try:
                    self._timestamps[media_id] = video_timestamps(row["path"])
                except Exception as exc:  # noqa: BLE001 - any decoder failure: one line
                    raise ConversionError(
                        f"media {media_id}: cannot read frame timestamps of {row['path']} "
                        f"({type(exc).__name__}); variable frame rate labels need the file"
                    ) from None
            timestamps = self._timestamps[media_id]
        return FrameClock(fps=fps, frame_count=row.get("frame_count"), timestamps_s=timestamps)

    def info(self, media_id: str, task_fps: Any = None) -> MediaInfo:
        row = self.media.rows[media_id]
        return MediaInfo(
            media_id=media_id,
            kind=row["kind"],
            width=row.get("width"),
            height=row.get("height"),
            clock=self.clock(media_id, task_fps),
        )

    def clocks(self, media_ids: Iterable[str]) -> dict[str, FrameClock]:
        out = {}
        for media_id in set(media_ids):
            clock = self.clock(media_id)
            if clock is not None:
                out[media_id] = clock
        return out


def match_task(
    task: dict,
    media: MediaTable,
    *,
    media_root: str | None,
    url_prefix: str | None,
    server_url: str | None,
) -> str:
    """The media_id a task shows: ``media_id`` in its data, else its media file name.

    Raises:
        UnsafeTaskPath: when the task's media path escapes the media root.
        LookupError: when no (or more than one) media matches; the message says why.
    """
    data = task.get("data") or {}
    what = f"task {task.get('id')}"
    url = data.get(config_xml.VIDEO_KEY) or data.get(config_xml.IMAGE_KEY)
    relative = None
    if url is not None:
        relative = task_media_path(
            url, media_root=media_root, url_prefix=url_prefix, server_url=server_url, what=what
        )
    media_id = data.get(config_xml.MEDIA_ID_KEY)
    if isinstance(media_id, str) and media_id in media.rows:
        return media_id
    if relative is None:
        raise LookupError(f"{what}: no media_id and no media URL in its data")
    name = PurePosixPath(relative).name
    candidates = media.by_name.get(name, [])
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise LookupError(
            f"{what}: media {media_id or name!r} is not in the media manifest; ingest it first"
        )
    raise LookupError(
        f"{what}: file name {name!r} matches {len(candidates)} media; push with "
        "dataprep so tasks carry media_id"
    )


def convert_tasks(
    tasks: Iterable[dict],
    media: MediaTable,
    clocks: ClockCache,
    *,
    classes: list[str],
    media_root: str | None,
    url_prefix: str | None,
    server_url: str | None,
    users: dict[int, str] | None = None,
    on_error: str = "fail",
    report: ConvertReport | None = None,
    progress: ProgressFn | None = None,
    total: int | None = None,
) -> list[Row]:
    """Converts tasks (with ``annotations``) into annotator rows.

    Cancelled (skipped) annotations produce no rows. Tasks whose media path is unsafe are
    rejected; tasks that match no media are reported; both produce no rows.

    Raises:
        ConversionError: on a malformed result when ``on_error`` is ``fail``.
    """
    report = report if report is not None else ConvertReport()
    rows: list[Row] = []
    for done, task in enumerate(tasks, 1):
        report.tasks += 1
        try:
            media_id = match_task(
                task, media, media_root=media_root, url_prefix=url_prefix, server_url=server_url
            )
        except UnsafeTaskPath as exc:
            report.rejected.append(str(exc))
            continue
        except LookupError as exc:
            report.unmatched.append(str(exc))
            continue
        conversion = ConversionReport()
        try:
            task_rows = _convert_task(task, media_id, clocks, classes, users, report, conversion)
        except ConversionError as exc:
            if on_error == "fail":
                raise ConversionError(
                    f"task {task.get('id')}: {exc}; fix the annotation in "
                    "Label Studio or rerun with --on-error skip"
                ) from None
            report.errors.append(f"task {task.get('id')}: {exc}")
            continue
        rows += task_rows
        report.ignored += conversion.ignored
        report.clipped += [f"task {task.get('id')}: {line}" for line in conversion.clipped]
        report.converted_media.append(media_id)
        if task.get("id") is not None:
            report.converted_task_ids.append(int(task["id"]))
        if progress:
            progress(done, total)
    for row in rows:
        if not row["in_classes"]:
            report.unknown_labels[row["label"]] = report.unknown_labels.get(row["label"], 0) + 1
    report.rows += len(rows)
    return rows


def check_options(workspace: Workspace, resolve: str | None, on_error: str) -> str:
    """The resolve policy of an import or sync (``resolve`` or ``[labelstudio] resolve``).

    Raises:
        UsageError: an unknown policy or ``--on-error`` value.
    """
    policy = resolve or workspace.config.labelstudio.resolve
    if policy not in POLICIES:
        raise UsageError(f"--resolve {policy!r} is not allowed; use one of {', '.join(POLICIES)}")
    check_on_error(on_error)
    return policy


def convert_workspace_tasks(
    workspace: Workspace,
    tasks: list[dict],
    clocks: ClockCache,
    *,
    server_url: str | None,
    users: dict[int, str] | None = None,
    on_error: str = "fail",
    report: ConvertReport | None = None,
    progress: ProgressFn | None = None,
) -> list[Row]:
    """:func:`convert_tasks` with the workspace's classes and ``[labelstudio]`` media settings."""
    settings = workspace.config.labelstudio
    return convert_tasks(
        tasks,
        clocks.media,
        clocks,
        classes=workspace.config.project.classes,
        media_root=settings.media_root or None,
        url_prefix=settings.media_url_prefix or None,
        server_url=server_url,
        users=users,
        on_error=on_error,
        report=report,
        progress=progress,
        total=len(tasks),
    )


def _convert_task(
    task: dict,
    media_id: str,
    clocks: ClockCache,
    classes: list[str],
    users: dict[int, str] | None,
    report: ConvertReport,
    conversion: ConversionReport,
) -> list[Row]:
    """The rows of one task's annotations (cancelled ones give none).

    Raises:
        ConversionError: on a malformed result or one wholly outside its media.
    """
    info = clocks.info(media_id, (task.get("data") or {}).get(config_xml.FPS_KEY))
    rows: list[Row] = []
    for annotation in task.get("annotations") or []:
        if not isinstance(annotation, dict):
            raise ConversionError(f"annotation {annotation!r} is not an object")
        if annotation.get("was_cancelled") or annotation.get("skipped"):
            report.cancelled += 1
            continue
        report.annotations += 1
        meta = AnnotationInfo(
            task_id=_int(task.get("id")),
            annotation_id=_int(annotation.get("id")),
            annotator=annotator_name(annotation.get("completed_by"), users),
            updated_at=parse_time(annotation.get("updated_at") or annotation.get("created_at")),
            ground_truth=bool(annotation.get("ground_truth")),
        )
        results = annotation.get("result")
        if results is not None and not isinstance(results, list):
            raise ConversionError(f"annotation {meta.annotation_id}: result is not a list")
        rows += convert_annotation(results or [], info, meta, classes, conversion)
    return rows


def _int(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def finish_rows(rows: list[Row], policy: Policy, clocks: ClockCache, classes: list[str]) -> Any:
    """Flags labels against the current ``classes``, resolves ``rows`` and returns the labels
    frame (validated against the schema)."""
    known = set(classes)
    for row in rows:
        row["in_classes"] = row["label"] in known
    resolved = resolve_all(rows, policy, clocks.clocks(r["media_id"] for r in rows))
    return manifests.from_records("labels", resolved)


def record_labels_stage(
    workspace: Workspace, settings: dict[str, Any], counts: dict[str, Any], report: ConvertReport
) -> None:
    """Writes the ``labels`` stage record (``.dataprep/stages/labels.json``)."""
    from dataprep.stages import record_stage

    failures = (
        [{"kind": "rejected", "error": e} for e in report.rejected]
        + [{"kind": "unmatched", "error": e} for e in report.unmatched]
        + [{"kind": "error", "error": e} for e in report.errors]
    )
    record_stage(workspace, "labels", settings=settings, counts=counts, failures=failures)
