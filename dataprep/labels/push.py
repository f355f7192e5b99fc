"""``labels push``: one Label Studio task per ok media, never twice.

Each task carries ``media_id`` and, for videos, the probed ``fps`` (the labeling config's
``Video`` tag reads ``frameRate="$fps"``). Media are served by Label Studio's local-files storage
(``--media-root`` = the server's ``LOCAL_FILES_DOCUMENT_ROOT``) or by a URL prefix. Re-running adds
only media not yet in the project. With ``predictions``, a trained run's predictions are added
as pre-annotations (:mod:`dataprep.labels.predictions`).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dataprep.errors import UsageError
from dataprep.labels import config_xml
from dataprep.labels.client import LabelStudioClient, ProjectNotFound, api_key_from_env
from dataprep.labels.predictions import (
    PredictionsReport,
    check_run,
    prediction_target,
    push_predictions,
)
from dataprep.labels.tasks import MediaTable, ProgressFn, UnsafeTaskPath, media_url
from dataprep.workspace import Workspace

BATCH = 500


@dataclass
class PushReport:
    """What one push did."""

    url: str
    project_id: int
    project_title: str
    created_project: bool
    kind: str
    added: int = 0
    already_present: int = 0
    skipped_other_kind: int = 0
    errors: list[str] = field(default_factory=list)
    predictions: PredictionsReport | None = None

    @property
    def ok(self) -> bool:
        return not self.errors and not (self.predictions and self.predictions.errors)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def connect(workspace: Workspace, url: str | None = None, **kwargs: Any) -> LabelStudioClient:
    """A checked client for the workspace's server (key from the configured env variable)."""
    settings = workspace.config.labelstudio
    client = LabelStudioClient(
        url or settings.url,
        api_key_from_env(settings.api_key_env),
        timeout_s=kwargs.pop("timeout_s", settings.timeout_s),
        retries=kwargs.pop("retries", settings.retries),
        **kwargs,
    )
    client.check_server()
    return client


def _choose_kind(media: MediaTable, kind: str | None, project_config: str | None) -> str:
    kinds = sorted({row["kind"] for row in media.rows.values()})
    if kind:
        if kind not in ("video", "image"):
            raise UsageError(f"--kind {kind!r} is not allowed; use video or image")
        return kind
    if project_config and config_xml.kind_of_config(project_config):
        return config_xml.kind_of_config(project_config)
    if not kinds:
        raise UsageError("no ok media to push; run `dataprep ingest PATH` first")
    if len(kinds) > 1:
        raise UsageError(
            "the workspace holds videos and images, and a Label Studio project shows one kind; "
            "push each to its own project: --kind video --project P1, --kind image --project P2"
        )
    return kinds[0]


def _storage_folders(media_root: str, paths: list[str]) -> set[str]:
    """Local-files storages to connect: the first-level folders of the root holding media."""
    root = os.path.abspath(media_root)
    folders = set()
    for path in paths:
        relative = os.path.relpath(os.path.abspath(path), root)
        first = relative.split(os.sep)[0]
        folders.add(os.path.join(root, first))
    return folders


def _media_root(
    workspace: Workspace, media: MediaTable, media_root: str | None, media_url_prefix: str | None
) -> tuple[str, str]:
    """The media root and URL prefix a push uses (options, else ``[labelstudio]``)."""
    settings = workspace.config.labelstudio
    prefix = media_url_prefix if media_url_prefix is not None else settings.media_url_prefix
    root = media_root or settings.media_root
    if media_root and media_url_prefix is None:
        prefix = ""  # an explicit --media-root means local files unless a prefix is given too
    if not root and prefix:
        root = os.path.commonpath([os.path.dirname(r["path"]) for r in media.rows.values()])
    if not root:
        raise UsageError(
            "pass --media-root DIR (the folder Label Studio serves local files from: its "
            "LOCAL_FILES_DOCUMENT_ROOT) or --media-url-prefix URL"
        )
    return os.path.abspath(os.path.expanduser(root)), prefix or ""


