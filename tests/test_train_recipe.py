"""The cnn-lstm recipe in the trainer (issue 13): defaults in steps, label-safe flips in the
loader, explicit tf.data parallelism, the run's augmentation and train/val gap lines, preview
labels. One tiny motion export (real H.264 -> ingest -> frames -> split -> stats -> export)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dataprep.testing.motion import MotionFamily, write_motion_set

FAMILY = MotionFamily("tiny", "test", size=16, frames=6, sprite_min=3, sprite_max=5, noise=4.0)


def _info(train: int) -> dict:
    return {
        "name": "clips",
        "unit": "clip",
        "clip": {"length": 8},
        "image": {"height": 32, "width": 32, "channels": 3},
        "class_names": ["left", "right", "up", "down"],
        "splits": {s: {"examples": n} for s, n in (("train", train), ("val", 8), ("test", 8))},
    }


def test_cnn_lstm_defaults_take_enough_steps_and_explicit_values_win():
    from dataprep.train.options import CLIP_DEFAULTS, MIN_STEPS, TrainOptions, resolve_options

    small = resolve_options(TrainOptions(export="x", model="cnn-lstm"), None, _info(100))
    assert small.batch_size == CLIP_DEFAULTS["batch_size"] and small.lr == CLIP_DEFAULTS["lr"]
    steps = math.ceil(100 / small.batch_size)
    assert small.epochs * steps >= MIN_STEPS and (small.epochs - 1) * steps < MIN_STEPS
    large = resolve_options(TrainOptions(export="x", model="cnn-lstm"), None, _info(5000))
    assert large.epochs == 20  # the generic default is already enough steps
    chosen = TrainOptions(export="x", model="cnn-lstm", epochs=2, batch_size=8, lr=0.01)
    given = resolve_options(chosen, None, _info(100))
    assert (given.epochs, given.batch_size, given.lr) == (2, 8, 0.01)
    frames = dict(_info(100), unit="frame")
    bn = resolve_options(TrainOptions(export="x", model="cnn-bn"), None, frames)
    assert (bn.epochs, bn.batch_size, bn.lr) == (20, 32, 1e-3)  # other models unchanged


@pytest.fixture(scope="module")
def motion_ws(tmp_path_factory):
    from dataprep.export.dataset import export_dataset
    from dataprep.frames import extract_frames
    from dataprep.ingest import ingest
    from dataprep.split import split_media
    from dataprep.stats import compute_stats
    from dataprep.workspace import init_workspace

    root = tmp_path_factory.mktemp("motion")
    write_motion_set(root / "raw", FAMILY, per_class=4, seed=2)
    ws = init_workspace(root / "ws", classes=list(FAMILY.classes))
    ingest(ws, [root / "raw"], label_from_dir=True, jobs=1)
    extract_frames(ws, sampling="all", size="16", jobs=1)
    split_media(ws, ratios=[0.5, 0.25, 0.25], seed=0)
    compute_stats(ws, jobs=1)
    export_dataset(ws, format="tfrecord", unit="clip", clip_len=6, clip_stride=6, name="clips")
    return ws


@pytest.mark.slow
def test_the_loader_flips_clips_and_mirrors_their_labels(motion_ws):
    from dataprep.data import load

    export = motion_ws.exports_dir / "clips"
    common = {"batch_size": 64, "shuffle": False, "deterministic": True, "seed": 5}
    images, labels = next(iter(load(export, "train", **common)))
    mirror = (1, 0, 2, 3)  # left <-> right
    flipped, flipped_labels = next(iter(load(export, "train", flip=(1.0, mirror), **common)))
    np.testing.assert_array_equal(np.asarray(flipped), np.asarray(images)[:, :, :, ::-1, :])
    assert np.asarray(flipped_labels).tolist() == [mirror[i] for i in np.asarray(labels)]
    # p = 0.5: some clips flipped (label mapped), others untouched, every frame of a clip alike
    half, half_labels = next(iter(load(export, "train", flip=(0.5, mirror), **common)))
    half, half_labels = np.asarray(half), np.asarray(half_labels)
    original = np.asarray(images)
    was_flipped = [
        np.array_equal(h, o[:, :, ::-1]) and not np.array_equal(h, o)
        for h, o in zip(half, original, strict=True)
    ]
    for index, flipped_one in enumerate(was_flipped):
        if not flipped_one:
            np.testing.assert_array_equal(half[index], original[index])
        want = mirror[labels[index]] if flipped_one else int(labels[index])
        assert int(half_labels[index]) == want


@pytest.mark.slow
def test_explicit_parallelism_turns_autotune_off_and_reads_the_same_batches(motion_ws):
    from dataprep.data import load

    export = motion_ws.exports_dir / "clips"
    common = {"batch_size": 4, "shuffle": True, "deterministic": True, "seed": 1}
    tuned = load(export, "train", **common)
    fixed = load(export, "train", parallelism=2, **common)
    assert fixed.options().autotune.enabled is False
    for (a, la), (b, lb) in zip(tuned, fixed, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        np.testing.assert_array_equal(np.asarray(la), np.asarray(lb))


@pytest.mark.slow
def test_a_run_says_what_it_augmented_with_and_its_gap(motion_ws):
    from dataprep.train.loop import TrainOptions, train_baseline

    lines: list[str] = []
    result = train_baseline(
        motion_ws,
        TrainOptions(
            export="clips", model="cnn-lstm", epochs=2, seed=0, run_name="recipe", augment="light"
        ),
        log=lines.append,
    )
    text = "\n".join(lines)
    augmentation = [line for line in lines if line.startswith("augmentation: ")]
    assert len(augmentation) == 1
    assert "clip-consistent" in augmentation[0] and "loader: light" in augmentation[0]
    assert "HorizontalFlip left out" in augmentation[0]  # no flip_map in this workspace
    assert "train/val gap" in text
    gap = result.metrics["training"]["gap"]
    assert gap["gap"] == pytest.approx(gap["train_accuracy"] - gap["val_accuracy"])
    assert result.history[0]["epoch"] == 1 and len(result.history) == 2


def test_preview_shows_labels_and_mirrors_them_with_a_flip_map(motion_ws, tmp_path):
    import albumentations as A
    import cv2

    from dataprep.preview import make_preview

    flip_all = tmp_path / "flip.yaml"
    A.save(A.Compose([A.HorizontalFlip(p=1.0)]), str(flip_all), data_format="yaml")
    plain = make_preview(motion_ws, pipeline=str(flip_all), out=tmp_path / "a.png", max_media=2)
    assert any("HorizontalFlip left out" in note for note in plain["notes"])
    motion_ws.config.augment.flip_map = {"left": "right", "right": "left"}
    try:
        mirrored = make_preview(
            motion_ws, pipeline=str(flip_all), out=tmp_path / "b.png", max_media=2
        )
    finally:
        motion_ws.config.augment.flip_map = None
    assert any("left->right" in note for note in mirrored["notes"])
    band = 96 + 4
    assert plain["pipeline"] is None and plain["height"] == 2 * band + 4  # nothing to augment
    assert mirrored["pipeline"] == str(flip_all) and mirrored["height"] == 4 * band + 4
    sheet = cv2.imread(str(tmp_path / "b.png"))[..., ::-1]
    x = 150  # tiles start after the label column
    original = sheet[4 : 4 + 96, x : x + 96].astype(int)
    augmented = sheet[4 + band : 4 + band + 96, x : x + 96].astype(int)
    # the flipped frame, and under it a dark strip with the mirrored label written on it
    assert np.abs(augmented[:-16] - original[:, ::-1][:-16]).mean() < 4
    strip = augmented[-16:]
    assert strip.max() > 200 and np.median(strip) < np.median(original[:, ::-1][-16:])
