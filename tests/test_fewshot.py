"""Embedding trainers, enrollment, gallery prediction, few-shot evaluation and transfer learning
(issue 14).

One tiny workspace of the eight generated motions (real H.264 videos through ingest, frames,
split, stats and TFRecord exports as clips and as frames) is built once per module; the runs train
for one or two epochs. The accuracy figures are measured by benchmarks/bench_fewshot.py, not here.
"""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest

from dataprep.testing.gestures import (
    DIAGONAL_CLASSES,
    GESTURE_CLASSES,
    MOTION_CLASSES,
    GestureSpec,
    gesture_frames,
    write_gesture_set,
)

SPEC = GestureSpec(per_class=6, size=32, frames=8, seed=5)


# ------------------------------------------------------------------------------ quick (no TF)


def test_diagonal_gestures_move_along_both_axes():
    rng = np.random.default_rng(0)
    spec = GestureSpec(noise=0.0, size=32, frames=4)
    for label, (sx, sy) in zip(DIAGONAL_CLASSES, [(-1, -1), (1, -1), (-1, 1), (1, 1)], strict=True):
        first, second = (f.astype(int) for f in gesture_frames(label, rng, spec)[:2])
        best = min(
            range(1, 4),
            key=lambda s: np.abs(np.roll(first, (sy * s, sx * s), (0, 1)) - second).sum(),
        )
        assert np.abs(np.roll(first, (sy * best, sx * best), (0, 1)) - second).sum() == 0, label
    assert MOTION_CLASSES == GESTURE_CLASSES + DIAGONAL_CLASSES
    with pytest.raises(ValueError, match="unknown gesture 'spin'"):
        write_gesture_set("/nonexistent", spec, ("left", "spin"))


def test_episodes_keep_support_and_queries_apart_and_score_prototypes():
    from dataprep.errors import UsageError
    from dataprep.train import fewshot

    # 4 classes x 6 media x 2 examples; the class is the direction of the vector
    labels = np.repeat(np.arange(4), 12)
    media = [f"m{c}-{i // 2}" for c in range(4) for i in range(12)]
    rng = np.random.default_rng(0)
    centres = np.eye(8)[:4] * 3
    vectors = centres[labels] + rng.normal(0, 0.3, (48, 8))
    episodes = fewshot.draw_episodes(
        labels, media, ways=3, shots=2, queries=4, episodes=50, seed=1, open_set=True
    )
    assert len(episodes) == 50
    for episode in episodes:
        assert len(episode.classes) == 3 and all(len(s) == 2 for s in episode.support)
        support_media = {media[i] for ids in episode.support for i in ids}
        assert not support_media & {media[i] for i in episode.queries}
        for ids in episode.support:
            assert len({media[i] for i in ids}) == 2  # shots from distinct media
        assert [episode.classes[a] for a in episode.answers] == [labels[i] for i in episode.queries]
        assert {labels[i] for i in episode.unknown} == set(range(4)) - set(episode.classes)
    accuracies = fewshot.score(vectors, episodes, normalize=False)
    assert np.mean(accuracies) == 1.0  # well separated classes
    summary = fewshot.mean_ci([0.5, 0.7, 0.6, 0.8])
    assert summary["mean"] == pytest.approx(0.65)
    half = 1.96 * np.std([0.5, 0.7, 0.6, 0.8], ddof=1) / 2
    assert summary["ci95"] == pytest.approx([0.65 - half, 0.65 + half])

    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    calibration = fewshot.calibrate_threshold(unit, labels, media, shots=2, seed=0)
    assert calibration["known_accepted"] == 1.0 and calibration["unknown_rejected"] == 1.0
    with pytest.raises(UsageError, match="need 5 classes with at least 7 media"):
        fewshot.draw_episodes(labels, media, ways=5, shots=6, queries=1, episodes=1)


