"""Decoding: the frames a sampling mode asks for, read from a video (or an image) with PyAV.

* A video is demuxed once (cheap: no decoding) to learn every frame's presentation timestamp and
  key-frame flag (:func:`index_stream`); :func:`dataprep.sampling.select_frames` picks frame
  indices from those timestamps; :func:`decode_selected` then decodes only what the picks need:
  when the key frame before the next pick lies ahead of the decoder, it seeks there instead of
  decoding the frames in between (sparse ``--count``, low ``--fps``, large ``--every``);
  ``--keyframes`` asks FFmpeg to skip non-key frames. Frame and slice threads are used.
* The rotation stored in the container is applied; arrays are RGB in the public API
  (:func:`read_frames`, used by ``preview`` and ``predict``); the ``frames`` stage works in BGR
  internally to skip a conversion (:func:`frame_to_image` with ``color="bgr24"``).
* Images are one-frame media and take the same resize path.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from dataprep.config import DEFAULT_MAX_PIXELS
from dataprep.errors import MediaError
from dataprep.imageops import (
    SizeSpec,
    bgr_to_rgb,
    finish_resize,
    parse_size_spec,
    plan_resize,
    read_image_bgr,
    rotate,
    scale_frame,
)
from dataprep.imageops import resize as resize_image
from dataprep.sampling import SamplingSpec, select_frames, video_end_s

SEEK_MIN_GAP = 4  # seek only when it skips more than this many frames


@dataclass(frozen=True)
class DecodedFrame:
    """One frame as the library hands it out: RGB uint8, resized, rotation applied."""

    frame_index: int
    timestamp_s: float
    image: np.ndarray


def read_frames(
    path: str | Path,
    *,
    sampling: str,
    fps: float | None = None,
    every: int | None = None,
    count: int | None = None,
    size: str | None,
    resize: str = "shorter",
    max_pixels: int | None = None,
) -> Iterator[DecodedFrame]:
    """Yields the frames of a video (or the one frame of an image) the way ``frames`` extracts them.

    Args:
        path: a video or image file (recognized by content).
        sampling: ``fps``, ``every``, ``count``, ``keyframes`` or ``all`` (ignored for images).
        fps, every, count: the parameter of the chosen mode.
        size: ``"224"`` (shorter side), ``"WxH"`` (with ``resize``), or None for original size.
        resize: ``shorter``, ``fit``, ``crop`` or ``stretch``.
        max_pixels: an image whose header claims more pixels is refused before it is decoded
            (the workspace's ``[ingest] max_pixels``; None: the default, 100 megapixels).

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
    if _media_kind(path) == "image":  # a file from anywhere: its header is checked first
        image = resize_image(read_image_bgr(path, max_pixels or DEFAULT_MAX_PIXELS), size_spec)
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
