"""``info``: a summary of what a workspace holds, stage by stage."""

from __future__ import annotations

from typing import Any

from dataprep import manifests
from dataprep.stages import stage_overview
from dataprep.workspace import Workspace


def summarize_media(workspace: Workspace) -> dict[str, Any] | None:
    """Counts by kind, status and label, total video duration, resolutions and the error list."""
    path = workspace.manifest_path("media")
    if not path.exists():
        return None
    media = manifests.load(workspace, "media")
    ok = media[media["status"] == "ok"]
    videos = ok[ok["kind"] == "video"]
    resolutions = (
        ok.dropna(subset=["width", "height"])
        .assign(resolution=lambda f: f["width"].astype(str) + "x" + f["height"].astype(str))[
            "resolution"
        ]
        .value_counts()
        .to_dict()
    )
    errors = media[media["status"] == "error"]
    return {
        "manifest": str(path),
        "media": int(len(media)),
        "by_kind": {str(k): int(v) for k, v in media["kind"].value_counts().items()},
        "by_status": {str(k): int(v) for k, v in media["status"].value_counts().items()},
        "by_label": {
            str(k): int(v) for k, v in ok["label"].fillna("(none)").value_counts().items()
        },
        "video_duration_s": round(float(videos["duration_s"].fillna(0).sum()), 3),
        "variable_frame_rate_videos": int(videos["variable_frame_rate"].fillna(False).sum()),
        "resolutions": {str(k): int(v) for k, v in resolutions.items()},
        "errors": [
            {"media_id": r["media_id"], "path": r["path"], "error": r["error"]}
            for r in manifests.records(errors)
        ],
    }


def summarize(workspace: Workspace) -> dict[str, Any]:
    """The workspace summary: one section per stage that has run."""
    return {
        "workspace": str(workspace.root),
        "project": workspace.config.project.name,
        "classes": workspace.config.project.classes,
        "label_type": workspace.config.project.label_type,
        "stages": stage_overview(workspace),
        "media": summarize_media(workspace),
        "frames": _summarize_frames(workspace),
        "stats": _summarize_stats(workspace),
        "labels": _summarize_labels(workspace),
        "splits": _summarize_splits(workspace),
        "exports": _summarize_exports(workspace),
        "runs": _summarize_runs(workspace),
    }


def _summarize_runs(workspace: Workspace) -> list[dict[str, Any]] | None:
    from dataprep.train.evaluate import summarize_runs

    return summarize_runs(workspace)


def _summarize_splits(workspace: Workspace) -> dict[str, Any] | None:
    from dataprep.split import summarize_splits

    return summarize_splits(workspace)


def _summarize_exports(workspace: Workspace) -> list[dict[str, Any]] | None:
    from dataprep.export.dataset import summarize_exports

    return summarize_exports(workspace)


def _summarize_frames(workspace: Workspace) -> dict[str, Any] | None:
    from dataprep.frames import summarize_frames

    return summarize_frames(workspace)


def _summarize_stats(workspace: Workspace) -> dict[str, Any] | None:
    from dataprep.stats import load_stats

    return load_stats(workspace)


def _summarize_labels(workspace: Workspace) -> dict[str, Any] | None:
    from dataprep.labels.stats import summarize_labels

    return summarize_labels(workspace)