def test_gallery_schema_round_trips_embeddings(tmp_path):
    from datetime import UTC, datetime

    from dataprep import manifests

    row = {
        "class": "wave",
        "media_id": "0123456789abcdef",
        "source": "a.mp4",
        "examples": 2,
        "embedding": np.array([0.6, 0.8], np.float32),
        "enrolled_at": datetime.now(UTC),
    }
    manifests.write_manifest(
        tmp_path / "g.parquet", "gallery", manifests.from_records("gallery", [row])
    )
    back = manifests.read_manifest(tmp_path / "g.parquet", "gallery")
    assert back["class"].tolist() == ["wave"]
    np.testing.assert_array_equal(
        np.asarray(back["embedding"][0], np.float32), np.array([0.6, 0.8], np.float32)
    )


def test_embedding_and_transfer_options_are_checked_before_training():
    from dataprep.config import validate_config
    from dataprep.errors import UsageError
    from dataprep.train.options import TrainOptions, resolve_options

    class Workspace:
        config = validate_config({})

    info = {
        "name": "motions",
        "unit": "frame",
        "class_names": list(MOTION_CLASSES),
        "image": {"height": 32, "width": 32, "channels": 3},
        "splits": {s: {"examples": 8} for s in ("train", "val", "test")},
    }
    ok = resolve_options(
        TrainOptions(export="m", model="siamese", exclude_classes="up-left, down-right"),
        Workspace(),
        info,
    )
    assert ok.exclude_classes == ("up-left", "down-right") and ok.embedding
    assert (ok.loss, ok.mining, ok.margin, ok.normalize) == ("triplet", "semi-hard", 0.2, True)
    contrastive = resolve_options(
        TrainOptions(export="m", model="siamese", loss="contrastive"), Workspace(), info
    )
    assert contrastive.margin == 1.0
    cases = [
        (TrainOptions(export="m", model="cnn-bn", loss="triplet"), "--loss applies to the emb"),
        (TrainOptions(export="m", model="siamese", loss="arcface"), "--loss 'arcface'"),
        (TrainOptions(export="m", model="siamese", exclude_classes="nope"), "'nope' is not a cl"),
        (
            TrainOptions(export="m", model="siamese", exclude_classes=",".join(MOTION_CLASSES[1:])),
            "fewer than 2 classes",
        ),
        (TrainOptions(export="m", model="cnn-bn", freeze_trunk=True), "--freeze-trunk"),
        (TrainOptions(export="m", model="cnn-bn", backbone="ResNet50"), "--backbone 'ResNet50'"),
        (TrainOptions(export="m", model="siamese", embedding_dim=1), "--embedding-dim 1"),
        (TrainOptions(export="m", model="cnn", backbone="EfficientNetB0"), "replaces the trunk"),
    ]
    for options, message in cases:
        with pytest.raises(UsageError, match=message):
            resolve_options(options, Workspace(), info)
    turned = resolve_options(
        TrainOptions(export="m", model="siamese", loss="prototypical", class_augment="dihedral"),
        Workspace(),
        info,
    )
    assert (turned.loss, turned.class_augment) == ("prototypical", "dihedral")
    features = resolve_options(
        TrainOptions(export="m", model="siamese", embedding_from="features"), Workspace(), info
    )
    assert (ok.embedding_from, features.embedding_from) == ("projection", "features")
    for options, message in [
        (TrainOptions(export="m", model="cnn-bn", embedding_from="features"), "--embedding-from "
         "applies to the embedding models"),
        (TrainOptions(export="m", model="siamese", embedding_from="pca"), "--embedding-from 'pca'"),
    ]:  # fmt: skip
        with pytest.raises(UsageError, match=message):
            resolve_options(options, Workspace(), info)
    wide = {**info, "image": {"height": 32, "width": 48, "channels": 3}}
    with pytest.raises(UsageError, match="needs square frames; the frames are 48x32"):
        resolve_options(
            TrainOptions(export="m", model="siamese", class_augment="rotate"), Workspace(), wide
        )
    with pytest.raises(UsageError, match="--class-augment applies to the embedding models"):
        resolve_options(
            TrainOptions(export="m", model="cnn-bn", class_augment="rotate"), Workspace(), info
        )
    backbone = resolve_options(
        TrainOptions(export="m", model="cnn-bn", backbone="MobileNetV3Small", weights="none"),
        Workspace(),
        info,
    )
    assert backbone.normalize is False  # the backbone preprocesses 0..255 pixels itself


