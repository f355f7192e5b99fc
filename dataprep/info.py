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
    }
