"""The Ray engine on a real two-node local Ray cluster (head + one more node, 1 CPU each).

One cluster serves the whole module (starting one takes 10-20 s here); it is always shut down and
the test checks that none of its processes is left.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from ray_helpers import (
    is_alive,
    kill_driver_when,
    mtimes,
    node_pids,
    num_rows,
    sorted_manifest,
    tree_bytes,
)

from dataprep.engine import EngineError, EngineSpec, StagedRows, open_engine, rows_of
from dataprep.testing.engine import chunk_digests
from dataprep.testing.media import write_image, write_video

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_cluster():
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False}
    )
    pids: list[int] = []
    try:
        cluster.add_node(num_cpus=1)
        yield cluster
    finally:
        pids = node_pids(cluster)
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(is_alive(p) for p in pids):
            time.sleep(0.2)
        left = [p for p in pids if is_alive(p)]
        assert not left, f"Ray processes left running: {left}"


def _spec(cluster, **extra) -> EngineSpec:
    return EngineSpec(kind="ray", address=cluster.address, **extra)


@pytest.fixture
def media_files(tmp_path) -> list[str]:
    folder = tmp_path / "media"
    paths = [write_image(folder / f"img{i}.png", i, width=96, height=64) for i in range(5)]
    paths.append(write_video(folder / "clip.mp4", 12))
    return [str(p) for p in paths]


def test_map_runs_on_both_nodes_in_input_order_with_staged_rows(ray_cluster, media_files, tmp_path):
    out = tmp_path / "out"
    items = media_files * 2
    with open_engine(_spec(ray_cluster), reads=media_files, writes=[out]) as ex:
        results = list(ex.map(chunk_digests, items, rows_key="rows"))
        staged = [r["rows"] for r in results]
        assert all(isinstance(s, StagedRows) and Path(s.path).is_file() for s in staged)
        rows = [rows_of(s) for s in staged]
        assert len(ex.tasks_per_node) == 2, ex.tasks_per_node  # really ran on two nodes
        assert sum(ex.tasks_per_node.values()) == len(items)
    assert [r["path"] for r in results] == items
    local = [chunk_digests(p)["rows"] for p in items]
    assert rows == local
    assert {r["pid"] for r in results} - {os.getpid()}, "work ran in Ray workers"
    assert not (out / ".staging").exists(), "staged rows are removed at the end"


def test_chunks_and_plain_results(ray_cluster, media_files, tmp_path):
    with open_engine(_spec(ray_cluster, max_in_flight=1), writes=[tmp_path / "o"]) as ex:
        results = list(ex.map(chunk_digests, media_files, chunksize=4))
    assert [r["path"] for r in results] == media_files
    assert [r["rows"] for r in results] == [chunk_digests(p)["rows"] for p in media_files]


def test_unreadable_media_and_unwritable_output_fail_early(ray_cluster, media_files, tmp_path):
    missing = tmp_path / "media" / "gone.mp4"
    with (
        pytest.raises(EngineError, match=r"Ray node .* cannot read .*gone\.mp4.*every node mounts"),
        open_engine(_spec(ray_cluster), reads=[*media_files, missing]),
    ):
        pytest.fail("the check must fail before the body runs")
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    with (
        pytest.raises(EngineError, match=r"cannot write into .*blocker/out .*read-write"),
        open_engine(_spec(ray_cluster), writes=[blocker / "out"]),
    ):
        pytest.fail("the check must fail before the body runs")


def test_lost_worker_is_retried(ray_cluster, media_files, tmp_path):
    """A Ray worker killed (SIGKILL) mid-task: Ray reruns the task, the results are complete."""
    started = tmp_path / "started"
    started.mkdir()
    func = functools.partial(chunk_digests, delay_s=1.5, started_dir=str(started))
    with open_engine(_spec(ray_cluster), writes=[tmp_path / "o"]) as ex:
        results = ex.map(func, media_files, rows_key="rows")
        first = next(results)  # by now tasks are in flight on both nodes
        deadline = time.monotonic() + 30
        victim = None
        while victim is None and time.monotonic() < deadline:
            # a task started less than 1 s ago is still in its 1.5 s sleep: its worker is busy
            # (a worker that finished its task is idle, and killing it reruns nothing)
            recent = time.time_ns() - 1_000_000_000
            busy = [
                int(f.name.split("-")[0])
                for f in started.iterdir()
                if int(f.name.split("-")[1]) > recent and is_alive(int(f.name.split("-")[0]))
            ]
            victim = busy[0] if busy else None
            time.sleep(0.05)
        assert victim, "no task started"
        os.kill(victim, signal.SIGKILL)
        done = [first, *results]
        rows = [rows_of(r["rows"]) for r in done]  # staged rows live as long as the engine
    assert [r["path"] for r in done] == media_files
    assert rows == [chunk_digests(p)["rows"] for p in media_files]
    assert len(list(started.iterdir())) > len(media_files), "the killed task was run again"


_CHECK = """
import sys
from dataprep.engine import EngineError, EngineSpec, open_engine
from dataprep.testing.engine import chunk_digests
spec = EngineSpec(kind="ray", address=sys.argv[1], ship_package=sys.argv[2] == "ship")
try:
    with open_engine(spec, reads=[sys.argv[3]]) as ex:
        out = list(ex.map(chunk_digests, [sys.argv[3]] * 6))
        print("nodes", len(ex.tasks_per_node), "results", len(out))