def _open_project(
    workspace: Workspace,
    client: LabelStudioClient,
    media: MediaTable,
    ref: str,
    create: bool,
    kind: str | None,
) -> tuple[Any, bool]:
    """The project ``ref``, created (config from the workspace) when missing and ``create``."""
    try:
        return client.find_project(ref), False
    except ProjectNotFound:
        if not create or (ref or "").isdigit():
            raise
    chosen = _choose_kind(media, kind, None)
    label_config = config_xml.labeling_config(
        workspace.config.project.classes, workspace.config.project.label_type, chosen
    )
    found = client.create_project(
        ref, label_config, description=f"dataprep workspace {workspace.root.name}"
    )
    return found, True


def _new_tasks(
    media: MediaTable, report: PushReport, existing: set[str], root: str, prefix: str
) -> tuple[list[dict], list[str]]:
    """Task data of the media of the pushed kind not in the project yet, and their paths;
    media that cannot be served are listed in ``report.errors``."""
    tasks, paths = [], []
    for media_id, row in sorted(media.rows.items()):
        if row["kind"] != report.kind:
            report.skipped_other_kind += 1
            continue
        if media_id in existing:
            report.already_present += 1
            continue
        try:
            address = media_url(row["path"], media_root=root, url_prefix=prefix or None)
        except UnsafeTaskPath as exc:
            report.errors.append(f"media {media_id}: {exc}")
            continue
        data = {
            config_xml.media_key(report.kind): address,
            config_xml.MEDIA_ID_KEY: media_id,
            "file": os.path.basename(row["path"]),
        }
        if report.kind == "video":
            data[config_xml.FPS_KEY] = float(row["fps"]) if row.get("fps") else None
            data["frame_count"] = int(row["frame_count"]) if row.get("frame_count") else None
            if data[config_xml.FPS_KEY] is None:
                report.errors.append(f"media {media_id}: no probed fps; re-run `dataprep ingest`")
                continue
        tasks.append(data)
        paths.append(row["path"])
    return tasks, paths


def _connect_storages(client: LabelStudioClient, project_id: int, root: str, paths: list[str]):
    """Local-files storages for the first-level folders of ``root`` that hold ``paths``."""
    for folder in sorted(_storage_folders(root, paths)):
        if os.path.normpath(folder) == os.path.normpath(root) or not os.path.isdir(folder):
            raise UsageError(
                f"media lie directly in the media root {root}; Label Studio serves local "
                "files only from a sub-folder of its LOCAL_FILES_DOCUMENT_ROOT: pass the "
                "parent folder as --media-root"
            )
        client.ensure_local_storage(project_id, folder)


def _add_tasks(
    client: LabelStudioClient,
    media: MediaTable,
    report: PushReport,
    root: str,
    prefix: str,
    progress: ProgressFn | None,
) -> None:
    """Imports one task per media of the pushed kind not yet in the project, in batches."""
    existing = {
        str(t["data"].get(config_xml.MEDIA_ID_KEY))
        for t in client.list_tasks(report.project_id)
        if t["data"].get(config_xml.MEDIA_ID_KEY)
    }
    tasks, paths = _new_tasks(media, report, existing, root, prefix)
    if tasks and not prefix:
        _connect_storages(client, report.project_id, root, paths)
    for start in range(0, len(tasks), BATCH):
        batch = tasks[start : start + BATCH]
        # safe to retry: after a failed import only media not in the project are sent again
        client.import_tasks(report.project_id, batch, key=config_xml.MEDIA_ID_KEY)
        report.added += len(batch)
        if progress:
            progress(report.added, len(tasks))


