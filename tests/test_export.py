"""Export round trips: TFRecord frames and clips, gzip, determinism, resume, other formats."""

from __future__ import annotations

import json

import numpy as np
import pytest
from export_fixtures import SEGMENT, build_workspace, copy_workspace, expected_label

from dataprep import manifests
from dataprep.data import decode_image, iter_examples, read_info
from dataprep.errors import ManifestError, UsageError
from dataprep.export.dataset import export_dataset
from dataprep.split import split_media
from dataprep.testing.media import read_frame_index


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    workspace = build_workspace(tmp_path_factory.mktemp("export"))
    split_media(workspace, ratios=[0.5, 0.25, 0.25], seed=1)
    return workspace


def _frames_by_key(ws) -> dict:
    frames = manifests.load(ws, "frames")
    return {
        (r["media_id"], r["frame_index"], r["copy_index"]): r for r in manifests.records(frames)
    }


def _split_of(ws) -> dict:
    splits = manifests.load(ws, "splits")
    return dict(zip(splits["media_id"], splits["split"], strict=True))


@pytest.mark.slow
def test_frame_examples_round_trip_to_their_source_frames(ws):
    report = export_dataset(ws, name="frames")
    info = read_info(ws.exports_dir / "frames")
    frames = _frames_by_key(ws)
    split_of = _split_of(ws)
    seen = set()
    for split in ("train", "val", "test"):
        count = 0
        for example in iter_examples(ws.exports_dir / "frames", split):
            key = (example["media_id"], example["frame_index"], example["copy_index"])
            row = frames[key]
            assert example["image"] == (ws.root / row["path"]).read_bytes()
            assert read_frame_index(decode_image(example["image"])) == example["frame_index"]
            assert split_of[example["media_id"]] == split
            label = expected_label(ws, example["media_id"], example["frame_index"])
            assert example["label_name"] == label
            assert info["class_names"][example["label"]] == label
            assert (example["height"], example["width"], example["channels"]) == (48, 64, 3)
            assert example["timestamp_s"] == pytest.approx(row["timestamp_s"], abs=1e-4)
            seen.add(key)
            count += 1
        assert count == info["splits"][split]["examples"] == report.examples[split]
    # every labelled frame is exported once; the unlabelled frames of the segment video are not
    labelled = {k for k in frames if expected_label(ws, k[0], k[1]) is not None}
    assert seen == labelled
    assert report.dropped["unlabelled"] == len(frames) - len(labelled)
    assert info["format"] == "tfrecord" and info["unit"] == "frame"
    assert info["image"]["encoding"] == "jpeg" and info["clip"] is None
    assert set(info["fingerprints"]) >= {"media", "frames", "labels", "splits"}
    assert info["feature_spec"]["message"] == "tf.train.Example"


@pytest.mark.slow
def test_clip_examples_hold_consecutive_frames_in_order_and_pad_short_videos(ws):
    report = export_dataset(ws, name="clips", unit="clip", clip_len=12, clip_stride=3)
    frames = _frames_by_key(ws)
    media = manifests.load(ws, "media").set_index("media_id")
    folder = ws.exports_dir / "clips"
    clips = [c for s in ("train", "val", "test") for c in iter_examples(folder, s)]
    assert clips and report.padded_clips == 2  # the 10- and 11-frame videos
    starts: dict[str, list[int]] = {}
    for clip in clips:
        assert len(clip["frames"]) == len(clip["frame_index"]) == 12
        length = clip["length"]
        real = clip["frame_index"][:length]
        assert real == list(range(clip["start_frame"], clip["start_frame"] + length))
        assert clip["end_frame"] == real[-1]
        for index, data in zip(clip["frame_index"], clip["frames"], strict=True):
            row = frames[(clip["media_id"], index, 0)]
            assert data == (ws.root / row["path"]).read_bytes()
            assert read_frame_index(decode_image(data)) == index
        if length < 12:  # padding repeats the last real frame
            assert media.loc[clip["media_id"], "frame_count"] == length
            assert set(clip["frame_index"][length:]) == {real[-1]}
        labels = [expected_label(ws, clip["media_id"], i) for i in real]
        votes = {x: labels.count(x) for x in labels if x is not None}
        best = max(votes.values())
        assert clip["label_name"] == next(x for x in labels if x is not None and votes[x] == best)
        assert clip["fps"] == pytest.approx(10.0, rel=1e-3)
        starts.setdefault(clip["media_id"], []).append(clip["start_frame"])
    for media_id, found in starts.items():
        n = int(media.loc[media_id, "frame_count"])
        expected = [0] if n < 12 else list(range(0, n - 12 + 1, 3))
        # the segment video drops clips whose frames are all unlabelled (none here: 2..8 labelled)
        assert sorted(found) == expected


