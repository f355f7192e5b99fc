"""``export``: write the selected examples of a workspace as TFRecord, an image folder or Parquet.

The output folder ``exports/<name>/`` is complete exactly when ``dataset_info.json`` is there:
it is removed first when an export (re)starts and written last. Every shard is written under a
temporary name and renamed when complete; a progress file remembers finished shards, so a rerun
of an interrupted export with the same inputs keeps them and writes the rest. The same inputs
always give the same bytes (hash-ordered examples, deterministic encoders, gzip without time).

The export is a stage (:func:`dataprep.stage.run_stage`): an example whose frame files cannot
be read stops it under ``on_error="fail"`` (the default) and is left out and recorded under
``"skip"``. Options are validated once, by :func:`dataprep.config.effective`.
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from dataprep import __version__
from dataprep.data.info import INFO_NAME, info_path, read_info, write_info
from dataprep.errors import DiskError, UsageError, os_error_message
from dataprep.export.context import ExportContext, ProgressFn
from dataprep.export.progress import PROGRESS_NAME, ProgressLog, read_progress
from dataprep.export.selection import SPLITS, Selection, select
from dataprep.export.shard_tasks import engine_sizer
from dataprep.export.shards import parse_bytes
from dataprep.hashing import file_fingerprint, settings_fingerprint
from dataprep.stage import run_stage
from dataprep.workspace import Workspace

Format = Literal["tfrecord", "imagefolder", "parquet"]
PLAN_DIR = "export-plan"  # under .dataprep/: the examples of the running export (plan_store)
INPUT_MANIFESTS = ("media", "frames", "labels", "splits")

__all__ = ["ExportContext", "ExportReport", "export_dataset", "summarize_exports"]


@dataclass
class ExportReport:
    """What one export run did."""

    name: str
    path: str
    format: str
    unit: str
    examples: dict[str, int] = field(default_factory=dict)
    by_class: dict[str, dict[str, int]] = field(default_factory=dict)
    shards: dict[str, int] = field(default_factory=dict)
    bytes_written: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    padded_clips: int = 0
    warnings: list[str] = field(default_factory=list)
    up_to_date: bool = False
    resumed_shards: int = 0
    failed: int = 0  # examples left out under --on-error skip
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def export_settings(workspace: Workspace, overrides: dict[str, Any]) -> tuple[dict, str]:
    """The effective settings of an export (``[export]`` of dataprep.toml with the overrides
    applied, validated by :func:`dataprep.config.effective`) and its folder name.

    Raises:
        UsageError: naming the ``--option`` or the dataprep.toml key at fault.
    """
    from dataprep.config import effective

    name = overrides.pop("name", None)
    config = effective(workspace.config, "export", overrides)
    if config.format == "imagefolder" and config.unit != "frame":
        raise UsageError(
            "--format imagefolder holds single images; use --unit frame "
            "(or --format tfrecord/parquet for clips)"
        )
    if config.format == "imagefolder" and config.compression != "none":
        raise UsageError(
            "--format imagefolder stores the frame files as they are; use --compression none"
        )
    name = name or f"{config.format}-{config.unit}"
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise UsageError(f"--name {name!r}: use a plain folder name, e.g. tfrecord-frame")
    clip = config.unit == "clip"
    settings = {
        "format": config.format,
        "unit": config.unit,
        "clip_len": config.clip_len if clip else None,
        "clip_stride": config.clip_stride if clip else None,
        "shard_size": parse_bytes(config.shard_size),
        "compression": config.compression,
        "unlabelled": config.unlabelled,
    }
    return settings, name


def export_dataset(
    workspace: Workspace,
    *,
    format: Format | None = None,  # noqa: A002 - the CLI option's name
    unit: Literal["frame", "clip"] | None = None,
    clip_len: int | None = None,
    clip_stride: int | None = None,
    shard_size: str | int | None = None,
    compression: Literal["none", "gzip"] | None = None,
    name: str | None = None,
    unlabelled: Literal["drop", "background"] | None = None,
    overwrite: bool = False,
    on_error: str = "fail",
    progress: ProgressFn | None = None,
    engine=None,
) -> ExportReport:
    """Exports the workspace's labelled frames or clips to ``exports/<name>/``.

    Options left as None come from ``[export]`` of dataprep.toml; the name defaults to
    ``<format>-<unit>``. An export whose inputs and settings are unchanged is left as is.
    ``engine`` (a :class:`dataprep.engine.EngineSpec`): TFRecord shards as Ray tasks.

    Raises:
        UsageError: for bad options, or an existing export made from other inputs (without
            ``overwrite``).
        ManifestError: when frames or splits are missing.
        ItemFailed: under ``on_error="fail"``, naming an example whose frames cannot be read.
        DiskError: when a file cannot be written (disk full...): a rerun resumes.
    """
    started = time.monotonic()
    overrides = dict(format=format, unit=unit, clip_len=clip_len, clip_stride=clip_stride)
    overrides.update(compression=compression, unlabelled=unlabelled, name=name)
    overrides["shard_size"] = None if shard_size is None else str(shard_size)
    settings, name = export_settings(workspace, overrides)
    out_dir = workspace.exports_dir / name
    report = ExportReport(
        name=name, path=str(out_dir), format=settings["format"], unit=settings["unit"]
    )
    with run_stage(workspace, "export", on_error=on_error) as run:
        fingerprints = input_fingerprints(workspace)
        run_key = settings_fingerprint([settings, fingerprints, __version__])
        if _up_to_date(out_dir, run_key, overwrite, report):
            report.seconds = time.monotonic() - started
            return report
        plan_dir = workspace.state_dir / PLAN_DIR
        shutil.rmtree(plan_dir, ignore_errors=True)  # a killed run's plan
        try:
            with _engine(engine, workspace, out_dir, settings) as executor:
                selection = select(
                    workspace,
                    unit=settings["unit"],
                    clip_len=settings["clip_len"] or 1,
                    clip_stride=settings["clip_stride"] or 1,
                    unlabelled=settings["unlabelled"],
                    plan_dir=plan_dir,
                    sizer=None if executor is None else engine_sizer(executor),
                    shard_size=settings["shard_size"],
                )
                run.mark_changed()
                ctx, split_info = _write(
                    workspace, out_dir, settings, selection, run_key, progress, run, executor
                )
            write_info(out_dir, _info(ctx, settings, name, split_info, fingerprints, run_key))
            (out_dir / PROGRESS_NAME).unlink(missing_ok=True)
        except OSError as exc:
            raise DiskError(os_error_message(exc.filename or out_dir, exc)) from None
        finally:
            shutil.rmtree(plan_dir, ignore_errors=True)
        run.finish(
            settings={**settings, "name": name},
            counts={
                "examples": sum(v["examples"] for v in split_info.values()),
                **{f"{s}_examples": v["examples"] for s, v in split_info.items()},
                "bytes_written": ctx.bytes_written,
                "failed": len(ctx.failed),
            },
        )
    _fill_report(report, ctx, selection, split_info)
    report.seconds = time.monotonic() - started
    return report


def _up_to_date(out_dir: Path, run_key: str, overwrite: bool, report: ExportReport) -> bool:
    """True (and the report filled in) when the export there has the same inputs and settings.

    Raises:
        UsageError: when an export made from other inputs is there, without ``overwrite``.
    """
    if not info_path(out_dir).exists():
        return False
    existing = read_info(out_dir, missing_ok=True)
    if existing.get("export_key") == run_key and not overwrite:
        _fill_report_from_info(report, existing)
        report.up_to_date = True
        return True
    if not overwrite:
        raise UsageError(
            f"{out_dir} holds an export made from other inputs or settings; pass "
            "--overwrite to replace it, or --name for a new one"
        )
    return False


def _write(workspace, out_dir, settings, selection, run_key, progress, run, executor=None):
    """Writes every split with the format's writer; returns the context and the split info."""
    done = _start(out_dir, run_key)
    log = ProgressLog(out_dir, run_key, done)
    ctx = ExportContext(
        workspace=workspace,
        out_dir=out_dir,
        selection=selection,
        compression=settings["compression"],
        shard_size=settings["shard_size"],
        progress=progress,
        done_shards=done,
        finished=log.finished,
        run=run,
        total=sum(len(v) for v in selection.examples.values()),
        executor=executor,
    )
    writer = _writer(settings["format"])
    split_info = {}
    shards_by_split = {s: _write_split(writer, ctx, s, selection.examples[s]) for s in SPLITS}
    for split in SPLITS:
        by_class = selection.by_class(split)
        if ctx.failed:  # left out under --on-error skip: count what was written
            counts = Counter(e.label for e in selection.examples[split] if e.key not in ctx.failed)
            by_class = {c: counts.get(c, 0) for c in selection.class_names}
        split_info[split] = {
            "examples": sum(by_class.values()),
            "shards": shards_by_split[split],
            "by_class": by_class,
        }
    _remove_stale(
        out_dir, settings["format"], {s for v in split_info.values() for s in v["shards"]}
    )
    ctx.resumed = len([s for s in done if s in ctx.done_shards])
    return ctx, split_info


