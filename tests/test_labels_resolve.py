"""Multi-annotator resolution and agreement statistics, on hand-written results."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dataprep import manifests
from dataprep.labels.convert import AnnotationInfo, FrameClock, MediaInfo, convert_annotation
from dataprep.labels.resolve import (
    agreement,
    cohen_kappa,
    fleiss_kappa,
    percent_agreement,
    resolve_all,
    resolve_media,
)

CLASSES = ["cat", "dog"]
T0 = datetime(2026, 1, 1, tzinfo=UTC)
CLOCK = FrameClock(fps=10.0, frame_count=20)
VIDEO = MediaInfo("m1", "video", 64, 48, CLOCK)


def _ann(annotation_id, annotator, minutes, ground_truth=False, task_id=1):
    return AnnotationInfo(
        task_id, annotation_id, annotator, T0 + timedelta(minutes=minutes), ground_truth
    )


def _choice(label, annotation, media=VIDEO):
    return convert_annotation(
        [{"type": "choices", "value": {"choices": [label]}}], media, annotation, CLASSES
    )


def _segments(spans, annotation):
    results = [
        {
            "type": "timelinelabels",
            "id": f"s{i}",
            "value": {"ranges": [{"start": a, "end": b}], "timelinelabels": [label]},
        }
        for i, (label, a, b) in enumerate(spans)
    ]
    return convert_annotation(results, VIDEO, annotation, CLASSES)


def _labels(rows):
    return [(r["label"], r["start_frame"], r["end_frame"]) for r in rows]


def test_majority_choice_and_tie_goes_to_the_latest():
    rows = (
        _choice("cat", _ann(1, "a", 1))
        + _choice("dog", _ann(2, "b", 2))
        + _choice("cat", _ann(3, "c", 3))
    )
    (resolved,) = resolve_media(rows, "majority", CLOCK)
    assert resolved["label"] == "cat" and resolved["resolved"] is True
    assert resolved["annotation_id"] is None and resolved["annotator"] is None
    tie = _choice("cat", _ann(1, "a", 5)) + _choice("dog", _ann(2, "b", 9))
    assert resolve_media(tie, "majority")[0]["label"] == "dog"


def test_latest_and_ground_truth_policies():
    rows = (
        _choice("cat", _ann(1, "a", 1, ground_truth=True))
        + _choice("dog", _ann(2, "b", 2))
        + _choice("dog", _ann(3, "c", 3))
    )
    assert resolve_media(rows, "latest")[0]["label"] == "dog"
    assert resolve_media(rows, "ground-truth")[0]["label"] == "cat"
    assert resolve_media(rows, "majority")[0]["label"] == "dog"
    no_gt = [dict(r, ground_truth=False) for r in rows]
    assert resolve_media(no_gt, "ground-truth")[0]["label"] == "dog"  # falls back to majority


def test_majority_segments_vote_per_frame():
    rows = (
        _segments([("cat", 1, 10)], _ann(1, "a", 1))
        + _segments([("cat", 5, 12)], _ann(2, "b", 2))
        + _segments([("dog", 1, 4), ("cat", 9, 14)], _ann(3, "c", 3))
    )
    resolved = resolve_media(rows, "majority", CLOCK)
    # cat has 2 of 3 votes on frames 4..11 (LS 5..12); dog never has a majority
    assert _labels(resolved) == [("cat", 4, 11)]
    assert resolved[0]["start_s"] == pytest.approx(0.4)
    assert resolved[0]["end_s"] == pytest.approx(1.2)


def test_single_annotation_is_its_own_resolution():
    rows = _segments([("cat", 1, 3), ("dog", 5, 6)], _ann(1, "a", 1))
    assert _labels(resolve_media(rows, "majority", CLOCK)) == [("cat", 0, 2), ("dog", 4, 5)]


def test_boxes_follow_ground_truth_else_latest():
    def box(annotation, x):
        return convert_annotation(
            [
                {
                    "type": "videorectangle",
                    "id": "t",
                    "value": {
                        "labels": ["cat"],
                        "sequence": [
                            {
                                "frame": 1,
                                "enabled": False,
                                "x": x,
                                "y": 0,
                                "width": 10,
                                "height": 10,
                            }
                        ],
                    },
                }
            ],
            VIDEO,
            annotation,
            CLASSES,
        )

    rows = box(_ann(1, "a", 1, ground_truth=True), 10.0) + box(_ann(2, "b", 2), 50.0)
    assert resolve_media(rows, "majority", CLOCK)[0]["x"] == pytest.approx(6.4)
    assert resolve_media(rows, "latest", CLOCK)[0]["x"] == pytest.approx(32.0)


def test_resolve_all_keeps_every_annotator_row_and_fits_the_schema():
    other = MediaInfo("m2", "video", 64, 48, CLOCK)
    rows = (
        _choice("cat", _ann(1, "a", 1))
        + _choice("dog", _ann(2, "b", 2))
        + _choice("cat", _ann(3, "a", 3, task_id=2), other)
    )
    out = resolve_all(rows, "latest", {"m1": CLOCK})
    assert sum(not r["resolved"] for r in out) == 3 and sum(r["resolved"] for r in out) == 2
    frame = manifests.from_records("labels", out)
    assert list(frame.columns) == manifests.load_schema("labels").column_names
    with pytest.raises(ValueError, match="unknown resolve policy"):
        resolve_all(rows, "vote")


def test_kappa_formulas_on_textbook_cases():
    # Cohen: 2 raters, 50 items; a=20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no -> kappa 0.4
    pairs = [("y", "y")] * 20 + [("y", "n")] * 5 + [("n", "y")] * 10 + [("n", "n")] * 15
    assert cohen_kappa(pairs) == pytest.approx(0.4)
    assert cohen_kappa([("y", "y")] * 4) is None  # all in one category: undefined
    # perfect agreement on two categories: Fleiss kappa 1, percent 100
    items = [{"y": 3}, {"n": 3}, {"y": 3}]
    assert fleiss_kappa(items) == pytest.approx(1.0)
    assert percent_agreement(items) == pytest.approx(100.0)
    # Fleiss (1971) style check: one item split 2/1 of 3 raters -> P_i = 1/3
    assert percent_agreement([{"y": 2, "n": 1}]) == pytest.approx(100 / 3)


def test_agreement_per_class_for_choices_and_segments():
    m2 = MediaInfo("m2", "video", 64, 48, CLOCK)
    m3 = MediaInfo("m3", "video", 64, 48, CLOCK)
    rows = (
        _choice("cat", _ann(1, "a", 1))
        + _choice("cat", _ann(2, "b", 1))
        + _choice("dog", _ann(3, "a", 1, task_id=2), m2)
        + _choice("cat", _ann(4, "b", 1, task_id=2), m2)
        + _choice("dog", _ann(5, "a", 1, task_id=3), m3)
        + _choice("dog", _ann(6, "b", 1, task_id=3), m3)
    )
    stats = agreement(rows, CLASSES)
    assert stats["annotators"] == ["a", "b"]
    overall = stats["overall"]
    assert overall["items"] == 3
    assert overall["percent_agreement"] == pytest.approx(200 / 3, abs=1e-3)
    # a: cat, dog, dog; b: cat, cat, dog -> po = 2/3, pe = (1*2 + 2*1)/9 = 4/9 -> kappa 0.4
    assert overall["cohen_kappa"]["a | b"] == pytest.approx(0.4)
    assert set(stats["per_class"]) == {"cat", "dog"}
    assert stats["per_class"]["cat"]["percent_agreement"] == pytest.approx(200 / 3, abs=1e-3)

    seg = _segments([("cat", 1, 10)], _ann(1, "a", 1)) + _segments(
        [("cat", 1, 10)], _ann(2, "b", 1)
    )
    perfect = agreement(seg, CLASSES, {"m1": 20})
    assert perfect["overall"]["items"] == 20
    assert perfect["overall"]["fleiss_kappa"] == pytest.approx(1.0)
    assert perfect["per_class"]["dog"]["fleiss_kappa"] is None  # never used: undefined
