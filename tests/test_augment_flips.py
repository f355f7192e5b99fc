"""`dataprep augment` is label-safe like training: flips only with a flip_map, labels mirrored.

Real videos (H.264 through PyAV), real frame files, real Parquet manifests and exports read back.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from dataprep import manifests
from dataprep.augment_stage import augment_frames
from dataprep.cli.main import app
from dataprep.errors import UsageError
from dataprep.export.dataset import export_dataset
from dataprep.frames import extract_frames
from dataprep.imageops import read_image_rgb
from dataprep.ingest import ingest
from dataprep.split import split_media
from dataprep.testing.media import write_video
from dataprep.workspace import init_workspace

CLASSES = ["left", "right", "still"]
MIRROR = {"left": "right", "right": "left"}


@pytest.fixture
def directional(tmp_path):
    """Three videos per class (labels from the folders), frames extracted at 32 px."""
    for c, label in enumerate(CLASSES):
        for k in range(3):  # lengths differ: ingest keeps one of identical files
            write_video(tmp_path / "src" / label / f"{label}{k}.mp4", 12 + 3 * c + k, fps=10)
    ws = init_workspace(tmp_path / "ws", classes=CLASSES)
    ingest(ws, [tmp_path / "src"], label_from_dir=True, jobs=1)
    extract_frames(ws, every=3, size="32", jobs=1)
    return ws


def _with_flip_map(ws, flip_map):
    ws.config.augment.flip_map = flip_map
    return ws.save_config(ws.config)


def _flip_only(tmp_path, p: float = 0.5) -> str:
    import albumentations as A

    path = tmp_path / "flip.yaml"
    A.save(A.Compose([A.HorizontalFlip(p=p)]), str(path), data_format="yaml")
    return str(path)


def _looks_flipped(ws, frames, row) -> bool:
    """Whether an augmented copy's pixels are its source frame mirrored (not the frame)."""
    source = frames[
        (frames["media_id"] == row["media_id"])
        & (frames["frame_index"] == row["frame_index"])
        & (frames["copy_index"] == 0)
    ]["path"].iloc[0]
    original = read_image_rgb(ws.root / source).astype(int)
    copy = read_image_rgb(ws.root / row["path"])
    same, mirrored = np.abs(copy - original).mean(), np.abs(copy - original[:, ::-1]).mean()
    assert max(same, mirrored) > 4 * min(same, mirrored) + 2  # clearly one or the other
    return bool(mirrored < same)


def test_without_a_flip_map_no_copy_is_flipped_and_the_run_says_so(directional, tmp_path):
    report = augment_frames(directional, pipeline=_flip_only(tmp_path), copies=3, jobs=1)
    assert len(report.notes) == 1 and "\n" not in report.notes[0]
    assert "HorizontalFlip left out" in report.notes[0] and "flip_map" in report.notes[0]
    frames = manifests.load(directional, "frames")
    copies = manifests.records(frames[frames["augmented"]])
    assert len(copies) == report.written > 0 and report.mirrored == 0
    assert not any(row["mirrored"] for row in copies)
    assert not any(_looks_flipped(directional, frames, row) for row in copies)


@pytest.mark.slow  # the command line (albumentations, cv2 imported again): about 5 s
def test_cli_augment_says_in_one_line_that_flips_were_left_out(directional):
    # A preset (every preset has a HorizontalFlip) without a flip_map.
    result = CliRunner().invoke(
        app,
        ["-w", str(directional.root), "augment", "--pipeline", "light", "--overwrite"],
    )
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("flips:")]
    assert len(lines) == 1 and "HorizontalFlip left out" in lines[0]


def test_with_a_flip_map_flipped_copies_are_flagged_and_export_mirrors_their_labels(
    directional, tmp_path
):
    ws = _with_flip_map(directional, MIRROR)
    report = augment_frames(ws, pipeline=_flip_only(tmp_path), copies=4, jobs=1)
    assert any("labels mirrored by flip_map" in n and "left->right" in n for n in report.notes)
    frames = manifests.load(ws, "frames")
    copies = frames[frames["augmented"]]
    assert 0 < report.mirrored == int(copies["mirrored"].sum()) < len(copies)
    for (_media, _copy), group in copies.groupby(["media_id", "copy_index"]):
        flags = {bool(v) for v in group["mirrored"]}
        assert len(flags) == 1  # one decision for every frame of a copy (a valid clip)
        for row in manifests.records(group):
            assert _looks_flipped(ws, frames, row) == row["mirrored"]
    # Clips of 4 frames (one per copy and media); copies only in train.
    split_media(ws, ratios=[0.6, 0.2, 0.2], seed=0)
    export_dataset(ws, format="parquet", unit="clip", clip_len=4, clip_stride=4, name="clips")
    mirrored = {
        (r["media_id"], r["copy_index"]): bool(r["mirrored"]) for r in manifests.records(copies)
    }
    media = manifests.load(ws, "media")
    folder_label = dict(zip(media["media_id"], media["label"], strict=True))
    seen = {"swapped": 0, "mirrored": 0, "kept": 0}
    for path in sorted((ws.exports_dir / "clips").rglob("*.parquet")):
        for row in pq.read_table(path).to_pylist():
            label = folder_label[row["media_id"]]
            if mirrored.get((row["media_id"], row["copy_index"]), False):
                assert row["label_name"] == MIRROR.get(label, label)
                seen["swapped" if label in MIRROR else "mirrored"] += 1
            else:
                assert row["label_name"] == label
                seen["kept"] += 1
    assert seen["swapped"] > 0 and seen["kept"] > 0
    # Without the map the mirrored copies cannot be labelled: export says what to do.
    _with_flip_map(ws, None)
    with pytest.raises(UsageError, match=r"\[augment\] flip_map"):
        export_dataset(ws, format="parquet", unit="clip", clip_len=4, name="other")


def test_flip_handling_is_part_of_the_copies_fingerprint(directional, tmp_path):
    flip = _flip_only(tmp_path)
    unflipped = augment_frames(directional, pipeline=flip, copies=1, jobs=1)
    ws = _with_flip_map(directional, MIRROR)
    with pytest.raises(UsageError, match="--overwrite"):
        augment_frames(ws, pipeline=flip, copies=1, jobs=1)
    flipped = augment_frames(ws, pipeline=flip, copies=1, jobs=1, overwrite=True)
    assert flipped.fingerprint != unflipped.fingerprint
    assert flipped.removed == unflipped.written
    state = json.loads((ws.state_dir / "augment.json").read_text())
    assert state["flip"] == 0.5 and state["flip_map"] == MIRROR


def test_a_flip_map_naming_an_unknown_class_is_refused(directional, tmp_path):
    ws = _with_flip_map(directional, {"left": "up", "up": "left"})
    with pytest.raises(UsageError, match="'up'.*not one of"):
        augment_frames(ws, pipeline=_flip_only(tmp_path), copies=1, jobs=1)


def test_frames_manifests_written_before_the_mirrored_column_still_read(directional):
    path = directional.manifest_path("frames")
    table = pq.read_table(path)
    old = table.drop_columns(["mirrored"]).replace_schema_metadata(table.schema.metadata)
    pq.write_table(old, path)
    frames = manifests.load(directional, "frames")
    assert len(frames) == table.num_rows and not frames["mirrored"].any()
