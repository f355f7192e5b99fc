"""Probing media: what PyAV (videos), Pillow (image headers) and OpenCV (image pixels) say.

Frame counts are counted by demuxing, never taken from the header, because headers are missing
in some containers and wrong in truncated files.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, BinaryIO

from dataprep.errors import MediaError

VFR_TOLERANCE = 0.05  # relative spread of frame intervals above which a video is VFR


def probe_video(path: Path, max_pixels: int | None = None) -> dict[str, Any]:
    """Probes a video with PyAV; a frame size above ``max_pixels`` is refused before decoding.

    Returns:
        container, codec, width, height (as displayed), rotation (counter-clockwise degrees),
        fps (average rate), frame_count (demuxed packets), duration_s, variable_frame_rate.

    Raises:
        MediaError: with one line saying what is wrong (no video stream, truncated, undecodable).
    """
    import av

    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.FFmpegError as exc:
        raise MediaError(f"not a readable video ({_reason(exc)})") from None
    with container:
        if not container.streams.video:
            raise MediaError("no video stream in the file")
        stream = container.streams.video[0]
        check_pixels(stream.codec_context.width or 0, stream.codec_context.height or 0, max_pixels)
        rotation = 0
        try:
            first = next(container.decode(stream), None)
        except av.FFmpegError as exc:
            raise MediaError(f"cannot decode the first frame ({_reason(exc)})") from None
        if first is None:
            raise MediaError("the video has no decodable frame")
        rotation = int(round(getattr(first, "rotation", 0) or 0)) % 360
        width, height = first.width, first.height
        header_frames = int(stream.frames or 0)
        container.seek(0, stream=stream)
        timestamps, durations = _demux_timestamps(container, stream)
    count = len(timestamps)
    if count == 0:
        raise MediaError("no video frames found when demuxing")
    if header_frames and count < header_frames:
        raise MediaError(
            f"truncated: the header lists {header_frames} frames but only {count} are in the file"
        )
    time_base = float(stream.time_base) if stream.time_base else 0.0
    timestamps.sort()
    fps = float(stream.average_rate) if stream.average_rate else None
    deltas = [b - a for a, b in zip(timestamps, timestamps[1:], strict=False) if b > a]
    last = durations[-1] if durations and durations[-1] else (min(deltas) if deltas else 0)
    duration_s = (timestamps[-1] - timestamps[0] + last) * time_base if time_base else None
    if not fps and duration_s:
        fps = count / duration_s
    vfr = False
    if len(deltas) >= 2:
        vfr = (max(deltas) - min(deltas)) / max(min(deltas), 1) > VFR_TOLERANCE
    if rotation in (90, 270):
        width, height = height, width
    return {
        "container": container.format.name,
        "codec": stream.codec_context.name,
        "width": width,
        "height": height,
        "rotation": rotation,
        "fps": fps,
        "frame_count": count,
        "duration_s": duration_s,
        "variable_frame_rate": vfr,
    }


def _demux_timestamps(container, stream) -> tuple[list[int], list[int]]:
    import av

    timestamps: list[int] = []
    durations: list[int] = []
    try:
        for packet in container.demux(stream):
            if packet.size == 0:
                continue  # the flush packet at the end
            stamp = packet.pts if packet.pts is not None else packet.dts
            timestamps.append(stamp if stamp is not None else len(timestamps))
            durations.append(packet.duration or 0)
    except av.FFmpegError as exc:
        raise MediaError(
            f"truncated or corrupt after {len(timestamps)} frames ({_reason(exc)})"
        ) from None
    return timestamps, durations


def image_header_size(source: Path | BinaryIO) -> tuple[int, int]:
    """Width and height from an image file's header (a path, or a file opened in binary mode,
    left open), without decoding its pixels.

    Pillow opens images lazily: only the header is parsed, so a 74-byte file that claims
    100000x100000 costs nothing here.

    Raises:
        MediaError: when no header can be parsed.
    """
    import warnings

    from PIL import Image

    limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None  # our own limit (max_pixels) applies, after this call
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(source) as image:
                width, height = image.size
    except Image.UnidentifiedImageError:
        raise MediaError("not a decodable image (its header cannot be read)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise MediaError(f"not a decodable image ({_reason(exc)})") from None
    finally:
        Image.MAX_IMAGE_PIXELS = limit
    return int(width), int(height)


def check_pixels(width: int, height: int, max_pixels: int | None) -> None:
    """Refuses media larger than ``max_pixels`` (``[ingest] max_pixels``) before decoding.

    Raises:
        MediaError: naming the size and the limit.
    """
    if max_pixels and width * height > max_pixels:
        raise MediaError(
            f"{width}x{height} pixels ({width * height / 1e6:,.0f} megapixels) is above the "
            f"limit of {max_pixels / 1e6:,.0f} megapixels; raise [ingest] max_pixels (or pass "
            "--max-pixels) if the file is genuine"
        )


def probe_image(path: Path, max_pixels: int | None = None) -> dict[str, Any]:
    """Probes an image: width and height from the header, checked against ``max_pixels``,
    then one decode with OpenCV to make sure the pixels are readable.

    Peak memory is bounded by ``max_pixels`` (times the channels), whatever the file claims.

    Raises:
        MediaError: when the image is too large or cannot be decoded.
    """
    import cv2
    import numpy as np

    with open(path, "rb") as file:  # one open: the header check, then the whole file
        check_pixels(*image_header_size(file), max_pixels)
        file.seek(0)
        data = np.fromfile(file, dtype=np.uint8)
    try:
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    except cv2.error as exc:
        raise MediaError(f"not a decodable image ({_reason(exc)})") from None
    if image is None:
        raise MediaError("not a decodable image")
    height, width = image.shape[:2]
    return {"width": int(width), "height": int(height)}


def _reason(exc: Exception) -> str:
    """FFmpeg's own words, without errno numbers or the file name (the caller names the file)."""
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return re.sub(r"\[Errno -?\d+\]\s*", "", text.strip().splitlines()[0]).strip(" :;")