# ------------------------------------------------------------------------- Keras, no training


@pytest.mark.slow
def test_metric_losses_match_a_brute_force_over_triplets_and_pairs():
    from dataprep.train.losses import contrastive_loss, triplet_loss

    rng = np.random.default_rng(0)
    emb = rng.normal(size=(8, 5)).astype("float32")
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    labels = np.array([0, 0, 1, 1, 2, 2, 2, 0])
    dist = np.sqrt(np.maximum(2 - 2 * emb @ emb.T, 1e-12))
    margin = 0.3
    hard, semi = [], []
    for a in range(8):
        pos = [p for p in range(8) if p != a and labels[p] == labels[a]]
        neg = [n for n in range(8) if labels[n] != labels[a]]
        hard.append(max(0, max(dist[a, pos]) - min(dist[a, neg]) + margin))
        for p in pos:
            farther = [dist[a, n] for n in neg if dist[a, n] > dist[a, p]]
            chosen = min(farther) if farther else max(dist[a, neg])
            semi.append(max(0, dist[a, p] - chosen + margin))
    pos_pairs = [
        dist[a, b] ** 2 for a in range(8) for b in range(8) if a != b and labels[a] == labels[b]
    ]
    neg_pairs = [
        max(0, 1.0 - dist[a, b]) ** 2 for a in range(8) for b in range(8) if labels[a] != labels[b]
    ]
    got_hard = float(triplet_loss(labels, emb, margin=margin, mining="hard"))
    got_semi = float(triplet_loss(labels, emb, margin=margin, mining="semi-hard"))
    got_pairs = float(contrastive_loss(labels, emb, margin=1.0))
    assert got_hard == pytest.approx(np.mean(hard), rel=1e-4)
    assert got_semi == pytest.approx(np.mean(semi), rel=1e-4)
    assert got_pairs == pytest.approx((np.mean(pos_pairs) + np.mean(neg_pairs)) / 2, rel=1e-4)


@pytest.mark.slow
def test_prototypical_loss_matches_a_softmax_over_class_means():
    from dataprep.train.losses import PROTO_SCALE, metric_loss, prototypical_loss

    rng = np.random.default_rng(1)
    emb = rng.normal(size=(9, 6)).astype("float32")
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    labels = np.array([3, 3, 40, 40, 40, 7, 7, 7, 7])  # any integers, uneven counts
    classes = sorted(set(labels))
    protos = np.stack([emb[labels == c].mean(axis=0) for c in classes])
    protos /= np.linalg.norm(protos, axis=1, keepdims=True)
    logits = PROTO_SCALE * emb @ protos.T
    own = [row[classes.index(c)] for row, c in zip(logits, labels, strict=True)]
    expected = np.mean(np.log(np.exp(logits).sum(axis=1)) - own)
    assert float(prototypical_loss(labels, emb)) == pytest.approx(expected, rel=1e-4)
    assert float(metric_loss("prototypical")(labels, emb)) == pytest.approx(expected, rel=1e-4)
    apart = np.eye(6, dtype="float32")[[0, 0, 1, 1, 2, 2]]  # each class on its own axis
    assert float(prototypical_loss(np.array([0, 0, 1, 1, 2, 2]), apart, scale=10.0)) < 0.001


