"""``labels sync`` against a REAL Label Studio server never silently drops labels: labels of
media the project does not show are kept (merge by media) unless ``--replace``, and a full sync
that finds no annotation at all refuses to clear the labels of the project's media."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dataprep import manifests
from dataprep.cli.main import app
from dataprep.errors import UsageError
from dataprep.ingest import ingest
from dataprep.labels.importer import import_export
from dataprep.labels.push import connect, push
from dataprep.labels.sync import sync
from dataprep.testing import labelstudio as tls
from dataprep.testing.media import write_image, write_video
from dataprep.workspace import init_workspace, open_workspace

pytestmark = pytest.mark.labelstudio


def _labels(ws) -> set[tuple[str, str]]:
    frame = manifests.load(ws, "labels")
    return {(r["media_id"], r["label"]) for r in manifests.records(frame) if not r["resolved"]}


def test_sync_merges_by_media_and_replace_is_explicit(tmp_path, labelstudio_server, monkeypatch):
    server = labelstudio_server
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", server.token)
    folder = server.document_root / uuid.uuid4().hex[:8]
    write_video(folder / "v.mp4", 6, fps=10.0)
    write_image(folder / "p.png", 1, width=40, height=20)
    ws = init_workspace(tmp_path / "ws", classes=["cat", "dog"], label_type="classification")
    ingest(ws, [folder], mode="reference", jobs=1)
    config = ws.config.model_copy(deep=True)
    config.labelstudio.url = server.url
    config.labelstudio.media_root = str(server.document_root)
    config.labelstudio.project = f"merge-{uuid.uuid4().hex[:8]}"
    config.labelstudio.retries = 1
    ws = open_workspace(ws.save_config(config).root)
    media = {Path(r["path"]).name: r for r in manifests.records(manifests.load(ws, "media"))}
    video, image = media["v.mp4"]["media_id"], media["p.png"]["media_id"]
    # the image is labelled from an export; the project shows only the video
    export = tls.write_export(
        tmp_path / "img.json", [media["p.png"]], [tls.ExportAnnotation(image, ["cat"])]
    )
    import_export(ws, export)
    report = push(ws, kind="video", create=True)
    client = connect(ws)
    (task,) = client.list_tasks(report.project_id)
    annotation = client.create_annotation(task["id"], [tls.choice_result("dog")])

    merged = sync(ws)
    assert _labels(ws) == {(video, "dog"), (image, "cat")}  # the image's label is kept
    assert (merged.merge.mode, merged.merge.media_updated, merged.merge.media_kept) == (
        "merge",
        1,
        1,
    )
    cli = CliRunner().invoke(app, ["-w", str(ws.root), "labels", "sync", "--full"])
    assert cli.exit_code == 0 and "merged by media" in cli.output
    assert _labels(ws) == {(video, "dog"), (image, "cat")}

    replaced = sync(ws, full=True, replace=True)
    assert _labels(ws) == {(video, "dog")}
    assert (replaced.merge.mode, replaced.merge.media_dropped) == ("replace", 1)

    # all annotations deleted: a full sync refuses to clear the video's label without --replace
    client.delete_annotation(annotation["id"])
    before = ws.manifest_path("labels").read_bytes()
    with pytest.raises(UsageError, match="no annotations.*--replace") as error:
        sync(ws, full=True)
    assert server.token not in str(error.value)
    assert ws.manifest_path("labels").read_bytes() == before
    sync(ws, full=True, replace=True)
    assert _labels(ws) == set()
