"""``frames``: decode the frames a sampling mode asks for, resize, encode, and record them.

* Decoding uses PyAV (FFmpeg) with frame and slice threads. A video is demuxed once (cheap: no
  decoding) to learn every frame's presentation timestamp and key-frame flag;
  :func:`dataprep.sampling.select_frames` picks frame indices from those timestamps; the decoder
  then decodes only what the picks need: when the key frame before the next pick lies ahead of
  the decoder, it seeks there instead of decoding the frames in between (sparse ``--count``,
  low ``--fps``, large ``--every``); ``--keyframes`` asks FFmpeg to skip non-key frames.
* The rotation stored in the container is applied; arrays are RGB in the public API
  (:func:`read_frames`); the extraction path works in BGR internally to skip a conversion.
* Images are one-frame media and take the same resize and encode path.
* Resumable: each media's frames are written into a temporary folder and swapped into
  ``frames/<media_id>/`` when complete, then a record ``.dataprep/frames/<media_id>.json`` notes
  the settings fingerprint, status and rows. ``manifests/frames.parquet`` is rebuilt from the
  records (checkpointed every few seconds and at the end), so a run killed at any moment loses
  at most the media in flight and a rerun finishes the job.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from dataprep import manifests
from dataprep.atomic import atomic_write_text
from dataprep.errors import ManifestError, MediaError, UsageError
from dataprep.imageops import (
    FORMATS,
    SizeSpec,
    bgr_to_rgb,
    encode_bgr,
    finish_resize,
    parse_size_spec,
    plan_resize,
    read_image_bgr,
    rotate,
    scale_frame,
)
from dataprep.imageops import resize as resize_image
from dataprep.sampling import SamplingSpec, expected_count, select_frames, video_end_s
from dataprep.workspace import Workspace

ProgressFn = Callable[..., None]  # (frames done, frames expected or None)
CHECKPOINT_SECONDS = 5.0
SEEK_MIN_GAP = 4  # seek only when it skips more than this many frames
STATE_FOLDER = "frames"  # under .dataprep/
TMP_PREFIX = ".tmp-"
TRASH_PREFIX = ".old-"
FINGERPRINT_VERSION = 1  # bump when the same settings would give different pixels


@dataclass(frozen=True)
class DecodedFrame:
    """One frame as the library hands it out: RGB uint8, resized, rotation applied."""

    frame_index: int
    timestamp_s: float
    image: np.ndarray


@dataclass(frozen=True)
class FrameSettings:
    """Everything that decides which pixels end up in the frame files."""

    sampling: SamplingSpec
    size: SizeSpec | None
    format: str
    quality: int

    def describe(self) -> dict[str, Any]:
        return {
            "sampling": self.sampling.describe(),
            "size": self.size.describe() if self.size else "original",
            "format": self.format,
            "quality": self.quality,
            "version": FINGERPRINT_VERSION,
        }

    @property
    def fingerprint(self) -> str:
        text = json.dumps(self.describe(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def label(self) -> str:
        size = self.size.describe() if self.size else "original size"
        return f"{self.sampling.label()}, {size}, {self.format} q{self.quality}"


@dataclass
class FramesReport:
    """What one ``extract_frames`` run did."""

    fingerprint: str = ""
    settings: str = ""
    media: int = 0  # media considered (status ok in media.parquet)
    extracted: int = 0  # media extracted in this run
    unchanged: int = 0  # media skipped: complete for the same settings
    frames_written: int = 0
    frames_total: int = 0  # extracted frame rows in the manifest after the run
    failed: list[dict[str, Any]] = field(default_factory=list)  # media_id, path, error, kept
    skipped_media_errors: int = 0  # media that ingest already marked as errors
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "settings": self.settings,
            "media": self.media,
            "extracted": self.extracted,
            "unchanged": self.unchanged,
            "frames_written": self.frames_written,
            "frames_total": self.frames_total,
            "failed": self.failed,
            "skipped_media_errors": self.skipped_media_errors,
            "seconds": round(self.seconds, 3),
            "frames_per_second": round(self.frames_written / self.seconds, 1)
            if self.seconds
            else None,
        }


# --------------------------------------------------------------------------------------------
# Reading frames (public API shared with `predict`)
# --------------------------------------------------------------------------------------------


def read_frames(
    path: str | Path,
    *,
    sampling: str,
    fps: float | None = None,
    every: int | None = None,
    count: int | None = None,
    size: str | None,
    resize: str = "shorter",
) -> Iterator[DecodedFrame]:
    """Yields the frames of a video (or the one frame of an image) the way ``frames`` extracts them.

    Args:
        path: a video or image file (recognized by content).
        sampling: ``fps``, ``every``, ``count``, ``keyframes`` or ``all`` (ignored for images).
        fps, every, count: the parameter of the chosen mode.
        size: ``"224"`` (shorter side), ``"WxH"`` (with ``resize``), or None for original size.
        resize: ``shorter``, ``fit``, ``crop`` or ``stretch``.

    Yields:
        :class:`DecodedFrame` in frame order: RGB uint8, resized, container rotation applied.

    Raises:
        MediaError: when the file cannot be read or is damaged (after the frames decoded
            before the damage have been yielded).
        UsageError: for bad sampling or size options.
    """
    spec = SamplingSpec(sampling, fps=fps, every=every, count=count)
    size_spec = parse_size_spec(size, resize)
    path = Path(path)
    if _media_kind(path) == "image":
        image = resize_image(read_image_bgr(path), size_spec)
        yield DecodedFrame(0, 0.0, bgr_to_rgb(image))
        return
    for frame_index, timestamp_s, image in decode_video(path, spec, size=size_spec, color="rgb24"):
        yield DecodedFrame(frame_index, timestamp_s, image)


def _media_kind(path: Path) -> str:
    from dataprep.sniff import HEAD_BYTES, kind_from_content

    try:
        with open(path, "rb") as handle:
            head = handle.read(HEAD_BYTES)
    except OSError as exc:
        raise MediaError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    kind = kind_from_content(head)
    if kind is None:
        raise MediaError(f"{path}: not a video or image file (unknown content)")
    return kind


@dataclass(frozen=True)
class StreamIndex:
    """Every frame of a video stream in presentation order, from one demux pass."""

    pts: list[int]
    keyframe: list[bool]
    timestamps_s: list[float]
    end_s: float
    time_base: Fraction

    @property
    def frame_count(self) -> int:
        return len(self.pts)


def index_stream(path: Path) -> StreamIndex:
    """Demuxes a video (no decoding) to list its frames' timestamps and key-frame flags.

    Raises:
        MediaError: when the file cannot be opened or demuxing fails.
    """
    import av

    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.FFmpegError, OSError) as exc:
        raise MediaError(f"{path}: not a readable video ({_reason(exc)})") from None
    packets: list[tuple[int, bool, int]] = []
    with container:
        if not container.streams.video:
            raise MediaError(f"{path}: no video stream in the file")
        stream = container.streams.video[0]
        time_base = stream.time_base or Fraction(1, 1000)
        try:
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue
                stamp = packet.pts if packet.pts is not None else packet.dts
                if stamp is None:
                    stamp = packets[-1][0] + 1 if packets else 0
                packets.append((int(stamp), bool(packet.is_keyframe), int(packet.duration or 0)))
        except av.FFmpegError as exc:
            raise MediaError(
                f"{path}: truncated or corrupt after {len(packets)} frames ({_reason(exc)})"
            ) from None
    if not packets:
        raise MediaError(f"{path}: no video frames found")
    packets.sort(key=lambda item: item[0])
    first = packets[0][0]
    pts = [p[0] for p in packets]
    timestamps_s = [float((p - first) * time_base) for p in pts]
    last_duration = float(packets[-1][2] * time_base) if packets[-1][2] else None
    return StreamIndex(
        pts=pts,
        keyframe=[p[1] for p in packets],
        timestamps_s=timestamps_s,
        end_s=video_end_s(timestamps_s, last_duration),
        time_base=Fraction(time_base),
    )


def decode_video(
    path: Path,
    spec: SamplingSpec,
    *,
    size: SizeSpec | None,
    color: str = "rgb24",
    threads: int = 0,
    index: StreamIndex | None = None,
) -> Iterator[tuple[int, float, np.ndarray]]:
    """Decodes the frames ``spec`` selects; yields ``(frame_index, timestamp_s, image)``.

    ``color`` is ``rgb24`` or ``bgr24`` (internal). ``threads``: decoder threads (0 = FFmpeg's
    choice). See :func:`decode_selected` for seeking and errors.
    """
    for frame_index, timestamp_s, frame, rotation in decode_selected(
        path, spec, threads=threads, index=index
    ):
        yield frame_index, timestamp_s, frame_to_image(frame, rotation, size, color)


def frame_to_image(frame, rotation: int, size: SizeSpec | None, color: str = "rgb24") -> np.ndarray:
    """A decoded PyAV frame as ``uint8 [H, W, 3]``: scaled and converted in one swscale pass
    (the same scaler as :func:`dataprep.imageops.resize`), rotated as displayed, then cropped
    or letterboxed."""
    quarter_turns = int(round(rotation / 90.0)) % 4 if rotation else 0
    width, height = frame.width, frame.height
    display = (height, width) if quarter_turns % 2 else (width, height)
    plan = plan_resize(*display, size)
    scaled_w, scaled_h = plan.scaled
    if quarter_turns % 2:
        scaled_w, scaled_h = scaled_h, scaled_w
    if (scaled_w, scaled_h) == (width, height):
        image = frame.to_ndarray(format=color)
    else:
        image = scale_frame(frame, scaled_w, scaled_h, color)
    if quarter_turns:
        image = rotate(image, rotation)
    return finish_resize(image, plan)


def decode_selected(
    path: Path,
    spec: SamplingSpec,
    *,
    threads: int = 0,
    index: StreamIndex | None = None,
) -> Iterator[tuple[int, float, Any, int]]:
    """Decodes the frames ``spec`` selects; yields ``(frame_index, timestamp_s, av_frame,
    rotation)`` with the container's counter-clockwise display rotation in degrees.

    Seeks to the key frame before a pick when that skips decoding more than a few frames;
    falls back to decoding from the start if a seek lands after the wanted frame.

    Raises:
        MediaError: when decoding fails or the stream ends before a selected frame (the frames
            decoded before that point have been yielded).
    """
    import av

    index = index or index_stream(path)
    targets = select_frames(index.timestamps_s, spec, keyframes=index.keyframe, end_s=index.end_s)
    if not targets:
        return
    index_of_pts = {p: i for i, p in enumerate(index.pts)}
    key_before = _key_before(index.keyframe)
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.FFmpegError, OSError) as exc:
        raise MediaError(f"{path}: not a readable video ({_reason(exc)})") from None
    with container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = int(threads)
        if spec.mode == "keyframes":
            stream.codec_context.skip_frame = "NONKEY"
        decoded = container.decode(stream)
        position = -1  # index of the last frame decoded
        may_seek = True
        rotation = None
        for target in targets:
            key = key_before[target]
            if may_seek and key - position > SEEK_MIN_GAP and key > 0:
                container.seek(index.pts[key], stream=stream, backward=True, any_frame=False)
                decoded = container.decode(stream)
                position = key - 1
            while True:
                try:
                    frame = next(decoded)
                except StopIteration:
                    raise MediaError(
                        f"{path}: truncated or corrupt: the decoder stopped after frame {position} "
                        f"but the file lists {index.frame_count} frames"
                    ) from None
                except av.FFmpegError as exc:
                    raise MediaError(
                        f"{path}: corrupt data after frame {position} ({_reason(exc)})"
                    ) from None
                found = (
                    position + 1 if frame.pts is None else index_of_pts.get(frame.pts, position + 1)
                )
                if found < target:
                    position = found
                    continue
                if found > target:
                    if may_seek:  # a seek landed after the frame: decode from the start instead
                        may_seek = False
                        container.seek(index.pts[0], stream=stream, backward=True, any_frame=False)
                        decoded = container.decode(stream)
                        position = -1
                        continue
                    raise MediaError(
                        f"{path}: frame {target} could not be decoded (the decoder skipped from "
                        f"frame {position} to {found}); the file is damaged"
                    )
                position = found
                if rotation is None:
                    rotation = int(round(getattr(frame, "rotation", 0) or 0))
                yield target, index.timestamps_s[target], frame, rotation
                break


def _key_before(keyframe: list[bool]) -> list[int]:
    """For each frame, the index of the last key frame at or before it (0 when none)."""
    result = []
    last = 0
    for i, key in enumerate(keyframe):
        if key:
            last = i
        result.append(last)
    return result


def _reason(exc: BaseException) -> str:
    from dataprep.probe import _reason as probe_reason

    return probe_reason(exc)


# --------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------


def resolve_settings(
    workspace: Workspace,
    *,
    sampling: str | None = None,
    fps: float | None = None,
    every: int | None = None,
    count: int | None = None,
    size: str | None = None,
    resize: str | None = None,
    format: str | None = None,  # noqa: A002 - the option's name
    quality: int | None = None,
) -> FrameSettings:
    """Merges explicit options over ``[frames]`` of ``dataprep.toml``.

    A mode parameter given without a mode picks that mode (``fps=2`` means ``sampling="fps"``).

    Raises:
        UsageError: for conflicting or bad options.
    """
    config = workspace.config.frames
    given = [
        name
        for name, value in (("fps", fps), ("every", every), ("count", count))
        if value is not None
    ]
    if sampling is None:
        if len(given) > 1:
            raise UsageError(f"choose one of --{' or --'.join(given)}")
        sampling = given[0] if given else config.sampling
    elif given and given != [sampling]:
        raise UsageError(f"--{given[0]} does not go with sampling mode {sampling!r}")
    spec = SamplingSpec(
        sampling,
        fps=fps if fps is not None else config.fps,
        every=every if every is not None else config.every,
        count=count if count is not None else config.count,
    )
    # Keep only the chosen mode's parameter: other config keys must not change fingerprints.
    spec = SamplingSpec(
        spec.mode,
        **({spec.mode: getattr(spec, spec.mode)} if spec.mode in ("fps", "every", "count") else {}),
    )
    size_spec = parse_size_spec(size if size is not None else config.size, resize or config.resize)
    fmt = (format or config.format).lower()
    if fmt == "jpeg":
        fmt = "jpg"
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r} is not known; use one of {', '.join(FORMATS)}")
    quality = config.quality if quality is None else int(quality)
    if not 1 <= quality <= 100:
        raise UsageError(f"--quality {quality} is out of range; use 1..100")
    return FrameSettings(spec, size_spec, fmt, quality)


# --------------------------------------------------------------------------------------------
# One media item (runs in a worker process)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MediaJob:
    media_id: str
    path: str
    kind: str
    settings: FrameSettings
    frames_dir: str  # absolute frames/ folder
    root: str  # workspace root, rows hold paths relative to it
    threads: int


def extract_media(job: MediaJob, progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Extracts one media item into a temporary folder next to its final one. Never raises.

    Returns:
        ``{"media_id", "status": "ok"|"error", "error", "rows", "tmp_dir"}``; ``rows`` are the
        frames written before any failure.
    """
    settings = job.settings
    tmp_dir = Path(job.frames_dir) / f"{TMP_PREFIX}{job.media_id}-{os.getpid()}"
    if tmp_dir.exists():
        shutil.rmtree(tmp_dir)
    tmp_dir.mkdir(parents=True)
    rows: list[dict[str, Any]] = []
    extension = settings.format
    final_rel = Path(job.frames_dir).relative_to(job.root) / job.media_id

    def write(frame_index: int, timestamp_s: float, image_bgr: np.ndarray) -> None:
        name = f"{frame_index:06d}.{extension}"
        (tmp_dir / name).write_bytes(encode_bgr(image_bgr, settings.format, settings.quality))
        height, width = image_bgr.shape[:2]
        rows.append(
            {
                "frame_index": int(frame_index),
                "timestamp_s": float(timestamp_s),
                "path": str(final_rel / name),
                "width": int(width),
                "height": int(height),
            }
        )
        if progress:
            progress(1)

    try:
        if job.kind == "image":
            write(0, 0.0, resize_image(read_image_bgr(job.path), settings.size))
        else:
            frames = decode_selected(Path(job.path), settings.sampling, threads=job.threads)

            def convert_and_write(frame_index, timestamp_s, frame, rotation):
                write(
                    frame_index,
                    timestamp_s,
                    frame_to_image(frame, rotation, settings.size, "bgr24"),
                )

            _write_pipelined(frames, convert_and_write)
    except MediaError as exc:
        message = str(exc).replace(f"{job.path}: ", "")
        return {
            "media_id": job.media_id,
            "status": "error",
            "error": message,
            "rows": rows,
            "tmp_dir": str(tmp_dir),
        }
    except Exception as exc:  # noqa: BLE001 - a per-media failure must not stop the run
        return {
            "media_id": job.media_id,
            "status": "error",
            "error": f"unexpected {type(exc).__name__}: {exc}",
            "rows": rows,
            "tmp_dir": str(tmp_dir),
        }
    if not rows:
        return {
            "media_id": job.media_id,
            "status": "error",
            "error": "no frames decoded",
            "rows": rows,
            "tmp_dir": str(tmp_dir),
        }
    return {
        "media_id": job.media_id,
        "status": "ok",
        "error": None,
        "rows": rows,
        "tmp_dir": str(tmp_dir),
    }


