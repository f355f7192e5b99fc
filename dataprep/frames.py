"""``frames``: decode the frames a sampling mode asks for, resize, encode, and record them.

The stage is split in four modules: :mod:`dataprep.decode` (PyAV decoding, shared with
``preview`` and ``predict``), :mod:`dataprep.frame_settings` (options over ``[frames]``, the
settings fingerprint), :mod:`dataprep.frames_worker` (one media into a temporary folder, the
worker pool) and this module, the stage driver (:func:`extract_frames` on
:func:`dataprep.stage.run_stage`), with the manifest and the per-media records.

* Resumable: each media's frames are written into a temporary folder and swapped into
  ``frames/<media_id>/`` when complete, then a record ``.dataprep/frames/<media_id>.json`` notes
  the settings fingerprint, status and rows. ``manifests/frames.parquet`` is rebuilt from the
  records (checkpointed every few seconds and at the end), so a run killed at any moment loses
  at most the media in flight and a rerun finishes the job. With ``--engine ray`` the rows
  stay in Parquet files staged by the workers and every save is a streaming merge
  (:mod:`dataprep.frames_save`); the driver keeps records without their rows.
* Consistent at every instant: before any media whose folder already exists is redone
  (``--overwrite``, or a failed or partial media retried), the manifest is saved without that
  media's rows, and it stays out of every checkpoint until its new frames are committed. So
  the manifest never names a file that a swap removes; a killed run is reported as interrupted
  by ``dataprep info`` and the rerun finishes it.
* A failed media is recorded and the run goes on (``on_error="skip"``, the default) or the run
  stops there (``"fail"``); a file that cannot be written (disk full) stops the run with a
  :class:`~dataprep.errors.DiskError` naming the path (finished media are kept; a rerun resumes).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dataprep import manifests
from dataprep.atomic import atomic_write_text
from dataprep.errors import DiskError, ManifestError, UsageError, os_error_message
from dataprep.frame_settings import FrameSettings, resolve_settings
from dataprep.frames_save import LocalSaver, StreamedSaver, row_count, summary
from dataprep.frames_worker import TMP_PREFIX, run_jobs
from dataprep.sampling import expected_count
from dataprep.stage import StageReport, StageRun, run_stage
from dataprep.workspace import Workspace

__all__ = [
    "FrameSettings",
    "FramesReport",
    "extract_frames",
    "load_frames",
    "load_records",
    "resolve_settings",
    "summarize_frames",
]

ProgressFn = Callable[..., None]  # (frames done, frames expected or None)
STATE_FOLDER = "frames"  # under .dataprep/
TRASH_PREFIX = ".old-"


@dataclass
class FramesReport(StageReport):
    """What one ``extract_frames`` run did."""

    fingerprint: str = ""
    settings: str = ""
    media: int = 0  # media considered (status ok in media.parquet)
    extracted: int = 0  # media extracted in this run
    unchanged: int = 0  # media skipped: complete for the same settings
    frames_written: int = 0
    frames_total: int = 0  # extracted frame rows in the manifest after the run
    failed: list[dict[str, Any]] = field(default_factory=list)  # media_id, error, frames_kept
    skipped_media_errors: int = 0  # media that ingest already marked as errors
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data["frames_per_second"] = (
            round(self.frames_written / self.seconds, 1) if self.seconds else None
        )
        return data


@dataclass
class _Plan:
    """What a run has to do, worked out under the lock."""

    media: list[dict]  # every media row
    todo: list[dict]  # media rows to extract
    records: dict[str, dict]  # the per-media records, kept up to date by _commit
    old_manifest: Any  # frames.parquet as the run found it
    replacing: set[str]  # todo media whose folder exists: hidden from the manifest until redone
    streamed: bool = False  # Ray engine: records hold summaries, saves stream (frames_save)


def state_dir(workspace: Workspace) -> Path:
    return workspace.state_dir / STATE_FOLDER


def load_records(workspace: Workspace, *, rows: bool = True) -> dict[str, dict[str, Any]]:
    """The per-media extraction records (``.dataprep/frames/<media_id>.json``).

    Args:
        rows: keep each record's frame rows; False keeps a summary instead (``row_count``),
            as the streaming driver of the Ray engine does.
    """
    records = {}
    folder = state_dir(workspace)
    if folder.is_dir():
        for path in sorted(folder.glob("*.json")):
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue  # unreadable: treated as not done, redone by the next run
            records[record.get("media_id", path.stem)] = record if rows else summary(record)
    return records


def extract_frames(
    workspace: Workspace,
    *,
    jobs: int | None = None,
    overwrite: bool = False,
    keep_partial: bool = False,
    media_ids: list[str] | None = None,
    on_error: str = "skip",
    progress: ProgressFn | None = None,
    engine=None,
    **options: Any,
) -> FramesReport:
    """Extracts frames of every ingested media (see the module docstring).

    Options left None come from ``[frames]`` in ``dataprep.toml``.

    Args:
        workspace: the workspace.
        options: the frame settings, by the keywords of
            :func:`dataprep.frame_settings.resolve_settings`: ``sampling``, ``fps``, ``every``,
            ``count`` (which frames, see :func:`dataprep.sampling.select_frames`); ``size``,
            ``resize`` (output size, see :func:`dataprep.imageops.parse_size_spec`); ``format``,
            ``quality`` (jpg, png or webp, and 1..100).
        jobs: media decoded in parallel (default: all cores).
        overwrite: replace frames made with other settings (they are refused otherwise).
        keep_partial: keep the frames decoded before a damaged part of a video.
        media_ids: only these media (default: all with status ok).
        on_error: ``skip`` records a media that fails and goes on; ``fail`` stops there (the
            media committed before it are kept).
        progress: called with ``(frames written, frames expected or None)``.
        engine: a :class:`dataprep.engine.EngineSpec` (None: local, ``jobs`` processes).

    Raises:
        UsageError: for bad options, or frames made with other settings without ``overwrite``.
        ManifestError: when there is no media manifest yet.
        ItemFailed: a media failed under ``on_error="fail"``.
        DiskError: a file could not be written (disk full...); a rerun resumes.
    """
    started = time.monotonic()
    settings = resolve_settings(workspace, **options)
    report = FramesReport(fingerprint=settings.fingerprint, settings=settings.label())
    with run_stage(workspace, "frames", on_error=on_error) as run:
        streamed = engine is not None and engine.kind != "local"
        try:
            plan = _plan(workspace, settings, media_ids, overwrite, report, streamed)
            report.frames_total = _extract(
                workspace, run, plan, settings, (jobs, engine), keep_partial, report, progress
            )
        except OSError as exc:
            where = exc.filename or workspace.frames_dir
            raise DiskError(os_error_message(where, exc)) from None
        report.seconds = time.monotonic() - started
        run.finish(
            settings={
                **settings.describe(),
                "fingerprint": settings.fingerprint,
                "keep_partial": keep_partial,
            },
            counts={
                "media": report.media,
                "extracted": report.extracted,
                "unchanged": report.unchanged,
                "failed": len(report.failed),
                "frames_written": report.frames_written,
                "frames_total": report.frames_total,
            },
        )
    return report


def _plan(
    workspace: Workspace,
    settings: FrameSettings,
    media_ids: list[str] | None,
    overwrite: bool,
    report: FramesReport,
    streamed: bool = False,
) -> _Plan:
    """Reads the manifests and records, cleans a killed run's leftovers, and picks the media
    to extract (refusing frames of other settings without ``overwrite``). ``streamed`` (the
    Ray engine): records without their rows, and the frames manifest is not read here."""
    if not workspace.manifest_path("media").exists():
        raise ManifestError(
            f"{workspace.manifest_path('media')}: no media yet; run `dataprep ingest PATH` first"
        )
    media = manifests.records(manifests.load(workspace, "media"))
    _clean_leftovers(workspace)
    records = load_records(workspace, rows=not streamed)
    report.skipped_media_errors = sum(1 for m in media if m["status"] != "ok")
    candidates = [m for m in media if m["status"] == "ok"]
    if media_ids is not None:
        unknown = set(media_ids) - {m["media_id"] for m in media}
        if unknown:
            raise UsageError(
                f"media {sorted(unknown)[0]} is not in the media manifest; see `dataprep info`"
            )
        candidates = [m for m in candidates if m["media_id"] in set(media_ids)]
    report.media = len(candidates)
    if not overwrite:
        _refuse_other_settings(candidates, records, settings)
    todo = []
    for row in candidates:
        record = records.get(row["media_id"])
        if record and record["fingerprint"] == settings.fingerprint and record["status"] == "ok":
            report.unchanged += 1
            continue
        todo.append(row)
    return _Plan(
        media=media,
        todo=todo,
        records=records,
        old_manifest=None if streamed else manifests.load(workspace, "frames", missing_ok=True),
        streamed=streamed,
        replacing={
            row["media_id"] for row in todo if (workspace.frames_dir / row["media_id"]).exists()
        },
    )


def _refuse_other_settings(candidates: list[dict], records: dict, settings: FrameSettings) -> None:
    conflicts = [
        m["media_id"]
        for m in candidates
        if (rec := records.get(m["media_id"]))
        and row_count(rec)
        and rec["fingerprint"] != settings.fingerprint
    ]
    if conflicts:
        old = records[conflicts[0]].get("settings_label", "other settings")
        raise UsageError(
            f"frames of {len(conflicts)} media (e.g. {conflicts[0]}) were extracted with "
            f"other settings ({old}); pass --overwrite to replace them with {settings.label()}, "
            "or run with the same settings"
        )


def _extract(
    workspace: Workspace,
    run: StageRun,
    plan: _Plan,
    settings: FrameSettings,
    where: tuple,
    keep_partial: bool,
    report: FramesReport,
    progress: ProgressFn | None,
):
    """Extracts the planned media, commits each as it finishes, checkpoints the manifest;
    returns the extracted frames in the saved manifest. On any exception the committed media
    are saved first. ``where``: (local jobs, engine spec or None); with the Ray engine the rows
    stay in staged Parquet files (:mod:`dataprep.frames_save`)."""
    from dataprep.engine import open_engine, sample

    jobs, engine = where
    on_frames = _progress_counter(_expected_total(plan.todo, settings), progress)
    hidden = set(plan.replacing)  # their files go when they are redone: not in the manifest
    paths = {row["media_id"]: row["path"] for row in plan.todo}
    if plan.todo:
        run.mark_changed()
    saver = StreamedSaver.start(workspace, plan) if plan.streamed else LocalSaver(workspace, plan)
    if hidden:
        saver.save(hidden)
    try:
        reads = sample(workspace.root / p for p in paths.values()) if engine else ()
        with (
            open_engine(
                engine if plan.todo else None,
                jobs=jobs,
                reads=reads,
                writes=[workspace.frames_dir],
            ) as executor,
            contextlib.closing(
                run_jobs(workspace, plan.todo, settings, jobs, on_frames, executor)
            ) as done,
        ):
            for result in done:
                if result.get("disk_error"):
                    shutil.rmtree(result["tmp_dir"], ignore_errors=True)
                    raise DiskError(result["error"])
                result["rows"] = saver.rows(result)
                failure = _commit(workspace, result, settings, keep_partial, plan.records, report)
                saver.committed(result["media_id"])
                hidden.discard(result["media_id"])
                if failure:
                    run.item_failed(
                        paths[failure["media_id"]],
                        failure["error"],
                        media_id=failure["media_id"],
                        frames_kept=failure["frames_kept"],
                    )
                run.checkpoint(lambda: saver.save(hidden))
    except BaseException:
        with contextlib.suppress(Exception):  # keep what was committed; the first error wins
            saver.save(hidden)
            _clean_leftovers(workspace)
        saver.close()
        raise
    try:
        return saver.save(hidden)
    finally:
        saver.close()


def _progress_counter(expected: int | None, progress: ProgressFn | None) -> Callable[[int], None]:
    done_frames = 0
    if progress:
        progress(0, expected)

    def on_frames(n: int) -> None:
        nonlocal done_frames
        done_frames += n
        if progress:
            progress(done_frames, expected)

    return on_frames


def _expected_total(todo: list[dict], settings: FrameSettings) -> int | None:
    total = 0
    for row in todo:
        if row["kind"] == "image":
            total += 1
            continue
        guess = expected_count(settings.sampling, row.get("frame_count"), row.get("duration_s"))
        if guess is None:
            return None
        total += guess
    return total


def _commit(
    workspace: Workspace,
    result: dict[str, Any],
    settings: FrameSettings,
    keep_partial: bool,
    records: dict[str, dict],
    report: FramesReport,
) -> dict[str, Any] | None:
    """Swaps a finished media's temporary folder into place and writes its record.

    Returns:
        The failure (``media_id``, ``error``, ``frames_kept``) when the media failed, else None.
    """
    media_id = result["media_id"]
    tmp_dir = Path(result["tmp_dir"])
    final_dir = workspace.frames_dir / media_id
    record_path = state_dir(workspace) / f"{media_id}.json"
    keep = result["status"] == "ok" or (keep_partial and bool(result["rows"]))
    # Forget the old record first: from here until the new record is written, a kill leaves the
    # media "not done", and the next run redoes it.
    with contextlib.suppress(FileNotFoundError):
        record_path.unlink()
    records.pop(media_id, None)
    trash = workspace.frames_dir / f"{TRASH_PREFIX}{media_id}-{os.getpid()}"
    if final_dir.exists():
        os.replace(final_dir, trash)
    if keep:
        os.replace(tmp_dir, final_dir)
    else:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    rows = result["rows"] if keep else []
    status = result["status"] if result["status"] == "ok" else ("partial" if keep else "error")
    record = {
        "media_id": media_id,
        "fingerprint": settings.fingerprint,
        "settings": settings.describe(),
        "settings_label": settings.label(),
        "status": status,
        "error": result["error"],
        "rows": rows,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    atomic_write_text(record_path, json.dumps(record))
    records[media_id] = record
    shutil.rmtree(trash, ignore_errors=True)
    report.frames_written += len(rows)
    if result["status"] == "ok":
        report.extracted += 1
        return None
    failure = {"media_id": media_id, "error": result["error"], "frames_kept": len(rows)}
    report.failed.append(failure)
    return failure


def _clean_leftovers(workspace: Workspace) -> None:
    """Removes temporary and trash folders a killed run left behind (we hold the lock)."""
    folder = workspace.frames_dir
    folder.mkdir(parents=True, exist_ok=True)
    state_dir(workspace).mkdir(parents=True, exist_ok=True)
    for entry in folder.iterdir():
        if entry.name.startswith((TMP_PREFIX, TRASH_PREFIX)):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    entry.unlink()


def load_frames(workspace: Workspace, *, augmented: bool | None = False):
    """The frames manifest (extracted rows only by default; ``augmented=None`` for all rows)."""
    frame = manifests.load(workspace, "frames", missing_ok=True)
    if augmented is None or not len(frame):
        return frame
    return frame[frame["augmented"].astype(bool) == augmented].reset_index(drop=True)


def summarize_frames(workspace: Workspace) -> dict[str, Any] | None:
    """The ``frames`` section of ``dataprep info``: counts, settings, failures."""
    path = workspace.manifest_path("frames")
    records = load_records(workspace)
    if not path.exists() and not records:
        return None
    frame = manifests.load(workspace, "frames", missing_ok=True)
    extracted = frame[~frame["augmented"].astype(bool)] if len(frame) else frame
    augmented = frame[frame["augmented"].astype(bool)] if len(frame) else frame
    settings = sorted({r.get("settings_label", "") for r in records.values() if r.get("rows")})
    sizes = (
        (extracted["width"].astype(str) + "x" + extracted["height"].astype(str))
        .value_counts()
        .to_dict()
        if len(extracted)
        else {}
    )
    return {
        "manifest": str(path),
        "frames": int(len(extracted)),
        "augmented_copies": int(len(augmented)),
        "media_with_frames": int(extracted["media_id"].nunique()) if len(extracted) else 0,
        "settings": settings,
        "sizes": {str(k): int(v) for k, v in sizes.items()},
        "failed": [
            {
                "media_id": r["media_id"],
                "status": r["status"],
                "error": r.get("error"),
                "frames_kept": len(r.get("rows", [])),
            }
            for r in records.values()
            if r.get("status") != "ok"
        ],
    }