@pytest.mark.slow
def test_class_variants_are_the_eight_symmetries_with_labels_of_their_own():
    import tensorflow as tf

    from dataprep.train.embedding import _with_class_variants, class_variant

    image = np.arange(16, dtype="float32").reshape(4, 4, 1)
    turned = [class_variant(tf.constant(image), tf.constant(v, tf.int64)).numpy() for v in range(8)]
    assert len({t.tobytes() for t in turned}) == 8
    np.testing.assert_array_equal(turned[1][..., 0], np.rot90(image[..., 0]))
    np.testing.assert_array_equal(turned[4][..., 0], image[:, ::-1, 0])
    data = tf.data.Dataset.from_tensor_slices((np.stack([image] * 64), np.full(64, 2, np.int64)))
    pairs = list(_with_class_variants(data, 4, seed=0).as_numpy_iterator())
    labels = {int(label) for _, label in pairs}
    assert labels == {8, 9, 10, 11}  # 2 * 4 + variant, every variant drawn
    for images, label in pairs:  # each image turned by its label's variant
        np.testing.assert_array_equal(images[..., 0], np.rot90(image[..., 0], label - 8))


@pytest.mark.slow
def test_features_readout_is_the_unit_features_without_the_projection(tmp_path):
    import keras

    from dataprep.train.embedding import features_model, features_readout
    from dataprep.train.models import build_model, custom_objects, find_trunk

    model = build_model("siamese", input_shape=(16, 16, 3), num_classes=0, embedding_dim=8)
    images = np.random.default_rng(2).normal(size=(5, 16, 16, 3)).astype("float32")
    features = np.asarray(features_model(model)(images, training=False))
    assert features.shape == (5, 2 * 2 * 64)  # the trunk's flattened map, not the 8 projected
    readout = features_readout(model)
    vectors = readout.predict(images, verbose=0)
    expected = features / np.linalg.norm(features, axis=1, keepdims=True)
    np.testing.assert_allclose(vectors, expected, rtol=1e-4, atol=1e-5)
    assert "embedding_fc" not in [layer.name for layer in readout.layers]
    readout.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(
        tmp_path / "model.keras", custom_objects=custom_objects(), compile=False
    )
    np.testing.assert_allclose(loaded.predict(images, verbose=0), vectors, rtol=1e-5, atol=1e-6)
    assert find_trunk(loaded) is not None  # --init-from still finds the trunk


def _internet() -> bool:
    try:
        socket.create_connection(("storage.googleapis.com", 443), timeout=3).close()
        return True
    except OSError:
        return False


