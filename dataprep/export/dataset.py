"""``export``: write the selected examples of a workspace as TFRecord, an image folder or Parquet.

The output folder ``exports/<name>/`` is complete exactly when ``dataset_info.json`` is there:
it is removed first when an export (re)starts and written last. Every shard is written under a
temporary name and renamed when complete; a progress file remembers finished shards, so a rerun
of an interrupted export with the same inputs keeps them and writes the rest. The same inputs
always give the same bytes (hash-ordered examples, deterministic encoders, gzip without time).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from dataprep import __version__
from dataprep.atomic import atomic_write_text
from dataprep.errors import UsageError
from dataprep.export.selection import SPLITS, Example, Selection, frame_file, select
from dataprep.export.shards import image_info, parse_bytes, read_ahead
from dataprep.stages import record_stage
from dataprep.workspace import Workspace

Format = Literal["tfrecord", "imagefolder", "parquet"]
INFO_NAME = "dataset_info.json"
PROGRESS_NAME = ".export-progress.json"
INPUT_MANIFESTS = ("media", "frames", "labels", "splits")
ProgressFn = Callable[[int, int], None]


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
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass
class ExportContext:
    """What a format writer needs."""

    workspace: Workspace
    out_dir: Path
    selection: Selection
    compression: str
    shard_size: int
    progress: ProgressFn | None
    done_shards: dict[str, int]  # shard name -> size, finished by an earlier run of this export
    finished: Callable[[str, int], None]  # record a finished shard
    images: Counter = field(default_factory=Counter)  # (h, w, c, encoding) -> examples
    written: int = 0  # examples written (for progress)
    total: int = 0
    bytes_written: int = 0

    def class_index(self, label: str) -> int:
        return self.selection.class_names.index(label)

    def read_images(self, example: Example) -> tuple[list[bytes], tuple[int, int, int, str]]:
        """The encoded frames of an example (padding repeats the last real frame's bytes) and
        ``(height, width, channels, encoding)`` of its first frame. Runs in reader threads."""
        cache: dict[str, bytes] = {}
        images = []
        for frame in example.frames:
            if frame.path not in cache:
                path = frame_file(self.workspace, frame)
                try:
                    cache[frame.path] = path.read_bytes()
                except OSError as exc:
                    from dataprep.errors import MediaError

                    raise MediaError(
                        f"{path}: frame file of media {frame.media_id} frame {frame.frame_index} "
                        f"cannot be read ({exc.strerror}); re-run `dataprep frames`"
                    ) from None
            images.append(cache[frame.path])
        return images, image_info(images[0], str(frame_file(self.workspace, example.frames[0])))

    def iter_with_images(self, examples: list[Example]):
        """Yields ``(example, images, shape)`` reading frame files ahead in threads."""
        for example, (images, header) in read_ahead(examples, self.read_images):
            self.images[header] += 1  # counted here, in one thread
            yield example, images, header[:3]
            self.written += 1
            if self.progress:
                self.progress(self.written, self.total)

    def skip(self, examples: list[Example]) -> None:
        """Accounts for examples of a shard kept from an interrupted run (image info, progress)."""
        for _ in self.iter_with_images(examples):
            pass

    def estimated_size(self, example: Example) -> int:
        """Bytes an example takes in a shard, estimated from the frame files' sizes."""
        seen = {}
        for frame in example.frames:
            if frame.path not in seen:
                try:
                    seen[frame.path] = frame_file(self.workspace, frame).stat().st_size
                except OSError:
                    seen[frame.path] = 0
        per_frame = [seen[f.path] for f in example.frames]
        return sum(per_frame) + 160 + 24 * len(per_frame)


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
    progress: ProgressFn | None = None,
) -> ExportReport:
    """Exports the workspace's labelled frames or clips to ``exports/<name>/``.

    Options left as None come from ``[export]`` of dataprep.toml; the name defaults to
    ``<format>-<unit>``. An export whose inputs and settings are unchanged is left as is.

    Raises:
        UsageError: for bad options, or an existing export made from other inputs (without
            ``overwrite``).
        ManifestError: when frames or splits are missing.
        MediaError: when a frame file cannot be read.
    """
    started = time.monotonic()
    config = workspace.config.export
    fmt = format or config.format
    unit = unit or config.unit
    clip_len = clip_len or config.clip_len
    clip_stride = clip_stride or config.clip_stride
    shard_bytes = parse_bytes(shard_size if shard_size is not None else config.shard_size)
    compression = compression or config.compression
    unlabelled = unlabelled or config.unlabelled
    if fmt not in ("tfrecord", "imagefolder", "parquet"):
        raise UsageError(f"--format {fmt!r} is not allowed; use tfrecord, imagefolder or parquet")
    if compression not in ("none", "gzip"):
        raise UsageError(f"--compression {compression!r} is not allowed; use none or gzip")
    if unlabelled not in ("drop", "background"):
        raise UsageError(f"--unlabelled {unlabelled!r} is not allowed; use drop or background")
    if fmt == "imagefolder" and unit != "frame":
        raise UsageError(
            "--format imagefolder holds single images; use --unit frame "
            "(or --format tfrecord/parquet for clips)"
        )
    if fmt == "imagefolder" and compression != "none":
        raise UsageError(
            "--format imagefolder stores the frame files as they are; use --compression none"
        )
    name = name or f"{fmt}-{unit}"
    if not name or "/" in name or name.startswith("."):
        raise UsageError(f"--name {name!r}: use a plain folder name, e.g. tfrecord-frame")
    settings = {
        "format": fmt,
        "unit": unit,
        "clip_len": clip_len if unit == "clip" else None,
        "clip_stride": clip_stride if unit == "clip" else None,
        "shard_size": shard_bytes,
        "compression": compression,
        "unlabelled": unlabelled,
    }
    out_dir = workspace.exports_dir / name
    report = ExportReport(name=name, path=str(out_dir), format=fmt, unit=unit)

    with workspace.lock():
        fingerprints = input_fingerprints(workspace)
        run_key = hashlib.sha256(
            json.dumps([settings, fingerprints, __version__], sort_keys=True).encode()
        ).hexdigest()[:16]
        info_path = out_dir / INFO_NAME
        if info_path.exists():
            existing = _read_json(info_path)
            if existing.get("export_key") == run_key and not overwrite:
                report.up_to_date = True
                _fill_report_from_info(report, existing)
                report.seconds = time.monotonic() - started
                return report
            if not overwrite:
                raise UsageError(
                    f"{out_dir} holds an export made from other inputs or settings; pass "
                    "--overwrite to replace it, or --name for a new one"
                )
        selection = select(
            workspace, unit=unit, clip_len=clip_len, clip_stride=clip_stride, unlabelled=unlabelled
        )
        done = _start(out_dir, run_key)
        progress_path = out_dir / PROGRESS_NAME

        def finished(shard: str, size: int) -> None:
            done[shard] = size
            atomic_write_text(progress_path, json.dumps({"export_key": run_key, "done": done}))

        ctx = ExportContext(
            workspace=workspace,
            out_dir=out_dir,
            selection=selection,
            compression=compression,
            shard_size=shard_bytes,
            progress=progress,
            done_shards=dict(done),
            finished=finished,
            total=sum(len(v) for v in selection.examples.values()),
        )
        writer = _writer(fmt)
        split_info = {}
        for split in SPLITS:
            examples = selection.examples[split]
            shards = writer.write_split(ctx, split, examples)
            split_info[split] = {
                "examples": len(examples),
                "shards": shards,
                "by_class": selection.by_class(split),
            }
        _remove_stale(out_dir, fmt, {s for v in split_info.values() for s in v["shards"]})
        info = _dataset_info(
            workspace,
            ctx,
            fmt,
            unit,
            name,
            clip_len,
            clip_stride,
            compression,
            split_info,
            fingerprints,
            settings,
            run_key,
            writer,
        )
        atomic_write_text(info_path, json.dumps(info, indent=2, sort_keys=False) + "\n")
        progress_path.unlink(missing_ok=True)
        record_stage(
            workspace,
            "export",
            settings={**settings, "name": name},
            counts={
                "examples": sum(v["examples"] for v in split_info.values()),
                **{f"{s}_examples": v["examples"] for s, v in split_info.items()},
                "bytes_written": ctx.bytes_written,
            },
        )

    report.examples = {s: v["examples"] for s, v in split_info.items()}
    report.by_class = {s: v["by_class"] for s, v in split_info.items()}
    report.shards = {s: len(v["shards"]) for s, v in split_info.items()}
    report.bytes_written = ctx.bytes_written
    report.dropped = dict(selection.dropped)
    report.padded_clips = selection.padded_clips
    report.warnings = list(selection.warnings)
    report.resumed_shards = len([s for s in done if s in ctx.done_shards])
    report.seconds = time.monotonic() - started
    return report


