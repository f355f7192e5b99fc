"""Saves of ``manifests/frames.parquet`` by the ``frames`` driver (:mod:`dataprep.frames`).

:class:`LocalSaver` (the local engine) rebuilds the manifest from the per-media records, which
hold their rows. :class:`StreamedSaver` (the Ray engine) keeps the rows in staged Parquet files.
With ``--engine ray`` every worker stages its media's frame rows to Parquet
(:class:`~dataprep.engine.StagedRows`). The driver (:mod:`dataprep.frames`) moves each file
into a folder it owns (``.dataprep/frames/.parts/``), writes the media's record as with the
local engine (one media's rows are read for it, then dropped), and keeps only a summary of the
record (status, fingerprint, ``row_count``). Each checkpoint and the final save of
``manifests/frames.parquet`` is a streaming merge (:func:`dataprep.manifest_merge.merge_manifest`)
of the manifest on disk with the parts committed since the previous save.

A run killed between committing a media and saving the manifest leaves a record whose rows the
manifest lacks; the next run finds every such disagreement (frame counts and fingerprints per
media, read from the manifest column by column) and restages those media's rows from their
records, one record at a time. So the manifest ends equal, row for row, to the one the local
engine rebuilds from all records.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dataprep import manifests
from dataprep.manifest_merge import Part, PartStore, member_mask, merge_manifest
from dataprep.manifests import iter_manifest
from dataprep.workspace import Workspace

PARTS_FOLDER = ".parts"  # under .dataprep/frames/


def summary(record: dict[str, Any]) -> dict[str, Any]:
    """A record without its rows (what the streaming driver keeps): ``row_count`` instead."""
    rows = record.get("rows") or []
    return {k: v for k, v in record.items() if k != "rows"} | {
        "row_count": record.get("row_count", len(rows))
    }


def row_count(record: dict[str, Any]) -> int:
    """The frames a record lists, whether it holds its rows or is a :func:`summary`."""
    return int(record.get("row_count", len(record.get("rows") or [])))


@dataclass
class StreamedSaver:
    """Saves the frames manifest by streaming merges; holds part paths and ids, never rows.

    Attributes:
        pending: media committed since the last save -> their part (None: no frames kept).
        repaired: media whose manifest rows disagree with their record -> the record's rows,
            restaged (None: the record lists no frames).
        unknown: media in the manifest that the media manifest no longer lists.
    """

    workspace: Workspace
    records: dict[str, dict]
    store: PartStore
    pending: dict[str, Part | None] = field(default_factory=dict)
    repaired: dict[str, Part | None] = field(default_factory=dict)
    unknown: set[str] = field(default_factory=set)
    _current: Part | None = None

    @classmethod
    def start(cls, workspace: Workspace, plan) -> StreamedSaver:
        """Compares the manifest with the records (``plan.records``, summaries) and restages
        the rows of the media where they disagree."""
        folder = workspace.state_dir / "frames" / PARTS_FOLDER
        saver = cls(workspace, plan.records, PartStore(folder))
        counts, prints = _manifest_summary(workspace.manifest_path("frames"))
        known = {m["media_id"] for m in plan.media}
        saver.unknown = set(counts) - known
        for media_id in sorted(known - set(plan.replacing)):
            record = plan.records.get(media_id) or {}
            expected = row_count(record)
            if counts.get(media_id, 0) == expected and (
                not expected or prints.get(media_id) == {record["fingerprint"]}
            ):
                continue
            part = None
            if expected:
                rows = _record_rows(workspace, media_id)
                part = saver.store.write(rows, media_id, **_constants(media_id, record))
            saver.repaired[media_id] = part
        return saver

    def rows(self, result: dict[str, Any]) -> list[dict[str, Any]]:
        """One media's rows, for its record: its staged file is moved into the part store."""
        import pyarrow.parquet as pq

        from dataprep.engine import StagedRows

        staged = result["rows"]
        self._current = None
        if not isinstance(staged, StagedRows):
            return list(staged)
        self._current = self.store.take(staged, result["media_id"])
        with pq.ParquetFile(self._current.path) as parquet:
            return parquet.read().to_pylist()

    def committed(self, media_id: str) -> None:
        """After the media's record is written: keep its part (when it kept frames) for the
        next save, and only a summary of the record."""
        record = self.records[media_id]
        part = self._current
        self._current = None
        if part is not None and record.get("rows"):
            part = Part(part.path, media_id, _constants(media_id, record), part.count)
        else:
            PartStore.discard([part] if part else [])
            part = None
        self.pending[media_id] = part
        PartStore.discard([p for p in [self.repaired.pop(media_id, None)] if p])
        self.records[media_id] = summary(record)

    def save(self, hidden: set[str]) -> int:
        """Rewrites the manifest: its rows minus those of ``hidden``, committed, repaired and
        unknown media, plus the parts. Returns the extracted (not augmented) rows in it."""
        import pyarrow.compute as pc

        drop = sorted(set(hidden) | set(self.pending) | self.unknown)
        repaired = sorted(self.repaired)

        def keep(table):
            mask = pc.invert(member_mask(table["media_id"], drop))
            if repaired:
                redo = member_mask(table["media_id"], repaired)
                mask = pc.and_(mask, pc.or_(table["augmented"], pc.invert(redo)))
            return mask

        parts = [p for p in (*self.pending.values(), *self.repaired.values()) if p]
        result = merge_manifest(
            self.workspace.manifest_path("frames"), "frames", parts, keep=keep, tally=["augmented"]
        )
        PartStore.discard(parts)
        self.pending.clear()
        self.repaired.clear()
        self.unknown.clear()
        return result.rows - result.true_counts["augmented"]

    def close(self) -> None:
        self.store.remove()


