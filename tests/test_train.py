"""The reference trainers: models, train-baseline runs, evaluate, predict, reports, generators.

One tiny gesture workspace (real H.264 videos -> ingest -> frames -> split -> stats -> TFRecord
export, as clips and as frames) is built once per module; the runs train for one or two epochs.
The accuracy targets are measured by the walkthroughs in examples/, not here.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from dataprep.testing.gestures import (
    GESTURE_CLASSES,
    GestureSpec,
    gesture_frames,
    write_gesture_set,
)

SPEC = GestureSpec(per_class=4, size=32, frames=8, seed=3)


@pytest.fixture(scope="module")
def gesture_ws(tmp_path_factory):
    """A workspace with clip (T=8) and frame exports of 16 tiny gesture videos."""
    from dataprep.export.dataset import export_dataset
    from dataprep.frames import extract_frames
    from dataprep.ingest import ingest
    from dataprep.split import split_media
    from dataprep.stats import compute_stats
    from dataprep.workspace import init_workspace

    root = tmp_path_factory.mktemp("gestures")
    write_gesture_set(root / "raw", SPEC)
    ws = init_workspace(root / "ws", classes=list(GESTURE_CLASSES))
    ingest(ws, [root / "raw"], label_from_dir=True, jobs=1)
    extract_frames(ws, sampling="all", size="32", jobs=1)
    split_media(ws, ratios=[0.5, 0.25, 0.25], seed=0)
    compute_stats(ws, jobs=1)
    export_dataset(ws, format="tfrecord", unit="clip", clip_len=8, clip_stride=8, name="clips")
    export_dataset(ws, format="tfrecord", unit="frame", name="frames")
    return ws


def _train(ws, export, model, run_name, **kwargs):
    from dataprep.train.loop import TrainOptions, train_baseline

    lines: list[str] = []
    options = TrainOptions(
        export=export,
        model=model,
        run_name=run_name,
        epochs=kwargs.pop("epochs", 1),
        batch_size=kwargs.pop("batch_size", 8),
        seed=kwargs.pop("seed", 0),
        **kwargs,
    )
    result = train_baseline(ws, options, log=lines.append)
    return result, lines


@pytest.fixture(scope="module")
def lstm_run(gesture_ws):
    return _train(gesture_ws, "clips", "cnn-lstm", "lstm", epochs=2)


@pytest.fixture(scope="module")
def cnn_run(gesture_ws):
    return _train(gesture_ws, "frames", "cnn", "cnn")


# ------------------------------------------------------------------------------------ models


def test_reference_cnn_has_79626_parameters_at_32x32x3_and_10_classes():
    from dataprep.train.models import build_model

    model = build_model("cnn", input_shape=(32, 32, 3), num_classes=10)
    lines: list[str] = []
    model.summary(print_fn=lambda line, *a, **k: lines.append(line))
    assert model.count_params() == 79_626
    assert "79,626" in "\n".join(lines)
    kinds = [layer.__class__.__name__ for layer in model.layers]
    assert kinds == [
        "Conv2D",
        "Conv2D",
        "MaxPooling2D",
        "Conv2D",
        "MaxPooling2D",
        "Conv2D",
        "Conv2D",
        "MaxPooling2D",
        "Flatten",
        "Dense",
        "Dense",
    ]


@pytest.mark.slow
def test_cnn_lstm_masks_zero_padding_and_its_encoder_sees_position(tmp_path):
    import keras

    from dataprep.train.models import build_model, custom_objects

    rng = np.random.default_rng(0)
    clips = rng.normal(size=(3, 6, 16, 16, 3)).astype("float32")
    clips[0, 4:] = 0.0  # two padded frames: the loaders zero every frame past `length`
    clips[1, 2] = clips[1, 1]  # a repeated real frame is not padding
    mask = np.asarray(custom_objects()["PaddedFrameMask"]()(clips))
    assert mask.tolist()[0] == [True, True, True, True, False, False]
    assert mask[1].all() and mask[2].all()

    # A clip padded with zeros gives the prediction of the same clip cut to its real length
    # (the same weights in a model built for 4 frames), and the padding values do not matter
    # once they are zero; without the mask the LSTM would read 2 more steps.
    model = build_model("cnn-lstm", input_shape=(6, 16, 16, 3), num_classes=4)
    short_model = build_model("cnn-lstm", input_shape=(4, 16, 16, 3), num_classes=4)
    short_model.set_weights(model.get_weights())
    padded = model.predict(clips, verbose=0)
    real = short_model.predict(clips[:, :4], verbose=0)
    np.testing.assert_allclose(padded[0], real[0], atol=1e-5)
    assert np.abs(padded[1:] - real[1:]).max() > 1e-4  # full clips: frames 5 and 6 count

    # saved and loaded (custom layers registered), the mask still works
    model.save(tmp_path / "lstm.keras")
    loaded = keras.models.load_model(tmp_path / "lstm.keras", custom_objects=custom_objects())
    np.testing.assert_allclose(loaded.predict(clips, verbose=0), padded, atol=1e-6)

    names = [layer.name for layer in model.get_layer("frame_encoder").layer.layers]
    assert "keypoints" in names  # spatial soft-argmax: where each feature is
    assert not any(
        isinstance(layer, keras.layers.GlobalAveragePooling2D)
        for layer in model.get_layer("frame_encoder").layer.layers
    )


def test_unknown_model_and_wrong_rank_are_refused():
    from dataprep.train.models import build_model

    with pytest.raises(ValueError, match="unknown model"):
        build_model("resnet", input_shape=(32, 32, 3), num_classes=2)
    with pytest.raises(ValueError, match="rank 4"):
        build_model("cnn-lstm", input_shape=(32, 32, 3), num_classes=2)


# ----------------------------------------------------------------------------------- training


@pytest.mark.slow
def test_cnn_lstm_run_writes_every_output(gesture_ws, lstm_run):
    result, lines = lstm_run
    run_dir = result.run_dir
    for name in (
        "model.keras",
        "checkpoints/best.keras",
        "history.csv",
        "metrics.json",
        "curves.png",
        "confusion.png",
        "config.json",
    ):
        assert (run_dir / name).is_file(), name
    assert any((run_dir / "tensorboard").rglob("events.out.tfevents.*"))
    assert (run_dir / "curves.png").read_bytes()[:4] == b"\x89PNG"

    history = (run_dir / "history.csv").read_text().splitlines()
    assert len(history) == 3 and history[0].startswith("epoch,")
    epoch_lines = [line for line in lines if line.startswith("epoch ")]
    assert len(epoch_lines) == 2
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "images/s", "clips/s"):
        assert key in epoch_lines[0]
    assert any(line.startswith("training on CPU") for line in lines)

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    assert set(metrics["per_class"]) == set(GESTURE_CLASSES)
    assert set(metrics["per_class"]["left"]) == {"precision", "recall", "f1", "support"}
    assert np.asarray(metrics["confusion_matrix"]).shape == (4, 4)
    assert np.asarray(metrics["confusion_matrix"]).sum() == metrics["examples"] == 4
    assert "top_k" not in metrics  # only with more than 5 classes
    assert metrics["training"]["train_clips_per_s"] > 0

    config = json.loads((run_dir / "config.json").read_text())
    info = json.loads((gesture_ws.exports_dir / "clips" / "dataset_info.json").read_text())
    assert config["export"]["fingerprints"] == info["fingerprints"]
    assert config["options"]["model"] == "cnn-lstm" and config["resolved"]["clip_len"] == 8
    assert config["frames"]["sampling"] == "all" and config["frames"]["size"] == "32"
    assert config["devices"]["deterministic"] is True
    assert "--seed 0" in config["command"]


@pytest.mark.slow
def test_predict_gives_the_probabilities_evaluate_gives_for_the_same_clip(
    gesture_ws, lstm_run, tmp_path
):
    from dataprep import manifests
    from dataprep.train.evaluate import load_run_model, predict_split, read_run_config
    from dataprep.train.predict import predict_paths

    run_dir = lstm_run[0].run_dir
    config = read_run_config(run_dir)
    labels, probabilities, meta = predict_split(load_run_model(run_dir), config, "test")
    media = manifests.load(gesture_ws, "media").set_index("media_id")
    media_id = meta[0]["media_id"]
    outside = tmp_path / "new_video.mp4"  # a file that is not in the workspace
    shutil.copy(media.loc[media_id, "path"], outside)

    [result] = predict_paths(gesture_ws, run_dir.name, [outside], top_k=2)
    assert result["frames"] == SPEC.frames and len(result["clips"]) == 1
    clip = result["clips"][0]
    assert clip["start_frame"] == meta[0]["start_frame"] == 0
    predicted = np.array([clip["probabilities"][name] for name in GESTURE_CLASSES])
    np.testing.assert_allclose(predicted, probabilities[0], rtol=1e-5, atol=1e-6)
    assert result["top_k"][0][0] == result["prediction"]
    assert len(result["top_k"]) == 2


@pytest.mark.slow
def test_predict_cuts_long_videos_into_the_exports_clips(gesture_ws, lstm_run, tmp_path):
    from dataprep.testing.media import write_video
    from dataprep.train.predict import predict_paths

    rng = np.random.default_rng(1)
    frames = gesture_frames("up", rng, SPEC) + gesture_frames("up", rng, SPEC)
    frames += gesture_frames("up", rng, SPEC)[:5]  # 21 frames: clips at 0 and 8, 5 left over
    long_video = write_video(tmp_path / "long.mp4", frames=frames, fps=10.0)
    short_video = write_video(tmp_path / "short.mp4", frames=frames[:5], fps=10.0)
    long_result, short_result = predict_paths(
        gesture_ws, lstm_run[0].run_dir, [long_video, short_video]
    )
    assert [c["start_frame"] for c in long_result["clips"]] == [0, 8]
    clip_probs = np.array([list(c["probabilities"].values()) for c in long_result["clips"]])
    whole = np.array(list(long_result["probabilities"].values()))
    np.testing.assert_allclose(whole, clip_probs.mean(axis=0), rtol=1e-5)
    assert short_result["clips"][0]["end_frame"] == 4  # padded to 8, 5 real frames


@pytest.mark.slow
def test_frame_model_run_reports_majority_vote_and_evaluates_other_splits(gesture_ws, cnn_run):
    from dataprep.train.evaluate import evaluate_run

    result, lines = cnn_run
    assert "Total params" in "\n".join(lines)
    vote = result.metrics["media_vote"]
    assert vote["media"] == 4 and 0.0 <= vote["accuracy"] <= 1.0
    assert result.metrics["examples"] == 4 * SPEC.frames

    val = evaluate_run(gesture_ws, "cnn", split="val")
    assert (result.run_dir / "metrics-val.json").is_file()
    assert (result.run_dir / "confusion-val.png").is_file()
    assert val["split"] == "val" and "val_accuracy" in val
    from dataprep.info import summarize

    runs = {row["run_id"]: row for row in summarize(gesture_ws)["runs"]}
    assert runs["cnn"]["state"] == "finished" and runs["cnn"]["model"] == "cnn"
    assert runs["cnn"]["test_accuracy"] == result.metrics["test_accuracy"]
    again = evaluate_run(gesture_ws, result.run_dir, split="test")
    assert again["test_accuracy"] == result.metrics["test_accuracy"]
    assert again["training"]["epochs_run"] == 1  # kept from training


@pytest.mark.slow
def test_seeded_runs_on_cpu_repeat_exactly_and_config_reproduces_them(gesture_ws, cnn_run):
    from dataprep.train.evaluate import load_run_model
    from dataprep.train.loop import options_from_config, train_baseline

    first = cnn_run[0]
    options = options_from_config(first.run_dir / "config.json", run_name="cnn-again")
    second = train_baseline(gesture_ws, options, log=lambda line: None)
    assert second.history[0]["loss"] == first.history[0]["loss"]
    assert second.history[0]["val_loss"] == first.history[0]["val_loss"]
    for a, b in zip(
        load_run_model(first.run_dir).get_weights(),
        load_run_model(second.run_dir).get_weights(),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_options_that_do_not_fit_the_export_are_refused(gesture_ws):
    from dataprep.errors import UsageError
    from dataprep.train.loop import TrainOptions, train_baseline

    cases = [
        (TrainOptions(export="frames", model="cnn-lstm"), "export with --unit clip"),
        (TrainOptions(export="clips", model="cnn"), "use --model cnn-lstm"),
        (TrainOptions(export="clips", model="cnn-lstm", clip_len=9), "--clip-len 9"),
        (TrainOptions(export="nope", model="cnn"), "no complete export"),
        (TrainOptions(export="frames", model="cnn", mixed_precision="fast"), "auto, on or off"),
        (TrainOptions(export="frames", model="cnn", run_name="bad/name"), "--run-name"),
        (TrainOptions(export="frames", model="cnn", image_size=24), "at least 32x32"),
    ]
    for options, message in cases:
        with pytest.raises(UsageError, match=message):
            train_baseline(gesture_ws, options, log=lambda line: None)
    assert not (gesture_ws.runs_dir / "bad").exists()


def test_bad_train_values_name_the_option_or_the_config_key(tmp_path):
    from dataprep.config import validate_config
    from dataprep.errors import ConfigError, UsageError
    from dataprep.train.options import TrainOptions, resolve_options

    class Workspace:  # resolve_options reads only .config
        def __init__(self, train):
            self.config = validate_config({"train": train})

    info = {
        "name": "frames",
        "unit": "frame",
        "image": {"height": 32, "width": 32, "channels": 3},
        "splits": {s: {"examples": 4} for s in ("train", "val", "test")},
    }
    settings = resolve_options(TrainOptions(export="frames", epochs=3), Workspace({}), info)
    assert (settings.epochs, settings.model, settings.input_shape) == (3, "cnn-bn", (32, 32, 3))
    with pytest.raises(Exception, match="frozen|cannot assign"):
        settings.epochs = 4
    ws = Workspace({"epochs": 7})
    for options, message in [
        (TrainOptions(export="frames", epochs=0), "--epochs 0"),
        (TrainOptions(export="frames", lr=float("nan")), "--lr nan"),
        (TrainOptions(export="frames", image_size=4), "--image-size 4: too small"),
        (TrainOptions(export="frames", model="resnet"), "--model 'resnet'.*cnn, cnn-bn"),
    ]:
        with pytest.raises(UsageError, match=message):
            resolve_options(options, ws, info)
    # a bad value in dataprep.toml names the file's section and key, never a flag
    with pytest.raises(ConfigError, match=r"dataprep.toml: \[train\] batch_size"):
        Workspace({"batch_size": 0})


# ---------------------------------------------------------------------------------------- CLI


@pytest.mark.slow
def test_cli_evaluate_and_predict_json_and_errors(gesture_ws, cnn_run, tmp_path):
    from typer.testing import CliRunner

    from dataprep import manifests
    from dataprep.cli.main import app
    from dataprep.errors import EXIT_FAILED, EXIT_PARTIAL
    from dataprep.testing.media import write_black_png

    runner = CliRunner()
    ws = ["-w", str(gesture_ws.root)]
    result = runner.invoke(app, [*ws, "evaluate", "cnn", "--split", "val", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["split"] == "val"

    image = tmp_path / "frame.png"
    frame_path = manifests.load(gesture_ws, "frames")["path"].iloc[0]
    shutil.copy(gesture_ws.root / frame_path, image.with_suffix(".jpg"))
    result = runner.invoke(
        app, [*ws, "predict", "cnn", str(image.with_suffix(".jpg")), "--json", "--top-k", "1"]
    )
    assert result.exit_code == 0, result.output
    [item] = json.loads(result.output)
    assert item["unit"] == "frame" and len(item["top_k"]) == 1 and len(item["clips"]) == 1

    result = runner.invoke(
        app,
        [
            *ws,
            "train-baseline",
            "--export",
            "frames",
            "--model",
            "cnn",
            "--epochs",
            "1",
            "--batch-size",
            "16",
            "--lr",
            "0.002",
            "--image-size",
            "40",
            "--seed",
            "1",
            "--run-name",
            "cli-cnn",
            "--mixed-precision",
            "off",
            "--patience",
            "2",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["run_id"] == "cli-cnn" and summary["files"]["curves"].endswith("curves.png")
    config = json.loads((gesture_ws.runs_dir / "cli-cnn" / "config.json").read_text())
    assert config["input_shape"] == [40, 40, 3]
    assert {k: config["resolved"][k] for k in ("batch_size", "lr", "seed", "patience")} == {
        "batch_size": 16,
        "lr": 0.002,
        "seed": 1,
        "patience": 2,
    }

    result = runner.invoke(
        app, [*ws, "train-baseline", "--export", "frames", "--model", "cnn-lstm"]
    )
    assert result.exit_code == 2
    assert "export with --unit clip" in result.output
    result = runner.invoke(app, [*ws, "evaluate", "no-such-run"])
    assert result.exit_code == 2 and "no run 'no-such-run'" in result.output
    result = runner.invoke(app, [*ws, "predict", "cnn", str(tmp_path / "missing.mp4")])
    assert result.exit_code == 2 and "no such file" in result.output

    # issue 11 item 6: a lying header or an image bomb is one error naming the file; the others
    # are answered (exit 1: some inputs rejected; 3 when every file failed)
    liar = write_black_png(tmp_path / "liar.png", 100_000, 100_000, rows=False)
    bomb = write_black_png(tmp_path / "bomb.png", 20_000, 20_000)
    good = str(image.with_suffix(".jpg"))
    result = runner.invoke(app, [*ws, "predict", "cnn", str(liar), good, str(bomb), "--json"])
    assert result.exit_code == EXIT_PARTIAL, result.output
    lines = result.output.splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 2 and "liar.png: 100000x100000 pixels" in errors[0]
    assert "bomb.png: 20000x20000 pixels" in errors[1] and "max_pixels" in errors[1]
    items = json.loads("\n".join(line for line in lines if not line.startswith("error: ")))
    assert [sorted(item) == ["error", "path"] for item in items] == [True, False, True]
    assert items[1]["prediction"] == item["prediction"]  # the good file as when alone
    result = runner.invoke(app, [*ws, "predict", "cnn", str(liar)])
    assert result.exit_code == EXIT_FAILED and "liar.png" in result.output
    # predict takes the workspace's own limit ([ingest] max_pixels), not only the default
    toml = gesture_ws.root / "dataprep.toml"
    before = toml.read_text()
    assert "max_pixels = 100000000" in before
    toml.write_text(before.replace("max_pixels = 100000000", "max_pixels = 500"))
    try:
        result = runner.invoke(app, [*ws, "predict", "cnn", good])
    finally:
        toml.write_text(before)
    assert result.exit_code == EXIT_FAILED and "above the limit" in result.output


@pytest.mark.slow
def test_cli_names_a_bit_flipped_shard_in_train_baseline_and_evaluate(gesture_ws, cnn_run):
    from typer.testing import CliRunner

    from dataprep.cli.main import app
    from dataprep.data import load
    from dataprep.errors import EXIT_FAILED

    broken = gesture_ws.exports_dir / "frames-flipped"
    shutil.copytree(gesture_ws.exports_dir / "frames", broken)
    info = json.loads((broken / "dataset_info.json").read_text())

    def flip_a_bit(split):
        shard = broken / info["splits"][split]["shards"][0]
        data = bytearray(shard.read_bytes())
        data[200] ^= 0x04  # inside the first record's data; the framing stays intact
        shard.write_bytes(bytes(data))
        return shard

    train_shard, test_shard = flip_a_bit("train"), flip_a_bit("test")
    load(broken, "train", batch_size=4)  # the default (framing) check up front passes
    runner = CliRunner()
    ws = ["-w", str(gesture_ws.root)]
    result = runner.invoke(
        app,
        [*ws, "train-baseline", "--export", "frames-flipped", "--model", "cnn"]
        + ["--epochs", "1", "--seed", "0", "--run-name", "flipped"],
    )
    assert result.exit_code == EXIT_FAILED, result.output
    error = result.output.strip().splitlines()[-1]
    assert error.startswith(f"error: {train_shard.name}: record 0 ")
    assert "data checksum" in error and "DataLossError" not in result.output
    assert not (gesture_ws.runs_dir / "flipped").exists()  # nothing trained: no run folder

    # evaluate a run whose export was damaged since
    run_dir = gesture_ws.runs_dir / "cnn-on-flipped"
    shutil.copytree(gesture_ws.runs_dir / "cnn", run_dir)
    config = json.loads((run_dir / "config.json").read_text())
    config["export"]["dir"] = str(broken)
    (run_dir / "config.json").write_text(json.dumps(config))
    result = runner.invoke(app, [*ws, "evaluate", "cnn-on-flipped"])
    assert result.exit_code == EXIT_FAILED, result.output
    error = result.output.strip().splitlines()[-1]
    assert error.startswith(f"error: {test_shard.name}: record 0 ") and "data checksum" in error


# ------------------------------------------------------------------------------------ reports


def test_metrics_top_k_and_majority_vote():
    from dataprep.train.reports import compute_metrics, majority_vote

    names = [str(i) for i in range(7)]
    labels = [0, 1, 2, 3]
    probs = np.full((4, 7), 0.01)
    probs[0, 0] = probs[1, 2] = probs[2, 2] = probs[3, 4] = 0.9
    probs[1, 1] = probs[3, 3] = 0.05
    metrics = compute_metrics(labels, probs, names, split="val")
    assert metrics["val_accuracy"] == 0.5
    assert metrics["top_k"] == {"3": 1.0, "5": 1.0}
    assert metrics["per_class"]["2"]["precision"] == 0.5
    assert metrics["confusion_matrix"][1][2] == 1
    vote = majority_vote([0, 0, 0, 1], np.eye(2)[[0, 1, 0, 0]], ["a", "a", "a", "b"], 2)
    assert vote == {"media": 2, "accuracy": 0.5}


# --------------------------------------------------------------------------------- generators


def test_gesture_frames_move_in_their_direction_and_wrap():
    rng = np.random.default_rng(0)
    spec = GestureSpec(noise=0.0, size=32, frames=6)
    for label, axis, sign in (("left", 1, -1), ("right", 1, 1), ("up", 0, -1), ("down", 0, 1)):
        frames = gesture_frames(label, rng, spec)
        assert len(frames) == 6 and frames[0].shape == (32, 32, 3)
        first, second = frames[0].astype(int), frames[1].astype(int)
        best = min(range(1, 4), key=lambda s: np.abs(np.roll(first, sign * s, axis) - second).sum())
        assert np.abs(np.roll(first, sign * best, axis) - second).sum() == 0, label
    with pytest.raises(ValueError, match="unknown gesture"):
        gesture_frames("spin", rng, spec)


def test_digits_are_written_as_class_folders(tmp_path):
    import cv2

    from dataprep.testing.digits import write_digits

    counts = write_digits(tmp_path / "digits", size=32, limit=20)
    assert sum(counts.values()) == 20 and set(counts) <= {str(d) for d in range(10)}
    image = cv2.imread(str(next((tmp_path / "digits").glob("*/digit_0000.png"))))
    assert image.shape == (32, 32, 3)


# ------------------------------------------------------------------------ other Keras backends

TORCH_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import keras
    assert keras.backend.backend() == "torch"
    from dataprep.data import iter_numpy
    from dataprep.train.models import build_model, compile_model
    for export, name in ((sys.argv[1], "cnn-bn"), (sys.argv[2], "cnn-lstm")):
        batches = list(iter_numpy(export, "train", batch_size=4, shuffle=False))
        images, labels = batches[0]
        model = build_model(name, input_shape=images.shape[1:], num_classes=4)
        compile_model(model, name, lr=1e-3, steps_per_epoch=len(batches), epochs=1)
        history = model.fit(images, labels, epochs=1, verbose=0)
        probs = model.predict(images, verbose=0)
        assert np.isfinite(history.history["loss"][0])
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-4)
        print(name, "ok", probs.shape)
    print("tensorflow imported:", "tensorflow" in sys.modules)
    """
)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="PyTorch not installed")
def test_models_train_on_the_torch_backend_from_the_numpy_reader(gesture_ws):
    env = {**os.environ, "KERAS_BACKEND": "torch", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            TORCH_SCRIPT,
            str(gesture_ws.exports_dir / "frames"),
            str(gesture_ws.exports_dir / "clips"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "cnn-bn ok" in done.stdout and "cnn-lstm ok" in done.stdout
    assert "tensorflow imported: False" in done.stdout
