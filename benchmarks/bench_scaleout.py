"""Scale-out: ``--engine ray`` against ``--engine local`` on the same input, and multi-worker
training (2 workers against 1).

The Ray rows run on a local two-node Ray cluster (``ray.cluster_utils.Cluster``, 1 CPU per
node) on this machine, so they measure Ray's fixed and per-task costs, not a speed-up: the
cores are the same. From them the module derives the input size above which a real cluster of
``CLUSTER_CPUS`` CPUs finishes sooner than this machine (the ``break-even`` rows):

    local(N) = N * t / L            (t: CPU-seconds per item, L: local cores)
    ray(N)   = F + N * (t + o) / C  (F: connect + node checks, o: Ray's per-task overhead)
    N*       = F / (t / L - (t + o) / C)

Training rows: images/s of the last epoch with 2 localhost workers (MultiWorkerMirroredStrategy,
batch 16 each) against 1 worker with batch 16 (same per-worker batch) and with batch 32 (same
global batch, so the same work per step); all three go through :mod:`dataprep.train.distributed`.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from common import row

CLUSTER_CPUS = 64  # a modest KubeRay cluster (e.g. 8 nodes x 8 CPUs)


def _workspace(root: Path, videos: int):
    from dataprep.ingest import ingest
    from dataprep.testing.gestures import GESTURE_CLASSES, GestureSpec, write_gesture_set
    from dataprep.workspace import init_workspace

    spec = GestureSpec(per_class=max(1, videos // 4), size=64, frames=24, seed=1)
    write_gesture_set(root / "raw", spec)
    ws = init_workspace(root / "ws", classes=list(GESTURE_CLASSES))
    ingest(ws, [root / "raw"], label_from_dir=True, jobs=1)
    return ws


def _copy(ws, target: Path):
    from dataprep.workspace import open_workspace

    shutil.copytree(ws.root, target)
    return open_workspace(target)


def _stage_times(ws, spec, jobs: int) -> dict[str, float]:
    from dataprep.export.dataset import export_dataset
    from dataprep.frames import extract_frames
    from dataprep.split import split_media
    from dataprep.stats import compute_stats

    times = {}
    started = time.perf_counter()
    extract_frames(ws, sampling="all", size="64", jobs=jobs, engine=spec)
    times["frames"] = time.perf_counter() - started
    split_media(ws, ratios=[0.6, 0.2, 0.2], seed=0)
    started = time.perf_counter()
    compute_stats(ws, jobs=jobs, engine=spec)
    times["stats"] = time.perf_counter() - started
    started = time.perf_counter()
    export_dataset(ws, format="tfrecord", unit="frame", shard_size="200KB", engine=spec)
    times["export"] = time.perf_counter() - started
    return times


def _engine_rows(workdir: Path, quick: bool) -> list[dict]:
    import ray
    from ray.cluster_utils import Cluster

    from dataprep.engine import EngineSpec, open_engine

    videos = 8 if quick else 32
    base = _workspace(workdir / "engine", videos)
    local_ws, ray_ws = _copy(base, workdir / "local"), _copy(base, workdir / "ray")
    jobs = min(2, os.cpu_count() or 1)
    local = _stage_times(local_ws, None, jobs)
    started = time.perf_counter()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        cluster.add_node(num_cpus=1)
        cluster_start = time.perf_counter() - started
        spec = EngineSpec(kind="ray", address=cluster.address)
        started = time.perf_counter()
        with open_engine(spec, reads=[ray_ws.root], writes=[ray_ws.root]):
            pass
        fixed = time.perf_counter() - started
        remote = _stage_times(ray_ws, spec, jobs)
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()
    rows = [
        row("scaleout", "start a 2-node local Ray cluster", cluster_start, "s"),
        row("scaleout", "connect + node checks (F)", fixed, "s"),
    ]
    for stage, seconds in local.items():
        ratio = remote[stage] / seconds if seconds else None
        rows.append(
            row(
                "scaleout",
                f"{stage} --engine ray vs local ({videos} videos)",
                remote[stage],
                "s",
                limit="--engine local, same input",
                limit_value=seconds,
                ratio=ratio,
                notes=f"local {seconds:.2f}s with {jobs} processes; ray on 2 nodes x 1 CPU",
            )
        )
    rows.extend(_break_even(local["frames"], remote["frames"], fixed, videos, jobs))
    return rows


def _break_even(local_s, ray_s, fixed, items, cores) -> list[dict]:
    t = local_s * cores / items  # CPU-seconds per video
    overhead = max(0.0, (ray_s - fixed) * 2 / items - t)  # 2 Ray CPUs; noisy, clamped at 0
    rows = [
        row("scaleout", "frames: CPU-seconds per video (t)", t, "s"),
        row("scaleout", "frames: Ray overhead per task (o)", overhead, "s", notes="clamped at 0"),
    ]
    for machine, local_cores, start in (
        ("this machine", cores, fixed),
        ("a 16-core workstation", 16, fixed),
        ("a 16-core workstation, KubeRay cluster started for the job (~120 s)", 16, 120.0),
    ):
        gain = t / local_cores - (t + overhead) / CLUSTER_CPUS
        rows.append(
            row(
                "scaleout",
                f"break-even videos: {CLUSTER_CPUS}-CPU cluster vs {machine}",
                start / gain if gain > 0 else None,
                "videos",
                notes=f"N* = F / (t/{local_cores} - (t+o)/{CLUSTER_CPUS}), F = {start:.0f} s",
            )
        )
    return rows


def _train_rows(workdir: Path, quick: bool) -> list[dict]:
    from dataprep.export.dataset import export_dataset
    from dataprep.frames import extract_frames
    from dataprep.split import split_media
    from dataprep.stats import compute_stats
    from dataprep.train.launch import launch_local
    from dataprep.train.options import TrainOptions

    ws = _workspace(workdir / "train", 16 if quick else 48)
    extract_frames(ws, sampling="all", size="32", jobs=1)
    split_media(ws, ratios=[0.6, 0.2, 0.2], seed=0)
    compute_stats(ws, jobs=1)
    export_dataset(ws, format="tfrecord", unit="frame", name="frames", shard_size="100KB")
    speed = {}
    for workers, batch in ((1, 16), (2, 16), (1, 32)):
        options = TrainOptions(export="frames", model="cnn", epochs=2, batch_size=batch, seed=0)
        run_dir = launch_local(
            ws.root,
            options,
            workers,
            run_name=f"w{workers}-b{batch}",
            timeout_s=900,
            log=lambda _: None,
        )
        history = (run_dir / "history.csv").read_text().splitlines()
        last = dict(zip(history[0].split(","), history[-1].split(","), strict=True))
        speed[workers, batch] = float(last["images_per_s"])  # the last epoch (traced already)
    notes = f"{os.cpu_count()} cores shared by the workers; ring all-reduce over localhost"
    return [
        row(
            "scaleout",
            "training images/s, 2 localhost workers x batch 16 vs 1 worker x batch 16",
            speed[2, 16],
            "images/s",
            limit="1 worker, same per-worker batch",
            limit_value=speed[1, 16],
            ratio=speed[2, 16] / speed[1, 16] if speed[1, 16] else None,
            notes=notes,
        ),
        row(
            "scaleout",
            "training images/s, 2 localhost workers x batch 16 vs 1 worker x batch 32",
            speed[2, 16],
            "images/s",
            limit="1 worker, same global batch",
            limit_value=speed[1, 32],
            ratio=speed[2, 16] / speed[1, 32] if speed[1, 32] else None,
            notes=notes + "; the same examples per step: the cost of the all-reduce",
        ),
    ]


def run(workdir: Path, quick: bool) -> list[dict]:
    return [*_engine_rows(workdir, quick), *_train_rows(workdir, quick)]
