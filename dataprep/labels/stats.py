"""``labels stats`` and the labels section of ``dataprep info``."""

from __future__ import annotations

from typing import Any

from dataprep import manifests
from dataprep.labels.resolve import agreement
from dataprep.workspace import Workspace


def _counts(series) -> dict[str, int]:
    return {str(k): int(v) for k, v in series.value_counts().sort_index().items()}


def labels_stats(workspace: Workspace) -> dict[str, Any]:
    """Counts of the labels manifest and inter-annotator agreement per class.

    Returns:
        ``rows``, ``media``, ``annotators``, ``annotations``, ``resolved_by_class`` (media per
        resolved class for choices; segments and box rows otherwise), ``by_kind``,
        ``labels_not_in_classes`` and ``agreement`` (see :func:`dataprep.labels.resolve.agreement`).
    """
    frame = manifests.load(workspace, "labels")
    media = manifests.load(workspace, "media", missing_ok=True)
    frame_counts = {
        r["media_id"]: int(r["frame_count"])
        for r in manifests.records(media)
        if r.get("frame_count")
    }
    annotator_rows = frame[~frame["resolved"].astype(bool)]
    resolved = frame[frame["resolved"].astype(bool)]
    unknown = annotator_rows[~annotator_rows["in_classes"].astype(bool)]
    by_class = {}
    for kind, group in resolved.groupby("kind"):
        if kind == "choice":
            by_class[kind] = _counts(group.drop_duplicates(["media_id", "label"])["label"])
        elif kind == "box":
            by_class[kind] = _counts(
                group.drop_duplicates(["media_id", "track_id", "label"])["label"]
            )
        else:
            by_class[kind] = _counts(group["label"])
    return {
        "manifest": str(workspace.manifest_path("labels")),
        "rows": int(len(frame)),
        "media": int(frame["media_id"].nunique()),
        "annotations": int(annotator_rows["annotation_id"].nunique()),
        "annotators": sorted(str(a) for a in annotator_rows["annotator"].dropna().unique()),
        "by_kind": _counts(annotator_rows["kind"]),
        "resolved_by_class": by_class,
        "labels_not_in_classes": _counts(unknown["label"]),
        "agreement": agreement(
            manifests.records(annotator_rows), workspace.config.project.classes, frame_counts
        ),
    }


def summarize_labels(workspace: Workspace) -> dict[str, Any] | None:
    """The labels section of ``dataprep info`` (None before the first sync or import)."""
    from dataprep.labels.sync import load_state

    path = workspace.manifest_path("labels")
    if not path.exists():
        return None
    frame = manifests.load(workspace, "labels")
    resolved = frame[frame["resolved"].astype(bool)]
    annotator_rows = frame[~frame["resolved"].astype(bool)]
    state = load_state(workspace) or {}
    return {
        "manifest": str(path),
        "rows": int(len(frame)),
        "media_labelled": int(resolved["media_id"].nunique()),
        "annotations": int(annotator_rows["annotation_id"].nunique()),
        "annotators": int(annotator_rows["annotator"].dropna().nunique()),
        "resolved_by_label": _counts(resolved["label"]),
        "labels_not_in_classes": sorted(
            str(x)
            for x in annotator_rows.loc[
                ~annotator_rows["in_classes"].astype(bool), "label"
            ].unique()
        ),
        "last_sync": state.get("synced_at"),
        "project_id": state.get("project_id"),
    }