@pytest.mark.slow
def test_backbones_build_from_a_weights_file_and_imagenet_offline_says_where_to_look(
    tmp_path, monkeypatch
):
    import keras

    from dataprep.errors import UsageError
    from dataprep.train.backbones import application
    from dataprep.train.models import build_model, find_trunk

    keras.utils.set_random_seed(1)
    path = tmp_path / "mnv3.weights.h5"
    application("MobileNetV3Small", (32, 32, 3), None).save_weights(path)
    model = build_model(
        "siamese-lstm",
        input_shape=(4, 32, 32, 3),
        num_classes=0,
        backbone="MobileNetV3Small",
        weights=str(path),
    )
    saved = application("MobileNetV3Small", (32, 32, 3), None)
    saved.load_weights(path)
    for a, b in zip(find_trunk(model).get_weights(), saved.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert model.output_shape == (None, 64)
    with pytest.raises(UsageError, match="no such file"):
        build_model("cnn-bn", input_shape=(32, 32, 3), num_classes=2,
                    backbone="EfficientNetB0", weights=str(tmp_path / "missing.h5"))  # fmt: skip
    with pytest.raises(UsageError, match="not weights of EfficientNetB0"):
        build_model("cnn-bn", input_shape=(32, 32, 3), num_classes=2,
                    backbone="EfficientNetB0", weights=str(path))  # fmt: skip
    if _internet():
        pytest.skip("this machine reaches the internet: imagenet weights would download")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    with pytest.raises(UsageError) as error:
        build_model("siamese", input_shape=(32, 32, 3), num_classes=0,
                    backbone="MobileNetV3Small", weights="imagenet")  # fmt: skip
    message = str(error.value)
    assert "\n" not in message and "--weights PATH" in message
    assert f"Keras looks for it in {tmp_path / 'keras-home' / 'models'}" in message
    assert "weights_mobilenet_v3_small" in message


# ----------------------------------------------------------------------------------- training


@pytest.fixture(scope="module")
def motion_ws(tmp_path_factory):
    """A workspace of the eight motions: clip (T=8) and frame exports."""
    from dataprep.export.dataset import export_dataset
    from dataprep.frames import extract_frames
    from dataprep.ingest import ingest
    from dataprep.split import split_media
    from dataprep.stats import compute_stats
    from dataprep.workspace import init_workspace

    root = tmp_path_factory.mktemp("motions")
    write_gesture_set(root / "raw", SPEC, MOTION_CLASSES)
    ws = init_workspace(root / "ws", classes=list(MOTION_CLASSES))
    ingest(ws, [root / "raw"], label_from_dir=True, jobs=1)
    extract_frames(ws, sampling="all", size="32", jobs=1)
    split_media(ws, ratios=[0.34, 0.33, 0.33], seed=0)
    compute_stats(ws, jobs=1)
    export_dataset(ws, format="tfrecord", unit="clip", clip_len=8, clip_stride=8, name="clips")
    export_dataset(ws, format="tfrecord", unit="frame", name="frames")
    return ws


def _train(ws, **options):
    from dataprep.train.loop import TrainOptions, train_baseline

    lines: list[str] = []
    defaults = {"epochs": 1, "batch_size": 16, "seed": 0}
    result = train_baseline(ws, TrainOptions(**{**defaults, **options}), log=lines.append)
    return result, lines


@pytest.fixture(scope="module")
def lstm_siamese(motion_ws):
    return _train(
        motion_ws,
        export="clips",
        model="siamese-lstm",
        run_name="siamese-lstm",
        exclude_classes=",".join(DIAGONAL_CLASSES),
        embedding_dim=16,
        per_class=4,
        epochs=2,
    )


@pytest.mark.slow
def test_siamese_lstm_run_writes_its_folder_and_validates_few_shot(motion_ws, lstm_siamese):
    from dataprep.train.evaluate import load_run_model

    result, lines = lstm_siamese
    run_dir = result.run_dir
    for name in ("model.keras", "checkpoints/best.keras", "history.csv", "metrics.json",
                 "curves.png", "config.json", "calibration.json"):  # fmt: skip
        assert (run_dir / name).is_file(), name
    assert any((run_dir / "tensorboard").rglob("events.out.tfevents.*"))
    epoch_lines = [line for line in lines if line.startswith("epoch ")]
    assert len(epoch_lines) == 2 and "val_fewshot_accuracy" in epoch_lines[0]
    history = result.history
    assert all(0.0 <= row["val_fewshot_accuracy"] <= 1.0 for row in history)
    for row in history:  # accuracy first, the few-shot margin only between equal accuracies
        assert row["val_fewshot_score"] == pytest.approx(
            row["val_fewshot_accuracy"] + 1e-3 * row["val_fewshot_margin"]
        )
    best = max(range(2), key=lambda i: (history[i]["val_fewshot_score"], -i)) + 1
    assert result.best_epoch == best
    config = json.loads((run_dir / "config.json").read_text())
    assert config["resolved"]["exclude_classes"] == list(DIAGONAL_CLASSES)
    assert "--exclude-classes up-left,up-right,down-left,down-right" in config["command"]
    embeddings = load_run_model(run_dir).predict(np.zeros((2, 8, 32, 32, 3), "float32"), verbose=0)
    assert embeddings.shape == (2, 16)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, rtol=1e-5)
    metrics = result.metrics
    assert metrics["episode"] == "5-way 1-shot" and 0.0 <= metrics["test_accuracy"] <= 1.0
    assert metrics["test_accuracy"] == metrics["accuracy"]
    assert 0.0 <= metrics["baseline_accuracy"] <= 1.0 and metrics["ci95"][0] <= metrics["accuracy"]
    calibration = json.loads((run_dir / "calibration.json").read_text())
    assert calibration["threshold"] > 0 and calibration["split"] == "val"


