"""Pure converters from Label Studio annotation results to labels-manifest rows.

One table (:data:`CONVERTERS`) maps a Label Studio result type to the function that turns it
into rows; nothing here talks to a server or reads a file, so every converter is unit-tested on
hand-written result JSON.

Frame numbers: Label Studio counts video frames from 1 (its frame 1 is time 0); manifests use the
decoder's 0-based ``frame_index``. A :class:`FrameClock` does the mapping: by arithmetic for
constant frame rate media, through the decoder's timestamps for variable frame rate media.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dataprep.errors import DataprepError

Row = dict[str, Any]


class ConversionError(DataprepError):
    """A Label Studio result cannot be converted (malformed, or a video without a frame rate)."""


@dataclass(frozen=True)
class FrameClock:
    """Maps Label Studio video frames and times to the decoder's 0-based ``frame_index``.

    Attributes:
        fps: the frame rate Label Studio was told (the task's ``fps``: the media's probed rate).
        frame_count: frames in the video (decoder count), or None when unknown.
        timestamps_s: for variable frame rate videos, every frame's presentation time in seconds
            from the first frame, in decode order; None for constant frame rate.
    """

    fps: float
    frame_count: int | None = None
    timestamps_s: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if not self.fps or self.fps <= 0 or not math.isfinite(self.fps):
            raise ConversionError(f"frame rate {self.fps!r} is not a positive number")

    @property
    def last_index(self) -> int | None:
        if self.timestamps_s is not None:
            return len(self.timestamps_s) - 1
        return None if self.frame_count is None else self.frame_count - 1

    def _clamp(self, index: int) -> int:
        index = max(index, 0)
        last = self.last_index
        return min(index, last) if last is not None and last >= 0 else index

    def index_from_time(self, time_s: float) -> int:
        """The decoder frame shown at ``time_s`` (nearest frame start; ties go to the earlier)."""
        if self.timestamps_s is None:
            return self._clamp(int(math.floor(time_s * self.fps + 0.5 - 1e-9)))
        stamps = self.timestamps_s
        pos = bisect.bisect_left(stamps, time_s)
        if pos <= 0:
            return 0
        if pos >= len(stamps):
            return len(stamps) - 1
        before, after = stamps[pos - 1], stamps[pos]
        return pos - 1 if time_s - before <= after - time_s else pos

    def index_from_ls_frame(self, ls_frame: int | float, time_s: float | None = None) -> int:
        """Decoder ``frame_index`` of Label Studio frame ``ls_frame`` (1-based).

        Constant frame rate: ``ls_frame - 1``. Variable frame rate: through the timestamps, using
        the result's own ``time`` when given, else ``(ls_frame - 1) / fps`` (the time Label
        Studio's player seeks to for that frame).
        """
        if self.timestamps_s is None:
            return self._clamp(int(round(float(ls_frame))) - 1)
        if time_s is None:
            time_s = (float(ls_frame) - 1) / self.fps
        return self.index_from_time(float(time_s))

    def ls_frame_of(self, frame_index: int) -> int:
        """Label Studio's 1-based frame number for decoder ``frame_index`` (the inverse of
        :meth:`index_from_ls_frame`).

        Constant frame rate: ``frame_index + 1``. Variable frame rate: the Label Studio frame
        whose time ``(ls_frame - 1) / fps`` is nearest the frame's timestamp.
        """
        if self.timestamps_s is None:
            return int(frame_index) + 1
        return int(math.floor(self.time_of(frame_index) * self.fps + 0.5)) + 1

    def time_of(self, frame_index: int) -> float:
        """Presentation time in seconds of decoder frame ``frame_index``."""
        if self.timestamps_s is not None:
            return float(self.timestamps_s[self._clamp(frame_index)])
        return frame_index / self.fps

    def end_time_of(self, frame_index: int) -> float:
        """When decoder frame ``frame_index`` stops being shown."""
        if self.timestamps_s is not None:
            nxt = frame_index + 1
            if nxt < len(self.timestamps_s):
                return float(self.timestamps_s[nxt])
            return float(self.timestamps_s[self._clamp(frame_index)]) + 1.0 / self.fps
        return (frame_index + 1) / self.fps


@dataclass(frozen=True)
class MediaInfo:
    """What a converter needs to know about the media a task shows."""

    media_id: str
    kind: str  # video | image
    width: int | None = None
    height: int | None = None
    clock: FrameClock | None = None


@dataclass(frozen=True)
class AnnotationInfo:
    """Who made an annotation, and when."""

    task_id: int | None
    annotation_id: int | None
    annotator: str | None
    updated_at: datetime | None
    ground_truth: bool = False


@dataclass
class ConversionReport:
    """Results that were not turned into rows, and why (one line each)."""

    ignored: list[str] = field(default_factory=list)


def parse_time(value: Any) -> datetime | None:
    """Parses Label Studio's ISO 8601 times (``...Z``) into aware UTC datetimes."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value).strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _base_row(
    media: MediaInfo, annotation: AnnotationInfo, kind: str, label: str, classes: frozenset[str]
) -> Row:
    return {
        "media_id": media.media_id,
        "task_id": annotation.task_id,
        "annotation_id": annotation.annotation_id,
        "annotator": annotation.annotator,
        "kind": kind,
        "label": str(label),
        "in_classes": str(label) in classes,
        "start_frame": None,
        "end_frame": None,
        "start_s": None,
        "end_s": None,
        "frame_index": None,
        "track_id": None,
        "keyframe": None,
        "x": None,
        "y": None,
        "w": None,
        "h": None,
        "updated_at": annotation.updated_at,
        "ground_truth": bool(annotation.ground_truth),
        "resolved": False,
    }