def test_segment_frames_outside_labels_become_background_when_asked(ws):
    report = export_dataset(ws, name="bg", unlabelled="background")
    info = read_info(ws.exports_dir / "bg")
    assert info["class_names"] == ["a", "b", "background"]
    names = [
        e["label_name"]
        for s in ("train", "val", "test")
        for e in iter_examples(ws.exports_dir / "bg", s)
    ]
    start, end, _ = SEGMENT
    assert names.count("background") == 17 - (end - start + 1)
    assert "unlabelled" not in report.dropped


@pytest.mark.slow
def test_two_exports_are_byte_identical_and_a_rerun_is_up_to_date(ws):
    export_dataset(ws, name="same1", shard_size="4KB")
    export_dataset(ws, name="same2", shard_size="4KB")
    one, two = ws.exports_dir / "same1", ws.exports_dir / "same2"
    shards = sorted(p.name for p in one.glob("*.tfrecord"))
    assert len(shards) > 3  # sized by bytes: several shards per split
    assert shards == sorted(p.name for p in two.glob("*.tfrecord"))
    for name in shards:
        assert (one / name).read_bytes() == (two / name).read_bytes()
    info_one = json.loads((one / "dataset_info.json").read_text())
    info_two = json.loads((two / "dataset_info.json").read_text())
    assert {**info_one, "name": None} == {**info_two, "name": None}
    before = (one / "dataset_info.json").read_bytes()
    again = export_dataset(ws, name="same1", shard_size="4KB")
    assert again.up_to_date
    export_dataset(ws, name="same1", shard_size="4KB", overwrite=True)
    assert (one / "dataset_info.json").read_bytes() == before
    with pytest.raises(UsageError, match="--overwrite"):
        export_dataset(ws, name="same1", shard_size="8KB")


def test_gzip_shards_read_the_same_as_uncompressed(ws):
    export_dataset(ws, name="plain-clip", unit="clip", clip_len=4, clip_stride=4)
    export_dataset(ws, name="gz-clip", unit="clip", clip_len=4, clip_stride=4, compression="gzip")
    info = read_info(ws.exports_dir / "gz-clip")
    assert all(s.endswith(".tfrecord.gz") for v in info["splits"].values() for s in v["shards"])
    for split in ("train", "val", "test"):
        plain = list(iter_examples(ws.exports_dir / "plain-clip", split))
        packed = list(iter_examples(ws.exports_dir / "gz-clip", split))
        assert plain == packed and plain


def _interrupt_export_midway(ws, name: str) -> None:
    """Starts ``export --name NAME --shard-size 4KB`` and stops it halfway through."""

    def stop_midway(done, total):
        if done == total // 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        export_dataset(ws, name=name, shard_size="4KB", progress=stop_midway)


