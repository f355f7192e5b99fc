"""Multi-worker training: two real TensorFlow workers on localhost (MultiWorkerMirroredStrategy).

Tolerance: with shuffling off, step ``k`` of two workers with batch 8 each sees exactly the
examples of step ``k`` of one worker with batch 16 (the export has two equal train shards; one
worker interleaves them, each of two workers reads one). The model (``cnn``) has no batch
normalization or dropout, so the only difference is the order of float additions in the
gradient all-reduce: losses agree to a relative 1e-4 per step (measured: about 1e-6).
"""

from __future__ import annotations

import csv
import json

import pytest

from dataprep.testing.gestures import GESTURE_CLASSES, GestureSpec, write_gesture_set

pytestmark = pytest.mark.slow

SPEC = GestureSpec(per_class=4, size=32, frames=8, seed=3)
RTOL = 1e-4


@pytest.fixture(scope="module")
def two_shard_ws(tmp_path_factory):
    """A frame export whose train split is two shards of equal size."""
    from dataprep.export.dataset import export_dataset
    from dataprep.frames import extract_frames
    from dataprep.ingest import ingest
    from dataprep.split import split_media
    from dataprep.stats import compute_stats
    from dataprep.workspace import init_workspace

    root = tmp_path_factory.mktemp("dist")
    write_gesture_set(root / "raw", SPEC)
    ws = init_workspace(root / "ws", classes=list(GESTURE_CLASSES))
    ingest(ws, [root / "raw"], label_from_dir=True, jobs=1)
    extract_frames(ws, sampling="all", size="32", jobs=1)
    split_media(ws, ratios=[0.5, 0.25, 0.25], seed=0)
    compute_stats(ws, jobs=1)
    export_dataset(ws, format="tfrecord", unit="frame", name="frames", shard_size="40KB")
    return ws


def _steps(run_dir) -> list[float]:
    with open(run_dir / "train_steps.csv", newline="") as handle:
        return [float(row["loss"]) for row in csv.DictReader(handle)]


def _shard_sizes(ws) -> list[int]:
    from dataprep.tfrecord_reader import iter_records

    export = ws.exports_dir / "frames"
    shards = json.loads((export / "dataset_info.json").read_text())["splits"]["train"]["shards"]
    return [sum(1 for _ in iter_records(export / name)) for name in shards]


def test_two_workers_match_one_worker_step_for_step(two_shard_ws):
    from dataprep.train.launch import launch_local
    from dataprep.train.options import TrainOptions

    ws = two_shard_ws
    assert _shard_sizes(ws) == [32, 32]  # what makes the per-step batches identical
    runs = {}
    for workers, batch in ((2, 8), (1, 16)):
        options = TrainOptions(export="frames", model="cnn", epochs=1, batch_size=batch, seed=0)
        lines: list[str] = []
        runs[workers] = launch_local(
            ws.root,
            options,
            workers,
            run_name=f"w{workers}",
            shuffle=False,
            timeout_s=400,
            log=lines.append,
        )
        assert any("MultiWorkerMirroredStrategy" in line for line in lines), lines
    two, one = _steps(runs[2]), _steps(runs[1])
    assert len(two) == len(one) == 4  # 64 examples / 16
    assert two == pytest.approx(one, rel=RTOL)
    assert two[-1] < two[0], "the loss goes down"
    # the same run folder as single-machine training, written once (by the chief)
    for name in ("config.json", "model.keras", "checkpoints/best.keras", "history.csv"):
        assert (runs[2] / name).is_file(), name
    for name in ("metrics.json", "confusion.png", "curves.png"):
        assert (runs[2] / name).is_file(), name
    metrics = json.loads((runs[2] / "metrics.json").read_text())
    assert metrics["training"]["workers"] == 2
    config = json.loads((runs[2] / "config.json").read_text())
    assert config["global_batch_size"] == 16
    assert config["devices"]["strategy"] == "MultiWorkerMirroredStrategy"


def test_model_of_a_distributed_run_loads_and_evaluates(two_shard_ws):
    from dataprep.train.evaluate import evaluate_run

    metrics = evaluate_run(two_shard_ws, "w2", split="val")
    assert 0.0 <= metrics["accuracy"] <= 1.0
    assert metrics["examples"] > 0


def test_a_failing_worker_is_named_by_the_cli(two_shard_ws):
    """``train-baseline --workers 2`` (the CLI path): a worker that fails stops the others and
    is named, with its message; a usage error there is one here (exit code 2)."""
    import subprocess
    import sys

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dataprep.cli.main",
            "-w",
            str(two_shard_ws.root),
            "train-baseline",
            "--export",
            "no-such-export",
            "--model",
            "cnn",
            "--workers",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "training worker" in result.stderr and "of 2 failed" in result.stderr, result.stderr
    assert "no complete export" in result.stderr
    assert not list(two_shard_ws.runs_dir.glob("*-2workers"))
