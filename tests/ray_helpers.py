"""Helpers of the Ray engine tests (tests/test_engine_ray.py): process checks, file trees,
sorted manifests, and a stage driver started in its own process to be killed mid-run."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path


def node_pids(cluster) -> list[int]:
    pids = []
    for node in cluster.list_all_nodes():
        for infos in node.all_processes.values():
            pids.extend(info.process.pid for info in infos)
    return pids


def is_alive(pid: int) -> bool:
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


def tree_bytes(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones excluded) by relative path."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    }


def sorted_manifest(ws, name: str, key: list[str], drop=()):
    from dataprep import manifests

    frame = manifests.load(ws, name).drop(columns=list(drop))
    return frame.sort_values(key).reset_index(drop=True)


DRIVER = """
import sys, time
from pathlib import Path
from dataprep.engine import EngineSpec
from dataprep.workspace import open_workspace
ws = open_workspace(Path(sys.argv[2]))
spec = EngineSpec(kind="ray", address=sys.argv[1], max_in_flight=2)
stage = sys.argv[3]
def slow(*args):  # a slow driver: the run is still going when the test kills it
    time.sleep(0.25)
if stage == "frames":
    from dataprep.frames import extract_frames
    extract_frames(ws, sampling="all", size="32", engine=spec)
elif stage == "export":
    from dataprep.export.dataset import export_dataset
    export_dataset(ws, format="tfrecord", unit="frame", shard_size="8KB", engine=spec)
elif stage == "ingest":
    from dataprep.ingest import ingest
    ingest(ws, [Path(sys.argv[4])], label_from_dir=True, engine=spec, progress=slow)
elif stage == "augment":
    from dataprep.augment_stage import augment_frames
    augment_frames(ws, pipeline="light", copies=2, seed=3, engine=spec, progress=slow)
elif stage == "stats":
    from dataprep import stats
    stats.CHUNK_FILES = 8  # several tasks, so that the run is killed between two of them
    def started(done, total):
        if done:
            (ws.root / "stats-started").touch()
        slow()
    stats.compute_stats(ws, engine=spec, progress=started)
"""


def kill_driver_when(cluster, ws, stage: str, ready, tmp_path, *args: str) -> None:
    """Starts a driver process for ``stage`` and SIGKILLs it once ``ready()`` is true (with
    a checkpoint after every item, so that a kill finds some of them committed)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", DRIVER, cluster.address, str(ws.root), stage, *args],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "DATAPREP_CHECKPOINT_SECONDS": "0"},
    )
    try:
        deadline = time.monotonic() + 240
        while not ready() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, "the driver finished before it could be killed"
        proc.kill()
    finally:
        proc.wait()


def mtimes(paths) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in paths}


def num_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path).metadata.num_rows  # replaced atomically: always whole
    except (OSError, ValueError):
        return 0