except EngineError as exc:
    print(exc)
    sys.exit(3)
"""


def _check_in_driver(cluster, tmp_path, mode: str, path: str) -> subprocess.CompletedProcess:
    # A driver started elsewhere than the repository (as the `dataprep` command is): Ray puts
    # the driver's folder on its workers' sys.path, which would hide the broken node.
    return subprocess.run(
        [sys.executable, "-c", _CHECK, cluster.address, mode, path],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_node_without_dataprep_is_named_and_ship_package_fixes_it(ray_cluster, tmp_path):
    """A third node whose workers import a broken dataprep (shadowed on its PYTHONPATH)."""
    shadow = tmp_path / "shadow" / "dataprep"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('dataprep is not installed here')\n")
    node = ray_cluster.add_node(num_cpus=1, env_vars={"PYTHONPATH": str(shadow.parent)})
    readme = str(Path(__file__).resolve().parents[1] / "README.md")
    try:
        broken = _check_in_driver(ray_cluster, tmp_path, "plain", readme)
        assert broken.returncode == 3, broken.stdout + broken.stderr
        assert f"node {node.node_id[:8]}" in broken.stdout
        assert "cannot import dataprep (ImportError: dataprep is not installed here)" in (
            broken.stdout
        )
        assert "ship_package = true" in broken.stdout
        shipped = _check_in_driver(ray_cluster, tmp_path, "ship", readme)
        assert shipped.returncode == 0, shipped.stdout + shipped.stderr
        assert "results 6" in shipped.stdout
    finally:
        ray_cluster.remove_node(node)


# ------------------------------------------------------------------ the stages on the cluster

STAGE_SPEC = dict(per_class=2, size=48, frames=12, seed=5)


def _run_pipeline(ws, raw: Path, spec) -> None:
    from dataprep.augment_stage import augment_frames
    from dataprep.export.dataset import export_dataset
    from dataprep.frames import extract_frames
    from dataprep.ingest import ingest
    from dataprep.split import split_media
    from dataprep.stats import compute_stats

    ingest(ws, [raw], label_from_dir=True, jobs=2, engine=spec)
    extract_frames(ws, sampling="all", size="32", jobs=2, engine=spec)
    split_media(ws, ratios=[0.5, 0.25, 0.25], seed=0)
    compute_stats(ws, jobs=2, engine=spec)
    augment_frames(ws, pipeline="light", copies=1, seed=3, jobs=2, engine=spec)
    export_dataset(ws, format="tfrecord", unit="frame", shard_size="30KB", engine=spec)


@pytest.fixture(scope="module")
def both_engines(ray_cluster, tmp_path_factory):
    """The same raw media through every engine-aware stage, locally and on the cluster."""
    from dataprep.testing.gestures import GESTURE_CLASSES, GestureSpec, write_gesture_set
    from dataprep.workspace import init_workspace

    root = tmp_path_factory.mktemp("engines")
    write_gesture_set(root / "raw", GestureSpec(**STAGE_SPEC))
    from dataprep.engine import ray_engine

    spaces = {}
    for kind in ("local", "ray"):
        ws = init_workspace(root / kind, classes=list(GESTURE_CLASSES))
        spec = None if kind == "local" else _spec(ray_cluster)
        ray_engine.HISTORY.clear()
        _run_pipeline(ws, root / "raw", spec)
        spaces[kind] = ws
    # every stage's unit function really ran as Ray tasks, on both nodes where it had several
    # (stats has one chunk of frame files here: one task)
    tasks: dict[str, Counter] = {}
    for name, nodes in ray_engine.HISTORY:
        tasks.setdefault(name, Counter()).update(nodes)
    ran = {name: len(nodes) for name, nodes in tasks.items()}
    units = ("inspect_file", "extract_media", "_augment_media", "write_shard_task")
    assert {name: ran.get(name) for name in units} == dict.fromkeys(units, 2), ran
    assert ran.get("_chunk_sums") == 1, ran
    return spaces


def test_ingest_manifests_equal_row_for_row(both_engines):
    local, remote = both_engines["local"], both_engines["ray"]
    for name, key, drop in (("media", ["media_id"], ["ingested_at"]), ("files", ["path"], [])):
        a = sorted_manifest(local, name, key, drop)
        b = sorted_manifest(remote, name, key, drop)
        assert len(a) == 8
        assert a.equals(b), name


def test_frame_files_byte_identical_and_manifest_equal(both_engines):
    local, remote = both_engines["local"], both_engines["ray"]
    a, b = tree_bytes(local.frames_dir), tree_bytes(remote.frames_dir)
    assert len(a) > 8 * 12 and a == b  # extracted and augmented frames
    key = ["media_id", "copy_index", "frame_index"]
    assert sorted_manifest(local, "frames", key).equals(sorted_manifest(remote, "frames", key))
    assert not list(remote.frames_dir.glob(".tmp-*")) and not list(
        remote.frames_dir.rglob(".staging")
    )


def test_stats_json_identical(both_engines):
    from dataprep.stats import stats_path

    local, remote = both_engines["local"], both_engines["ray"]
    assert stats_path(local).read_bytes() == stats_path(remote).read_bytes()


def test_tfrecord_shards_byte_identical(both_engines):
    local, remote = both_engines["local"], both_engines["ray"]
    a = {k: v for k, v in tree_bytes(local.exports_dir).items() if ".tfrecord" in k}
    b = {k: v for k, v in tree_bytes(remote.exports_dir).items() if ".tfrecord" in k}
    assert len(a) >= 3 and a == b


def test_frames_killed_driver_rerun_finishes_without_redoing(ray_cluster, tmp_path):
    from dataprep.frames import extract_frames
    from dataprep.ingest import ingest
    from dataprep.testing.gestures import GESTURE_CLASSES, GestureSpec, write_gesture_set
    from dataprep.workspace import init_workspace

    write_gesture_set(tmp_path / "raw", GestureSpec(**{**STAGE_SPEC, "per_class": 3}))
    ws = init_workspace(tmp_path / "ws", classes=list(GESTURE_CLASSES))
    ingest(ws, [tmp_path / "raw"], label_from_dir=True, jobs=1)
    records = ws.state_dir / "frames"
    kill_driver_when(
        ray_cluster, ws, "frames", lambda: len(list(records.glob("*.json"))) >= 2, tmp_path
    )
    before = mtimes(records.glob("*.json"))
    assert 2 <= len(before) < 12
    report = extract_frames(ws, sampling="all", size="32", engine=_spec(ray_cluster))
    assert report.unchanged == len(before) and report.extracted == 12 - len(before)
    assert {k: v for k, v in mtimes(records.glob("*.json")).items() if k in before} == before
    local = init_workspace(tmp_path / "local", classes=list(GESTURE_CLASSES))
    ingest(local, [tmp_path / "raw"], label_from_dir=True, jobs=1)
    extract_frames(local, sampling="all", size="32", jobs=1)
    assert tree_bytes(ws.frames_dir) == tree_bytes(local.frames_dir)
    assert not list(ws.frames_dir.glob(".tmp-*"))
    # the manifest, committed by streaming merges of staged rows, equals the local one
    key = ["media_id", "frame_index", "copy_index"]
    assert sorted_manifest(ws, "frames", key).equals(sorted_manifest(local, "frames", key))
    assert not (records / ".parts").exists()


def test_export_killed_driver_rerun_keeps_finished_shards(ray_cluster, tmp_path, both_engines):
    import json

    from dataprep.export.dataset import export_dataset
    from dataprep.workspace import open_workspace

    shutil.copytree(both_engines["local"].root, tmp_path / "ws")
    ws = open_workspace(tmp_path / "ws")
    out = ws.exports_dir / "tfrecord-frame"
    shutil.rmtree(out)
    progress = out / ".export-progress.jsonl"

    def finished_shards() -> list[str]:
        try:
            lines = progress.read_text().splitlines()
        except OSError:
            return []
        return [json.loads(line)["shard"] for line in lines[1:] if line.endswith("}")]

    kill_driver_when(ray_cluster, ws, "export", lambda: len(finished_shards()) >= 2, tmp_path)
    done = finished_shards()
    before = mtimes(out / name for name in done)
    report = export_dataset(
        ws, format="tfrecord", unit="frame", shard_size="8KB", engine=_spec(ray_cluster)
    )
    assert report.resumed_shards >= len(before)
    assert mtimes(out / name for name in done) == before
    local = export_dataset(
        both_engines["local"], format="tfrecord", unit="frame", shard_size="8KB", name="small"
    )
    assert local.shards == report.shards
    shards = {k: v for k, v in tree_bytes(out).items() if ".tfrecord" in k}
    small = both_engines["local"].exports_dir / "small"
    assert shards == {k: v for k, v in tree_bytes(small).items() if ".tfrecord" in k}
    assert len(shards) > len(before)


def test_frames_overwrite_streams_the_same_manifest_as_local(ray_cluster, tmp_path, both_engines):
    """Frames redone with other settings over a workspace with augmented copies: the media are
    hidden from the manifest, then committed from staged parts; their copies are dropped."""
    from dataprep.frames import extract_frames
    from dataprep.workspace import open_workspace

    spaces = {}
    for kind in ("local", "ray"):
        shutil.copytree(both_engines[kind].root, tmp_path / kind)
        spaces[kind] = open_workspace(tmp_path / kind)
    engine = _spec(ray_cluster)
    extract_frames(spaces["local"], sampling="every", every=2, size="24", overwrite=True, jobs=1)
    report = extract_frames(
        spaces["ray"], sampling="every", every=2, size="24", overwrite=True, engine=engine
    )
    assert report.extracted == 8 and report.frames_total == 8 * 6
    key = ["media_id", "frame_index", "copy_index"]
    local, remote = (sorted_manifest(spaces[k], "frames", key) for k in ("local", "ray"))
    assert local.equals(remote) and not local["augmented"].any()
    assert tree_bytes(spaces["local"].frames_dir) == tree_bytes(spaces["ray"].frames_dir)
    assert not (spaces["ray"].state_dir / "frames" / ".parts").exists()


def test_ingest_killed_driver_rerun_finishes_without_redoing(ray_cluster, tmp_path):
    import pyarrow.parquet as pq

    from dataprep.ingest import ingest
    from dataprep.testing.gestures import GESTURE_CLASSES, GestureSpec, write_gesture_set
    from dataprep.workspace import init_workspace

    raw = tmp_path / "raw"
    write_gesture_set(raw, GestureSpec(**{**STAGE_SPEC, "per_class": 3}))
    ws = init_workspace(tmp_path / "ws", classes=list(GESTURE_CLASSES))
    files = ws.manifest_path("files")
    kill_driver_when(ray_cluster, ws, "ingest", lambda: num_rows(files) >= 2, tmp_path, str(raw))
    before = pq.read_table(files).column("path").to_pylist()
    assert 2 <= len(before) < 12
    assert (ws.state_dir / "ingest-index").is_dir(), "the killed driver's on-disk index"
    report = ingest(ws, [raw], label_from_dir=True, engine=_spec(ray_cluster))
    assert not (ws.state_dir / "ingest-index").exists(), "replaced, then removed at the end"
    # only the files the killed run had not committed were read again (gestures.json, not
    # media, is never committed: it is read each time)
    every = sorted(str(f) for f in raw.rglob("*") if f.is_file())
    rest = [p for p in every if p not in before]
    assert report.files == len(every) == 13 and len(rest) == 13 - len(before)
    assert report.bytes_read == sum(Path(p).stat().st_size for p in rest)
    local = init_workspace(tmp_path / "local", classes=list(GESTURE_CLASSES))
    ingest(local, [raw], label_from_dir=True, jobs=1)
    for name, key, drop in (("media", ["media_id"], ["ingested_at"]), ("files", ["path"], [])):
        a = sorted_manifest(local, name, key, drop)
        assert len(a) == 12 and a.equals(sorted_manifest(ws, name, key, drop)), name


def test_augment_killed_driver_rerun_finishes_without_redoing(ray_cluster, tmp_path, both_engines):
    from dataprep import manifests
    from dataprep.augment_stage import augment_frames
    from dataprep.workspace import open_workspace

    shutil.copytree(both_engines["ray"].root, tmp_path / "ws")
    ws = open_workspace(tmp_path / "ws")
    path = ws.manifest_path("frames")
    start = num_rows(path)
    kill_driver_when(ray_cluster, ws, "augment", lambda: num_rows(path) >= start + 2, tmp_path)
    frame = manifests.load(ws, "frames")
    second = frame[frame["copy_index"] == 2]
    extracted = int((~frame["augmented"]).sum())
    assert 2 <= len(second) < extracted, "killed before the second copies were all written"
    before = mtimes(ws.root / p for p in second["path"])
    report = augment_frames(ws, pipeline="light", copies=2, seed=3, engine=_spec(ray_cluster))
    assert report.kept == int(frame["augmented"].sum())  # copy 1 and the copies 2 committed
    assert report.written == extracted - len(second)
    assert mtimes(ws.root / p for p in second["path"]) == before
    assert not (ws.state_dir / "augment-parts").exists()
    shutil.copytree(both_engines["local"].root, tmp_path / "local")
    local = open_workspace(tmp_path / "local")
    augment_frames(local, pipeline="light", copies=2, seed=3, jobs=1)
    key = ["media_id", "frame_index", "copy_index"]
    assert sorted_manifest(local, "frames", key).equals(sorted_manifest(ws, "frames", key))
    assert tree_bytes(local.frames_dir) == tree_bytes(ws.frames_dir)


def test_stats_killed_driver_leaves_previous_file_and_rerun_is_identical(
    ray_cluster, tmp_path, both_engines
):
    from dataprep.stats import compute_stats, load_stats, stats_path
    from dataprep.workspace import open_workspace

    shutil.copytree(both_engines["ray"].root, tmp_path / "ws")
    ws = open_workspace(tmp_path / "ws")
    previous = compute_stats(ws, split="all", jobs=1)  # another split: another file
    old_bytes = stats_path(ws).read_bytes()
    kill_driver_when(
        ray_cluster, ws, "stats", lambda: (ws.root / "stats-started").exists(), tmp_path
    )
    assert stats_path(ws).read_bytes() == old_bytes
    assert load_stats(ws)["count_frames"] == previous["count_frames"]
    compute_stats(ws, engine=_spec(ray_cluster))
    shutil.copytree(both_engines["local"].root, tmp_path / "local")
    local = open_workspace(tmp_path / "local")
    compute_stats(local, jobs=1)  # the same frames (augmented copies included) on this machine
    assert stats_path(ws).read_bytes() == stats_path(local).read_bytes()
    assert stats_path(ws).read_bytes() != old_bytes