def test_interrupted_export_is_never_complete_and_a_rerun_finishes_it(ws, tmp_path):
    export_dataset(ws, name="clean", shard_size="4KB")
    _interrupt_export_midway(ws, "resumed")
    folder = ws.exports_dir / "resumed"
    assert not (folder / "dataset_info.json").exists()
    assert not list(folder.glob(".*.tmp"))  # no torn shard left under its final name either
    from dataprep.data import ExportNotReady, load

    with pytest.raises(ExportNotReady, match="dataset_info.json"):
        load(folder, "train", batch_size=2)
    report = export_dataset(ws, name="resumed", shard_size="4KB")
    assert report.resumed_shards > 0
    clean = ws.exports_dir / "clean"
    for path in clean.glob("*.tfrecord"):
        assert (folder / path.name).read_bytes() == path.read_bytes()
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in clean.iterdir())


def test_augmented_frames_go_to_train_only(ws, tmp_path):
    from dataprep.augment_stage import augment_frames

    aug = copy_workspace(ws, tmp_path / "aug")
    augment_frames(aug, pipeline="light", copies=1, jobs=1)
    report = export_dataset(aug, name="aug")
    info = read_info(aug.exports_dir / "aug")
    copies = {
        s: [e["copy_index"] for e in iter_examples(aug.exports_dir / "aug", s)]
        for s in ("train", "val", "test")
    }
    assert 1 in copies["train"]
    assert set(copies["val"]) == set(copies["test"]) == {0}
    assert report.dropped["augmented_outside_train"] > 0
    from dataprep.augment import load_pipeline, pipeline_to_dict

    # The pipeline as applied: light's HorizontalFlip is left out without a [augment] flip_map.
    light = pipeline_to_dict(load_pipeline("light"))
    applied = info["augmentation"]["transform"]["transforms"]
    assert "HorizontalFlip" not in [t["__class_fullname__"] for t in applied]
    flip = "HorizontalFlip"
    kept = [t for t in light["transform"]["transforms"] if t["__class_fullname__"] != flip]
    assert applied == json.loads(json.dumps(kept))


@pytest.mark.slow  # Keras reads the folder back (imports TensorFlow)
def test_imagefolder_holds_the_frame_files_by_class(ws):
    import keras

    export_dataset(ws, format="imagefolder", name="folder")
    root = ws.exports_dir / "folder"
    frames = _frames_by_key(ws)
    info = read_info(root)
    count = 0
    for path in (root / "train").rglob("*.jpg"):
        media_id, frame_index, copy_index = path.stem.split("_")
        row = frames[(media_id, int(frame_index), int(copy_index))]
        assert path.read_bytes() == (ws.root / row["path"]).read_bytes()
        assert path.parent.name == expected_label(ws, media_id, int(frame_index))
        count += 1
    assert count == info["splits"]["train"]["examples"]
    dataset = keras.utils.image_dataset_from_directory(
        root / "train",
        image_size=(48, 64),
        batch_size=8,
        shuffle=False,
        class_names=info["class_names"],
    )
    assert sum(int(y.shape[0]) for _, y in dataset) == count
    with pytest.raises(UsageError, match="--unit frame"):
        export_dataset(ws, format="imagefolder", unit="clip", name="folder-clip")


def test_parquet_holds_bytes_and_labels(ws):
    import pandas as pd

    export_dataset(ws, format="parquet", name="pq", compression="gzip")
    root = ws.exports_dir / "pq"
    info = read_info(root)
    frames = _frames_by_key(ws)
    for split in ("train", "val", "test"):
        table = pd.concat([pd.read_parquet(root / s) for s in info["splits"][split]["shards"]])
        assert len(table) == info["splits"][split]["examples"]
        for row in table.itertuples():
            source = frames[(row.media_id, row.frame_index, row.copy_index)]
            assert row.image == (ws.root / source["path"]).read_bytes()
            assert info["class_names"][row.label] == row.label_name
            assert row.label_name == expected_label(ws, row.media_id, row.frame_index)
    export_dataset(ws, format="parquet", unit="clip", clip_len=5, clip_stride=5, name="pq-clip")
    clip_root = ws.exports_dir / "pq-clip"
    clip_info = read_info(clip_root)
    table = pd.read_parquet(clip_root / clip_info["splits"]["train"]["shards"][0])
    for row in table.itertuples():
        decoded = [read_frame_index(decode_image(b)) for b in row.frames]
        assert decoded == list(row.frame_index) == list(range(row.start_frame, row.start_frame + 5))


