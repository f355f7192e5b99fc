"""Stage records: what ran, with which settings, on which inputs, with what result.

Each stage writes ``.dataprep/stages/<stage>.json`` when it finishes: its settings, counts,
failures, and fingerprints of the manifests it read. ``dataprep info`` compares those
fingerprints with the manifests as they are now, so a stage whose inputs changed after it ran
is reported as stale.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from dataprep import __version__
from dataprep.atomic import atomic_write_text
from dataprep.hashing import file_fingerprint, settings_fingerprint  # noqa: F401 - re-exported
from dataprep.workspace import Workspace

# Which manifests (or files under manifests/) each stage reads.
STAGE_INPUTS: dict[str, tuple[str, ...]] = {
    "ingest": (),
    "frames": ("media.parquet",),
    "stats": ("frames.parquet", "splits.parquet"),
    "augment": ("frames.parquet",),
    "labels": ("media.parquet",),
    "split": ("media.parquet", "labels.parquet"),
    "export": ("frames.parquet", "labels.parquet", "splits.parquet", "stats.json"),
}
STAGE_ORDER = ("ingest", "frames", "labels", "split", "stats", "augment", "export")
# Which stage writes each input, so staleness carries downstream (frames stale -> export stale).
PRODUCERS: dict[str, tuple[str, ...]] = {
    "media.parquet": ("ingest",),
    "frames.parquet": ("frames", "augment"),
    "labels.parquet": ("labels",),
    "splits.parquet": ("split",),
    "stats.json": ("stats",),
}


def running_marker(workspace: Workspace, stage: str):
    return workspace.state_dir / "stages" / f"{stage}.running"


def interrupted(workspace: Workspace, stage: str) -> dict[str, Any] | None:
    """The marker of a run of ``stage`` that started and did not finish, or None."""
    path = running_marker(workspace, stage)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"stage": stage}


def _path(workspace: Workspace, stage: str) -> Path:
    return workspace.state_dir / "stages" / f"{stage}.json"


def record_stage(
    workspace: Workspace,
    stage: str,
    *,
    settings: dict[str, Any],
    counts: dict[str, Any],
    failures: list[dict[str, Any]] | None = None,
    inputs: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """Writes the record of a finished stage run (atomically) and returns it."""
    names = STAGE_INPUTS.get(stage, ()) if inputs is None else inputs
    record = {
        "stage": stage,
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "dataprep_version": __version__,
        "settings": settings,
        "counts": counts,
        "failures": failures or [],
        "inputs": {name: file_fingerprint(workspace.manifests / name) for name in names},
    }
    atomic_write_text(_path(workspace, stage), json.dumps(record, indent=2, default=str))
    return record


def load_stage(workspace: Workspace, stage: str) -> dict[str, Any] | None:
    """The last record of ``stage``, or None when it has not run."""
    path = _path(workspace, stage)
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def stale_inputs(
    workspace: Workspace, record: dict[str, Any], current: dict[str, str | None] | None = None
) -> list[str]:
    """Inputs of a recorded run that changed since (or appeared/disappeared).

    ``current`` caches the fingerprints of this moment, so that several records reading the
    same manifest hash it once.
    """
    current = {} if current is None else current
    changed = []
    for name, fingerprint in record.get("inputs", {}).items():
        if name not in current:
            current[name] = file_fingerprint(workspace.manifests / name)
        if current[name] != fingerprint:
            changed.append(name)
    return changed


def stage_overview(workspace: Workspace) -> list[dict[str, Any]]:
    """For each stage: whether it ran, when, settings, counts, failures and staleness."""
    overview = []
    folder = workspace.state_dir / "stages"
    names = list(STAGE_ORDER) + sorted(
        {p.stem for p in [*folder.glob("*.json"), *folder.glob("*.running")]} - set(STAGE_ORDER)
    )
    stale_stages: set[str] = set()
    current: dict[str, str | None] = {}
    for stage in names:
        record = load_stage(workspace, stage)
        unfinished = interrupted(workspace, stage)
        if record is None:
            overview.append({"stage": stage, "ran": False, "interrupted": unfinished is not None})
            if unfinished is not None:
                stale_stages.add(stage)
            continue
        changed = stale_inputs(workspace, record, current)
        upstream = sorted(
            producer
            for name in record.get("inputs", {})
            for producer in PRODUCERS.get(name, ())
            if producer in stale_stages and producer != stage
        )
        if changed or upstream or unfinished is not None:
            stale_stages.add(stage)
        overview.append(
            {
                "stage": stage,
                "ran": True,
                "finished_at": record["finished_at"],
                "settings": record["settings"],
                "counts": record["counts"],
                "failures": len(record["failures"]),
                "stale": bool(changed or upstream),
                "interrupted": unfinished is not None,
                "changed_inputs": changed,
                "stale_upstream": upstream,
            }
        )
    return overview
