"""The ``audit`` stage: every check over the workspace, written to ``manifests/audit.parquet``
(one row per finding, schema ``schemas/audit.yaml``) and summarized."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dataprep import manifests
from dataprep.workspace import Workspace

KIND_ORDER = (
    "leak",
    "near_duplicate",
    "label_suspect",
    "unreadable",
    "blank",
    "frozen",
    "dark",
    "blurry",
    "few_media",
    "class_drift",
)
INPUTS = ("media.parquet", "labels.parquet", "splits.parquet")


@dataclass
class AuditReport:
    """What one audit found (the manifest holds every finding)."""

    manifest: str
    media: int
    findings: int
    by_kind: dict[str, int]
    clusters: int  # near-duplicate clusters
    media_in_clusters: int
    candidates: int  # pairs the index proposed and the comparison checked
    scored_media: int | None  # media with out-of-sample probabilities (with a run)
    run: str | None
    settings: dict[str, Any]
    top: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # a few per kind
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["seconds"] = round(self.seconds, 3)
        return data


@dataclass
class AuditResult:
    """The report plus what the HTML report draws from."""

    report: AuditReport
    findings: list[dict[str, Any]]
    media: list[dict[str, Any]]
    label_of: dict[str, str | None]
    split_of: dict[str, str]
    signatures: dict[str, Any]
    suspects: list[Any] | None = None


def audit_settings(workspace: Workspace, overrides: dict[str, Any] | None = None):
    """``[audit]`` with the command's overrides, validated in the one place
    (:func:`dataprep.config.effective`)."""
    from dataprep.config import effective

    return effective(workspace.config, "audit", overrides or {})


def _labels_and_splits(workspace: Workspace, media) -> tuple[dict, dict]:
    from dataprep.export.selection import resolve_media_labels

    labels = manifests.load(workspace, "labels", missing_ok=True)
    resolved = resolve_media_labels(media, labels)
    label_of = {m: resolved[m].dominant() for m in media["media_id"]}
    splits = manifests.load(workspace, "splits", missing_ok=True)
    split_of = dict(zip(splits["media_id"], splits["split"], strict=True))
    return label_of, split_of


def audit_workspace(
    workspace: Workspace,
    *,
    run: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    jobs: int | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> AuditResult:
    """Runs every check and writes ``manifests/audit.parquet`` (see docs/audit.md).

    Args:
        workspace: the workspace.
        run: a trained classifier run (id or folder) for label suspects; None skips them.
        overrides: ``[audit]`` keys given on the command line.
        jobs: worker processes for the signatures (None: all cores when there are enough
            media to decode; 1: in this process).
        progress: ``(phase, done, total)``.

    Raises:
        ManifestError: without a media manifest.
        UsageError: for bad settings or an unusable run.
    """
    from dataprep.audit import duplicates, suspects
    from dataprep.stage import run_stage

    started = time.monotonic()
    settings = audit_settings(workspace, overrides)

    def phase(name):
        return (lambda done, total: progress(name, done, total)) if progress else None

    with run_stage(workspace, "audit") as stage:
        media_all = manifests.load(workspace, "media")
        media = media_all[media_all["status"] == "ok"].reset_index(drop=True)
        label_of, split_of = _labels_and_splits(workspace, media)
        rows = manifests.records(media)
        stage.mark_changed()
        signatures = duplicates.media_signatures(
            workspace, rows, jobs=jobs, progress=phase("signatures")
        )
        index_stats: dict[str, int] = {}
        pairs = duplicates.find_pairs(
            signatures, duplicates.DupSettings.from_config(settings), index_stats
        )
        cluster_of = duplicates.clusters(pairs)
        findings = duplicates.pair_findings(pairs, cluster_of, split_of, label_of)
        findings += _quality_findings(
            workspace, media_all, signatures, settings, label_of, split_of
        )
        ranked, scored = None, None
        if run is not None:
            scored = suspects.held_out_probabilities(workspace, run, progress=phase("predict"))
            ranked = suspects.rank_suspects(scored)
            findings += suspects.suspect_findings(scored, ranked)
        for row in findings:
            if row.get("media_id") and row.get("cluster") is None:
                row["cluster"] = cluster_of.get(row["media_id"])
        findings.sort(key=_order)
        manifests.save(workspace, "audit", manifests.from_records("audit", findings))
        by_kind = Counter(row["kind"] for row in findings)
        report = AuditReport(
            manifest=str(workspace.manifest_path("audit")),
            media=len(rows),
            findings=len(findings),
            by_kind={k: by_kind[k] for k in KIND_ORDER if by_kind.get(k)},
            clusters=len(set(cluster_of.values())),
            media_in_clusters=len(cluster_of),
            candidates=index_stats.get("candidates", 0),
            scored_media=len(scored.media_ids) if scored else None,
            run=scored.run_id if scored else None,
            settings=settings.model_dump(),
            top=_top(findings),
        )
        stage.finish(
            settings={**settings.model_dump(), "run": report.run},
            counts={"media": len(rows), **report.by_kind},
            inputs=INPUTS,
        )
    report.seconds = time.monotonic() - started
    return AuditResult(report, findings, rows, label_of, split_of, signatures, ranked)


def _quality_findings(workspace, media_all, signatures, settings, label_of, split_of) -> list:
    """Unreadable media, bad frames (blank, frozen, dark, blurred) and thin or skewed classes."""
    from dataprep.audit import quality

    findings = quality.unreadable_findings(
        manifests.records(media_all), signatures, label_of, split_of
    )
    median = quality.median_sharpness(signatures)
    for media_id, signature in signatures.items():
        findings += quality.frame_findings(
            signature, settings, median, label_of.get(media_id), split_of.get(media_id)
        )
    return findings + quality.class_findings(
        label_of, split_of, list(workspace.config.project.classes), settings
    )


def _order(row: dict[str, Any]) -> tuple:
    return (
        KIND_ORDER.index(row["kind"]),
        -float(row["score"]),
        row.get("media_id") or "",
        row.get("other_media_id") or "",
        row.get("frame_start") or 0,
        row.get("split") or "",
        row.get("label") or "",
    )


def _top(findings: list[dict[str, Any]], per_kind: int = 5) -> dict[str, list[dict]]:
    keys = ("media_id", "other_media_id", "label", "suggested_label", "split", "score", "detail")
    top: dict[str, list[dict]] = {}
    for row in findings:
        bucket = top.setdefault(row["kind"], [])
        if len(bucket) < per_kind:
            bucket.append({k: row.get(k) for k in keys if row.get(k) is not None})
    return top


def load_findings(workspace: Workspace):
    """The audit manifest (pandas), validated."""
    return manifests.load(workspace, "audit")