def test_media_without_a_split_is_refused(ws, tmp_path):
    other = copy_workspace(ws, tmp_path / "nosplit")
    splits = manifests.load(other, "splits")
    manifests.save(other, "splits", splits.iloc[1:].reset_index(drop=True))
    with pytest.raises(ManifestError, match="dataprep split"):
        export_dataset(other, name="x")


def test_decode_matches_frame_stored_pixels(ws):
    import cv2

    export_dataset(ws, name="frames")
    example = next(iter_examples(ws.exports_dir / "frames", "train"))
    frames = _frames_by_key(ws)
    row = frames[(example["media_id"], example["frame_index"], 0)]
    stored = cv2.cvtColor(cv2.imread(str(ws.root / row["path"])), cv2.COLOR_BGR2RGB)
    assert np.array_equal(decode_image(example["image"]), stored)


# ------------------------------------------------------------------ hostile input and faults


def test_class_name_climbing_out_is_refused_and_nothing_lands_outside(ws, tmp_path):
    """Issue 11 item 3 (writer side): a class name "../evil" written straight into the labels
    manifest (past every check at the entrances) never becomes a folder outside the export."""
    import re

    evil = copy_workspace(ws, tmp_path / "evil")
    toml = evil.root / "dataprep.toml"
    toml.write_text(re.sub(r"(?m)^classes = .*$", "classes = []", toml.read_text()))
    from dataprep.workspace import open_workspace

    evil = open_workspace(evil.root)
    assert evil.config.project.classes == []
    media_id = manifests.load(evil, "media")["media_id"].iloc[0]
    rows = [
        {
            "media_id": media_id,
            "kind": "choice",
            "label": "../evil",
            "in_classes": True,
            "ground_truth": False,
            "resolved": True,
        }
    ]
    manifests.save(evil, "labels", manifests.from_records("labels", rows))
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(UsageError) as err:
        export_dataset(evil, format="imagefolder", name="escape")
    message = str(err.value)
    assert "\n" not in message and "../evil" in message and "refusing" in message
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    created = [p for p in after if p not in before]
    assert not [p for p in created if p.name == "evil"]  # no class folder anywhere
    assert all(str(p).startswith(str(evil.root.relative_to(tmp_path))) for p in created)
    assert not list((evil.exports_dir / "escape").rglob("*.jpg"))


def test_unreadable_frame_follows_the_on_error_policy(ws, tmp_path):
    """Export is a stage: --on-error fail stops naming the frame file, skip leaves the example
    out, counts and records it, and the export stays consistent (info matches the shards)."""
    from dataprep.data import verify_export
    from dataprep.stage import ItemFailed
    from dataprep.stages import load_stage

    broken = copy_workspace(ws, tmp_path / "broken")
    frames = manifests.load(broken, "frames")
    victim = broken.root / frames["path"].iloc[0]
    victim.write_bytes(b"not an image at all")
    with pytest.raises(ItemFailed, match=rf"{victim.name}.*--on-error skip"):
        export_dataset(broken, name="strict", shard_size="4KB")
    assert not (broken.exports_dir / "strict" / "dataset_info.json").exists()
    report = export_dataset(broken, name="lenient", shard_size="4KB", on_error="skip")
    assert report.failed == 1
    info = read_info(broken.exports_dir / "lenient")
    counts = verify_export(broken.exports_dir / "lenient")
    assert sum(counts.values()) == sum(v["examples"] for v in info["splits"].values())
    assert sum(report.examples.values()) == sum(
        len(list(iter_examples(broken.exports_dir / "lenient", s))) for s in info["splits"]
    )
    record = load_stage(broken, "export")
    assert record["settings"]["on_error"] == "skip"
    assert len(record["failures"]) == 1 and victim.name in record["failures"][0]["error"]