@pytest.mark.slow
def test_enroll_is_idempotent_and_predict_answers_from_the_gallery(
    motion_ws, lstm_siamese, tmp_path
):
    import os

    from dataprep.errors import UsageError
    from dataprep.testing.media import write_video
    from dataprep.train.gallery import enroll, read_gallery
    from dataprep.train.predict import predict_paths

    run_id = lstm_siamese[0].run_id
    with pytest.raises(UsageError, match="no gallery yet"):
        predict_paths(motion_ws, run_id, [tmp_path / "x.mp4"])
    rng = np.random.default_rng(42)
    support = tmp_path / "support"
    for label in ("up-left", "down-right"):
        for i in range(2):
            write_video(
                support / label / f"{i}.mp4", frames=gesture_frames(label, rng, SPEC), fps=10
            )
    first = enroll(motion_ws, run_id, [support])
    assert first["added"] == 4 and first["classes"] == {"down-right": 2, "up-left": 2}
    gallery_path = lstm_siamese[0].run_dir / "gallery.parquet"
    stamp = os.stat(gallery_path).st_mtime_ns
    again = enroll(motion_ws, run_id, [support])
    assert again["added"] == 0 and again["unchanged"] == 4
    assert os.stat(gallery_path).st_mtime_ns == stamp  # nothing rewritten
    extra = write_video(tmp_path / "ul3.mp4", frames=gesture_frames("up-left", rng, SPEC), fps=10)
    added = enroll(motion_ws, run_id, [extra], label="up-left")
    assert added["classes"] == {"down-right": 2, "up-left": 3}  # appended to the class
    frame = read_gallery(lstm_siamese[0].run_dir)
    assert len(frame) == 5 and set(frame["examples"]) == {1}
    np.testing.assert_allclose([np.linalg.norm(e) for e in frame["embedding"]], 1.0, rtol=1e-5)
    from_split = enroll(motion_ws, run_id, split="train", classes=["left"], shots=1)
    assert from_split["added"] == 1 and from_split["classes"]["left"] == 1

    query = write_video(tmp_path / "q.mp4", frames=gesture_frames("up-left", rng, SPEC), fps=10)
    [result] = predict_paths(motion_ws, run_id, [query], top_k=2)
    assert result["prediction"] in ("up-left", "down-right", "left", "unknown")
    assert result["nearest"] == result["top_k"][0][0] and len(result["top_k"]) == 2
    assert result["distance"] == min(result["distances"].values())
    assert (result["prediction"] == "unknown") == (result["distance"] > result["threshold"])
    [strict] = predict_paths(motion_ws, run_id, [query], threshold=0.0)
    assert strict["prediction"] == "unknown"
    [loose] = predict_paths(motion_ws, run_id, [query], threshold=2.5)
    assert loose["prediction"] == loose["nearest"]
    with pytest.raises(UsageError, match="give --label NAME"):
        enroll(motion_ws, run_id, [query])
    with pytest.raises(UsageError, match="class name|class folder"):
        enroll(motion_ws, run_id, [query], label="a/b")


