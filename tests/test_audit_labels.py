"""``labels push --predictions RUN --suspects-only``: the audit's label suspects go back to a real
Label Studio server for review, as the run's pre-annotations, and nothing else does."""

from __future__ import annotations

import json
import uuid

import pytest


@pytest.fixture(scope="module")
def audited_ws(tmp_path_factory, labelstudio_server):
    """Gesture videos under the server's document root, a 1-epoch frame CNN, an audit with it."""
    from dataprep.audit.core import audit_workspace
    from dataprep.export.dataset import export_dataset
    from dataprep.frames import extract_frames
    from dataprep.ingest import ingest
    from dataprep.split import split_media
    from dataprep.stats import compute_stats
    from dataprep.testing.gestures import GESTURE_CLASSES, GestureSpec, write_gesture_set
    from dataprep.train.loop import TrainOptions, train_baseline
    from dataprep.workspace import init_workspace, open_workspace

    server = labelstudio_server
    tmp_path = tmp_path_factory.mktemp("suspects")
    raw = server.document_root / uuid.uuid4().hex[:8]
    write_gesture_set(raw, GestureSpec(per_class=3, size=32, frames=8, seed=8))
    ws = init_workspace(tmp_path / "ws", classes=list(GESTURE_CLASSES))
    ingest(ws, [raw], label_from_dir=True, mode="reference", jobs=1)
    extract_frames(ws, sampling="all", size="32", jobs=1)
    split_media(ws, ratios=[0.34, 0.33, 0.33], seed=0)
    compute_stats(ws, jobs=1)
    export_dataset(ws, format="tfrecord", unit="frame", name="frames")
    options = TrainOptions(
        export="frames", model="cnn", run_name="cnn1", epochs=1, batch_size=16, seed=0
    )
    train_baseline(ws, options, log=lambda line: None)
    audit_workspace(ws, run="cnn1")
    config = ws.config.model_copy(deep=True)
    config.labelstudio.url = server.url
    config.labelstudio.media_root = str(server.document_root)
    config.labelstudio.project = f"suspects-{uuid.uuid4().hex[:8]}"
    config.labelstudio.retries = 1
    ws.save_config(config)
    return open_workspace(ws.root)


@pytest.mark.labelstudio
def test_only_the_suspects_get_predictions(audited_ws, labelstudio_server, monkeypatch):
    from typer.testing import CliRunner

    from dataprep import manifests
    from dataprep.audit.suspects import suspect_media
    from dataprep.cli.main import app
    from dataprep.errors import UsageError
    from dataprep.labels.push import connect

    monkeypatch.setenv("LABEL_STUDIO_API_KEY", labelstudio_server.token)
    ws = audited_ws
    runner = CliRunner()
    args = ["-w", str(ws.root), "labels", "push", "--create", "--predictions", "cnn1"]
    rows = manifests.load(ws, "audit")
    if not (rows["kind"] == "label_suspect").any():  # a 1-epoch model may agree with every label
        with pytest.raises(UsageError, match="found no label suspects"):
            suspect_media(ws, "cnn1")
        result = runner.invoke(app, [*args, "--suspects-only"])
        assert result.exit_code == 2 and "found no label suspects" in result.output
        return
    suspects = set(suspect_media(ws, "cnn1"))
    result = runner.invoke(app, [*args, "--suspects-only", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    media = len(manifests.load(ws, "media"))
    assert report["added"] == media  # every media is a task ...
    assert report["predictions"]["added"] == len(suspects)  # ... only suspects get predictions
    assert report["predictions"]["not_suspects"] == media - len(suspects)
    client = connect(ws)
    project = report["project_id"]
    tasks = {t["id"]: t["data"]["media_id"] for t in client.list_tasks(project)}
    predicted = {tasks[p["task"]] for p in client.list_predictions(project)}
    assert predicted == suspects
    assert labelstudio_server.token not in result.output


def test_suspects_only_needs_predictions(tmp_path):
    from typer.testing import CliRunner

    from dataprep.cli.main import app
    from dataprep.workspace import init_workspace

    ws = init_workspace(tmp_path / "ws", classes=["a", "b"])
    result = CliRunner().invoke(app, ["-w", str(ws.root), "labels", "push", "--suspects-only"])
    assert result.exit_code == 2 and "--suspects-only needs --predictions RUN" in result.output
