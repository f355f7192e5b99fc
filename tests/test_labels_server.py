"""Push, annotate, sync against a REAL Label Studio server (started by the session fixture).

Annotations are created through the API as a person would in the editor: key frames only for
box tracks, 1-based frames, percentages. Frame numbers are checked against the decoder by reading
the index each generated frame carries.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from pathlib import Path

import av
import pytest
from typer.testing import CliRunner

from dataprep import manifests
from dataprep.cli.main import app
from dataprep.ingest import ingest
from dataprep.labels.client import LabelStudioClient, LabelStudioError, ProjectNotFound
from dataprep.labels.push import connect, push
from dataprep.labels.sync import load_state, state_path, sync
from dataprep.testing import labelstudio as tls
from dataprep.testing.media import read_frame_index, write_video
from dataprep.workspace import init_workspace, open_workspace

pytestmark = pytest.mark.labelstudio

CLASSES = ["cat", "dog", "run"]


def _workspace(tmp_path: Path, server, monkeypatch, label_type: str, videos: dict[str, dict]):
    """A workspace with the given videos ingested in place under the server's document root."""
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", server.token)
    folder = server.document_root / uuid.uuid4().hex[:8]
    for name, options in videos.items():
        write_video(folder / name, **options)
    ws = init_workspace(tmp_path / "ws", classes=CLASSES, label_type=label_type)
    ingest(ws, [folder], mode="reference", jobs=1)
    config = ws.config.model_copy(deep=True)
    config.labelstudio.url = server.url
    config.labelstudio.media_root = str(server.document_root)
    config.labelstudio.project = f"test-{uuid.uuid4().hex[:8]}"
    config.labelstudio.retries = 1
    ws.save_config(config)
    return open_workspace(ws.root)


def _media(ws) -> dict[str, dict]:
    return {Path(r["path"]).name: r for r in manifests.records(manifests.load(ws, "media"))}


def _tasks(client, project_id) -> dict[str, dict]:
    return {t["data"]["file"]: t for t in client.list_tasks(project_id)}


def _labels(ws, resolved: bool = False) -> list[dict]:
    frame = manifests.load(ws, "labels")
    return manifests.records(frame[frame["resolved"] == resolved])


def _decoded_index(path: str, frame_index: int) -> int:
    with av.open(path) as container:
        for position, frame in enumerate(container.decode(video=0)):
            if position == frame_index:
                return read_frame_index(frame.to_ndarray(format="rgb24"))
    raise IndexError(frame_index)