def _write_pipelined(frames: Iterator[tuple[int, float, np.ndarray]], write) -> None:
    """Encodes and writes frames in a helper thread while the decoder goes on (OpenCV and file
    writes release the GIL). Errors of either side propagate; frames decoded before an error are
    written first."""
    pending: queue.Queue = queue.Queue(maxsize=16)
    failure: list[BaseException] = []

    def writer() -> None:
        while True:
            item = pending.get()
            if item is None:
                return
            if failure:
                continue
            try:
                write(*item)
            except BaseException as exc:  # noqa: BLE001 - handed to the decoding thread
                failure.append(exc)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        for item in frames:
            if failure:
                break
            pending.put(item)
    finally:
        pending.put(None)
        thread.join()
    if failure:
        raise failure[0]


# --------------------------------------------------------------------------------------------
# The stage
# --------------------------------------------------------------------------------------------


def state_dir(workspace: Workspace) -> Path:
    return workspace.state_dir / STATE_FOLDER


def load_records(workspace: Workspace) -> dict[str, dict[str, Any]]:
    """The per-media extraction records (``.dataprep/frames/<media_id>.json``)."""
    records = {}
    folder = state_dir(workspace)
    if folder.is_dir():
        for path in sorted(folder.glob("*.json")):
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue  # unreadable: treated as not done, redone by the next run
            records[record.get("media_id", path.stem)] = record
    return records


