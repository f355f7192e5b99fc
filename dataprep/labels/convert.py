"""Pure converters from Label Studio annotation results to labels-manifest rows.

One table (:data:`CONVERTERS`) maps a Label Studio result type to the function that turns it
into rows; nothing here talks to a server or reads a file, so every converter is unit-tested on
hand-written result JSON.

Frame numbers: Label Studio counts video frames from 1 (its frame 1 is time 0); manifests use the
decoder's 0-based ``frame_index``. A :class:`FrameClock` does the mapping: by arithmetic for
constant frame rate media, through the decoder's timestamps for variable frame rate media.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dataprep.labels.boxes import clip_box, interpolate_track, key_frames, pixels
from dataprep.labels.clock import ConversionError, FrameClock, finite
from dataprep.safepath import class_name_problem

Row = dict[str, Any]


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
    """Results that were not turned into rows as given, and why (one line each).

    Attributes:
        ignored: results of types dataprep does not convert.
        clipped: regions partly outside their media, clipped to it (frames, key frames, boxes).
    """

    ignored: list[str] = field(default_factory=list)
    clipped: list[str] = field(default_factory=list)


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
    """The class names a result's value holds under the first of ``keys`` present.

    Raises:
        ConversionError: when a name cannot be a class name (it would become a folder name).
    """
    for key in keys:
        found = value.get(key)
        if found:
            names = [str(v) for v in (found if isinstance(found, list) else [found])]
            for name in names:
                problem = class_name_problem(name)
                if problem:
                    raise ConversionError(f"class name {name!r} {problem}")
            return names
    return []


def _where(media: MediaInfo, annotation: AnnotationInfo) -> str:
    return f"media {media.media_id}, annotation {annotation.annotation_id}"


def _require_clock(media: MediaInfo, what: str) -> FrameClock:
    if media.clock is None:
        raise ConversionError(
            f"media {media.media_id}: {what} needs the video's frame rate, which is unknown; "
            "re-run `dataprep ingest` so the media is probed"
        )
    return media.clock


def _timed_setup(
    result: dict, media: MediaInfo, annotation: AnnotationInfo, what: str
) -> tuple[dict, FrameClock, str]:
    """A video result's value, the media's clock (required) and the error-message prefix."""
    return result["value"], _require_clock(media, what), _where(media, annotation)


def _timed_row(
    media: MediaInfo,
    annotation: AnnotationInfo,
    kind: str,
    label: str,
    classes: frozenset[str],
    clock: FrameClock,
    first: int,
    last: int,
) -> Row:
    """A row spanning decoder frames ``first..last`` (inclusive), with their times."""
    row = _base_row(media, annotation, kind, label, classes)
    row.update(
        start_frame=first,
        end_frame=last,
        start_s=clock.time_of(first),
        end_s=clock.end_time_of(last),
    )
    return row


def convert_choices(
    result: dict,
    media: MediaInfo,
    annotation: AnnotationInfo,
    classes: frozenset[str],
    report: ConversionReport | None = None,
) -> list[Row]:
    """``Choices``: one whole-media row per chosen class."""
    labels = _labels(result["value"], "choices")
    if not labels:
        raise ConversionError(f"{_where(media, annotation)}: choices result names no class")
    return [_base_row(media, annotation, "choice", label, classes) for label in labels]


def _span(span: Any, clock: FrameClock, where: str) -> tuple[int, int]:
    """A timeline range as raw (unclamped, ordered) decoder frames."""
    if not isinstance(span, dict) or "start" not in span:
        raise ConversionError(f"{where}: timeline range {span!r} has no numeric start/end")
    start = finite(span["start"], f"{where}: timeline range start")
    end = finite(span.get("end", span["start"]), f"{where}: timeline range end")
    first, last = clock.raw_index_from_ls_frame(start), clock.raw_index_from_ls_frame(end)
    return min(first, last), max(first, last)


def convert_timeline(
    result: dict,
    media: MediaInfo,
    annotation: AnnotationInfo,
    classes: frozenset[str],
    report: ConversionReport | None = None,
) -> list[Row]:
    """``TimelineLabels``: one segment row per range and label, in decoder frames (inclusive).

    A range wholly outside the video is an error; one partly outside is clipped (and listed in
    ``report.clipped``).
    """
    value, clock, where = _timed_setup(result, media, annotation, "a timeline segment")
    labels = _labels(value, "timelinelabels", "labels")
    if not labels:
        raise ConversionError(f"{where}: timeline result names no class")
    rows = []
    for span in value.get("ranges") or []:
        first, last = _span(span, clock, where)
        if not (clock.contains(first) or clock.contains(last) or first < 0 <= last):
            raise ConversionError(
                f"{where}: timeline range {span.get('start')}..{span.get('end')} lies wholly "
                f"outside the video ({clock.span()})"
            )
        if not (clock.contains(first) and clock.contains(last)):
            first, last = clock._clamp(first), clock._clamp(last)
            if report is not None:
                report.clipped.append(
                    f"{where}: timeline range {span.get('start')}..{span.get('end')} clipped to "
                    f"the video ({clock.span()})"
                )
        for label in labels:
            rows.append(
                _timed_row(media, annotation, "segment", label, classes, clock, first, last)
            )
            rows[-1]["track_id"] = result.get("id")
    return rows


def convert_video_rectangle(
    result: dict,
    media: MediaInfo,
    annotation: AnnotationInfo,
    classes: frozenset[str],
    report: ConversionReport | None = None,
) -> list[Row]:
    """``VideoRectangle`` (+ ``Labels``): one box row per frame of the track, interpolated.

    Frames of the track outside the video, and boxes outside the frame, are clipped (and listed
    in ``report.clipped``); a track with nothing inside the video is an error.
    """
    value, clock, where = _timed_setup(result, media, annotation, "a video box track")
    labels = _labels(value, "labels", "rectanglelabels") or ["(unlabelled)"]
    sequence = value.get("sequence") or []
    try:
        keys = key_frames(sequence, clock)
        frames = interpolate_track(keys, clock)
        outside_keys = [i for i in keys if not clock.contains(i)]
    except ConversionError as exc:
        raise ConversionError(f"{where}: {exc}") from None
    rows, dropped, clipped = [], 0, 0
    for frame_index, box, keyframe in frames:
        inside, changed = clip_box(
            pixels(box, media.width, media.height, media.media_id), media.width, media.height
        )
        if inside is None:
            dropped += 1
            continue
        clipped += changed
        x, y, w, h = inside
        for label in labels:
            row = _timed_row(
                media, annotation, "box", label, classes, clock, frame_index, frame_index
            )
            row.update(frame_index=frame_index, track_id=result.get("id"), keyframe=keyframe)
            row.update(x=x, y=y, w=w, h=h)
            rows.append(row)
    if sequence and not rows:
        raise ConversionError(
            f"{where}: box track {result.get('id')!r} lies wholly outside the video "
            f"({clock.span()}, {media.width}x{media.height} px)"
        )
    if (outside_keys or dropped or clipped) and report is not None:
        report.clipped.append(
            f"{where}: box track {result.get('id')!r} clipped to the video: "
            f"{len(outside_keys)} key frames outside {clock.span()}, {dropped} frames with the "
            f"box outside the image, {clipped} boxes cut at the image border"
        )
    return rows


def convert_rectangle_labels(
    result: dict,
    media: MediaInfo,
    annotation: AnnotationInfo,
    classes: frozenset[str],
    report: ConversionReport | None = None,
) -> list[Row]:
    """``RectangleLabels`` on an image: one box row (frame_index 0) per label; a box partly
    outside the image is clipped (listed in ``report.clipped``), one wholly outside is an
    error."""
    value = result["value"]
    width = media.width or result.get("original_width")
    height = media.height or result.get("original_height")
    box, changed = clip_box(pixels(value, width, height, media.media_id), width, height)
    where = _where(media, annotation)
    if box is None:
        raise ConversionError(f"{where}: box lies wholly outside the {width}x{height} px image")
    if changed and report is not None:
        report.clipped.append(f"{where}: box clipped to the {width}x{height} px image")
    x, y, w, h = box
    rows = []
    for label in _labels(value, "rectanglelabels", "labels") or ["(unlabelled)"]:
        row = _base_row(media, annotation, "box", label, classes)
        row.update(frame_index=0, track_id=result.get("id"), keyframe=True, x=x, y=y, w=w, h=h)
        rows.append(row)
    return rows


Converter = Callable[..., list[Row]]

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
    if not isinstance(value, dict):
        return None
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

    Results of types dataprep does not convert are listed in ``report.ignored``; regions partly
    outside their media are clipped and listed in ``report.clipped``.

    Raises:
        ConversionError: when a result is malformed (no value, numbers that are not finite, a
            class name that cannot be a folder name), lies wholly outside its media, or the
            media lacks what it needs.
    """
    class_set = frozenset(classes)
    rows: list[Row] = []
    for result in results or []:
        if not isinstance(result, dict):
            raise ConversionError(
                f"{_where(media, annotation)}: result {result!r} is not an object"
            )
        kind = result_type(result)
        converter = CONVERTERS.get(kind or "")
        if converter is not None and not isinstance(result.get("value"), dict):
            raise ConversionError(
                f"{_where(media, annotation)}: {kind} result {result.get('from_name')!r} has "
                f"no value ({result.get('value')!r})"
            )
        if converter is None:
            if kind is None and not isinstance(result.get("value"), dict):
                raise ConversionError(
                    f"{_where(media, annotation)}: result {result.get('from_name')!r} has no "
                    "value and no type"
                )
            if report is not None:
                report.ignored.append(
                    f"{_where(media, annotation)}: result type {kind!r} "
                    f"({result.get('from_name')}) is not converted"
                )
            continue
        rows.extend(converter(result, media, annotation, class_set, report))
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
