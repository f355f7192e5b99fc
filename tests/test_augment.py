"""Augmentation: presets, user files and their errors, clip-consistent draws, copies, preview."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from dataprep import manifests
from dataprep.augment import (
    PRESETS,
    augment_clip,
    augment_image,
    load_pipeline,
    pipeline_to_dict,
    preset_path,
)
from dataprep.augment_stage import augment_frames, materialized_pipeline
from dataprep.cli.main import app
from dataprep.errors import UsageError
from dataprep.frames import extract_frames
from dataprep.imageops import read_image_rgb
from dataprep.ingest import ingest
from dataprep.preview import make_preview
from dataprep.testing.media import index_frame, write_image, write_video


def _clip(length: int = 6) -> np.ndarray:
    return np.stack([index_frame(i, 64, 48) for i in range(length)])


@pytest.mark.parametrize("name", PRESETS)
def test_presets_are_albumentations_files_and_round_trip(name):
    import albumentations as A

    assert preset_path(name).is_file()
    pipeline = load_pipeline(name)
    assert isinstance(pipeline, A.Compose)
    # The file is albumentations' own serialization: A.load reads it to the same dict.
    assert A.to_dict(A.load(str(preset_path(name)), data_format="yaml")) == pipeline_to_dict(
        pipeline
    )


@pytest.mark.parametrize("name", PRESETS)
def test_clip_gets_one_draw_for_all_frames(name):
    pipeline = load_pipeline(name)
    same = np.stack([index_frame(5, 64, 48)] * 4)
    for seed in range(15):
        out = augment_clip(pipeline, same, seed=seed)
        assert out.shape == same.shape and out.dtype == np.uint8
        assert all(np.array_equal(out[0], frame) for frame in out[1:]), f"seed {seed}"


def test_a_flip_flips_every_frame_of_a_clip_or_none(tmp_path):
    import albumentations as A

    path = tmp_path / "flip.yaml"
    A.save(A.Compose([A.HorizontalFlip(p=0.5)]), str(path), data_format="yaml")
    pipeline = load_pipeline(path)
    clip = _clip()
    outcomes = set()
    for seed in range(20):
        out = augment_clip(pipeline, clip, seed=seed)
        flipped = [np.array_equal(o, c[:, ::-1]) for o, c in zip(out, clip, strict=True)]
        kept = [np.array_equal(o, c) for o, c in zip(out, clip, strict=True)]
        assert all(flipped) or all(kept)
        outcomes.add(all(flipped))
    assert outcomes == {True, False}  # both draws happen


def test_seeded_draws_repeat_and_match_between_clip_and_image():
    pipeline = load_pipeline("heavy")
    clip = _clip(3)
    first = augment_clip(pipeline, clip, seed=7)
    assert np.array_equal(first, augment_clip(pipeline, clip, seed=7))
    assert np.array_equal(first[1], augment_image(pipeline, clip[1], seed=7))


def test_json_pipeline_files_are_accepted(tmp_path):
    import albumentations as A

    path = tmp_path / "p.json"
    A.save(A.Compose([A.VerticalFlip(p=1.0)]), str(path), data_format="json")
    out = augment_image(load_pipeline(path), index_frame(3, 64, 48), seed=0)
    assert np.array_equal(out, index_frame(3, 64, 48)[::-1])


def _write_yaml(path, transforms):
    import yaml

    path.write_text(
        yaml.safe_dump(
            {
                "__version__": "2.0.8",
                "transform": {"__class_fullname__": "Compose", "p": 1.0, "transforms": transforms},
            }
        )
    )
    return path


@pytest.mark.parametrize(
    "transforms,message",
    [
        (
            [{"__class_fullname__": "HorizontalFlp", "p": 0.5}],
            "unknown transform 'HorizontalFlp' (did you mean HorizontalFlip?)",
        ),
        ([{"__class_fullname__": "HorizontalFlip", "pp": 0.5}], "unknown argument 'pp'"),
        (
            [{"__class_fullname__": "RandomBrightnessContrast", "brightness_limit": "lots"}],
            "argument brightness_limit",
        ),
        (
            [
                {
                    "__class_fullname__": "OneOf",
                    "p": 0.5,
                    "transforms": [{"__class_fullname__": "Blurr"}],
                }
            ],
            "transform.transforms[0] OneOf.transforms[0] Blurr: unknown transform 'Blurr'",
        ),
        ([{"p": 0.5}], "has no __class_fullname__"),
    ],
)
def test_bad_pipeline_files_name_the_transform_or_argument(tmp_path, transforms, message):
    path = _write_yaml(tmp_path / "bad.yaml", transforms)
    with pytest.raises(UsageError) as caught:
        load_pipeline(path)
    text = str(caught.value)
    assert message in text and str(path) in text and "\n" not in text


def test_unreadable_or_foreign_pipeline_files(tmp_path):
    (tmp_path / "broken.yaml").write_text("transform: [unclosed\n")
    with pytest.raises(UsageError, match="not valid YAML"):
        load_pipeline(tmp_path / "broken.yaml")
    (tmp_path / "other.yaml").write_text("steps: [flip]\n")
    with pytest.raises(UsageError, match="not an albumentations pipeline"):
        load_pipeline(tmp_path / "other.yaml")
    with pytest.raises(UsageError, match="no such preset or file"):
        load_pipeline("extreme")


@pytest.fixture
def extracted(workspace, tmp_path):
    write_video(tmp_path / "src" / "a.mp4", 20, fps=10)
    write_image(tmp_path / "src" / "b.png", 3)
    ingest(workspace, [tmp_path / "src"], jobs=1)
    extract_frames(workspace, every=5, size="32", jobs=1)
    return workspace


def test_augment_materializes_flagged_copies_one_draw_per_media_copy(extracted, tmp_path):
    import albumentations as A

    flip = tmp_path / "flip.yaml"
    A.save(A.Compose([A.HorizontalFlip(p=0.5)]), str(flip), data_format="yaml")
    extracted.config.augment.flip_map = {}  # no class has a direction: flips are label-safe
    report = augment_frames(extracted, pipeline=str(flip), copies=3, jobs=1)
    frames = manifests.load(extracted, "frames")
    sources = frames[~frames["augmented"]]
    copies = frames[frames["augmented"]]
    assert report.written == len(sources) * 3 == len(copies)
    assert sorted(set(copies["copy_index"])) == [1, 2, 3]
    assert set(sources["copy_index"]) == {0}
    for row in manifests.records(copies):
        source = sources[
            (sources["media_id"] == row["media_id"])
            & (sources["frame_index"] == row["frame_index"])
        ]
        assert len(source) == 1  # flagged with the frame it came from
        assert row["timestamp_s"] == source["timestamp_s"].iloc[0]
        assert (extracted.root / row["path"]).is_file()
    # Copy k of a media: the same flip decision for all of its frames.
    video = copies.groupby("media_id").filter(lambda g: g["frame_index"].nunique() > 1)
    for (_, _copy), group in video.groupby(["media_id", "copy_index"]):
        decisions = set()
        for row in manifests.records(group):
            original = read_image_rgb(
                extracted.root
                / sources[
                    (sources["media_id"] == row["media_id"])
                    & (sources["frame_index"] == row["frame_index"])
                ]["path"].iloc[0]
            )
            augmented = read_image_rgb(extracted.root / row["path"])
            error_same = np.abs(augmented.astype(int) - original).mean()
            error_flip = np.abs(augmented.astype(int) - original[:, ::-1]).mean()
            decisions.add(bool(error_flip < error_same))
            assert bool(error_flip < error_same) == row["mirrored"]
        assert len(decisions) == 1
    assert 0 < report.mirrored < len(copies)  # some copies flipped, some not
    assert materialized_pipeline(extracted) == pipeline_to_dict(load_pipeline(flip))
    # Rerun keeps; another pipeline needs --overwrite, which removes the old copies.
    again = augment_frames(extracted, pipeline=str(flip), copies=3, jobs=1)
    assert (again.written, again.kept) == (0, len(copies))
    with pytest.raises(UsageError, match="--overwrite"):
        augment_frames(extracted, pipeline="light", copies=1, jobs=1)
    replaced = augment_frames(extracted, pipeline="light", copies=1, jobs=1, overwrite=True)
    assert replaced.removed == len(copies) and replaced.written == len(sources)
    frames = manifests.load(extracted, "frames")
    on_disk = {
        str(p.relative_to(extracted.root)) for p in extracted.frames_dir.rglob("*") if p.is_file()
    }
    assert on_disk == set(frames["path"])


def test_reextracting_frames_drops_their_augmented_copies(extracted):
    augment_frames(extracted, pipeline="light", copies=1, jobs=1)
    extract_frames(extracted, every=4, size="32", jobs=1, overwrite=True)
    frames = manifests.load(extracted, "frames")
    assert not frames["augmented"].any()
    on_disk = {
        str(p.relative_to(extracted.root)) for p in extracted.frames_dir.rglob("*") if p.is_file()
    }
    assert on_disk == set(frames["path"])


def test_preview_sheet_shows_original_and_augmented_rows(extracted, tmp_path):
    import cv2

    out = tmp_path / "sheet.png"
    result = make_preview(extracted, pipeline="heavy", out=out, per_media=3)
    sheet = cv2.imread(str(out))
    assert sheet is not None and sheet.shape[:2] == (result["height"], result["width"])
    assert result["media"] == 2 and result["frames"] == 4  # 3 frames of the video, 1 image
    # two bands (original + augmented) per media, each 96 px high with 4 px gaps
    assert result["height"] == 4 * (96 + 4) + 4
    originals_only = make_preview(extracted, pipeline="none", out=tmp_path / "o.png")
    assert originals_only["height"] == 2 * (96 + 4) + 4


def test_preview_decodes_media_without_extracted_frames(workspace, tmp_path):
    write_video(tmp_path / "src" / "a.mp4", 20, fps=10)
    ingest(workspace, [tmp_path / "src"], jobs=1)
    result = make_preview(workspace, pipeline="light", per_media=4)
    assert result["frames"] == 4 and (workspace.root / "preview.png").is_file()


def test_cli_augment_and_preview(extracted, tmp_path):
    runner = CliRunner()
    root = str(extracted.root)
    result = runner.invoke(
        app,
        ["-w", root, "augment", "--pipeline", "light", "--copies", "1", "--jobs", "1", "--json"],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["written"] == 5
    bad = _write_yaml(tmp_path / "bad.yaml", [{"__class_fullname__": "HorizontalFlip", "pp": 1}])
    result = runner.invoke(app, ["-w", root, "augment", "--pipeline", str(bad), "--overwrite"])
    assert result.exit_code == 2 and "unknown argument 'pp'" in result.output
    result = runner.invoke(app, ["-w", root, "preview", "--media", "nope"])
    assert result.exit_code == 2 and "nope" in result.output
    sheet = tmp_path / "s.png"
    result = runner.invoke(app, ["-w", root, "preview", "--out", str(sheet)])
    assert result.exit_code == 0 and sheet.is_file()


def test_a_media_with_unreadable_frames_is_recorded_or_stops_the_run(extracted):
    frames = manifests.load(extracted, "frames")
    video = frames[frames["frame_index"] > 0]["media_id"].iloc[0]
    broken = frames[frames["media_id"] == video]["path"].iloc[1]
    (extracted.root / broken).unlink()
    root = str(extracted.root)
    runner = CliRunner()
    result = runner.invoke(
        app, ["-w", root, "augment", "--pipeline", "light", "--jobs", "1", "--on-error", "fail"]
    )
    message = " ".join(result.output.split())
    assert result.exit_code == 3 and video in message and "--on-error skip" in message
    saved = manifests.load(extracted, "frames")
    assert all((extracted.root / p).is_file() for p in saved[saved["augmented"]]["path"])
    result = runner.invoke(app, ["-w", root, "augment", "--pipeline", "light", "--jobs", "1"])
    assert result.exit_code == 1 and "failed:" in result.output and video in result.output
    report = augment_frames(extracted, pipeline="light", jobs=1)
    assert [f["media_id"] for f in report.failed] == [video] and not report.ok
    other = frames[frames["media_id"] != video]
    saved = manifests.load(extracted, "frames")
    assert set(saved[saved["augmented"]]["media_id"]) >= set(other["media_id"])
    record = json.loads((extracted.state_dir / "stages" / "augment.json").read_text())
    assert record["settings"]["on_error"] == "skip" and record["failures"][0]["item"] == video
    result = runner.invoke(app, ["-w", root, "augment", "--copies", "0"])
    assert result.exit_code == 2 and "--copies" in result.output


def test_augment_removes_the_temporary_files_of_a_killed_run(extracted):
    frames = manifests.load(extracted, "frames")
    folder = extracted.root / frames["path"].iloc[0]
    leftover = folder.parent / ".000000_aug01.jpg.abc123.tmp"
    leftover.write_bytes(b"partial")
    augment_frames(extracted, pipeline="light", copies=1, jobs=1)
    assert not leftover.exists()
    frames = manifests.load(extracted, "frames")
    on_disk = {
        str(p.relative_to(extracted.root)) for p in extracted.frames_dir.rglob("*") if p.is_file()
    }
    assert on_disk == set(frames["path"])
