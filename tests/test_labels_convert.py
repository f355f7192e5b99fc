"""Converters from Label Studio result JSON to labels rows, on hand-written results."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from dataprep.labels.convert import (
    CONVERTERS,
    AnnotationInfo,
    ConversionError,
    ConversionReport,
    FrameClock,
    MediaInfo,
    convert_annotation,
    interpolate_track,
    min_value_to_results,
    parse_time,
    result_type,
)

CLASSES = ["cat", "dog", "run"]
WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
ANN = AnnotationInfo(task_id=7, annotation_id=70, annotator="a@example.com", updated_at=WHEN)
VIDEO = MediaInfo("m1", "video", width=640, height=480, clock=FrameClock(fps=25.0, frame_count=50))
IMAGE = MediaInfo("i1", "image", width=200, height=100)


def test_choices_whole_media_rows():
    result = {
        "from_name": "label",
        "to_name": "video",
        "type": "choices",
        "value": {"choices": ["dog"]},
    }
    (row,) = convert_annotation([result], VIDEO, ANN, CLASSES)
    assert row["kind"] == "choice" and row["label"] == "dog" and row["in_classes"]
    assert row["start_frame"] is None and row["end_frame"] is None and row["frame_index"] is None
    assert (row["media_id"], row["task_id"], row["annotation_id"]) == ("m1", 7, 70)
    assert row["annotator"] == "a@example.com" and row["updated_at"] == WHEN
    assert row["resolved"] is False and row["ground_truth"] is False


def test_label_outside_classes_is_kept_and_flagged():
    result = {"type": "choices", "value": {"choices": ["Dog "]}}
    (row,) = convert_annotation([result], VIDEO, ANN, CLASSES)
    assert row["label"] == "Dog " and row["in_classes"] is False


def test_timeline_labels_map_ls_frames_to_decoder_frames():
    result = {
        "id": "seg1",
        "type": "timelinelabels",
        "from_name": "segment",
        "to_name": "video",
        "value": {
            "ranges": [{"start": 1, "end": 10}, {"start": 21, "end": 21}],
            "timelinelabels": ["run"],
        },
    }
    rows = convert_annotation([result], VIDEO, ANN, CLASSES)
    assert [(r["start_frame"], r["end_frame"]) for r in rows] == [(0, 9), (20, 20)]
    assert rows[0]["start_s"] == 0.0 and math.isclose(rows[0]["end_s"], 10 / 25)
    assert math.isclose(rows[1]["start_s"], 20 / 25) and math.isclose(rows[1]["end_s"], 21 / 25)
    assert all(r["kind"] == "segment" and r["label"] == "run" for r in rows)


def test_timeline_clamps_to_the_last_frame_and_orders_ends():
    result = {
        "type": "timelinelabels",
        "value": {"ranges": [{"start": 60, "end": 45}], "timelinelabels": ["run"]},
    }
    (row,) = convert_annotation([result], VIDEO, ANN, CLASSES)
    assert (row["start_frame"], row["end_frame"]) == (44, 49)


def test_video_without_frame_rate_is_an_error():
    media = MediaInfo("m2", "video", 64, 48, clock=None)
    result = {
        "type": "timelinelabels",
        "value": {"ranges": [{"start": 1, "end": 2}], "timelinelabels": ["run"]},
    }
    with pytest.raises(ConversionError, match="m2.*frame rate"):
        convert_annotation([result], media, ANN, CLASSES)


def _key(frame, x, enabled=True, y=10.0, time=None):
    return {
        "frame": frame,
        "enabled": enabled,
        "x": x,
        "y": y,
        "width": 10.0,
        "height": 20.0,
        "rotation": 0,
        "time": (frame - 1) / 25 if time is None else time,
    }


def test_video_rectangle_interpolates_between_key_frames_in_pixels():
    clock = FrameClock(fps=25.0, frame_count=8)
    media = MediaInfo("m1", "video", width=200, height=100, clock=clock)
    result = {
        "id": "trk",
        "type": "videorectangle",
        "from_name": "box",
        "to_name": "video",
        "value": {
            "labels": ["cat"],
            "framesCount": 8,
            "duration": 0.32,
            "sequence": [_key(1, 0.0), _key(5, 40.0, enabled=False)],
        },
    }
    rows = convert_annotation([result], media, ANN, CLASSES)
    assert [r["frame_index"] for r in rows] == [0, 1, 2, 3, 4]
    assert [r["keyframe"] for r in rows] == [True, False, False, False, True]
    # x goes 0% -> 40% of 200 px over 4 frames: 0, 20, 40, 60, 80 px
    assert [round(r["x"], 6) for r in rows] == [0.0, 20.0, 40.0, 60.0, 80.0]
    assert all(r["y"] == 10.0 and r["w"] == 20.0 and r["h"] == 20.0 for r in rows)
    assert all(r["track_id"] == "trk" and r["kind"] == "box" and r["label"] == "cat" for r in rows)
    assert rows[2]["start_frame"] == rows[2]["end_frame"] == 2


def test_video_rectangle_honours_disabled_gaps_and_runs_to_the_end():
    clock = FrameClock(fps=10.0, frame_count=12)
    sequence = [_key(1, 0.0), _key(3, 20.0, enabled=False), _key(7, 50.0), _key(9, 70.0)]
    frames = interpolate_track(sequence, clock)
    indices = [f for f, _, _ in frames]
    # 0..2 interpolated, hidden 3..5 (after the disabled key at 2), 6..8 interpolated, 8..11 held
    assert indices == [0, 1, 2, 6, 7, 8, 9, 10, 11]
    boxes = {f: b for f, b, _ in frames}
    assert boxes[1]["x"] == pytest.approx(10.0)
    assert boxes[7]["x"] == pytest.approx(60.0)
    assert boxes[11]["x"] == pytest.approx(70.0)
    assert [k for _, _, k in frames] == [True, False, True, True, False, True, False, False, False]


def test_video_rectangle_single_disabled_key_frame_is_one_box():
    clock = FrameClock(fps=10.0, frame_count=12)
    frames = interpolate_track([_key(4, 5.0, enabled=False)], clock)
    assert [f for f, _, _ in frames] == [3]


def test_video_rectangle_rotation_becomes_the_bounding_box():
    media = MediaInfo("m1", "video", width=100, height=100, clock=FrameClock(10.0, 1))
    key = {
        "frame": 1,
        "enabled": False,
        "x": 50.0,
        "y": 50.0,
        "width": 10.0,
        "height": 10.0,
        "rotation": 90,
    }
    (row,) = convert_annotation(
        [{"type": "videorectangle", "value": {"labels": ["cat"], "sequence": [key]}}],
        media,
        ANN,
        CLASSES,
    )
    assert (row["x"], row["y"], row["w"], row["h"]) == pytest.approx((40.0, 50.0, 10.0, 10.0))


def test_variable_frame_rate_maps_through_timestamps():
    # frames at 0, .1, .3, .35, .5 s: average 10 fps would put LS frame 4 (t=.3) at index 3
    clock = FrameClock(fps=10.0, frame_count=5, timestamps_s=(0.0, 0.1, 0.3, 0.35, 0.5))
    assert clock.index_from_ls_frame(4) == 2
    assert clock.index_from_ls_frame(4, time_s=0.349) == 3
    assert clock.index_from_ls_frame(99) == 4
    assert clock.time_of(3) == 0.35 and clock.end_time_of(3) == 0.5
    media = MediaInfo("v", "video", 100, 100, clock=clock)
    result = {
        "type": "videorectangle",
        "value": {
            "labels": ["cat"],
            "sequence": [
                {
                    "frame": 1,
                    "time": 0.0,
                    "enabled": True,
                    "x": 0,
                    "y": 0,
                    "width": 10,
                    "height": 10,
                },
                {
                    "frame": 6,
                    "time": 0.5,
                    "enabled": False,
                    "x": 50,
                    "y": 0,
                    "width": 10,
                    "height": 10,
                },
            ],
        },
    }
    rows = convert_annotation([result], media, ANN, CLASSES)
    # interpolation weights follow time: x% = 100 * t
    assert [(r["frame_index"], round(r["x"], 6)) for r in rows] == [
        (0, 0.0),
        (1, 10.0),
        (2, 30.0),
        (3, 35.0),
        (4, 50.0),
    ]


def test_constant_rate_clock_is_arithmetic():
    clock = FrameClock(fps=30000 / 1001, frame_count=100)
    assert clock.index_from_ls_frame(1) == 0 and clock.index_from_ls_frame(100) == 99
    assert clock.index_from_time(clock.time_of(57)) == 57
    with pytest.raises(ConversionError):
        FrameClock(fps=0.0)


def test_rectangle_labels_on_images_in_pixels():
    result = {
        "id": "r1",
        "type": "rectanglelabels",
        "from_name": "box",
        "to_name": "image",
        "original_width": 200,
        "original_height": 100,
        "value": {
            "x": 10.0,
            "y": 20.0,
            "width": 50.0,
            "height": 30.0,
            "rotation": 0,
            "rectanglelabels": ["dog"],
        },
    }
    (row,) = convert_annotation([result], IMAGE, ANN, CLASSES)
    assert row["kind"] == "box" and row["frame_index"] == 0 and row["keyframe"] is True
    assert (row["x"], row["y"], row["w"], row["h"]) == pytest.approx((20.0, 20.0, 100.0, 30.0))
    assert row["start_frame"] is None


def test_image_without_size_uses_the_result_original_size():
    media = MediaInfo("i2", "image")
    result = {
        "type": "rectanglelabels",
        "original_width": 10,
        "original_height": 10,
        "value": {"x": 50, "y": 50, "width": 10, "height": 10, "rectanglelabels": ["cat"]},
    }
    (row,) = convert_annotation([result], media, ANN, CLASSES)
    assert (row["x"], row["w"]) == (5.0, 1.0)


def test_unknown_result_types_are_reported_not_guessed():
    report = ConversionReport()
    rows = convert_annotation(
        [{"type": "textarea", "from_name": "note", "value": {"text": ["x"]}}],
        VIDEO,
        ANN,
        CLASSES,
        report,
    )
    assert rows == [] and "textarea" in report.ignored[0]
    assert set(CONVERTERS) == {"choices", "timelinelabels", "videorectangle", "rectanglelabels"}


def test_malformed_results_name_the_annotation():
    with pytest.raises(ConversionError, match="annotation 70"):
        convert_annotation(["oops"], VIDEO, ANN, CLASSES)
    with pytest.raises(ConversionError, match="x/y/width/height"):
        convert_annotation(
            [{"type": "rectanglelabels", "value": {"rectanglelabels": ["cat"]}}],
            IMAGE,
            ANN,
            CLASSES,
        )


def test_result_type_is_inferred_from_value_keys():
    assert result_type({"value": {"sequence": []}}) == "videorectangle"
    assert result_type({"value": {"ranges": []}}) == "timelinelabels"
    assert result_type({"value": {"choices": []}}) == "choices"
    assert result_type({"value": {}}) is None


def test_json_min_values_become_results():
    assert min_value_to_results("cat", "label", ["label"]) == [
        {"from_name": "label", "type": "choices", "value": {"choices": ["cat"]}}
    ]
    assert min_value_to_results("/data/x.mp4", "video", ["label"]) == []
    (track,) = min_value_to_results(
        [{"type": "Labels", "labels": ["cat"], "framesCount": 3, "sequence": [_key(1, 0.0)]}],
        "box",
        [],
    )
    assert track["type"] == "videorectangle" and track["value"]["labels"] == ["cat"]
    (rect,) = min_value_to_results(
        [
            {
                "type": "RectangleLabels",
                "x": 1,
                "y": 2,
                "width": 3,
                "height": 4,
                "rectanglelabels": ["dog"],
                "original_width": 10,
                "original_height": 20,
            }
        ],
        "box",
        [],
    )
    assert rect["type"] == "rectanglelabels" and rect["original_width"] == 10


def test_parse_time_accepts_z_and_naive():
    assert parse_time("2026-01-02T03:04:05.000Z") == WHEN
    assert parse_time("2026-01-02T03:04:05") == WHEN
    assert parse_time(None) is None and parse_time("garbage") is None


def test_exported_interpolated_frames_are_not_key_frames():
    clock = FrameClock(fps=10.0, frame_count=3)
    sequence = [_key(1, 0.0), dict(_key(2, 5.0), auto=True), _key(3, 10.0, enabled=False)]
    assert [(f, k) for f, _, k in interpolate_track(sequence, clock)] == [
        (0, True),
        (1, False),
        (2, True),
    ]


# ------------------------------------------------------------------ annotations against their media
# VIDEO: 50 frames (LS frames 1..50), 640x480 px.


def _timeline(*spans):
    return {
        "type": "timelinelabels",
        "value": {"ranges": [{"start": a, "end": b} for a, b in spans], "timelinelabels": ["run"]},
    }


def test_segments_wholly_outside_the_video_are_errors_partly_outside_clipped():
    for span in ((-50, -10), (5000, 9000), (51, 60)):
        with pytest.raises(ConversionError, match="wholly outside the video"):
            convert_annotation([_timeline(span)], VIDEO, ANN, CLASSES)
    report = ConversionReport()
    rows = convert_annotation([_timeline((-4, 3), (48, 70))], VIDEO, ANN, CLASSES, report)
    assert [(r["start_frame"], r["end_frame"]) for r in rows] == [(0, 2), (47, 49)]
    assert len(report.clipped) == 2 and "clipped" in report.clipped[0]
    for bad in (float("nan"), float("inf"), "x"):
        with pytest.raises(ConversionError, match="not a (finite )?number"):
            convert_annotation([_timeline((bad, 3))], VIDEO, ANN, CLASSES)


def _image_box(x, y, w, h):
    return {
        "type": "rectanglelabels",
        "value": {"x": x, "y": y, "width": w, "height": h, "rectanglelabels": ["dog"]},
    }


def test_image_boxes_outside_the_image_non_finite_or_negative_are_refused_or_clipped():
    for box in ((120, 10, 10, 10), (-30, 10, 20, 10), (10, 10, -5, 10), (10, 10, 0, 10)):
        with pytest.raises(ConversionError, match="wholly outside|width"):
            convert_annotation([_image_box(*box)], IMAGE, ANN, CLASSES)
    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(ConversionError, match="finite"):
            convert_annotation([_image_box(bad, 10, 10, 10)], IMAGE, ANN, CLASSES)
    report = ConversionReport()
    # 200x100 px image: x 90%..110% -> 180..220 px, clipped to 180..200
    (row,) = convert_annotation([_image_box(90, 10, 20, 10)], IMAGE, ANN, CLASSES, report)
    assert (row["x"], row["y"], row["w"], row["h"]) == pytest.approx((180.0, 10.0, 20.0, 10.0))
    assert len(report.clipped) == 1


def _track(*keys):
    return {
        "type": "videorectangle",
        "id": "t",
        "value": {"labels": ["cat"], "sequence": list(keys)},
    }


def test_box_key_frames_outside_the_video_are_clipped_not_moved_onto_its_ends():
    clock = FrameClock(fps=10.0, frame_count=10)
    media = MediaInfo("m", "video", width=100, height=100, clock=clock)
    report = ConversionReport()
    # key frames at LS -9 (index -10, x 0%) and LS 11 (index 10, x 40%), beyond both ends
    rows = convert_annotation(
        [_track(dict(_key(-9, 0.0), time=None), dict(_key(11, 40.0), time=None))],
        media,
        ANN,
        CLASSES,
        report,
    )
    assert [r["frame_index"] for r in rows] == list(range(10))
    # interpolated where the frames really are: index 0 is halfway (20% = 20 px), not 0 px
    assert rows[0]["x"] == pytest.approx(20.0) and rows[5]["x"] == pytest.approx(30.0)
    assert not any(r["keyframe"] for r in rows)
    assert len(report.clipped) == 1 and "2 key frames outside" in report.clipped[0]
    with pytest.raises(ConversionError, match="wholly outside the video"):
        convert_annotation(
            [
                _track(
                    dict(_key(-5, 0.0, enabled=False), time=None),
                    dict(_key(100000, 0.0, enabled=False), time=None),
                )
            ],
            media,
            ANN,
            CLASSES,
        )
    with pytest.raises(ConversionError, match="finite"):
        convert_annotation([_track(dict(_key(2, float("nan"))))], media, ANN, CLASSES)


def test_box_track_frames_with_the_box_off_the_image_are_dropped_and_counted():
    clock = FrameClock(fps=10.0, frame_count=5)
    media = MediaInfo("m", "video", width=100, height=100, clock=clock)
    report = ConversionReport()
    # moves from x 80% to x 120% (width 10%): frames 2..4 lie right of the image
    rows = convert_annotation(
        [_track(_key(1, 80.0), _key(5, 120.0, enabled=False))], media, ANN, CLASSES, report
    )
    assert [r["frame_index"] for r in rows] == [0, 1]
    assert all(r["x"] + r["w"] <= 100.0 + 1e-9 for r in rows)
    assert "3 frames with the box outside the image" in report.clipped[0]


@pytest.mark.parametrize(
    "result",
    [
        {"type": "choices", "from_name": "label", "value": None},
        {"type": "choices", "from_name": "label"},
        {"type": "timelinelabels", "value": None},
        {"from_name": "label"},
        {"type": "choices", "value": {"choices": []}},
    ],
)
def test_results_without_a_value_are_errors_not_silently_dropped(result):
    with pytest.raises(ConversionError, match="annotation 70"):
        convert_annotation([result], VIDEO, ANN, CLASSES)


@pytest.mark.parametrize("name", ["../evil", "..", ".", "a/b", "a\\b", "x\ny"])
def test_class_names_that_cannot_be_folders_are_refused(name):
    for result in (
        {"type": "choices", "value": {"choices": [name]}},
        {
            "type": "rectanglelabels",
            "value": {"x": 1, "y": 1, "width": 5, "height": 5, "rectanglelabels": [name]},
        },
    ):
        with pytest.raises(ConversionError, match="class name"):
            convert_annotation([result], IMAGE if "x" in result["value"] else VIDEO, ANN, CLASSES)