def _constants(media_id: str, record: dict[str, Any]) -> dict[str, Any]:
    return {
        "media_id": media_id,
        "augmented": False,
        "copy_index": 0,
        "fingerprint": record["fingerprint"],
    }


def _record_rows(workspace: Workspace, media_id: str) -> list[dict[str, Any]]:
    path = workspace.state_dir / "frames" / f"{media_id}.json"
    return json.loads(Path(path).read_text(encoding="utf-8")).get("rows") or []


def _manifest_summary(path: Path) -> tuple[Counter, dict[str, set[str]]]:
    """Extracted frames per media and their fingerprints, read three columns at a time."""
    import pyarrow.compute as pc

    counts: Counter = Counter()
    prints: dict[str, set[str]] = {}
    for table in iter_manifest(path, "frames", columns=["media_id", "augmented", "fingerprint"]):
        extracted = table.filter(pc.invert(table["augmented"]))
        counts.update(dict.fromkeys(pc.unique(table["media_id"]).to_pylist(), 0))
        grouped = extracted.group_by(["media_id", "fingerprint"]).aggregate([([], "count_all")])
        for media_id, fingerprint, n in zip(
            grouped["media_id"].to_pylist(),
            grouped["fingerprint"].to_pylist(),
            grouped["count_all"].to_pylist(),
            strict=True,
        ):
            counts[media_id] += n
            prints.setdefault(media_id, set()).add(fingerprint)
    return counts, prints


class LocalSaver:
    """The local engine's saves: the manifest rebuilt from the records (with their rows)."""

    def __init__(self, workspace: Workspace, plan: Any):
        self.workspace, self.plan = workspace, plan
        self.touched: set[str] = set()

    @staticmethod
    def rows(result: dict[str, Any]) -> list[dict[str, Any]]:
        return result["rows"]

    def committed(self, media_id: str) -> None:
        self.touched.add(media_id)

    def save(self, hidden: set[str]) -> int:
        frame = save_from_records(self.workspace, self.plan, self.touched, hidden)
        return int((~frame["augmented"].astype(bool)).sum()) if len(frame) else 0

    def close(self) -> None:
        pass


def save_from_records(workspace: Workspace, plan, touched: set[str], hidden: set[str]):
    """Rebuilds frames.parquet: extracted rows from the records, augmented rows kept for media
    whose frames were not re-extracted in this run; media in ``hidden`` (about to be replaced)
    are left out entirely."""
    import pandas as pd

    known = {m["media_id"] for m in plan.media} - hidden
    rows: list[dict[str, Any]] = []
    for media_id in sorted(plan.records):
        record = plan.records[media_id]
        if media_id not in known:
            continue
        for row in record.get("rows", []):
            rows.append(
                {
                    **row,
                    "media_id": media_id,
                    "augmented": False,
                    "copy_index": 0,
                    "fingerprint": record["fingerprint"],
                }
            )
    frame = manifests.from_records("frames", rows)
    old = plan.old_manifest
    if len(old):
        augmented = old[
            old["augmented"].astype(bool)
            & ~old["media_id"].isin(touched)
            & old["media_id"].isin(known)
        ]
        if len(augmented):
            frame = pd.concat([frame, augmented], ignore_index=True)
    frame = frame.sort_values(["media_id", "frame_index", "copy_index"], kind="stable").reset_index(
        drop=True
    )
    manifests.save(workspace, "frames", frame)
    return frame