def test_bad_shard_size_is_blamed_on_where_it_came_from(ws, tmp_path):
    """Issue 11 item 13: a bad value in dataprep.toml names the file, section and key; the
    same value on the command line names the option."""
    from typer.testing import CliRunner

    from dataprep.cli.main import app

    other = copy_workspace(ws, tmp_path / "badtoml")
    runner = CliRunner()
    result = runner.invoke(app, ["-w", str(other.root), "export", "--shard-size", "lots"])
    assert result.exit_code == 2
    assert "--shard-size" in result.output and result.output.strip().count("\n") == 0
    toml = other.root / "dataprep.toml"
    toml.write_text(toml.read_text().replace('shard_size = "128MB"', 'shard_size = "lots"'))
    result = runner.invoke(app, ["-w", str(other.root), "export"])
    assert result.exit_code == 2
    assert "dataprep.toml" in result.output and "[export] shard_size" in result.output
    assert "--shard-size" not in result.output and result.output.strip().count("\n") == 0


def test_disk_full_names_the_path_and_a_rerun_resumes(ws, tmp_path):
    """Issue 11 item 8: a full disk while writing shards is one line naming the path, saying
    the disk is full and that a rerun resumes; the rerun does (on a real, small tmpfs)."""
    import subprocess

    from dataprep.data import verify_export
    from dataprep.errors import DiskError

    full = copy_workspace(ws, tmp_path / "full")
    out = full.exports_dir / "small"
    out.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(out)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        with pytest.raises(DiskError) as err:
            export_dataset(full, name="small", shard_size="4KB")
        message = str(err.value)
        assert "\n" not in message and str(out) in message
        assert "disk is full" in message and "rerun" in message
        assert not (out / "dataset_info.json").exists()
        assert not list(out.glob(".*.tmp"))  # no torn shard left behind
        subprocess.run(["mount", "-o", "remount,size=16m", str(out)], check=True)
        report = export_dataset(full, name="small", shard_size="4KB")
        assert report.resumed_shards > 0
        verify_export(out)
    finally:
        subprocess.run(["umount", str(out)], check=False)


def test_a_resumed_export_counts_kept_shards_without_reading_their_frames(ws, tmp_path):
    from dataprep.data.records import decode_record
    from dataprep.tfrecord_reader import iter_records

    space = copy_workspace(ws, tmp_path / "resume")
    export_dataset(space, name="whole", shard_size="4KB")
    _interrupt_export_midway(space, "cut")
    folder = space.exports_dir / "cut"
    lines = (folder / ".export-progress.jsonl").read_text().splitlines()
    kept = [json.loads(line)["shard"] for line in lines[1:]]
    assert kept, "some shards were finished before the interruption"
    frames = {
        (r["media_id"], r["frame_index"], r["copy_index"]): r["path"]
        for r in manifests.records(manifests.load(space, "frames"))
    }
    spoilt = set()
    for shard in kept:  # the frames of the kept shards stop being images (same sizes: same plan)
        for index, record in enumerate(iter_records(folder / shard)):
            example = decode_record(record, "frame", folder / shard, index)
            spoilt.add(frames[(example["media_id"], example["frame_index"], example["copy_index"])])
    for path in spoilt:
        target = space.root / path
        target.write_bytes(b"\0" * target.stat().st_size)
    report = export_dataset(space, name="cut", shard_size="4KB")  # under --on-error fail
    assert report.resumed_shards == len(kept)
    assert read_info(folder)["image"] == read_info(space.exports_dir / "whole")["image"]
    whole = space.exports_dir / "whole"
    assert {p.name: p.read_bytes() for p in folder.glob("*.tfrecord")} == {
        p.name: p.read_bytes() for p in whole.glob("*.tfrecord")
    }
    assert not (folder / ".export-progress.jsonl").exists()
