"""``stats``: mean/std against numpy on the same pixels; splits; the stats.json contract."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from dataprep import manifests
from dataprep.cli.main import app
from dataprep.errors import ManifestError
from dataprep.frames import extract_frames
from dataprep.imageops import read_image_rgb
from dataprep.ingest import ingest
from dataprep.stats import compute_stats, finish, image_sums, load_stats
from dataprep.testing.media import write_image, write_video


def _numpy_stats(images):
    pixels = np.concatenate([im.reshape(-1, 3).astype(np.float64) / 255.0 for im in images])
    return pixels.mean(axis=0), pixels.std(axis=0), len(pixels)


def test_exact_sums_match_numpy_on_random_pixels():
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (17, 23, 3), np.uint8) for _ in range(5)]
    sums, squares, count = [0, 0, 0], [0, 0, 0], 0
    for image in images:
        s, q, n = image_sums(image)
        sums = [a + int(b) for a, b in zip(sums, s, strict=True)]
        squares = [a + int(b) for a, b in zip(squares, q, strict=True)]
        count += n
    mean, std = finish(sums, squares, count)
    expected_mean, expected_std, expected_count = _numpy_stats(images)
    assert count == expected_count
    np.testing.assert_allclose(mean, expected_mean, rtol=1e-12)
    np.testing.assert_allclose(std, expected_std, rtol=1e-12)


def test_precision_holds_for_a_small_spread_on_a_large_mean():
    # Many nearly-constant bright pixels: naive float sums of squares lose the variance.
    image = np.full((1000, 1000, 3), 250, np.uint8)
    image[::2, :, 0] = 251
    s, q, n = image_sums(image)
    mean, std = finish([int(v) for v in s] * 1, [int(v) for v in q], n)
    assert std[0] == pytest.approx(0.5 / 255.0, rel=1e-12)
    assert std[1] == 0.0 and mean[1] == pytest.approx(250 / 255.0, rel=1e-12)


@pytest.fixture
def extracted(workspace, tmp_path):
    rng = np.random.default_rng(0)
    clips = [[rng.integers(0, 256, (48, 64, 3), np.uint8) for _ in range(6)] for _ in range(2)]
    write_video(tmp_path / "src" / "a.mp4", frames=clips[0], fps=10)
    write_video(tmp_path / "src" / "b.mp4", frames=clips[1], fps=10)
    write_image(tmp_path / "src" / "c.png", image=rng.integers(0, 256, (30, 40, 3), np.uint8))
    ingest(workspace, [tmp_path / "src"], jobs=1)
    extract_frames(workspace, sampling="all", size=None, format="png", jobs=1)
    return workspace


def test_stats_match_numpy_on_the_stored_frames(extracted):
    result = compute_stats(extracted, jobs=1)
    frames = manifests.load(extracted, "frames")
    images = [read_image_rgb(extracted.root / p) for p in frames["path"]]
    mean, std, count = _numpy_stats(images)
    np.testing.assert_allclose(result["mean"], mean, rtol=1e-10)
    np.testing.assert_allclose(result["std"], std, rtol=1e-10)
    assert result["count_pixels"] == count and result["count_frames"] == len(images) == 13
    assert result["split"] == "all" and "no splits yet" in result["note"]
    stored = load_stats(extracted)
    assert set(stored) == {
        "mean",
        "std",
        "scale",
        "count_pixels",
        "count_frames",
        "split",
        "fingerprint",
    }
    assert stored["scale"] == "0-1" and stored["mean"] == result["mean"]
    # Parallel workers give identical numbers (exact integer accumulation).
    assert compute_stats(extracted, jobs=2)["std"] == result["std"]


def test_stats_use_train_media_once_splits_exist(extracted):
    media = manifests.load(extracted, "media")
    ids = sorted(media["media_id"])
    splits = manifests.from_records(
        "splits",
        [
            {"media_id": ids[0], "group_key": ids[0], "split": "train"},
            {"media_id": ids[1], "group_key": ids[1], "split": "val"},
            {"media_id": ids[2], "group_key": ids[2], "split": "test"},
        ],
    )
    manifests.save(extracted, "splits", splits)
    result = compute_stats(extracted, jobs=1)
    frames = manifests.load(extracted, "frames")
    train = frames[frames["media_id"] == ids[0]]
    mean, std, count = _numpy_stats([read_image_rgb(extracted.root / p) for p in train["path"]])
    assert result["split"] == "train" and "note" not in result
    np.testing.assert_allclose(result["mean"], mean, rtol=1e-10)
    np.testing.assert_allclose(result["std"], std, rtol=1e-10)
    assert result["count_pixels"] == count
    assert compute_stats(extracted, split="all", jobs=1)["count_frames"] == 13


def test_augmented_copies_are_not_counted(extracted):
    from dataprep.augment_stage import augment_frames

    before = compute_stats(extracted, jobs=1)
    augment_frames(extracted, pipeline="heavy", copies=1, jobs=1)
    after = compute_stats(extracted, jobs=1)
    assert after["count_frames"] == before["count_frames"] and after["mean"] == before["mean"]


def test_stats_before_frames_and_cli(workspace, extracted):
    runner = CliRunner()
    result = runner.invoke(app, ["-w", str(extracted.root), "stats", "--json", "--jobs", "1"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["count_frames"] == 13
    result = runner.invoke(app, ["-w", str(extracted.root), "stats", "--split", "val"])
    assert result.exit_code == 2 and "--split 'val'" in result.output


def test_stats_without_frames_is_a_clear_error(tmp_path):
    from dataprep.workspace import init_workspace

    empty = init_workspace(tmp_path / "empty")
    with pytest.raises(ManifestError, match="dataprep frames"):
        compute_stats(empty)
    assert load_stats(empty) is None