def push(
    workspace: Workspace,
    *,
    url: str | None = None,
    project: str | None = None,
    create: bool = False,
    media_root: str | None = None,
    media_url_prefix: str | None = None,
    kind: str | None = None,
    predictions: str | Path | None = None,
    suspects_only: bool = False,
    progress: ProgressFn | None = None,
    client: LabelStudioClient | None = None,
) -> PushReport:
    """Pushes the workspace's ok media to a Label Studio project as tasks.

    Args:
        workspace: the workspace.
        url: server URL (default ``[labelstudio] url``).
        project: project id or title (default ``[labelstudio] project``, else the workspace's
            project name with ``create``).
        create: create the project (labeling config from the workspace's classes and label
            type) when it does not exist.
        media_root: the folder Label Studio serves local files from (its
            ``LOCAL_FILES_DOCUMENT_ROOT``); with ``media_url_prefix``, the folder URLs are
            relative to (default: the media's common folder).
        media_url_prefix: serve media from ``<prefix>/<path relative to media_root>`` instead.
        kind: push only ``video`` or ``image`` media (needed when the workspace holds both).
        predictions: a run id (``runs/<id>``) or run folder: after the tasks are pushed, add
            the run's predictions to every task of the pushed kind that has none from this run
            (``model_version`` = the run id), as ``dataprep predict`` computes them.
        suspects_only: with ``predictions``, predictions only for the media the last
            ``dataprep audit --run`` with that run lists as label suspects (docs/audit.md).
        progress: ``progress(done, total)``.
        client: an already connected client (tests); default connects with the env key.

    Returns:
        a :class:`PushReport`; media that cannot be served (outside the media root) are listed
        in ``errors`` and not pushed.

    Raises:
        ProjectNotFound: when the project does not exist and ``create`` is false.
        LabelStudioError: when the server cannot be reached or refuses.
        UsageError: with ``predictions``, when the run does not exist, its classes differ from
            the workspace's, or the project labels boxes (checked before anything is pushed).
    """
    if suspects_only and predictions is None:
        raise UsageError("--suspects-only needs --predictions RUN (the run the audit used)")
    settings = workspace.config.labelstudio
    media = MediaTable.load(workspace)
    if not media.rows:
        raise UsageError("no ok media to push; run `dataprep ingest PATH` first")
    run = check_run(workspace, predictions) if predictions is not None else None
    only = _suspects(workspace, run) if suspects_only else None
    root, prefix = _media_root(workspace, media, media_root, media_url_prefix)
    ref = project or settings.project or (workspace.config.project.name if create else "")
    client = client or connect(workspace, url)
    report, label_config = _start_report(workspace, client, media, ref, create, kind)
    target = None
    if run is not None:
        target = prediction_target(label_config, workspace.config.project.label_type)
    _add_tasks(client, media, report, root, prefix, progress)
    _remember(workspace, report, root if not prefix else None, prefix, url)
    if run is not None and target is not None:
        report.predictions = push_predictions(
            workspace,
            client,
            report.project_id,
            target,
            run,
            media,
            report.kind,
            media_root=root,
            url_prefix=prefix or None,
            progress=progress,
            only_media=only,
        )
    return report


def _start_report(
    workspace: Workspace,
    client: LabelStudioClient,
    media: MediaTable,
    ref: str,
    create: bool,
    kind: str | None,
) -> tuple[PushReport, str]:
    """Opens (or creates) the project; the push's report and the project's labeling config."""
    found, created = _open_project(workspace, client, media, ref, create, kind)
    label_config = str(getattr(found, "label_config", None) or "")
    report = PushReport(
        url=client.url,
        project_id=int(found.id),
        project_title=str(found.title or ""),
        created_project=created,
        kind=_choose_kind(media, kind, label_config or None),
    )
    return report, label_config


def _suspects(workspace: Workspace, run) -> set[str]:
    from dataprep.audit.suspects import suspect_media

    return set(suspect_media(workspace, run.run_id))


def _remember(
    workspace: Workspace,
    report: PushReport,
    media_root: str | None,
    prefix: str | None,
    url: str | None,
) -> None:
    """Records the project (and media root) in dataprep.toml when not set yet, so sync needs
    no options. Never records the API key."""
    settings = workspace.config.labelstudio
    changes = {}
    if not settings.project:
        changes["project"] = str(report.project_id)
    if url and settings.url != report.url and not settings.project:
        changes["url"] = report.url
    if media_root and not settings.media_root:
        changes["media_root"] = media_root
    if prefix and not settings.media_url_prefix:
        changes["media_url_prefix"] = prefix
    if not changes:
        return
    with workspace.lock():
        config = workspace.config.model_copy(deep=True)
        for key, value in changes.items():
            setattr(config.labelstudio, key, value)
        workspace.save_config(config)