def _engine(engine, workspace, out_dir, settings):
    """The executor of the plan's stats and the shard tasks (TFRecord on Ray), or None (a null
    context): everything is done here."""
    import contextlib

    from dataprep.engine import open_engine, sample
    from dataprep.frame_rows import first_frame_paths

    if engine is None or engine.kind == "local" or settings["format"] != "tfrecord":
        return contextlib.nullcontext()
    return open_engine(engine, reads=sample(first_frame_paths(workspace)), writes=[out_dir])


def _info(ctx, settings, name, split_info, fingerprints, run_key) -> dict:
    from dataprep.export.info import dataset_info

    return dataset_info(
        ctx,
        settings,
        name=name,
        splits=split_info,
        fingerprints=fingerprints,
        export_key=run_key,
        feature_spec=_writer(settings["format"]).feature_spec(settings["unit"]),
    )


def _fill_report(report: ExportReport, ctx, selection: Selection, split_info: dict) -> None:
    report.examples = {s: v["examples"] for s, v in split_info.items()}
    report.by_class = {s: v["by_class"] for s, v in split_info.items()}
    report.shards = {s: len(v["shards"]) for s, v in split_info.items()}
    report.bytes_written = ctx.bytes_written
    report.dropped = dict(selection.dropped)
    report.padded_clips = selection.padded_clips
    report.warnings = list(selection.warnings)
    report.resumed_shards = ctx.resumed
    report.failed = len(ctx.failed)


