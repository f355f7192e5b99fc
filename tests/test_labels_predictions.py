"""``labels push --predictions RUN``: a trained run's predictions as Label Studio pre-annotations.

Pure tests of the prediction -> result conversion, then one tiny gesture workspace (real H.264
videos -> ingest -> frames -> split -> stats -> frame export -> a 1-epoch CNN run) pushed with
its predictions to a REAL Label Studio server (the session fixture of test_labels_server.py).
"""

from __future__ import annotations

import json
import uuid

import pytest

from dataprep.errors import UsageError
from dataprep.labels import config_xml
from dataprep.labels.convert import (
    AnnotationInfo,
    ConversionError,
    FrameClock,
    MediaInfo,
    convert_timeline,
)
from dataprep.labels.predictions import (
    PredictionTarget,
    Segment,
    choices_prediction,
    clip_segments,
    prediction_target,
    timeline_prediction,
    to_prediction,
)

CLASSES = ["a", "b", "c"]


def _clip(start: int, end: int, **probabilities: float) -> dict:
    return {"start_frame": start, "end_frame": end, "probabilities": probabilities}


# ------------------------------------------------------------------------------- pure


def test_choices_prediction_is_the_whole_media_argmax_with_its_probability():
    target = prediction_target(
        config_xml.labeling_config(CLASSES, "classification", "video"), "classification"
    )
    assert target == PredictionTarget("choices", config_xml.CHOICES_NAME, config_xml.VIDEO_KEY)
    result = {"probabilities": {"a": 0.2, "b": 0.7, "c": 0.1}, "clips": []}
    body = choices_prediction(result, target)
    assert body["score"] == pytest.approx(0.7)
    [region] = body["result"]
    assert region["value"] == {"choices": ["b"]}
    assert (region["from_name"], region["to_name"], region["type"]) == (
        "label",
        "video",
        "choices",
    )
    full = to_prediction(result, target, task_id=7, model_version="run-1", clock=None)
    assert (full["task"], full["model_version"], full["score"]) == (7, "run-1", body["score"])


def test_clip_segments_merge_consecutive_clips_and_cut_overlaps():
    clips = [
        _clip(8, 15, a=0.6, b=0.4),  # given out of order: sorted by start
        _clip(0, 7, a=0.8, b=0.2),
        _clip(16, 23, a=0.1, b=0.9),
        _clip(24, 28, a=0.3, b=0.7),  # a short last clip (padded in the export)
        _clip(26, 33, a=0.55, b=0.45),  # overlaps the previous clip: the segment is cut
    ]
    assert clip_segments(clips) == [
        Segment("a", 0, 15, pytest.approx(0.7)),
        Segment("b", 16, 25, pytest.approx(0.8)),
        Segment("a", 26, 33, pytest.approx(0.55)),
    ]
    # ties go to the first class in class order, as np.argmax does
    assert clip_segments([_clip(0, 0, a=0.5, b=0.5)])[0].label == "a"


def test_timeline_prediction_ranges_convert_back_to_the_clip_frames():
    label_config = config_xml.labeling_config(CLASSES, "segments", "video")
    target = prediction_target(label_config, "segments")
    assert target.type == "timelinelabels" and target.from_name == config_xml.TIMELINE_NAME
    clips = [_clip(i, i, a=0.9, c=0.1) for i in range(4)]
    clips += [_clip(i, i, a=0.2, c=0.8) for i in range(4, 10)]
    result = {"probabilities": {"a": 0.44, "b": 0.0, "c": 0.56}, "clips": clips}
    clock = FrameClock(fps=30000 / 1001, frame_count=10)
    body = timeline_prediction(result, target, clock)
    assert body["score"] == pytest.approx(0.56)
    assert [r["value"] for r in body["result"]] == [
        {"ranges": [{"start": 1, "end": 4}], "timelinelabels": ["a"]},
        {"ranges": [{"start": 5, "end": 10}], "timelinelabels": ["c"]},
    ]
    assert [r["score"] for r in body["result"]] == [pytest.approx(0.9), pytest.approx(0.8)]
    # the sync converter reads them back as the decoder's frames
    media = MediaInfo("m", "video", clock=clock)
    meta = AnnotationInfo(None, None, None, None)
    rows = [
        row
        for region in body["result"]
        for row in convert_timeline(region, media, meta, frozenset(CLASSES))
    ]
    assert [(r["label"], r["start_frame"], r["end_frame"]) for r in rows] == [
        ("a", 0, 3),
        ("c", 4, 9),
    ]


