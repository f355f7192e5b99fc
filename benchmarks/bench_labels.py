"""``labels import`` throughput on box tracks, against the SDK's own key-frame interpolation.

The limit is ``label_studio_sdk``'s ``extract_key_frames`` (what Label Studio's export runs to
interpolate tracks) on the same results; dataprep does that work plus conversion to pixels,
resolution, schema validation and an atomic Parquet write. ratio = ours / SDK (time).
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path

from common import row, timed


def _workspace(workdir: Path, videos: int, frames: int):
    from dataprep import manifests
    from dataprep.workspace import init_workspace

    ws = init_workspace(workdir / "ws", classes=["cat", "dog"], label_type="boxes", exist_ok=True)
    now = datetime.now(UTC)
    rows = [
        {
            "media_id": f"{i:016x}",
            "path": str(workdir / f"v{i}.mp4"),
            "paths": [str(workdir / f"v{i}.mp4")],
            "kind": "video",
            "status": "ok",
            "width": 640,
            "height": 480,
            "fps": 25.0,
            "frame_count": frames,
            "duration_s": frames / 25.0,
            "variable_frame_rate": False,
            "mode": "reference",
            "ingested_at": now,
        }
        for i in range(videos)
    ]
    manifests.save(ws, "media", manifests.from_records("media", rows))
    return ws, rows


def _export(rows: list[dict], tracks: int, keys: int, frames: int) -> list[dict]:
    rng = random.Random(0)
    tasks = []
    for task_id, media in enumerate(rows, 1):
        results = []
        for track in range(tracks):
            spots = sorted(rng.sample(range(1, frames + 1), keys))
            sequence = [
                {
                    "frame": f,
                    "time": (f - 1) / 25.0,
                    "enabled": j < keys - 1,
                    "rotation": 0,
                    "x": rng.uniform(0, 80),
                    "y": rng.uniform(0, 80),
                    "width": 10.0,
                    "height": 10.0,
                }
                for j, f in enumerate(spots)
            ]
            results.append(
                {
                    "id": f"t{task_id}-{track}",
                    "type": "videorectangle",
                    "from_name": "box",
                    "to_name": "video",
                    "value": {
                        "labels": ["cat"],
                        "framesCount": frames,
                        "duration": frames / 25.0,
                        "sequence": sequence,
                    },
                }
            )
        tasks.append(
            {
                "id": task_id,
                "data": {
                    "video": f"/data/local-files/?d=m/v{task_id}.mp4",
                    "media_id": media["media_id"],
                    "fps": 25.0,
                },
                "annotations": [
                    {
                        "id": task_id,
                        "completed_by": 1,
                        "result": results,
                        "updated_at": "2026-01-01T00:00:00Z",
                    }
                ],
            }
        )
    return tasks


def run(workdir: Path, quick: bool) -> list[dict]:
    from label_studio_sdk._extensions.label_studio_tools.postprocessing.video import (
        extract_key_frames,
    )

    from dataprep import manifests
    from dataprep.labels.importer import import_export

    videos, tracks, keys, frames = (20, 3, 6, 300) if quick else (100, 5, 8, 900)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    ws, media = _workspace(workdir, videos, frames)
    tasks = _export(media, tracks, keys, frames)
    path = workdir / "export.json"
    path.write_text(json.dumps(tasks))
    ours = timed(lambda: import_export(ws, path), repeat=2)
    count = len(manifests.load(ws, "labels"))
    sdk = timed(
        lambda: [extract_key_frames(t["annotations"][0]["result"]) for t in tasks], repeat=2
    )
    notes = (
        f"{videos} videos x {tracks} tracks x {keys} key frames, {frames} frames each; "
        f"{count} manifest rows (annotator + resolved)"
    )
    return [
        row("labels_import", "rows_per_second", count / ours, "rows/s", notes=notes),
        row(
            "labels_import",
            "seconds",
            ours,
            "s",
            limit="label_studio_sdk extract_key_frames",
            limit_value=sdk,
            ratio=ours / sdk if sdk else None,
            notes="ratio = ours (interpolate + convert + resolve + validate + write) / SDK "
            "(interpolate only); " + notes,
        ),
    ]