def _writer(fmt: str):
    if fmt == "tfrecord":
        from dataprep.export import tfrecord as module
    elif fmt == "parquet":
        from dataprep.export import parquet as module
    else:
        from dataprep.export import imagefolder as module
    return module


def _write_split(writer, ctx, split: str, examples: list) -> list[str]:
    """One split through the format's writer; TFRecord shards as engine tasks when the engine is
    not local (here, so that the TFRecord writer and the shard tasks do not import each other)."""
    from dataprep.export import tfrecord

    if writer is tfrecord and ctx.executor is not None and ctx.executor.kind != "local":
        from dataprep.export.shard_tasks import write_split_on_engine

        return write_split_on_engine(ctx, ctx.executor, split, examples)
    return writer.write_split(ctx, split, examples)


def input_fingerprints(workspace: Workspace) -> dict[str, str | None]:
    """SHA-256 (first 16 hex digits) of each input manifest file and stats.json (None if absent)."""
    paths = {name: workspace.manifest_path(name) for name in INPUT_MANIFESTS}
    paths["stats"] = workspace.manifests / "stats.json"
    return {name: file_fingerprint(path) for name, path in paths.items()}


def _start(out_dir: Path, run_key: str) -> dict[str, dict]:
    """Marks the export incomplete; returns shards finished by an interrupted identical run."""
    out_dir.mkdir(parents=True, exist_ok=True)
    info_path(out_dir).unlink(missing_ok=True)
    for tmp in out_dir.rglob(".*.tmp"):
        tmp.unlink(missing_ok=True)
    return read_progress(out_dir, run_key)


def _remove_stale(out_dir: Path, fmt: str, keep: set[str]) -> None:
    """Removes shards of an earlier export that this one did not write."""
    for path in out_dir.iterdir():
        if path.name in keep or path.name in (INFO_NAME, PROGRESS_NAME):
            continue
        if path.is_file() and any(path.name.startswith(f"{s}-") for s in SPLITS):
            path.unlink()
        elif path.is_dir() and path.name in SPLITS and fmt != "imagefolder":
            shutil.rmtree(path)


def _fill_report_from_info(report: ExportReport, info: dict) -> None:
    for split, entry in info.get("splits", {}).items():
        report.examples[split] = entry["examples"]
        report.by_class[split] = entry["by_class"]
        report.shards[split] = len(entry["shards"])


def summarize_exports(workspace: Workspace) -> list[dict[str, Any]] | None:
    """For ``dataprep info``: every folder under exports/, complete or not, with its counts."""
    if not workspace.exports_dir.exists():
        return None
    found = []
    for folder in sorted(p for p in workspace.exports_dir.iterdir() if p.is_dir()):
        if not info_path(folder).exists():
            found.append({"name": folder.name, "path": str(folder), "complete": False})
            continue
        info = read_info(folder, missing_ok=True)
        found.append(
            {
                "name": folder.name,
                "path": str(folder),
                "complete": True,
                "format": info.get("format"),
                "unit": info.get("unit"),
                "examples": {s: v["examples"] for s, v in info.get("splits", {}).items()},
                "up_to_date": info.get("fingerprints") == input_fingerprints(workspace),
            }
        )
    return found or None