def test_variable_frame_rate_frames_map_through_timestamps_both_ways():
    stamps = (0.0, 0.1, 0.15, 0.3, 0.4, 0.5)
    clock = FrameClock(fps=10.0, timestamps_s=stamps)
    for frame_index in range(len(stamps)):
        if frame_index == 2:
            continue  # 0.15 s falls between two 10 fps Label Studio frames
        assert clock.index_from_ls_frame(clock.ls_frame_of(frame_index)) == frame_index
    assert [clock.ls_frame_of(i) for i in range(6)] == [1, 2, 3, 4, 5, 6]


def test_targets_follow_the_project_config_and_boxes_are_refused():
    image = config_xml.labeling_config(CLASSES, "segments", "image")  # images: Choices
    assert prediction_target(image, "segments") == PredictionTarget("choices", "label", "image")
    for kind in ("video", "image"):
        boxes = config_xml.labeling_config(CLASSES, "boxes", kind)
        with pytest.raises(UsageError, match="cannot predict boxes"):
            prediction_target(boxes, "classification")
    with pytest.raises(UsageError, match="no Choices or TimelineLabels"):
        prediction_target('<View><Text name="t" value="$text"/></View>', "classification")
    with pytest.raises(ConversionError, match="frame rate"):
        to_prediction(
            {"probabilities": {"a": 1.0}, "clips": []},
            PredictionTarget("timelinelabels", "segment", "video"),
            task_id=1,
            model_version="r",
            clock=None,
        )


# ------------------------------------------------------------------ real server


@pytest.fixture(scope="module")
def trained_ws(tmp_path_factory, labelstudio_server):
    """A gesture workspace under the server's document root with a 1-epoch frame CNN run."""
    from dataprep.export.dataset import export_dataset
    from dataprep.frames import extract_frames
    from dataprep.ingest import ingest
    from dataprep.split import split_media
    from dataprep.stats import compute_stats
    from dataprep.testing.gestures import GESTURE_CLASSES, GestureSpec, write_gesture_set
    from dataprep.train.loop import TrainOptions, train_baseline
    from dataprep.workspace import init_workspace, open_workspace

    server = labelstudio_server
    tmp_path = tmp_path_factory.mktemp("predictions")
    raw = server.document_root / uuid.uuid4().hex[:8]
    write_gesture_set(raw, GestureSpec(per_class=2, size=32, frames=8, seed=5))
    ws = init_workspace(tmp_path / "ws", classes=list(GESTURE_CLASSES))
    ingest(ws, [raw], label_from_dir=True, mode="reference", jobs=1)
    extract_frames(ws, sampling="all", size="32", jobs=1)
    split_media(ws, ratios=[0.5, 0.25, 0.25], seed=0)
    compute_stats(ws, jobs=1)
    export_dataset(ws, format="tfrecord", unit="frame", name="frames")
    options = TrainOptions(
        export="frames", model="cnn", run_name="cnn1", epochs=1, batch_size=16, seed=0
    )
    train_baseline(ws, options, log=lambda line: None)
    config = ws.config.model_copy(deep=True)
    config.labelstudio.url = server.url
    config.labelstudio.media_root = str(server.document_root)
    config.labelstudio.project = f"pred-{uuid.uuid4().hex[:8]}"
    config.labelstudio.retries = 1
    ws.save_config(config)
    return open_workspace(ws.root)


@pytest.fixture(autouse=True)
def _api_key(request, monkeypatch):
    if "trained_ws" in request.fixturenames:
        server = request.getfixturevalue("labelstudio_server")
        monkeypatch.setenv("LABEL_STUDIO_API_KEY", server.token)


def _with_config(ws, **changes):
    from dataprep.workspace import open_workspace

    config = ws.config.model_copy(deep=True)
    for section_key, value in changes.items():
        section, key = section_key.split("__")
        setattr(getattr(config, section), key, value)
    ws.save_config(config)
    return open_workspace(ws.root)


