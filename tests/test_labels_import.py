"""``labels import`` of Label Studio export files (JSON and JSON_MIN), offline, on real media."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dataprep import manifests
from dataprep.cli.main import app
from dataprep.errors import UsageError
from dataprep.ingest import ingest
from dataprep.labels.convert import ConversionError
from dataprep.labels.importer import import_export
from dataprep.labels.tasks import MediaTable, UnsafeTaskPath, match_task, task_media_path
from dataprep.testing.labelstudio import ExportAnnotation, Track, make_export, write_export
from dataprep.testing.media import read_frame_index, write_image, write_video
from dataprep.workspace import init_workspace

CLASSES = ["cat", "dog", "run"]
VFR_STAMPS = [0.0, 0.1, 0.15, 0.4, 0.45, 0.9, 1.0, 1.3]


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    root = tmp_path_factory.mktemp("raw")
    write_video(root / "media" / "a.mp4", 20, fps=10.0, width=64, height=48)
    write_video(root / "media" / "b.mp4", 15, fps=25.0, width=64, height=48)
    write_video(root / "media" / "vfr.mkv", len(VFR_STAMPS), timestamps_s=VFR_STAMPS)
    write_image(root / "images" / "p.png", 1, width=40, height=20)
    return root


def _ws(tmp_path, raw, label_type="segments", folder="media"):
    ws = init_workspace(tmp_path / "ws", classes=CLASSES, label_type=label_type)
    ingest(ws, [raw / folder], mode="reference", jobs=1)
    return ws


def _media(ws) -> dict[str, dict]:
    return {Path(r["path"]).name: r for r in manifests.records(manifests.load(ws, "media"))}


def _annotations(media):
    a, b = media["a.mp4"]["media_id"], media["b.mp4"]["media_id"]
    return [
        ExportAnnotation(
            a, choices=["cat"], segments=[("run", 2, 7), ("cat", 10, 19)], annotator="x@example.com"
        ),
        ExportAnnotation(a, segments=[("run", 3, 8)], annotator="y@example.com"),
        ExportAnnotation(
            b,
            tracks=[Track("dog", [(0, 0, 0, 32, 24, True), (4, 32, 24, 32, 24, False)])],
            annotator="x@example.com",
            ground_truth=True,
        ),
    ]


def test_json_and_json_min_give_the_same_rows(tmp_path, raw):
    ws = _ws(tmp_path, raw)
    media = _media(ws)
    rows_by_format = {}
    for fmt in ("JSON", "JSON_MIN"):
        path = write_export(tmp_path / f"{fmt}.json", media.values(), _annotations(media), fmt=fmt)
        report = import_export(ws, path)
        assert report.format == fmt and report.ok
        frame = manifests.load(ws, "labels").drop(columns=["track_id", "ground_truth"])
        rows_by_format[fmt] = frame
    assert rows_by_format["JSON"].equals(rows_by_format["JSON_MIN"])
    frame = manifests.load(ws, "labels")
    a = media["a.mp4"]["media_id"]
    segments = frame[(frame["media_id"] == a) & (frame["kind"] == "segment")]
    resolved = segments[segments["resolved"]]
    # run: x covers 2..7, y covers 3..8 -> both (2 of 2) on 3..7; cat: only x (1 of 2) -> none
    assert list(
        zip(resolved["label"], resolved["start_frame"], resolved["end_frame"], strict=True)
    ) == [("run", 3, 7)]
    boxes = frame[(frame["kind"] == "box") & ~frame["resolved"]]
    assert list(boxes["frame_index"]) == [0, 1, 2, 3, 4]
    assert list(boxes["x"]) == pytest.approx([0, 8, 16, 24, 32])
    assert set(frame["annotator"].dropna()) == {"x@example.com", "y@example.com"}


def test_tasks_match_by_file_name_without_media_id(tmp_path, raw):
    ws = _ws(tmp_path, raw)
    media = _media(ws)
    path = write_export(
        tmp_path / "e.json",
        media.values(),
        [ExportAnnotation(media["b.mp4"]["media_id"], choices=["dog"])],
        with_media_id=False,
    )
    import_export(ws, path)
    rows = manifests.records(manifests.load(ws, "labels"))
    assert {(r["media_id"], r["label"]) for r in rows} == {(media["b.mp4"]["media_id"], "dog")}


def test_unknown_labels_are_kept_and_flagged(tmp_path, raw):
    ws = _ws(tmp_path, raw, "classification")
    media = _media(ws)
    path = write_export(
        tmp_path / "e.json",
        media.values(),
        [ExportAnnotation(media["a.mp4"]["media_id"], choices=["Cat"])],
    )
    report = import_export(ws, path)
    assert report.conversion.unknown_labels == {"Cat": 1}
    rows = manifests.records(manifests.load(ws, "labels"))
    assert {(r["label"], r["in_classes"], r["resolved"]) for r in rows} == {
        ("Cat", False, False),
        ("Cat", False, True),
    }


def test_variable_frame_rate_maps_through_timestamps(tmp_path, raw):
    ws = _ws(tmp_path, raw)
    row = _media(ws)["vfr.mkv"]
    assert row["variable_frame_rate"]
    fps = row["fps"]
    # Label Studio (frameRate = average fps) shows decoder frame k at LS frame round(t_k*fps)+1
    ls_frame = {k: round(t * fps) + 1 for k, t in enumerate(VFR_STAMPS)}
    tasks = make_export([row], [])
    tasks[0]["annotations"] = [
        {
            "id": 1,
            "completed_by": 1,
            "updated_at": "2026-01-01T00:00:00Z",
            "result": [
                {
                    "type": "timelinelabels",
                    "id": "s",
                    "value": {
                        "ranges": [{"start": ls_frame[3], "end": ls_frame[6]}],
                        "timelinelabels": ["run"],
                    },
                },
                {
                    "type": "videorectangle",
                    "id": "t",
                    "value": {
                        "labels": ["cat"],
                        "sequence": [
                            {
                                "frame": ls_frame[5],
                                "time": VFR_STAMPS[5],
                                "enabled": False,
                                "x": 10,
                                "y": 10,
                                "width": 10,
                                "height": 10,
                            }
                        ],
                    },
                },
            ],
        }
    ]
    path = tmp_path / "vfr.json"
    path.write_text(json.dumps(tasks))
    import_export(ws, path)
    frame = manifests.load(ws, "labels")
    frame = frame[~frame["resolved"]]
    segment = frame[frame["kind"] == "segment"].iloc[0]
    assert (segment["start_frame"], segment["end_frame"]) == (3, 6)
    assert segment["start_s"] == pytest.approx(0.4) and segment["end_s"] == pytest.approx(1.3)
    box = frame[frame["kind"] == "box"].iloc[0]
    assert box["frame_index"] == 5
    import av

    with av.open(row["path"]) as container:
        decoded = [
            read_frame_index(f.to_ndarray(format="rgb24")) for f in container.decode(video=0)
        ]
    assert decoded[3] == 3 and decoded[5] == 5 and decoded[6] == 6


def test_image_boxes_and_choices(tmp_path, raw):
    ws = _ws(tmp_path, raw, "boxes", folder="images")
    media = _media(ws)
    image = media["p.png"]
    path = write_export(
        tmp_path / "img.json",
        media.values(),
        [
            ExportAnnotation(
                image["media_id"], image_boxes=[("dog", (4.0, 2.0, 20.0, 10.0))], choices=["cat"]
            )
        ],
    )
    for fmt in ("JSON", "JSON_MIN"):
        path = write_export(
            tmp_path / f"img-{fmt}.json",
            media.values(),
            [
                ExportAnnotation(
                    image["media_id"],
                    image_boxes=[("dog", (4.0, 2.0, 20.0, 10.0))],
                    choices=["cat"],
                )
            ],
            fmt=fmt,
        )
        import_export(ws, path)
        frame = manifests.load(ws, "labels")
        box = frame[(frame["kind"] == "box") & ~frame["resolved"]].iloc[0]
        assert (box["x"], box["y"], box["w"], box["h"]) == pytest.approx((4.0, 2.0, 20.0, 10.0))
        assert box["frame_index"] == 0 and box["label"] == "dog"
        assert set(frame["kind"]) == {"box", "choice"}


def test_unsafe_task_paths_are_rejected(tmp_path, raw):
    ws = _ws(tmp_path, raw, "classification")
    media = _media(ws)
    tasks = make_export(
        media.values(),
        [ExportAnnotation(m["media_id"], choices=["cat"]) for m in media.values()],
        with_media_id=False,
    )
    tasks[0]["data"]["video"] = "/data/local-files/?d=../../../etc/passwd"
    tasks[1]["data"]["video"] = "file:///etc/passwd"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(tasks))
    report = import_export(ws, path)
    assert len(report.conversion.rejected) == 2 and not report.ok
    assert len(manifests.load(ws, "labels").query("resolved")) == len(media) - 2


@pytest.mark.parametrize(
    "url",
    [
        "/data/local-files/?d=../x.mp4",
        "/data/local-files/?d=/etc/passwd",
        "/data/local-files/?d=a/../../x.mp4",
        "http://evil.example.com/a.mp4",
        "/etc/passwd",
        "file:///etc/passwd",
        "C:\\x.mp4",
        "",
    ],
)
def test_task_media_path_rejects_escapes(url, tmp_path):
    with pytest.raises(UnsafeTaskPath):
        task_media_path(
            url,
            media_root=str(tmp_path),
            url_prefix="https://cdn.example.com/v",
            server_url="http://ls.local:8080",
            what="task 1",
        )


def test_task_media_path_accepts_what_push_writes(tmp_path):
    (tmp_path / "d").mkdir()
    kwargs = {
        "media_root": str(tmp_path),
        "url_prefix": "https://cdn.example.com/v",
        "server_url": "http://ls.local:8080",
        "what": "task 1",
    }
    assert task_media_path("/data/local-files/?d=d/a%20b.mp4", **kwargs) == "d/a b.mp4"
    assert task_media_path("https://cdn.example.com/v/d/x.mp4", **kwargs) == "d/x.mp4"
    assert task_media_path("http://ls.local:8080/data/upload/1/x.mp4", **kwargs) == "upload/1/x.mp4"
    link = tmp_path / "d" / "escape"
    link.symlink_to("/etc")
    with pytest.raises(UnsafeTaskPath, match="resolves outside"):
        task_media_path("/data/local-files/?d=d/escape/passwd", **kwargs)


def test_match_task_prefers_media_id_and_reports_unknown(tmp_path, raw):
    ws = _ws(tmp_path, raw)
    table = MediaTable.load(ws)
    media = _media(ws)
    kwargs = {"media_root": None, "url_prefix": None, "server_url": None}
    task = {
        "id": 1,
        "data": {"video": "/data/local-files/?d=x/b.mp4", "media_id": media["a.mp4"]["media_id"]},
    }
    assert match_task(task, table, **kwargs) == media["a.mp4"]["media_id"]
    with pytest.raises(LookupError, match="not in the media manifest"):
        match_task({"id": 2, "data": {"video": "/data/local-files/?d=x/zzz.mp4"}}, table, **kwargs)


def test_malformed_annotation_fails_whole_or_is_skipped(tmp_path, raw):
    ws = _ws(tmp_path, raw)
    media = _media(ws)
    good = write_export(
        tmp_path / "good.json",
        media.values(),
        [ExportAnnotation(media["a.mp4"]["media_id"], choices=["cat"])],
    )
    import_export(ws, good)
    before = ws.manifest_path("labels").read_bytes()
    tasks = json.loads(good.read_text())
    annotated = next(t for t in tasks if t["annotations"])
    annotated["annotations"][0]["result"].append(
        {"type": "timelinelabels", "value": {"ranges": [{"end": 3}], "timelinelabels": ["run"]}}
    )
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(tasks))
    with pytest.raises(ConversionError, match=f"task {annotated['id']}.*--on-error skip"):
        import_export(ws, bad)
    assert ws.manifest_path("labels").read_bytes() == before
    report = import_export(ws, bad, on_error="skip")
    assert len(report.conversion.errors) == 1 and report.rows == 0


def test_cli_import_stats_and_info(tmp_path, raw):
    ws = _ws(tmp_path, raw)
    media = _media(ws)
    path = write_export(tmp_path / "e.json", media.values(), _annotations(media), fmt="JSON_MIN")
    runner = CliRunner()
    result = runner.invoke(app, ["-w", str(ws.root), "labels", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert "JSON_MIN export" in result.output
    stats = runner.invoke(app, ["-w", str(ws.root), "labels", "stats", "--json"])
    assert stats.exit_code == 0
    data = json.loads(stats.output)
    assert data["annotators"] == ["x@example.com", "y@example.com"]
    # a.mp4 has two annotators: its 20 frames (segments) plus the media itself (choices)
    assert data["agreement"]["overall"]["items"] == media["a.mp4"]["frame_count"] + 1
    table = runner.invoke(app, ["-w", str(ws.root), "labels", "stats"])
    assert table.exit_code == 0 and "agreement" in table.output
    info = json.loads(runner.invoke(app, ["-w", str(ws.root), "info", "--json"]).output)
    assert info["labels"]["media_labelled"] == 2
    missing = runner.invoke(app, ["-w", str(ws.root), "labels", "import", "nope.json"])
    assert missing.exit_code == 2 and len(missing.output.strip().splitlines()) == 1
    no_key = runner.invoke(
        app, ["-w", str(ws.root), "labels", "sync"], env={"LABEL_STUDIO_API_KEY": ""}
    )
    assert no_key.exit_code == 2 and "LABEL_STUDIO_API_KEY" in no_key.output


# ------------------------------------------------------------------ hostile exports (issue 11)


def _labelled(ws, raw, tmp_path):
    """The workspace with labels of a.mp4 imported; returns (media, labels bytes)."""
    media = _media(ws)
    good = write_export(
        tmp_path / "a.json", media.values(), [ExportAnnotation(media["a.mp4"]["media_id"], ["cat"])]
    )
    import_export(ws, good)
    return media, ws.manifest_path("labels").read_bytes()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ([], "holds no tasks"),
        ({"tasks": [{"data": {"video": "x"}, "annotations": []}]}, "is a JSON object, expected"),
        ("text", "is a JSON str, expected"),
        ([1, 2], "item 0 is a int, expected"),
        (
            [{"id": 1, "data": {"video": "/data/local-files/?d=media/a.mp4"}, "annotations": []}],
            "no annotations",
        ),
        ([{"foo": 1}, {"bar": 2}], "no annotations"),
    ],
)
def test_not_an_export_or_no_annotations_is_refused_and_labels_untouched(
    tmp_path, raw, content, expected
):
    ws = _ws(tmp_path, raw)
    _, before = _labelled(ws, raw, tmp_path)
    path = tmp_path / "hostile.json"
    path.write_text(json.dumps(content))
    with pytest.raises(UsageError, match=expected) as error:
        import_export(ws, path)
    assert str(path) in str(error.value) and "Label Studio export" in str(error.value)
    assert ws.manifest_path("labels").read_bytes() == before
    result = CliRunner().invoke(app, ["-w", str(ws.root), "labels", "import", str(path)])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert ws.manifest_path("labels").read_bytes() == before


def test_import_merges_by_media_unless_replace(tmp_path, raw):
    ws = _ws(tmp_path, raw)
    media, _ = _labelled(ws, raw, tmp_path)
    a, b = media["a.mp4"]["media_id"], media["b.mp4"]["media_id"]
    only_b = make_export([media["b.mp4"]], [ExportAnnotation(b, choices=["dog"])])
    path = tmp_path / "b.json"
    path.write_text(json.dumps(only_b))
    report = import_export(ws, path)
    labels = {(r["media_id"], r["label"]) for r in manifests.records(manifests.load(ws, "labels"))}
    assert labels == {(a, "cat"), (b, "dog")}  # a.mp4 is not in the file: its labels stay
    assert (report.merge.mode, report.merge.media_updated, report.merge.media_kept) == (
        "merge",
        1,
        1,
    )
    result = CliRunner().invoke(app, ["-w", str(ws.root), "labels", "import", str(path)])
    assert result.exit_code == 0 and "merged by media" in result.output
    assert "labels of 1 other media kept" in " ".join(result.output.split())
    replaced = import_export(ws, path, replace=True)
    labels = {(r["media_id"], r["label"]) for r in manifests.records(manifests.load(ws, "labels"))}
    assert labels == {(b, "dog")}
    assert (replaced.merge.mode, replaced.merge.media_dropped) == ("replace", 1)
    result = CliRunner().invoke(
        app, ["-w", str(ws.root), "labels", "import", str(path), "--replace"]
    )
    assert result.exit_code == 0 and "replaced all labels" in result.output


def test_annotations_outside_their_media_fail_or_are_skipped_and_counted(tmp_path, raw):
    ws = _ws(tmp_path, raw)
    media, before = _labelled(ws, raw, tmp_path)
    b = media["b.mp4"]  # 15 frames
    tasks = make_export(
        [media["a.mp4"], b],
        [ExportAnnotation(b["media_id"], segments=[("run", 0, 4)])],
    )
    annotated = next(t for t in tasks if t["annotations"])
    results = annotated["annotations"][0]["result"]
    results[0]["value"]["ranges"] = [{"start": -50, "end": -10}]  # wholly outside
    path = tmp_path / "outside.json"
    path.write_text(json.dumps(tasks))
    with pytest.raises(ConversionError, match=f"task {annotated['id']}.*wholly outside"):
        import_export(ws, path)
    assert ws.manifest_path("labels").read_bytes() == before
    skipped = import_export(ws, path, on_error="skip")
    assert len(skipped.conversion.errors) == 1 and not skipped.ok
    results[0]["value"]["ranges"] = [{"start": 10, "end": 9000}]  # partly outside: clipped
    path.write_text(json.dumps(tasks))
    clipped = import_export(ws, path)
    assert len(clipped.conversion.clipped) == 1 and clipped.ok
    rows = manifests.records(manifests.load(ws, "labels"))
    segment = next(r for r in rows if r["media_id"] == b["media_id"] and not r["resolved"])
    assert (segment["start_frame"], segment["end_frame"]) == (9, b["frame_count"] - 1)
    result = CliRunner().invoke(app, ["-w", str(ws.root), "labels", "import", str(path)])
    assert result.exit_code == 0 and "clipped:" in result.output


def test_a_result_without_value_does_not_silently_drop_the_label(tmp_path, raw):
    ws = _ws(tmp_path, raw, "classification")
    media, before = _labelled(ws, raw, tmp_path)
    tasks = make_export([media["a.mp4"]], [ExportAnnotation(media["a.mp4"]["media_id"], ["dog"])])
    tasks[0]["annotations"][0]["result"][0]["value"] = None
    path = tmp_path / "null.json"
    path.write_text(json.dumps(tasks))
    with pytest.raises(ConversionError, match="has no value"):
        import_export(ws, path)
    assert ws.manifest_path("labels").read_bytes() == before
    report = import_export(ws, path, on_error="skip")
    assert len(report.conversion.errors) == 1
    # the media's earlier label is kept, not replaced by nothing
    labels = {r["label"] for r in manifests.records(manifests.load(ws, "labels"))}
    assert labels == {"cat"}


def test_class_names_from_imports_are_checked_and_name_the_task(tmp_path, raw):
    ws = _ws(tmp_path, raw, "classification")
    media, before = _labelled(ws, raw, tmp_path)
    tasks = make_export(
        [media["a.mp4"]], [ExportAnnotation(media["a.mp4"]["media_id"], ["../evil"])]
    )
    path = tmp_path / "evil.json"
    path.write_text(json.dumps(tasks))
    with pytest.raises(ConversionError, match=r"task 1: class name '\.\./evil'"):
        import_export(ws, path)
    assert ws.manifest_path("labels").read_bytes() == before
    result = CliRunner().invoke(app, ["-w", str(ws.root), "labels", "import", str(path)])
    assert result.exit_code != 0 and "task 1" in result.output and "../evil" in result.output
