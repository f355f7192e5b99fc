"""The Ray engine on a real two-node local Ray cluster (head + one more node, 1 CPU each).

One cluster serves the whole module (starting one takes 10-20 s here); it is always shut down and
the test checks that none of its processes is left.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dataprep.engine import EngineError, EngineSpec, StagedRows, open_engine, rows_of
from dataprep.testing.engine import chunk_digests
from dataprep.testing.media import write_image, write_video

pytestmark = pytest.mark.slow


def _pids(cluster) -> list[int]:
    pids = []
    for node in cluster.list_all_nodes():
        for infos in node.all_processes.values():
            pids.extend(info.process.pid for info in infos)
    return pids


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purpose
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


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
        pids = _pids(cluster)
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(_alive(p) for p in pids):
            time.sleep(0.2)
        left = [p for p in pids if _alive(p)]
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
            starts = sorted(started.iterdir(), key=lambda f: int(f.name.split("-")[1]))
            alive = [int(f.name.split("-")[0]) for f in starts if _alive(int(f.name.split("-")[0]))]
            victim = alive[-1] if alive else None  # the latest start: still running its task
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