def _labels(value: dict, *keys: str) -> list[str]:
    for key in keys:
        found = value.get(key)
        if found:
            return [str(v) for v in (found if isinstance(found, list) else [found])]
    return []


def _require_clock(media: MediaInfo, what: str) -> FrameClock:
    if media.clock is None:
        raise ConversionError(
            f"media {media.media_id}: {what} needs the video's frame rate, which is unknown; "
            "re-run `dataprep ingest` so the media is probed"
        )
    return media.clock


def convert_choices(
    result: dict, media: MediaInfo, annotation: AnnotationInfo, classes: frozenset[str]
) -> list[Row]:
    """``Choices``: one whole-media row per chosen class."""
    value = result.get("value") or {}
    return [
        _base_row(media, annotation, "choice", label, classes)
        for label in _labels(value, "choices")
    ]


def convert_timeline(
    result: dict, media: MediaInfo, annotation: AnnotationInfo, classes: frozenset[str]
) -> list[Row]:
    """``TimelineLabels``: one segment row per range and label, in decoder frames (inclusive)."""
    value = result.get("value") or {}
    clock = _require_clock(media, "a timeline segment")
    rows = []
    for label in _labels(value, "timelinelabels", "labels"):
        for span in value.get("ranges") or []:
            try:
                first = clock.index_from_ls_frame(span["start"])
                last = clock.index_from_ls_frame(span.get("end", span["start"]))
            except (KeyError, TypeError, ValueError):
                raise ConversionError(
                    f"media {media.media_id}, annotation {annotation.annotation_id}: timeline "
                    f"range {span!r} has no numeric start/end"
                ) from None
            first, last = min(first, last), max(first, last)
            row = _base_row(media, annotation, "segment", label, classes)
            row.update(
                start_frame=first,
                end_frame=last,
                start_s=clock.time_of(first),
                end_s=clock.end_time_of(last),
                track_id=result.get("id"),
            )
            rows.append(row)
    return rows


def _pixels(item: dict, width: int | None, height: int | None, media_id: str) -> tuple[float, ...]:
    """Label Studio percentages (with rotation about the top-left corner) to a pixel box."""
    if not width or not height:
        raise ConversionError(
            f"media {media_id}: box needs the media's width and height, which are unknown; "
            "re-run `dataprep ingest` so the media is probed"
        )
    try:
        x = float(item["x"]) / 100.0 * width
        y = float(item["y"]) / 100.0 * height
        w = float(item["width"]) / 100.0 * width
        h = float(item["height"]) / 100.0 * height
    except (KeyError, TypeError, ValueError):
        raise ConversionError(
            f"media {media_id}: box {item!r} lacks numeric x/y/width/height"
        ) from None
    angle = float(item.get("rotation") or 0.0)
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