@pytest.mark.slow
def test_cli_enroll_evaluate_few_shot_and_predict(motion_ws, lstm_siamese, tmp_path):
    from typer.testing import CliRunner

    from dataprep.cli.main import app

    runner = CliRunner()
    ws = ["-w", str(motion_ws.root)]
    run_id = lstm_siamese[0].run_id
    args = [*ws, "evaluate", run_id, "--ways", "4", "--shots", "1", "--episodes", "30"]
    args += ["--classes", ",".join(DIAGONAL_CLASSES), "--open-set", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert figures["ways"] == 4 and figures["episodes"] == 30
    assert sorted(figures["classes"]) == sorted(DIAGONAL_CLASSES)
    assert 0.0 <= figures["accuracy"] <= 1.0 and 0.0 <= figures["baseline_accuracy"] <= 1.0
    low, high = figures["ci95"]
    assert low <= figures["accuracy"] <= high
    rates = figures["open_set"]
    assert set(rates["unknown_classes"]) == set(GESTURE_CLASSES)
    assert 0.0 <= rates["known_accepted"] <= 1.0 and 0.0 <= rates["unknown_rejected"] <= 1.0
    with open(figures["files"]["fewshot"], encoding="utf-8") as handle:
        written = json.load(handle)
    assert written["accuracy"] == figures["accuracy"]

    result = runner.invoke(app, [*ws, "evaluate", run_id, "--ways", "4", "--shots", "1",
                                 "--episodes", "10"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "4-way 1-shot accuracy" in result.output and "raw pixels" in result.output

    result = runner.invoke(app, [*ws, "enroll", run_id, "--split", "val", "--shots", "1", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["added"] >= 1
    result = runner.invoke(app, [*ws, "enroll", run_id])
    assert result.exit_code == 2 and "--split SPLIT" in result.output

    rng = np.random.default_rng(3)
    from dataprep.testing.media import write_video

    video = write_video(tmp_path / "v.mp4", frames=gesture_frames("down", rng, SPEC), fps=10)
    result = runner.invoke(app, [*ws, "predict", run_id, str(video)])
    assert result.exit_code == 0, result.output
    assert "distance" in result.output and "threshold" in result.output

    result = runner.invoke(app, [*ws, "evaluate", run_id, "--ways", "9"])
    assert result.exit_code == 2 and "lower --ways or --shots" in result.output


@pytest.mark.slow
def test_siamese_on_frames_with_contrastive_loss_and_the_cli_options(motion_ws):
    from typer.testing import CliRunner

    from dataprep.cli.main import app

    args = ["-w", str(motion_ws.root), "train-baseline", "--export", "frames"]
    args += ["--model", "siamese", "--loss", "contrastive", "--margin", "0.8", "--embedding-dim"]
    args += ["8", "--per-class", "4", "--batch-size", "16", "--epochs", "1", "--seed", "0"]
    args += ["--exclude-classes", "up-left,up-right", "--run-name", "siamese-frames", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    config = json.loads((motion_ws.runs_dir / "siamese-frames" / "config.json").read_text())
    resolved = config["resolved"]
    assert (resolved["loss"], resolved["margin"], resolved["embedding_dim"]) == (
        "contrastive",
        0.8,
        8,
    )
    assert summary["metrics"]["episode"].endswith("-way 1-shot")
    result = CliRunner().invoke(
        app, ["-w", str(motion_ws.root), "evaluate", "siamese-frames", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert "baseline_accuracy" in json.loads(result.output)


@pytest.mark.slow
def test_siamese_prototypical_with_class_variants_trains_and_repeats_from_config(motion_ws):
    from dataprep.train.evaluate import load_run_model
    from dataprep.train.loop import options_from_config

    run, lines = _train(
        motion_ws,
        export="frames",
        model="siamese",
        loss="prototypical",
        class_augment="dihedral",
        embedding_from="features",
        embedding_dim=16,
        per_class=4,
        epochs=2,
        exclude_classes="up-left,up-right",
        run_name="siamese-proto",
    )
    config = json.loads((run.run_dir / "config.json").read_text())
    assert (config["resolved"]["loss"], config["resolved"]["class_augment"]) == (
        "prototypical",
        "dihedral",
    )
    assert "--loss prototypical" in config["command"]
    assert "--class-augment dihedral" in config["command"]
    assert "--embedding-from features" in config["command"]
    losses = [row["loss"] for row in run.history]
    assert len(losses) == 2 and all(np.isfinite(losses)) and losses[0] > 0
    assert all(0.0 <= row["val_fewshot_accuracy"] <= 1.0 for row in run.history)
    assert run.metrics["episode"].endswith("-way 1-shot")
    repeat = options_from_config(run.run_dir / "config.json")
    assert (repeat.loss, repeat.class_augment) == ("prototypical", "dihedral")
    assert repeat.embedding_from == "features"
    model = load_run_model(run.run_dir)
    images = np.random.default_rng(0).normal(size=(3, 32, 32, 3)).astype("float32")
    vectors = model.predict(images, verbose=0)
    assert vectors.shape == (3, 4 * 4 * 64)  # the features, not the 16-dim projection
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-4)


@pytest.mark.slow
def test_transfer_starts_from_a_runs_trunk_freezes_it_then_fine_tunes(motion_ws):
    from dataprep.errors import UsageError
    from dataprep.train.evaluate import load_run_model
    from dataprep.train.models import find_trunk

    source, _ = _train(motion_ws, export="frames", model="cnn-bn", run_name="source")
    source_trunk = find_trunk(load_run_model(source.run_dir)).get_weights()

    frozen, lines = _train(
        motion_ws,
        export="frames",
        model="siamese",
        run_name="frozen",
        init_from="source",
        freeze_trunk=True,
        exclude_classes="down-right",
    )
    trunk = find_trunk(load_run_model(frozen.run_dir)).get_weights()
    for a, b in zip(trunk, source_trunk, strict=True):  # a classifier's trunk, untouched
        np.testing.assert_array_equal(a, b)
    config = json.loads((frozen.run_dir / "config.json").read_text())
    assert config["resolved"]["init_from"] == str(source.run_dir)
    assert "--init-from" in config["command"] and "--freeze-trunk" in config["command"]

    tuned, lines = _train(
        motion_ws,
        export="frames",
        model="siamese",
        run_name="tuned",
        init_from=str(source.run_dir),
        freeze_trunk=True,
        fine_tune_epochs=1,
        exclude_classes="down-right",
    )
    assert len(tuned.history) == 2 and len([x for x in lines if x.startswith("epoch ")]) == 2
    trunk = find_trunk(load_run_model(tuned.run_dir)).get_weights()
    changed = any(not np.array_equal(a, b) for a, b in zip(trunk, source_trunk, strict=True))
    assert changed == (tuned.best_epoch == 2)  # fine-tuned weights only if epoch 2 was best

    with pytest.raises(UsageError, match="no trunk to transfer"):
        cnn, _ = _train(motion_ws, export="frames", model="cnn", run_name="plain-cnn")
        _train(motion_ws, export="frames", model="cnn-bn", run_name="x", init_from="plain-cnn")
    with pytest.raises(UsageError, match="does not fit"):
        _train(motion_ws, export="frames", model="cnn-bn", run_name="y", init_from="source",
               backbone="MobileNetV3Small", weights="none")  # fmt: skip
    with pytest.raises(UsageError, match="does not fit this model's motion_trunk"):
        _train(motion_ws, export="clips", model="cnn-lstm", run_name="z", init_from="source")


# ------------------------------------------------------------------------ other Keras backends

OTHER_BACKEND_SCRIPT = """
import sys
import numpy as np
import keras
from dataprep.data import iter_numpy
from dataprep.train.embedding import features_model, features_readout
from dataprep.train.models import build_model, compile_model
for export, name in ((sys.argv[1], "siamese"), (sys.argv[2], "siamese-lstm")):
    images, labels = next(iter(iter_numpy(export, "train", batch_size=16, shuffle=False)))
    model = build_model(name, input_shape=images.shape[1:], num_classes=0, embedding_dim=8)
    for loss in ("triplet", "contrastive", "prototypical"):
        compile_model(model, name, lr=1e-3, steps_per_epoch=1, epochs=1, loss=loss)
        history = model.fit(images, labels, epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"][0])
    vectors = model.predict(images, verbose=0)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-4)
    vectors = features_readout(model).predict(images, verbose=0)  # --embedding-from features
    assert vectors.shape[1] == features_model(model).output.shape[-1]
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-4)
    print(name, "ok")
print("tensorflow imported:", "tensorflow" in sys.modules)
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_embedding_models_train_on_other_backends(motion_ws, backend):
    import importlib.util
    import os
    import subprocess
    import sys

    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} not installed")
    env = {**os.environ, "KERAS_BACKEND": backend, "CUDA_VISIBLE_DEVICES": ""}
    exports = [str(motion_ws.exports_dir / name) for name in ("frames", "clips")]
    done = subprocess.run(
        [sys.executable, "-c", OTHER_BACKEND_SCRIPT, *exports],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "siamese ok" in done.stdout and "siamese-lstm ok" in done.stdout
    assert "tensorflow imported: False" in done.stdout
