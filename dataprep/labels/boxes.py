"""Box geometry of Label Studio results: percentages to pixels, clipping to the image, and the
frames of a ``VideoRectangle`` track interpolated between its key frames."""

from __future__ import annotations

import math
from collections.abc import Sequence

from dataprep.labels.clock import ConversionError, FrameClock, finite


def pixels(item: dict, width: int | None, height: int | None, media_id: str) -> tuple[float, ...]:
    """Label Studio percentages (with rotation about the top-left corner) to a pixel box."""
    if not width or not height:
        raise ConversionError(
            f"media {media_id}: box needs the media's width and height, which are unknown; "
            "re-run `dataprep ingest` so the media is probed"
        )
    if any(key not in item for key in ("x", "y", "width", "height")):
        raise ConversionError(f"media {media_id}: box {item!r} lacks numeric x/y/width/height")
    what = f"media {media_id}: box"
    x = finite(item["x"], f"{what} x") / 100.0 * width
    y = finite(item["y"], f"{what} y") / 100.0 * height
    w = finite(item["width"], f"{what} width") / 100.0 * width
    h = finite(item["height"], f"{what} height") / 100.0 * height
    if w <= 0 or h <= 0:
        raise ConversionError(f"{what} has width {item['width']!r}, height {item['height']!r}")
    angle = finite(item.get("rotation") or 0.0, f"{what} rotation")
    if angle % 360:
        rad = math.radians(angle)
        cos, sin = math.cos(rad), math.sin(rad)
        corners = [
            (x + dx * cos - dy * sin, y + dx * sin + dy * cos)
            for dx, dy in ((0, 0), (w, 0), (w, h), (0, h))
        ]
        xs = [c[0] for c in corners]
        ys = [c[1] for c in corners]
        x, y, w, h = min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)
    return x, y, w, h


def clip_box(
    box: tuple[float, ...], width: float, height: float
) -> tuple[tuple[float, float, float, float] | None, bool]:
    """``box`` (x, y, w, h in pixels) clipped to the image: ``(clipped, changed)``; ``clipped``
    is None when no part of the box lies inside the image."""
    x, y, w, h = box
    x0, y0 = max(x, 0.0), max(y, 0.0)
    x1, y1 = min(x + w, float(width)), min(y + h, float(height))
    if x1 <= x0 or y1 <= y0:
        return None, True
    clipped = (x0, y0, x1 - x0, y1 - y0)
    changed = not all(math.isclose(a, b, abs_tol=1e-6) for a, b in zip(clipped, box, strict=True))
    return (clipped if changed else (x, y, w, h)), changed


def key_frames(sequence: Sequence[dict], clock: FrameClock) -> dict[int, dict]:
    """Key frames by raw (unclamped) decoder frame index."""
    keys: dict[int, dict] = {}
    if not isinstance(sequence, list):
        raise ConversionError(f"box track sequence {sequence!r} is not a list")
    for item in sequence:
        if not isinstance(item, dict) or "frame" not in item:
            raise ConversionError(f"box key frame {item!r} has no frame number")
        finite(item["frame"], "box key frame number")
        if item.get("time") is not None:
            finite(item["time"], "box key frame time")
        for prop in ("x", "y", "width", "height", "rotation"):
            finite(item.get(prop) or 0.0, f"box key frame {prop}")
    for item in sorted(sequence, key=lambda k: float(k["frame"])):
        index = clock.raw_index_from_ls_frame(item["frame"], item.get("time"))
        keys[index] = item  # two key frames on one decoder frame: the later one wins
    return keys


def interpolate_track(
    sequence: Sequence[dict] | dict[int, dict], clock: FrameClock
) -> list[tuple[int, dict, bool]]:
    """Every decoder frame of a ``VideoRectangle`` track, as Label Studio's player shows it.

    Label Studio stores only key frames. Between a key frame with ``enabled: true`` and the next
    key frame the box moves linearly (weighted by time, which is by frame for constant frame
    rate); after a key frame with ``enabled: false`` the box is hidden until the next key frame
    (the disabled key frame itself is shown). After the last key frame, an enabled track lasts
    to the end of the video. Key frames outside the video shape the interpolation but only
    frames of the video are returned.

    Args:
        sequence: the track's key frames as Label Studio stores them, or as
            :func:`key_frames` returns them.
        clock: the video's frame clock.

    Returns:
        ``(frame_index, box, keyframe)`` with ``box`` holding x, y, width, height, rotation in
        Label Studio's percentages, sorted by frame_index.
    """
    keys = sequence if isinstance(sequence, dict) else key_frames(sequence, clock)
    indices = sorted(keys)
    last = clock.last_index
    end = (last + 1) if last is not None else None
    out: list[tuple[int, dict, bool]] = []
    props = ("x", "y", "width", "height", "rotation")
    for pos, index in enumerate(indices):
        key = keys[index]
        # exports made with interpolation on mark generated frames "auto": not key frames
        if clock.contains(index):
            out.append((index, {p: float(key.get(p) or 0.0) for p in props}, not key.get("auto")))
        if not key.get("enabled", True):
            continue
        if pos + 1 < len(indices):
            nxt_index = indices[pos + 1]
            nxt = keys[nxt_index]
            t0, t1 = clock.raw_time_of(index), clock.raw_time_of(nxt_index)
            stop = nxt_index if end is None else min(nxt_index, end)
            for frame in range(max(index + 1, 0), stop):
                weight = (clock.raw_time_of(frame) - t0) / (t1 - t0) if t1 > t0 else 0.0
                box = {
                    p: float(key.get(p) or 0.0)
                    + (float(nxt.get(p) or 0.0) - float(key.get(p) or 0.0)) * weight
                    for p in props
                }
                out.append((frame, box, False))
        elif end is not None:
            for frame in range(max(index + 1, 0), end):
                out.append((frame, {p: float(key.get(p) or 0.0) for p in props}, False))
    return out