def extract_frames(
    workspace: Workspace,
    *,
    sampling: str | None = None,
    fps: float | None = None,
    every: int | None = None,
    count: int | None = None,
    size: str | None = None,
    resize: str | None = None,
    format: str | None = None,  # noqa: A002 - the option's name
    quality: int | None = None,
    jobs: int | None = None,
    overwrite: bool = False,
    keep_partial: bool = False,
    media_ids: list[str] | None = None,
    progress: ProgressFn | None = None,
) -> FramesReport:
    """Extracts frames of every ingested media (see the module docstring).

    Options left None come from ``[frames]`` in ``dataprep.toml``.

    Args:
        workspace: the workspace.
        sampling, fps, every, count: which frames (see :func:`dataprep.sampling.select_frames`).
        size, resize: output size (see :func:`dataprep.imageops.parse_size_spec`).
        format, quality: jpg, png or webp, and 1..100.
        jobs: media decoded in parallel (default: all cores).
        overwrite: replace frames made with other settings (they are refused otherwise).
        keep_partial: keep the frames decoded before a damaged part of a video.
        media_ids: only these media (default: all with status ok).
        progress: called with ``(frames written, frames expected or None)``.

    Raises:
        UsageError: for bad options, or frames made with other settings without ``overwrite``.
        ManifestError: when there is no media manifest yet.
    """
    started = time.monotonic()
    settings = resolve_settings(
        workspace,
        sampling=sampling,
        fps=fps,
        every=every,
        count=count,
        size=size,
        resize=resize,
        format=format,
        quality=quality,
    )
    fingerprint = settings.fingerprint
    report = FramesReport(fingerprint=fingerprint, settings=settings.label())
    with workspace.lock():
        if not workspace.manifest_path("media").exists():
            raise ManifestError(
                f"{workspace.manifest_path('media')}: no media yet; "
                "run `dataprep ingest PATH` first"
            )
        media = manifests.records(manifests.load(workspace, "media"))
        _clean_leftovers(workspace)
        records = load_records(workspace)
        report.skipped_media_errors = sum(1 for m in media if m["status"] != "ok")
        candidates = [m for m in media if m["status"] == "ok"]
        if media_ids is not None:
            wanted = set(media_ids)
            unknown = wanted - {m["media_id"] for m in media}
            if unknown:
                raise UsageError(
                    f"media {sorted(unknown)[0]} is not in the media manifest; see `dataprep info`"
                )
            candidates = [m for m in candidates if m["media_id"] in wanted]
        report.media = len(candidates)
        conflicts = [
            m["media_id"]
            for m in candidates
            if (rec := records.get(m["media_id"]))
            and rec.get("rows")
            and rec["fingerprint"] != fingerprint
        ]
        if conflicts and not overwrite:
            old = records[conflicts[0]].get("settings_label", "other settings")
            raise UsageError(
                f"frames of {len(conflicts)} media (e.g. {conflicts[0]}) were extracted with "
                f"other settings ({old}); pass --overwrite to replace them with "
                f"{settings.label()}, "
                "or run with the same settings"
            )
        todo = []
        for row in candidates:
            record = records.get(row["media_id"])
            if record and record["fingerprint"] == fingerprint and record["status"] == "ok":
                report.unchanged += 1
                continue
            todo.append(row)
        expected = _expected_total(todo, settings)
        done_frames = 0
        if progress:
            progress(0, expected)

        def on_frames(n: int) -> None:
            nonlocal done_frames
            done_frames += n
            if progress:
                progress(done_frames, expected)

        touched: set[str] = set()
        old_manifest = manifests.load(workspace, "frames", missing_ok=True)
        last_save = time.monotonic()
        for result in _run_jobs(workspace, todo, settings, jobs, on_frames):
            _commit(workspace, result, settings, keep_partial, records, report)
            touched.add(result["media_id"])
            if time.monotonic() - last_save > CHECKPOINT_SECONDS:
                _save_manifest(workspace, media, records, old_manifest, touched)
                last_save = time.monotonic()
        frame = _save_manifest(workspace, media, records, old_manifest, touched)
        report.frames_total = int((~frame["augmented"].astype(bool)).sum()) if len(frame) else 0
        report.seconds = time.monotonic() - started
        from dataprep.stages import record_stage

        record_stage(
            workspace,
            "frames",
            settings={
                **settings.describe(),
                "fingerprint": fingerprint,
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
            failures=report.failed,
        )
    return report


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


def _threads_per_job(jobs: int, n_media: int) -> int:
    cores = os.cpu_count() or 1
    parallel = max(1, min(jobs, n_media))
    return max(1, cores // parallel)


def _run_jobs(
    workspace: Workspace,
    todo: list[dict],
    settings: FrameSettings,
    jobs: int | None,
    on_frames: Callable[[int], None],
) -> Iterator[dict[str, Any]]:
    jobs = jobs or os.cpu_count() or 1
    threads = _threads_per_job(jobs, len(todo))
    work = [
        MediaJob(
            media_id=row["media_id"],
            path=row["path"],
            kind=row["kind"],
            settings=settings,
            frames_dir=str(workspace.frames_dir),
            root=str(workspace.root),
            threads=threads,
        )
        for row in todo
    ]
    if jobs <= 1 or len(work) <= 1:
        for job in work:
            yield extract_media(job, on_frames)
        return
    from concurrent.futures import FIRST_COMPLETED, wait

    from dataprep.parallel import context, process_pool

    counter = context().Queue()
    with process_pool(jobs, _worker_init, (counter,)) as pool:
        pending = {pool.submit(_extract_in_worker, job) for job in work}
        while pending:
            finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            _drain(counter, on_frames)
            for future in finished:
                yield future.result()
        _drain(counter, on_frames)


_worker_counter = None


def _worker_init(counter) -> None:
    global _worker_counter
    _worker_counter = counter


def _extract_in_worker(job: MediaJob) -> dict[str, Any]:
    batch = [0, time.monotonic()]

    def report(n: int) -> None:
        batch[0] += n
        if time.monotonic() - batch[1] > 0.2:
            _worker_counter.put(batch[0])
            batch[0] = 0
            batch[1] = time.monotonic()

    result = extract_media(job, report)
    if batch[0]:
        _worker_counter.put(batch[0])
    return result


def _drain(counter, on_frames: Callable[[int], None]) -> None:
    while True:
        try:
            n = counter.get_nowait()
        except queue.Empty:
            return
        on_frames(n)


def _commit(
    workspace: Workspace,
    result: dict[str, Any],
    settings: FrameSettings,
    keep_partial: bool,
    records: dict[str, dict],
    report: FramesReport,
) -> None:
    """Swaps a finished media's temporary folder into place and writes its record."""
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
    if result["status"] == "ok":
        report.extracted += 1
        report.frames_written += len(rows)
    else:
        report.frames_written += len(rows)
        report.failed.append(
            {"media_id": media_id, "error": result["error"], "frames_kept": len(rows)}
        )


def _clean_leftovers(workspace: Workspace) -> None:
    """Removes temporary and trash folders a killed run left behind (we hold the lock)."""
    folder = workspace.frames_dir
    folder.mkdir(parents=True, exist_ok=True)
    state_dir(workspace).mkdir(parents=True, exist_ok=True)
    for entry in folder.iterdir():
        if entry.name.startswith((TMP_PREFIX, TRASH_PREFIX)) and entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)


def _save_manifest(
    workspace: Workspace,
    media: list[dict],
    records: dict[str, dict],
    old_manifest,
    touched: set[str],
):
    """Rebuilds frames.parquet: extracted rows from the records, augmented rows kept for media
    whose frames were not re-extracted in this run."""
    import pandas as pd

    known = {m["media_id"] for m in media}
    rows: list[dict[str, Any]] = []
    for media_id in sorted(records):
        record = records[media_id]
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
    if len(old_manifest):
        augmented = old_manifest[
            old_manifest["augmented"].astype(bool)
            & ~old_manifest["media_id"].isin(touched)
            & old_manifest["media_id"].isin(known)
        ]
        if len(augmented):
            frame = pd.concat([frame, augmented], ignore_index=True)
    frame = frame.sort_values(["media_id", "frame_index", "copy_index"], kind="stable").reset_index(
        drop=True
    )
    manifests.save(workspace, "frames", frame)
    return frame


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
