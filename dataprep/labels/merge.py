"""Combining a run's label rows with labels.parquet: merge by media (the default) or replace.

An import or sync replaces the labels of the media it mentions and keeps the others; only
``--replace`` drops labels of media it does not mention, and the :class:`MergeReport` says so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from dataprep import manifests
from dataprep.labels.convert import Row
from dataprep.labels.resolve import Policy
from dataprep.labels.tasks import ClockCache, ConvertReport, finish_rows
from dataprep.workspace import Workspace


@dataclass
class MergeReport:
    """How a run's rows were combined with the labels already in the manifest.

    Attributes:
        mode: ``merge`` (labels of media the run does not mention are kept) or ``replace``.
        media_updated: media whose labels the run replaced.
        media_kept: media whose labels were kept because the run does not mention them.
        media_dropped: with ``replace``, media that had labels and have none now.
        rows_kept: manifest rows (annotator and resolved) of the kept media.
    """

    mode: str = "merge"
    media_updated: int = 0
    media_kept: int = 0
    media_dropped: int = 0
    rows_kept: int = 0


@dataclass(kw_only=True)
class LabelsWriteReport:
    """What an import or a sync wrote (the fields both reports share).

    Attributes:
        rows: rows (annotator and resolved) of the media this run updated.
        resolved_rows: how many of those are resolved rows.
        merge: how the rows were combined with the labels already there.
    """

    rows: int = 0
    resolved_rows: int = 0
    seconds: float = 0.0
    conversion: ConvertReport = field(default_factory=ConvertReport)
    merge: MergeReport = field(default_factory=MergeReport)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def merge_rows(
    previous: list[Row],
    new_rows: list[Row],
    replaced_media: Iterable[str],
    *,
    replace: bool = False,
    drop: Callable[[Row], bool] | None = None,
) -> tuple[list[Row], MergeReport, set[str]]:
    """The annotator rows to write: ``new_rows`` plus, unless ``replace``, the previous annotator
    rows of media not in ``replaced_media`` (and not ``drop(row)``).

    Nothing is dropped silently: the :class:`MergeReport` says what was kept or dropped.

    Returns:
        the rows, the report, and the media whose previous rows were kept.
    """
    replaced = set(replaced_media)
    before = {r["media_id"] for r in previous}
    if replace:
        after = {r["media_id"] for r in new_rows}
        merge = MergeReport("replace", len(replaced), media_dropped=len(before - after - replaced))
        return list(new_rows), merge, set()
    kept = [
        r
        for r in previous
        if not r["resolved"] and r["media_id"] not in replaced and not (drop and drop(r))
    ]
    kept_media = {r["media_id"] for r in kept}
    merge = MergeReport(
        "merge", len(replaced), len(kept_media), media_dropped=len(before - kept_media - replaced)
    )
    return kept + list(new_rows), merge, kept_media


def write_labels(
    workspace: Workspace,
    rows: list[Row],
    merge: MergeReport,
    kept_media: set[str],
    policy: Policy,
    clocks: ClockCache,
) -> tuple[Any, int, int]:
    """Resolves ``rows`` and saves labels.parquet (atomically; the caller holds the lock).

    Returns:
        the frame, the rows of the media this run updated, and how many of those are resolved.
    """
    frame = finish_rows(rows, policy, clocks, workspace.config.project.classes)
    manifests.save(workspace, "labels", frame)
    if not len(frame):
        return frame, 0, 0
    ours = ~frame["media_id"].isin(kept_media)
    merge.rows_kept = int((~ours).sum())
    return frame, int(ours.sum()), int((frame["resolved"] & ours).sum())


def previous_rows(workspace: Workspace) -> list[Row]:
    """The rows of ``manifests/labels.parquet`` (none when it does not exist)."""
    return manifests.records(manifests.load(workspace, "labels", missing_ok=True))


def save_labels(
    workspace: Workspace,
    rows: list[Row],
    report: LabelsWriteReport,
    kept_media: set[str],
    policy: Policy,
    clocks: ClockCache,
) -> dict[str, int]:
    """:func:`write_labels` that fills ``report.rows``/``report.resolved_rows``.

    Returns:
        the stage record's counts of the whole manifest: ``rows`` and ``resolved_rows``.
    """
    frame, report.rows, report.resolved_rows = write_labels(
        workspace, rows, report.merge, kept_media, policy, clocks
    )
    return {
        "rows": int(len(frame)),
        "resolved_rows": int(frame["resolved"].sum()) if len(frame) else 0,
    }