def _server_export(server, project_id: int, fmt: str, path: Path) -> Path:
    """An export made by the server itself (what a person downloads from the UI)."""
    request = urllib.request.Request(
        f"{server.url}/api/projects/{project_id}/export?exportType={fmt}",
        headers={"Authorization": f"Token {server.token}"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        path.write_bytes(response.read())
    return path


def _assert_import_equals_sync(ws, server, project_id: int, tmp_path: Path) -> None:
    """Server-made JSON and JSON_MIN exports import to the rows sync wrote. Exports name
    annotators by user id, and JSON_MIN drops region ids and ground-truth flags."""
    from dataprep.labels.importer import import_export

    synced = manifests.load(ws, "labels").drop(columns=["annotator"])
    for fmt, dropped in (("JSON", []), ("JSON_MIN", ["track_id", "ground_truth"])):
        path = _server_export(server, project_id, fmt, tmp_path / f"export-{fmt}.json")
        report = import_export(ws, path)
        assert report.format == fmt and report.ok, report.to_dict()
        imported = manifests.load(ws, "labels").drop(columns=["annotator", *dropped])
        assert imported.equals(synced.drop(columns=dropped)), fmt


def test_push_creates_tasks_with_fps_and_a_second_push_adds_nothing(
    tmp_path, labelstudio_server, monkeypatch
):
    server = labelstudio_server
    ws = _workspace(
        tmp_path,
        server,
        monkeypatch,
        "classification",
        {"a.mp4": {"n_frames": 12, "fps": 12.0}, "b.mp4": {"n_frames": 9, "fps": 25.0}},
    )
    report = push(ws, create=True)
    assert report.created_project and report.added == 2 and report.ok
    client = connect(ws)
    project = client.find_project(ws.config.labelstudio.project)
    assert 'frameRate="$fps"' in project.label_config
    assert "<Choices" in project.label_config and 'value="dog"' in project.label_config
    media = _media(ws)
    tasks = _tasks(client, report.project_id)
    for name in ("a.mp4", "b.mp4"):
        data = tasks[name]["data"]
        assert data["media_id"] == media[name]["media_id"]
        assert data["fps"] == pytest.approx(media[name]["fps"])
        # the local-files storage serves the very file
        request = urllib.request.Request(
            server.url + data["video"], headers={"Authorization": f"Token {server.token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.read() == Path(media[name]["path"]).read_bytes()
    again = push(open_workspace(ws.root))
    assert (again.added, again.already_present, again.created_project) == (0, 2, False)
    assert len(client.list_tasks(report.project_id)) == 2
    # the configured project (a title here) is kept; the key is never written to the config
    assert open_workspace(ws.root).config.labelstudio.project == ws.config.labelstudio.project
    assert server.token not in ws.config_path.read_text()


def test_round_trip_segments_match_decoder_frames(tmp_path, labelstudio_server, monkeypatch):
    ws = _workspace(
        tmp_path,
        labelstudio_server,
        monkeypatch,
        "segments",
        {"clip.mp4": {"n_frames": 40, "fps": 30000 / 1001}},
    )
    report = push(ws, create=True)
    client = connect(ws)
    project = client.find_project(str(report.project_id))
    assert "<TimelineLabels" in project.label_config
    task = _tasks(client, report.project_id)["clip.mp4"]
    client.create_annotation(
        task["id"],
        [tls.timeline_result("run", [(0, 9), (25, 39)]), tls.timeline_result("cat", [(12, 12)])],
    )
    sync(ws)
    rows = sorted(_labels(ws), key=lambda r: r["start_frame"])
    assert [(r["label"], r["start_frame"], r["end_frame"]) for r in rows] == [
        ("run", 0, 9),
        ("cat", 12, 12),
        ("run", 25, 39),
    ]
    path = _media(ws)["clip.mp4"]["path"]
    for row in rows:
        assert _decoded_index(path, row["start_frame"]) == row["start_frame"]
        assert _decoded_index(path, row["end_frame"]) == row["end_frame"]
    assert rows[1]["start_s"] == pytest.approx(12 * 1001 / 30000)
    assert all(r["kind"] == "segment" and r["task_id"] == task["id"] for r in rows)
    _assert_import_equals_sync(ws, labelstudio_server, report.project_id, tmp_path)


def test_round_trip_interpolated_box_tracks_in_pixels(tmp_path, labelstudio_server, monkeypatch):
    ws = _workspace(
        tmp_path,
        labelstudio_server,
        monkeypatch,
        "boxes",
        {"boxes.mp4": {"n_frames": 20, "fps": 10.0, "width": 64, "height": 48}},
    )
    report = push(ws, create=True)
    client = connect(ws)
    assert "<VideoRectangle" in client.find_project(str(report.project_id)).label_config
    task = _tasks(client, report.project_id)["boxes.mp4"]
    track = tls.Track(
        "dog",
        [
            (2, 0, 8, 16, 16, True),
            (6, 32, 8, 16, 16, False),
            (10, 40, 20, 8, 8, True),
            (12, 48, 20, 8, 8, False),
        ],
    )
    client.create_annotation(
        task["id"], [tls.video_box_result(track, fps=10.0, width=64, height=48, frame_count=20)]
    )
    sync(ws)
    rows = sorted(_labels(ws), key=lambda r: r["frame_index"])
    assert [r["frame_index"] for r in rows] == [2, 3, 4, 5, 6, 10, 11, 12]
    assert [r["keyframe"] for r in rows] == [True, False, False, False, True, True, False, True]
    by_frame = {r["frame_index"]: r for r in rows}
    assert by_frame[4]["x"] == pytest.approx(16.0) and by_frame[4]["y"] == pytest.approx(8.0)
    assert by_frame[11]["x"] == pytest.approx(44.0) and by_frame[11]["w"] == pytest.approx(8.0)
    assert {r["track_id"] for r in rows} == {rows[0]["track_id"]}
    path = _media(ws)["boxes.mp4"]["path"]
    assert _decoded_index(path, 6) == 6 and _decoded_index(path, 11) == 11
    _assert_import_equals_sync(ws, labelstudio_server, report.project_id, tmp_path)


def test_incremental_sync_follows_edits_deletes_cancels_and_equals_full(
    tmp_path, labelstudio_server, monkeypatch
):
    ws = _workspace(
        tmp_path,
        labelstudio_server,
        monkeypatch,
        "classification",
        {f"v{i}.mp4": {"n_frames": 6 + i, "fps": 10.0} for i in range(4)},
    )
    report = push(ws, create=True)
    client = connect(ws)
    tasks = _tasks(client, report.project_id)
    users = client.users()
    second = _user(client, users, "second@example.com")
    first = {
        name: client.create_annotation(t["id"], [tls.choice_result("cat")])
        for name, t in tasks.items()
    }
    client.create_annotation(tasks["v0.mp4"]["id"], [tls.choice_result("dog")], completed_by=second)
    initial = sync(ws)
    assert initial.mode == "full" and initial.tasks_fetched == 4
    assert len(_labels(ws)) == 5

    client.update_annotation(first["v1.mp4"]["id"], result=[tls.choice_result("dog")])
    client.delete_annotation(first["v2.mp4"]["id"])
    client.create_annotation(tasks["v3.mp4"]["id"], [], was_cancelled=True)
    step = sync(ws)
    assert step.mode == "incremental"
    assert step.tasks_fetched == 3 and step.tasks_total == 4
    media = {name: row["media_id"] for name, row in _media(ws).items()}
    assert {r["label"] for r in _labels(ws) if r["media_id"] == media["v1.mp4"]} == {"dog"}
    assert not [r for r in _labels(ws) if r["media_id"] == media["v2.mp4"]]
    assert len([r for r in _labels(ws) if r["media_id"] == media["v3.mp4"]]) == 1  # cancel: no row
    assert step.conversion.cancelled == 1
    annotators = {r["annotator"] for r in _labels(ws) if r["media_id"] == media["v0.mp4"]}
    assert annotators == {labelstudio_server.username, "second@example.com"}

    nothing = sync(ws)
    assert nothing.mode == "incremental" and nothing.tasks_fetched == 0

    # killed between writing the manifest and the cursor: the stale cursor is detected
    stale_cursor = state_path(ws).read_bytes()
    client.update_annotation(first["v0.mp4"]["id"], result=[tls.choice_result("run")])
    sync(ws)
    state_path(ws).write_bytes(stale_cursor)
    recovered = sync(ws)
    assert recovered.mode == "full"
    assert {r["label"] for r in _labels(ws) if r["media_id"] == media["v0.mp4"]} == {"run", "dog"}
    incremental = manifests.load(ws, "labels")
    full = sync(ws, full=True)
    assert full.mode == "full" and full.tasks_fetched == 4
    assert manifests.load(ws, "labels").equals(incremental)


def _user(client, users: dict[int, str], email: str) -> int:
    for user_id, known in users.items():
        if known == email:
            return user_id
    created = client.call(
        "creating a user",
        lambda: client._sdk.users.create(
            email=email, username=email.split("@")[0], password=uuid.uuid4().hex
        ),
    )
    return created.id


def test_majority_over_annotators_and_stats(tmp_path, labelstudio_server, monkeypatch):
    from dataprep.labels.stats import labels_stats

    ws = _workspace(
        tmp_path,
        labelstudio_server,
        monkeypatch,
        "classification",
        {"m.mp4": {"n_frames": 5, "fps": 5.0}, "n.mp4": {"n_frames": 6, "fps": 5.0}},
    )
    report = push(ws, create=True)
    client = connect(ws)
    users = client.users()
    ids = [_user(client, users, f"ann{i}@example.com") for i in range(3)]
    tasks = _tasks(client, report.project_id)
    for user_id, label in zip(ids, ["cat", "dog", "cat"], strict=True):
        client.create_annotation(
            tasks["m.mp4"]["id"], [tls.choice_result(label)], completed_by=user_id
        )
    for user_id, label in zip(ids, ["dog", "dog", "dog"], strict=True):
        gt = user_id == ids[2]
        client.create_annotation(
            tasks["n.mp4"]["id"], [tls.choice_result(label)], completed_by=user_id, ground_truth=gt
        )
    sync(ws, resolve="majority")
    media = {name: row["media_id"] for name, row in _media(ws).items()}
    resolved = {r["media_id"]: r["label"] for r in _labels(ws, resolved=True)}
    assert resolved == {media["m.mp4"]: "cat", media["n.mp4"]: "dog"}
    assert sum(r["ground_truth"] for r in _labels(ws)) == 1
    stats = labels_stats(ws)
    assert stats["agreement"]["overall"]["items"] == 2
    # m: 1 of 3 pairs agree, n: 3 of 3 -> (1/3 + 1) / 2
    assert stats["agreement"]["overall"]["percent_agreement"] == pytest.approx(66.6667, abs=1e-3)
    assert set(stats["agreement"]["per_class"]) == set(CLASSES)


def test_failed_sync_leaves_labels_untouched(tmp_path, labelstudio_server, monkeypatch):
    server = labelstudio_server
    ws = _workspace(
        tmp_path, server, monkeypatch, "classification", {"f.mp4": {"n_frames": 5, "fps": 5.0}}
    )
    report = push(ws, create=True)
    client = connect(ws)
    task = next(iter(_tasks(client, report.project_id).values()))
    client.create_annotation(task["id"], [tls.choice_result("cat")])
    sync(ws)
    labels_path = ws.manifest_path("labels")
    before = labels_path.read_bytes()
    state_before = state_path(ws).read_bytes()
    client.create_annotation(task["id"], [tls.choice_result("dog")])

    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "not-the-key")
    with pytest.raises(LabelStudioError, match="refused the API key") as bad_key:
        sync(ws)
    assert "not-the-key" not in str(bad_key.value) and server.url in str(bad_key.value)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", server.token)

    class StopsMidway(LabelStudioClient):
        """The server goes down after the task list was read, before annotations are."""

        def tasks_with_annotations(self, project_id, task_ids=None):
            server.stop()
            return super().tasks_with_annotations(project_id, task_ids)

    midway = StopsMidway(server.url, server.token, retries=1, backoff_s=0.1)
    try:
        with pytest.raises(LabelStudioError, match="cannot connect") as down:
            sync(ws, client=midway)
        assert server.url in str(down.value) and "connection refused" in str(down.value)
        assert labels_path.read_bytes() == before
        assert state_path(ws).read_bytes() == state_before
    finally:
        server.start()
    sync(ws)
    assert {r["label"] for r in _labels(ws)} == {"cat", "dog"}


def test_connection_refused_and_missing_project_are_one_line(
    tmp_path, labelstudio_server, monkeypatch
):
    ws = _workspace(
        tmp_path,
        labelstudio_server,
        monkeypatch,
        "classification",
        {"x.mp4": {"n_frames": 3, "fps": 5.0}},
    )
    dead = f"http://127.0.0.1:{tls.free_port()}"
    with pytest.raises(LabelStudioError) as refused:
        sync(ws, url=dead)
    message = str(refused.value)
    assert dead in message and "connection refused" in message and "\n" not in message
    with pytest.raises(ProjectNotFound, match="no project with id 987654"):
        sync(ws, project="987654")
    with pytest.raises(ProjectNotFound, match="--create"):
        push(ws, project="no such project")


def test_task_paths_escaping_the_media_root_are_rejected(tmp_path, labelstudio_server, monkeypatch):
    ws = _workspace(
        tmp_path,
        labelstudio_server,
        monkeypatch,
        "classification",
        {"ok.mp4": {"n_frames": 3, "fps": 5.0}},
    )
    report = push(ws, create=True)
    client = connect(ws)
    client.import_tasks(
        report.project_id,
        [
            {"video": "/data/local-files/?d=../../etc/passwd", "fps": 5.0},
            {"video": "http://evil.example.com/ok.mp4", "fps": 5.0},
            {"video": "/data/local-files/?d=%2Fetc%2Fpasswd", "fps": 5.0},
        ],
    )
    for task in client.list_tasks(report.project_id):
        client.create_annotation(task["id"], [tls.choice_result("cat")])
    result = sync(ws)
    assert len(result.conversion.rejected) == 3 and not result.ok
    assert all("rejected" in line or "leaves" in line for line in result.conversion.rejected)
    rows = _labels(ws)
    assert len(rows) == 1 and rows[0]["media_id"] == _media(ws)["ok.mp4"]["media_id"]
    runner = CliRunner()
    cli = runner.invoke(app, ["-w", str(ws.root), "labels", "sync"])
    assert cli.exit_code == 1 and "rejected" in cli.output


def test_api_key_never_written_or_printed(tmp_path, labelstudio_server, monkeypatch):
    server = labelstudio_server
    ws = _workspace(
        tmp_path, server, monkeypatch, "classification", {"k.mp4": {"n_frames": 4, "fps": 5.0}}
    )
    runner = CliRunner()
    outputs = []
    for args in (
        ["labels", "push", "--create"],
        ["labels", "sync"],
        ["labels", "sync", "--full"],
        ["labels", "stats"],
        ["info", "--json"],
        ["labels", "sync", "--json"],
    ):
        result = runner.invoke(app, ["-w", str(ws.root), *args])
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
    client = connect(open_workspace(ws.root))
    project_id = int(client.find_project(ws.config.labelstudio.project).id)
    task = next(iter(_tasks(client, project_id).values()))
    client.create_annotation(task["id"], [tls.choice_result("dog")])
    result = runner.invoke(app, ["-w", str(ws.root), "labels", "sync"])
    outputs.append(result.output)
    assert result.exit_code == 0 and {r["label"] for r in _labels(open_workspace(ws.root))} == {
        "dog"
    }
    # failures print one line without the key either (a wrong key is a secret too)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "wrong-" + server.token)
    failed = runner.invoke(app, ["-w", str(ws.root), "labels", "sync"])
    assert failed.exit_code != 0 and len(failed.output.strip().splitlines()) == 1
    outputs.append(failed.output)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", server.token)
    dead = runner.invoke(
        app, ["-w", str(ws.root), "labels", "sync", "--url", f"http://127.0.0.1:{tls.free_port()}"]
    )
    assert dead.exit_code != 0 and "connection refused" in dead.output
    outputs.append(dead.output)
    for text in outputs:
        assert server.token not in text
    written = [p for p in ws.root.rglob("*") if p.is_file()]
    assert state_path(ws) in written and ws.manifest_path("labels") in written
    for path in written:
        assert server.token.encode() not in path.read_bytes(), path
    assert json.dumps(load_state(ws)).find(server.token) == -1


def test_every_generated_labeling_config_is_accepted(labelstudio_server, monkeypatch):
    from dataprep.labels.config_xml import TEMPLATES, labeling_config

    client = LabelStudioClient(labelstudio_server.url, labelstudio_server.token)
    for label_type, kind in TEMPLATES:
        title = f"config-{label_type}-{kind}-{uuid.uuid4().hex[:6]}"
        project = client.create_project(title, labeling_config(["a", "b <&> c"], label_type, kind))
        assert client.find_project(title).id == project.id


def test_images_with_boxes_and_url_prefix_and_media_outside_the_root(
    tmp_path, labelstudio_server, monkeypatch
):
    from dataprep.testing.media import write_image

    server = labelstudio_server
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", server.token)
    folder = server.document_root / uuid.uuid4().hex[:8]
    write_image(folder / "p.png", 3, width=80, height=40)
    write_image(tmp_path / "outside" / "q.png", 4, width=80, height=40)
    ws = init_workspace(tmp_path / "ws", classes=CLASSES, label_type="boxes")
    ingest(ws, [folder, tmp_path / "outside"], mode="reference", jobs=1)
    config = ws.config.model_copy(deep=True)
    config.labelstudio.url = server.url
    ws = ws.save_config(config)
    title = f"img-{uuid.uuid4().hex[:6]}"
    report = push(ws, project=title, create=True, media_root=str(server.document_root))
    assert report.added == 1 and len(report.errors) == 1
    assert "outside the media root" in report.errors[0] and not report.ok
    client = connect(ws)
    assert "<RectangleLabels" in client.find_project(title).label_config
    task = _tasks(client, report.project_id)["p.png"]
    assert task["data"]["image"].startswith("/data/local-files/?d=")
    client.create_annotation(
        task["id"], [tls.image_box_result("cat", (8.0, 4.0, 40.0, 20.0), width=80, height=40)]
    )
    sync(open_workspace(ws.root))
    (row,) = _labels(open_workspace(ws.root))
    assert (row["x"], row["y"], row["w"], row["h"]) == pytest.approx((8.0, 4.0, 40.0, 20.0))
    assert row["frame_index"] == 0 and row["kind"] == "box"

    prefixed = push(
        open_workspace(ws.root),
        project=f"cdn-{uuid.uuid4().hex[:6]}",
        create=True,
        media_root=str(tmp_path),
        media_url_prefix="https://cdn.example.com/media",
    )
    urls = {t["data"]["file"]: t["data"]["image"] for t in client.list_tasks(prefixed.project_id)}
    assert urls == {"q.png": "https://cdn.example.com/media/outside/q.png"}