def interpolate_track(sequence: Sequence[dict], clock: FrameClock) -> list[tuple[int, dict, bool]]:
    """Every decoder frame of a ``VideoRectangle`` track, as Label Studio's player shows it.

    Label Studio stores only key frames. Between a key frame with ``enabled: true`` and the next
    key frame the box moves linearly (weighted by time, which is by frame for constant frame
    rate); after a key frame with ``enabled: false`` the box is hidden until the next key frame
    (the disabled key frame itself is shown). After the last key frame, an enabled track lasts
    to the end of the video.

    Returns:
        ``(frame_index, box, keyframe)`` with ``box`` holding x, y, width, height, rotation in
        Label Studio's percentages, sorted by frame_index.
    """
    keys: dict[int, dict] = {}
    for item in sorted(sequence, key=lambda k: float(k.get("frame", 0))):
        if "frame" not in item:
            raise ConversionError(f"box key frame {item!r} has no frame number")
        index = clock.index_from_ls_frame(item["frame"], item.get("time"))
        keys[index] = item  # two key frames on one decoder frame: the later one wins
    indices = sorted(keys)
    out: list[tuple[int, dict, bool]] = []
    props = ("x", "y", "width", "height", "rotation")
    for pos, index in enumerate(indices):
        key = keys[index]
        # exports made with interpolation on mark generated frames "auto": not key frames
        out.append((index, {p: float(key.get(p) or 0.0) for p in props}, not key.get("auto")))
        if not key.get("enabled", True):
            continue
        if pos + 1 < len(indices):
            nxt_index = indices[pos + 1]
            nxt = keys[nxt_index]
            t0, t1 = clock.time_of(index), clock.time_of(nxt_index)
            for frame in range(index + 1, nxt_index):
                weight = (clock.time_of(frame) - t0) / (t1 - t0) if t1 > t0 else 0.0
                box = {
                    p: float(key.get(p) or 0.0)
                    + (float(nxt.get(p) or 0.0) - float(key.get(p) or 0.0)) * weight
                    for p in props
                }
                out.append((frame, box, False))
        elif clock.last_index is not None:
            for frame in range(index + 1, clock.last_index + 1):
                out.append((frame, {p: float(key.get(p) or 0.0) for p in props}, False))
    return out


def convert_video_rectangle(
    result: dict, media: MediaInfo, annotation: AnnotationInfo, classes: frozenset[str]
) -> list[Row]:
    """``VideoRectangle`` (+ ``Labels``): one box row per frame of the track, interpolated."""
    value = result.get("value") or {}
    clock = _require_clock(media, "a video box track")
    labels = _labels(value, "labels", "rectanglelabels") or ["(unlabelled)"]
    rows = []
    for frame_index, box, keyframe in interpolate_track(value.get("sequence") or [], clock):
        x, y, w, h = _pixels(box, media.width, media.height, media.media_id)
        for label in labels:
            row = _base_row(media, annotation, "box", label, classes)
            row.update(
                frame_index=frame_index,
                start_frame=frame_index,
                end_frame=frame_index,
                start_s=clock.time_of(frame_index),
                end_s=clock.end_time_of(frame_index),
                track_id=result.get("id"),
                keyframe=keyframe,
                x=x,
                y=y,
                w=w,
                h=h,
            )
            rows.append(row)
    return rows


def convert_rectangle_labels(
    result: dict, media: MediaInfo, annotation: AnnotationInfo, classes: frozenset[str]
) -> list[Row]:
    """``RectangleLabels`` on an image: one box row (frame_index 0) per label."""
    value = result.get("value") or {}
    width = media.width or result.get("original_width")
    height = media.height or result.get("original_height")
    x, y, w, h = _pixels(value, width, height, media.media_id)
    rows = []
    for label in _labels(value, "rectanglelabels", "labels") or ["(unlabelled)"]:
        row = _base_row(media, annotation, "box", label, classes)
        row.update(frame_index=0, track_id=result.get("id"), keyframe=True, x=x, y=y, w=w, h=h)
        rows.append(row)
    return rows


