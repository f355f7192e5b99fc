"""A small labelled workspace (real videos, ingest, frame extraction) for split/export tests."""

from __future__ import annotations

import shutil
from pathlib import Path

from dataprep import manifests
from dataprep.testing.media import write_video

# frames per video; every content differs, so ingest keeps them all
VIDEO_FRAMES = {"a": [10, 11, 12, 13], "b": [14, 15, 16, 17]}
SEGMENT_MEDIA_CLASS = "b"  # its last video gets segment labels instead of the folder label
SEGMENT = (2, 8, "a")  # frames 2..8 are "a"; the rest of that video is unlabelled


def write_raw(folder: Path, counts: dict[str, list[int]] = VIDEO_FRAMES) -> Path:
    for label, sizes in counts.items():
        for i, n in enumerate(sizes):
            write_video(folder / label / f"{label}{i}.mp4", n, fps=10.0)
    return folder


def build_workspace(root: Path, *, segments: bool = True):
    """init + ingest (labels from folders) + extract every frame; optional segment labels."""
    from dataprep.frames import extract_frames
    from dataprep.ingest import ingest
    from dataprep.workspace import init_workspace

    ws = init_workspace(root / "ws", classes=["a", "b"])
    raw = write_raw(root / "raw")
    ingest(ws, [raw], label_from_dir=True, jobs=1)
    extract_frames(ws, sampling="all", size="48", jobs=1)
    if segments:
        write_segment_labels(ws)
    return ws


def segment_media_id(ws) -> str:
    media = manifests.load(ws, "media")
    n = VIDEO_FRAMES[SEGMENT_MEDIA_CLASS][-1]
    return str(media.loc[media["frame_count"] == n, "media_id"].iloc[0])


def write_segment_labels(ws) -> None:
    media_id = segment_media_id(ws)
    start, end, label = SEGMENT
    rows = [
        {
            "media_id": media_id,
            "kind": "segment",
            "label": label,
            "in_classes": True,
            "start_frame": start,
            "end_frame": end,
            "ground_truth": False,
            "resolved": True,
        },
        # an unresolved annotator row must be ignored
        {
            "media_id": media_id,
            "kind": "segment",
            "label": "b",
            "in_classes": True,
            "start_frame": 0,
            "end_frame": 16,
            "ground_truth": False,
            "resolved": False,
            "annotation_id": 7,
        },
    ]
    manifests.save(ws, "labels", manifests.from_records("labels", rows))


def expected_label(ws, media_id: str, frame_index: int) -> str | None:
    """The label the documented rules give a frame of the fixture workspace."""
    if media_id == segment_media_id(ws) and ws.manifest_path("labels").exists():
        start, end, label = SEGMENT
        return label if start <= frame_index <= end else None
    media = manifests.load(ws, "media").set_index("media_id")
    return media.loc[media_id, "label"]


def copy_workspace(ws, target: Path):
    from dataprep.workspace import open_workspace

    shutil.copytree(ws.root, target)
    return open_workspace(target)
