"""``dataprep audit`` time per 1,000 media and its growth from 1k to 10k media.

The media are generated: gesture frames (64 px PNG images, a sprite and static blobs on a
random background with noise) with 5% short gesture videos (16 frames), and 2% near-copies
(resized, re-encoded) so the index has real pairs to find. Media rows are written straight into
the media manifest (ingest is measured by ``bench_ingest``). Each size is audited from a cold
signature cache, so the time includes decoding every media. The index never compares all
pairs: growth = (seconds per media at the large size) / (seconds per media at the small size);
1.0 is linear, the limit.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from common import row, timed


def _generate(folder: Path, count: int, seed: int) -> list[dict]:
    import cv2

    from dataprep.testing.gestures import GESTURE_CLASSES, GestureSpec, gesture_frames
    from dataprep.testing.media import write_image, write_video

    rng = np.random.default_rng(seed)
    rows = []
    # static distractor blobs make every generated item distinct, as real photos are: the
    # number of true near-duplicate pairs then grows with the copies planted, not quadratically
    still = GestureSpec(size=64, frames=1, distractors=6)
    clip = GestureSpec(size=48, frames=16, distractors=3)
    now = datetime.now(UTC)
    for n in range(count):
        label = GESTURE_CLASSES[n % 4]
        if n % 20 == 0:
            path = folder / f"v{n:06d}.mp4"
            write_video(path, frames=gesture_frames(label, rng, clip), fps=10.0, crf=20)
            extra = {"kind": "video", "duration_s": 1.6, "fps": 10.0, "frame_count": 16}
            size = clip.size
        elif n % 50 == 1 and rows and rows[-1]["kind"] == "image":  # a near-copy
            source = cv2.imread(rows[-1]["path"])
            path = folder / f"c{n:06d}.jpg"
            cv2.imwrite(str(path), cv2.resize(source, (48, 48)), [cv2.IMWRITE_JPEG_QUALITY, 80])
            extra, size = {"kind": "image"}, 48
        else:
            path = folder / f"i{n:06d}.png"
            write_image(path, image=gesture_frames(label, rng, still)[0])
            extra, size = {"kind": "image"}, still.size
        rows.append(
            {
                "media_id": f"{n:016x}",
                "path": str(path),
                "paths": [str(path)],
                "status": "ok",
                "width": size,
                "height": size,
                "label": label,
                "mode": "reference",
                "ingested_at": now,
                **extra,
            }
        )
    return rows


def _audit_seconds(workdir: Path, rows: list[dict]) -> tuple[float, dict]:
    from dataprep import manifests
    from dataprep.audit.core import audit_workspace
    from dataprep.audit.signatures import cache_path
    from dataprep.workspace import init_workspace

    ws = init_workspace(workdir / f"ws{len(rows)}", classes=["left", "right", "up", "down"])
    manifests.save(ws, "media", manifests.from_records("media", rows))
    result = {}

    def audit():
        cache_path(ws).unlink(missing_ok=True)
        result["result"] = audit_workspace(ws, jobs=1)

    seconds = timed(audit)
    found = {
        frozenset((f["media_id"], f["other_media_id"]))
        for f in result["result"].findings
        if f["kind"] == "near_duplicate"
    }
    planted = {
        frozenset((rows[n - 1]["media_id"], r["media_id"]))
        for n, r in enumerate(rows)
        if Path(r["path"]).name.startswith("c")
    }
    report = result["result"].report
    report.settings["planted_recall"] = len(found & planted) / max(1, len(planted))
    return seconds, report


def run(workdir: Path, quick: bool) -> list[dict]:
    small, large = (300, 1000) if quick else (1000, 10000)
    media_dir = Path(workdir) / "media"
    media_dir.mkdir(parents=True, exist_ok=True)
    rows = _generate(media_dir, large, seed=0)
    results = {n: _audit_seconds(Path(workdir), rows[:n]) for n in (small, large)}
    shutil.rmtree(media_dir, ignore_errors=True)
    per_k = {n: seconds / n * 1000 for n, (seconds, _) in results.items()}
    growth = per_k[large] / per_k[small]
    pairs = {n: r.by_kind.get("near_duplicate", 0) for n, (_, r) in results.items()}
    candidates = {n: r.candidates for n, (_, r) in results.items()}
    recall = {n: r.settings["planted_recall"] for n, (_, r) in results.items()}
    notes = (
        "95% 64-px images, 5% 16-frame videos, 2% near-copies; cold signature cache; "
        f"pairs found {pairs[small]} / {pairs[large]}, candidates compared "
        f"{candidates[small]} / {candidates[large]}, recall of the planted copies "
        f"{recall[small]:.2f} / {recall[large]:.2f}"
    )
    return [
        row("audit", f"seconds_per_1000_media@{small}", per_k[small], "s", notes=notes),
        row("audit", f"seconds_per_1000_media@{large}", per_k[large], "s", notes=notes),
        row(
            "audit",
            f"growth_{small}_to_{large}",
            growth,
            "x per media",
            limit="linear (1.0)",
            limit_value=1.0,
            ratio=growth,
            notes="time per media at the large size / at the small size",
        ),
    ]