Converter = Callable[[dict, MediaInfo, AnnotationInfo, frozenset], list[Row]]

#: Label Studio result type -> converter. The labeling configs dataprep generates produce only
#: these types; anything else is reported, never guessed at.
CONVERTERS: dict[str, Converter] = {
    "choices": convert_choices,
    "timelinelabels": convert_timeline,
    "videorectangle": convert_video_rectangle,
    "rectanglelabels": convert_rectangle_labels,
}


def result_type(result: dict) -> str | None:
    """A result's type: its ``type`` field, else inferred from the keys of its value."""
    kind = result.get("type")
    if kind:
        return str(kind).lower()
    value = result.get("value") or {}
    if "sequence" in value:
        return "videorectangle"
    if "ranges" in value:
        return "timelinelabels"
    if "rectanglelabels" in value:
        return "rectanglelabels"
    if "choices" in value:
        return "choices"
    return None


def convert_annotation(
    results: Iterable[dict],
    media: MediaInfo,
    annotation: AnnotationInfo,
    classes: Iterable[str],
    report: ConversionReport | None = None,
) -> list[Row]:
    """Converts one annotation's results into manifest rows.

    Results of types dataprep does not convert are listed in ``report.ignored``.

    Raises:
        ConversionError: when a result is malformed or the media lacks what it needs.
    """
    class_set = frozenset(classes)
    rows: list[Row] = []
    for result in results or []:
        if not isinstance(result, dict):
            raise ConversionError(
                f"media {media.media_id}, annotation {annotation.annotation_id}: result "
                f"{result!r} is not an object"
            )
        kind = result_type(result)
        converter = CONVERTERS.get(kind or "")
        if converter is None:
            if report is not None:
                report.ignored.append(
                    f"media {media.media_id}, annotation {annotation.annotation_id}: result type "
                    f"{kind!r} ({result.get('from_name')}) is not converted"
                )
            continue
        rows.extend(converter(result, media, annotation, class_set))
    return rows


def annotator_name(completed_by: Any, users: dict[int, str] | None = None) -> str | None:
    """``completed_by`` (a user dict, an id or an email) as an email when one is known."""
    if completed_by is None or completed_by == {}:
        return None
    if isinstance(completed_by, dict):
        return completed_by.get("email") or (
            str(completed_by["id"]) if completed_by.get("id") is not None else None
        )
    if isinstance(completed_by, int) and users and completed_by in users:
        return users[completed_by]
    return str(completed_by)


def min_value_to_results(value: Any, from_name: str, choice_names: Iterable[str]) -> list[dict]:
    """Rebuilds full results from one field of a JSON_MIN export record.

    JSON_MIN flattens an annotation to ``{from_name: value}``: a bare string for a single choice,
    or a list of value objects (with a ``type`` key naming the control tag).

    Args:
        value: the field's value.
        from_name: the field's name.
        choice_names: field names that hold choices when the value is a bare string.
    """
    if isinstance(value, str):
        if from_name in set(choice_names):
            return [{"from_name": from_name, "type": "choices", "value": {"choices": [value]}}]
        return []
    items = value if isinstance(value, list) else [value] if isinstance(value, dict) else []
    results = []
    for item in items:
        if not isinstance(item, dict):
            continue
        body = {
            k: v
            for k, v in item.items()
            if k not in ("type", "original_width", "original_height", "id")
        }
        result = {"from_name": from_name, "value": body, "id": item.get("id")}
        for key in ("original_width", "original_height"):
            if key in item:
                result[key] = item[key]
        kind = result_type(result)
        if kind is None and "labels" in body and "x" in body:
            kind = "rectanglelabels"
            body["rectanglelabels"] = body["labels"]
        if kind is None:
            continue
        result["type"] = kind
        results.append(result)
    return results
