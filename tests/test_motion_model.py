"""The reference cnn-lstm's recipe (issue 13): clip-consistent in-model augmentation, frame
differences, the step-based defaults and early stopping, the overfit hint."""

from __future__ import annotations

import numpy as np
import pytest

from dataprep.train.diagnose import fit_gap, gap_line, overfit_warning


def _history(train, val):
    return [
        {"epoch": i + 1, "accuracy": a, "val_accuracy": b, "val_loss": 1.0 - b}
        for i, (a, b) in enumerate(zip(train, val, strict=True))
    ]


def test_the_gap_is_read_at_the_best_epoch_and_an_overfit_run_gets_one_line():
    history = _history([0.6, 0.9, 1.0, 1.0], [0.5, 0.62, 0.7, 0.66])
    gap = fit_gap(history, best_epoch=3)
    assert gap["train_accuracy"] == 1.0 and gap["val_accuracy"] == 0.7
    assert gap["gap"] == pytest.approx(0.3) and gap["last_gap"] == pytest.approx(0.34)
    assert "gap 0.30 at the best epoch 3" in gap_line(gap)
    line = overfit_warning(gap, train_examples=100, augmented=False)
    assert line.startswith("warning: the run looks overfit (train 1.00, val 0.70)")
    assert "\n" not in line
    assert "augment" in line and "fewer epochs" in line and "100 training examples" in line
    # augmented already: the hint does not suggest it again
    assert "augment" not in overfit_warning(gap, train_examples=5000, augmented=True)


def test_a_run_that_generalizes_or_underfits_gets_no_warning():
    good = fit_gap(_history([0.8, 0.99], [0.78, 0.97]), best_epoch=2)
    assert overfit_warning(good, train_examples=100, augmented=False) is None
    under = fit_gap(_history([0.5, 0.6], [0.3, 0.35]), best_epoch=2)
    assert overfit_warning(under, train_examples=100, augmented=False) is None
    assert fit_gap([{"epoch": 1, "loss": 1.0}], best_epoch=1) is None  # embedding models
    assert overfit_warning(None, train_examples=100, augmented=False) is None


def test_early_stopping_patience_counts_steps():
    from dataprep.train.callbacks import PATIENCE_STEPS, patience_epochs

    assert patience_epochs(5, 1000) == 5  # large exports: the epochs given
    assert patience_epochs(5, 4) == -(-PATIENCE_STEPS // 4)  # 100 clips in 25 batches of 4
    assert patience_epochs(5, 7) * 7 >= PATIENCE_STEPS


@pytest.mark.slow
def test_clip_augment_is_clip_consistent_label_safe_and_off_outside_training():
    from dataprep.train.layers import custom_layers

    layer = custom_layers()["ClipAugment"](colour=0.4, shift=0.5, seed=3)
    rng = np.random.default_rng(0)
    frame = rng.normal(size=(12, 12, 3)).astype("float32")
    clips = np.repeat(np.repeat(frame[None, None], 5, axis=1), 4, axis=0)  # 4 still clips
    assert np.array_equal(np.asarray(layer(clips, training=False)), clips)
    out = np.asarray(layer(clips, training=True))
    assert out.shape == clips.shape and not np.allclose(out, clips)
    # one draw per clip: the frames of a still clip stay equal to each other ...
    np.testing.assert_allclose(out, np.repeat(out[:, :1], 5, axis=1), atol=1e-6)
    # ... and the four (equal) clips got four different colour draws
    assert len({np.round(out[i, 0].mean(axis=(0, 1)), 4).tobytes() for i in range(4)}) == 4
    # a moving dot keeps its direction: the shift moves every frame by the same offset
    moving = np.zeros((1, 5, 12, 12, 3), "float32")
    for t in range(5):
        moving[0, t, 6, 2 + t] = 3.0
    shifted = np.asarray(layer(moving, training=True))[0].max(axis=-1)
    columns = [np.unravel_index(np.argmax(np.abs(f - np.median(f))), f.shape)[1] for f in shifted]
    steps = {(b - a) % 12 for a, b in zip(columns, columns[1:], strict=False)}
    assert steps == {1}  # one pixel to the right every frame, wherever the shift put it


@pytest.mark.slow
def test_cnn_lstm_feeds_frame_differences_and_loads_back(tmp_path):
    import keras

    from dataprep.train.models import build_model, custom_objects, find_trunk
    from dataprep.train.motion_model import describe_augmentation

    model = build_model("cnn-lstm", input_shape=(6, 16, 16, 3), num_classes=4)
    difference = model.get_layer("frame_difference")
    clips = np.random.default_rng(1).normal(size=(2, 6, 16, 16, 3)).astype("float32")
    out = np.asarray(difference(clips))
    assert out.shape == (2, 6, 16, 16, 6)
    np.testing.assert_allclose(out[:, 1:, :, :, 3:], clips[:, 1:] - clips[:, :-1], atol=1e-6)
    assert np.abs(out[:, 0, :, :, 3:]).max() == 0.0
    assert find_trunk(model).name == "motion_trunk"
    assert "clip-consistent" in describe_augmentation(model)
    before = model.predict(clips, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", custom_objects=custom_objects())
    np.testing.assert_allclose(loaded.predict(clips, verbose=0), before, atol=1e-6)
    plain = build_model(
        "cnn-lstm", input_shape=(6, 16, 16, 3), num_classes=4, augment_in_model=False
    )
    assert describe_augmentation(plain) is None