def _writer(fmt: str):
    if fmt == "tfrecord":
        from dataprep.export import tfrecord as module
    elif fmt == "parquet":
        from dataprep.export import parquet as module
    else:
        from dataprep.export import imagefolder as module
    return module


def input_fingerprints(workspace: Workspace) -> dict[str, str | None]:
    """SHA-256 (first 16 hex digits) of each input manifest file and stats.json (None if absent)."""
    paths = {name: workspace.manifest_path(name) for name in INPUT_MANIFESTS}
    paths["stats"] = workspace.manifests / "stats.json"
    result: dict[str, str | None] = {}
    for name, path in paths.items():
        if not path.exists():
            result[name] = None
            continue
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for chunk in iter(lambda h=handle: h.read(1 << 20), b""):
                digest.update(chunk)
        result[name] = digest.hexdigest()[:16]
    return result


def _start(out_dir: Path, run_key: str) -> dict[str, int]:
    """Marks the export incomplete; returns shards finished by an interrupted identical run."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / INFO_NAME).unlink(missing_ok=True)
    for tmp in out_dir.rglob(".*.tmp"):
        tmp.unlink(missing_ok=True)
    progress = _read_json(out_dir / PROGRESS_NAME) if (out_dir / PROGRESS_NAME).exists() else {}
    if progress.get("export_key") != run_key:
        (out_dir / PROGRESS_NAME).unlink(missing_ok=True)
        return {}
    return {
        shard: size
        for shard, size in progress.get("done", {}).items()
        if (out_dir / shard).exists() and (out_dir / shard).stat().st_size == size
    }


def _remove_stale(out_dir: Path, fmt: str, keep: set[str]) -> None:
    """Removes shards of an earlier export that this one did not write."""
    for path in out_dir.iterdir():
        if path.name in keep or path.name in (INFO_NAME, PROGRESS_NAME):
            continue
        if path.is_file() and any(path.name.startswith(f"{s}-") for s in SPLITS):
            path.unlink()
        elif path.is_dir() and path.name in SPLITS and fmt != "imagefolder":
            shutil.rmtree(path)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _fill_report_from_info(report: ExportReport, info: dict) -> None:
    for split, entry in info.get("splits", {}).items():
        report.examples[split] = entry["examples"]
        report.by_class[split] = entry["by_class"]
        report.shards[split] = len(entry["shards"])


def _dataset_info(
    workspace,
    ctx: ExportContext,
    fmt,
    unit,
    name,
    clip_len,
    clip_stride,
    compression,
    split_info,
    fingerprints,
    settings,
    run_key,
    writer,
) -> dict:
    stats_path = workspace.manifests / "stats.json"
    stats = _read_json(stats_path) if stats_path.exists() else None
    sizes = sorted(ctx.images)
    if sizes:
        heights = {s[0] for s in sizes}
        widths = {s[1] for s in sizes}
        channels = {s[2] for s in sizes}
        encodings = {s[3] for s in sizes}
        image = {
            "height": heights.pop() if len(heights) == 1 else None,
            "width": widths.pop() if len(widths) == 1 else None,
            "channels": channels.pop() if len(channels) == 1 else None,
            "encoding": encodings.pop() if len(encodings) == 1 else sorted(encodings),
            "sizes": _sizes(ctx.images),
        }
    else:
        image = {"height": None, "width": None, "channels": None, "encoding": None, "sizes": {}}
    return {
        "format": fmt,
        "unit": unit,
        "name": name,
        "class_names": ctx.selection.class_names,
        "num_classes": len(ctx.selection.class_names),
        "image": image,
        "clip": {"length": clip_len, "stride": clip_stride} if unit == "clip" else None,
        "splits": split_info,
        "compression": compression,
        "stats": stats,
        "augmentation": _augmentation(workspace, ctx.selection),
        "feature_spec": writer.feature_spec(unit),
        "fingerprints": fingerprints,
        "settings": settings,
        "dropped": dict(sorted(ctx.selection.dropped.items())),
        "padded_clips": ctx.selection.padded_clips,
        "export_key": run_key,
        "dataprep_version": __version__,
    }


def _sizes(images: Counter) -> dict[str, int]:
    """Examples per frame size, ``{"HxW": count}``."""
    sizes: Counter = Counter()
    for (height, width, _, _), count in images.items():
        sizes[f"{height}x{width}"] += count
    return dict(sorted(sizes.items()))


def _augmentation(workspace: Workspace, selection: Selection) -> dict | None:
    """The albumentations dict of the pipeline that made the augmented frames in the export.

    That is the pipeline the last ``dataprep augment`` run saved, when its fingerprint is the one
    on the augmented frame rows; otherwise the rows' fingerprints are given instead of a pipeline
    that did not make the frames.
    """
    used = any(f.augmented for e in selection.examples["train"] for f in e.frames)
    if not used:
        return None
    from dataprep import manifests
    from dataprep.augment import materialized_pipeline

    pipeline = materialized_pipeline(workspace)
    if pipeline is not None:
        return pipeline
    frames = manifests.load(workspace, "frames")
    return {
        "pipeline": None,
        "frame_fingerprints": sorted(
            set(frames.loc[frames["augmented"].astype(bool), "fingerprint"])
        ),
        "note": "the augmented frames were not made by the pipeline the last `dataprep augment` "
        "run recorded",
    }


def summarize_exports(workspace: Workspace) -> list[dict[str, Any]] | None:
    """For ``dataprep info``: every folder under exports/, complete or not, with its counts."""
    if not workspace.exports_dir.exists():
        return None
    found = []
    for folder in sorted(p for p in workspace.exports_dir.iterdir() if p.is_dir()):
        info_path = folder / INFO_NAME
        if not info_path.exists():
            found.append({"name": folder.name, "path": str(folder), "complete": False})
            continue
        info = _read_json(info_path)
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