@pytest.mark.labelstudio
def test_push_predictions_to_real_server_matches_predict_and_is_not_repeated(
    trained_ws, labelstudio_server
):
    from typer.testing import CliRunner

    from dataprep import manifests
    from dataprep.cli.main import app
    from dataprep.labels.push import connect, push
    from dataprep.train.predict import predict_paths

    ws = trained_ws
    media = {r["media_id"]: r for r in manifests.records(manifests.load(ws, "media"))}
    ids = sorted(media)
    expected = dict(
        zip(ids, predict_paths(ws, "cnn1", [media[m]["path"] for m in ids]), strict=True)
    )

    # whole-video classification: Choices with the argmax of the whole-video probabilities
    report = push(ws, create=True, predictions="cnn1")
    assert report.ok and report.added == len(ids), report.to_dict()
    assert report.predictions.added == len(ids) and report.predictions.already_present == 0
    client = connect(ws)
    tasks = {t["id"]: t["data"]["media_id"] for t in client.list_tasks(report.project_id)}
    predictions = client.list_predictions(report.project_id)
    assert sorted(tasks) == sorted(p["task"] for p in predictions)
    for prediction in predictions:
        want = expected[tasks[prediction["task"]]]
        assert prediction["model_version"] == "cnn1"
        assert prediction["score"] == pytest.approx(max(want["probabilities"].values()), abs=1e-6)
        [region] = prediction["result"]
        assert region["value"]["choices"] == [want["prediction"]]
        assert region["from_name"] == "label" and region["type"] == "choices"

    again = push(ws, predictions=str(ws.runs_dir / "cnn1"))  # a run folder works too
    assert (again.added, again.predictions.added) == (0, 0)
    assert again.predictions.already_present == len(ids)
    assert len(client.list_predictions(report.project_id)) == len(ids)

    # the CLI: wiring, JSON, and the key never printed
    result = CliRunner().invoke(
        app, ["-w", str(ws.root), "labels", "push", "--predictions", "cnn1", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["predictions"]["already_present"] == len(ids)
    assert labelstudio_server.token not in result.output

    # segments: TimelineLabels regions of same-class frames, frames as the decoder's
    segments_ws = _with_config(
        ws, project__label_type="segments", labelstudio__project=f"seg-{uuid.uuid4().hex[:8]}"
    )
    report = push(segments_ws, create=True, predictions="cnn1")
    assert report.ok and report.predictions.added == len(ids), report.to_dict()
    tasks = {t["id"]: t["data"]["media_id"] for t in client.list_tasks(report.project_id)}
    for prediction in client.list_predictions(report.project_id):
        want = expected[tasks[prediction["task"]]]
        assert prediction["model_version"] == "cnn1"
        assert prediction["score"] == pytest.approx(max(want["probabilities"].values()), abs=1e-6)
        by_frame = {}
        for region in prediction["result"]:
            assert region["type"] == "timelinelabels" and region["from_name"] == "segment"
            [span] = region["value"]["ranges"]
            [label] = region["value"]["timelinelabels"]
            for ls_frame in range(span["start"], span["end"] + 1):
                by_frame[ls_frame - 1] = label  # video frame rate is constant here
        assert by_frame == {
            clip["start_frame"]: max(clip["probabilities"], key=clip["probabilities"].get)
            for clip in want["clips"]
        }
    assert push(segments_ws, predictions="cnn1").predictions.added == 0


@pytest.mark.labelstudio
def test_boxes_and_other_classes_are_refused_before_anything_is_pushed(trained_ws):
    from dataprep.labels.client import ProjectNotFound
    from dataprep.labels.push import connect, push

    original = trained_ws.config_path.read_bytes()
    title = f"never-{uuid.uuid4().hex[:8]}"
    try:
        boxes = _with_config(trained_ws, project__label_type="boxes", labelstudio__project=title)
        with pytest.raises(UsageError, match="cannot predict boxes"):
            push(boxes, create=True, predictions="cnn1")
        other = _with_config(
            trained_ws, project__label_type="classification", project__classes=["left", "right"]
        )
        with pytest.raises(UsageError, match=r"run cnn1 predicts classes .* dataprep.toml lists"):
            push(other, create=True, predictions="cnn1")
        with pytest.raises(UsageError, match="no run 'nope'"):
            push(other, create=True, predictions="nope")
        with pytest.raises(ProjectNotFound):  # refused before the project was made
            connect(other).find_project(title)
    finally:
        trained_ws.config_path.write_bytes(original)
