"""Training and scoring the embedding models (``siamese``, ``siamese-lstm``).

- :func:`balanced_batches`: training batches of ``per_class`` examples of each of several
  classes (so every anchor has positives and negatives in its batch for online mining), without
  the ``--exclude-classes``; with ``--class-augment`` each training class is also seen rotated
  (and mirrored) as new classes of its own.
- :class:`FewShotValidation`: after each epoch, few-shot accuracy on episodes of the val split
  (training classes only: held-out classes never choose the epoch); early stopping and the
  checkpoint follow it.
- :func:`final_model`: with ``--embedding-from features`` the saved model answers with the
  trunk's features (the projection's input) of unit length (:func:`features_readout`); the
  projection then only serves the metric loss (and the epoch is chosen on the features).
- :func:`fewshot_metrics`: accuracy over episodes of a split with its 95% interval, the same
  episodes scored on raw pixels (``baseline_accuracy``), and with ``open_set`` the rates at the
  run's calibrated threshold (:func:`calibrate`, written to ``calibration.json``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dataprep.errors import UsageError
from dataprep.train import fewshot
from dataprep.train.inputs import run_over_split, split_meta
from dataprep.train.options import TrainSettings

CALIBRATION_FILE = "calibration.json"
VAL_EPISODES = 100
VAL_QUERIES = 5
# val_fewshot_score = accuracy + MARGIN_WEIGHT * margin picks the epoch: accuracy first (the
# margin, within [-2, 2], moves it by 4 val queries at most); at equal accuracy (val saturates
# early on easy classes) the epoch whose classes are tighter and farther apart, which is what
# answering "unknown" for an unseen class needs.
MARGIN_WEIGHT = 1e-3
# --class-augment: how many variants of each training class are classes of their own
CLASS_VARIANTS = {"none": 1, "rotate": 4, "dihedral": 8}
# --embedding-from: what the saved model answers with; the layer whose input is the features
EMBEDDING_FROM = ("projection", "features")
PROJECTION_LAYER = "embedding_fc"


def class_variant(image, variant):
    """``image`` ``[H, W, C]`` (square) turned by ``variant % 4`` quarter turns, mirrored first
    when ``variant >= 4`` (the 8 symmetries of the square)."""
    import tensorflow as tf

    image = tf.cond(variant >= 4, lambda: tf.image.flip_left_right(image), lambda: image)
    return tf.image.rot90(image, k=tf.cast(variant % 4, tf.int32))


def _with_class_variants(dataset, variants: int, seed: int | None):
    """Each example turned into one of ``variants`` variants of its class (uniform, seeded), its
    label made ``label * variants + variant``: a rotated 3 is not a 3 but a class of its own.

    More training classes is what an embedding needs to tell apart classes it never saw; with
    only a few training classes it learns just enough to separate those (docs/training.md). The
    labels stay label-safe: no variant is ever called by its original class's name.
    """
    import tensorflow as tf

    draws = tf.data.Dataset.random(seed=0 if seed is None else int(seed))

    def turn(example, draw):
        images, label = example
        variant = tf.math.floormod(draw, variants)
        label = tf.cast(label, tf.int64) * variants + variant
        return class_variant(images, variant), label

    return tf.data.Dataset.zip((dataset, draws)).map(turn)


def kept_labels(class_names: list[str], settings: TrainSettings) -> list[int]:
    """Label ids trained on: every class but ``--exclude-classes``."""
    return [i for i, name in enumerate(class_names) if name not in settings.exclude_classes]


def balanced_batches(export_dir: Path, settings: TrainSettings, *, keep: list[int], batch: int):
    """An endless tf.data stream of training batches of ``batch // per_class`` groups of
    ``per_class`` examples of one class each (shuffled, seeded, augmented like the classifiers)."""
    import tensorflow as tf

    from dataprep.data import load

    per_class = settings.per_class
    groups = max(2, batch // per_class)
    dataset = load(
        export_dir,
        "train",
        batch_size=64,
        augment=settings.augment,
        normalize=settings.normalize,
        shuffle=True,
        repeat=True,
        image_size=settings.image_size,
        seed=settings.seed,
        deterministic=bool(settings.deterministic_data),
    ).unbatch()
    if settings.unit == "clip" and settings.clip_len:
        dataset = dataset.map(lambda images, label: (images[: settings.clip_len], label))
    kept = tf.constant(keep, tf.int64)
    dataset = dataset.filter(lambda images, label: tf.reduce_any(tf.cast(label, tf.int64) == kept))
    variants = CLASS_VARIANTS[settings.class_augment]
    if variants > 1:
        dataset = _with_class_variants(dataset, variants, settings.seed)
    dataset = dataset.group_by_window(
        key_func=lambda images, label: tf.cast(label, tf.int64),
        reduce_func=lambda key, window: window.batch(per_class, drop_remainder=True),
        window_size=per_class,
    )
    dataset = dataset.batch(groups, drop_remainder=True)

    def flat(images, labels):
        shape = tf.concat([[-1], tf.shape(images)[2:]], 0)
        return tf.reshape(images, shape), tf.reshape(labels, [-1])

    return dataset.map(flat).prefetch(2)


def _val_setup(export_dir, settings, keep, class_names):
    """The fixed episodes of the val split (training classes only)."""
    labels, _ = run_over_split(None, export_dir, "val", settings, batch_size=64, pixels=True)
    media = [row["media_id"] for row in split_meta(export_dir, "val")]
    eligible = [c for c in fewshot.eligible_classes(labels, media, 1) if c in keep]
    if len(eligible) < 2:
        raise UsageError(
            f"the val split has {len(eligible)} trained class(es) with 2 media or more; few-shot "
            f"validation needs 2; give val more media (`dataprep split --ratios`)"
        )
    episodes = fewshot.draw_episodes(
        labels,
        media,
        ways=min(5, len(eligible)),
        shots=1,
        queries=VAL_QUERIES,
        episodes=VAL_EPISODES,
        seed=0,
        classes=eligible,
    )
    return episodes


def _fewshot_margin(vectors, episodes) -> float:
    """Mean over the episodes' queries of (nearest other prototype's distance - own's)."""
    gaps = []
    for episode in episodes:
        protos = fewshot.prototypes(vectors, episode.support, normalize=True)
        dist = np.linalg.norm(vectors[list(episode.queries)][:, None] - protos[None], axis=-1)
        rows, own = np.arange(len(dist)), np.asarray(episode.answers)
        other = dist.copy()
        other[rows, own] = np.inf
        gaps.append(other.min(axis=1) - dist[rows, own])
    return float(np.mean(np.concatenate(gaps)))


def features_model(model):
    """``model`` up to its features: the input of the projection (:data:`PROJECTION_LAYER`),
    the trunk's flattened map for ``siamese`` and the LSTM's output for ``siamese-lstm``."""
    import keras

    features = model.get_layer(PROJECTION_LAYER).input
    return keras.Model(model.inputs, features, name=f"{model.name}_features")


def features_readout(model):
    """The embedding model of ``--embedding-from features``: ``model``'s features (the
    projection's input) scaled to unit length; the projection, which only the metric loss reads,
    is left out (as SimCLR keeps the representation before its projection head: the loss makes
    the projection forget what does not tell the *training* classes apart, the features keep
    more of what tells other classes apart)."""
    import keras

    from dataprep.train.models import custom_objects

    features = model.get_layer(PROJECTION_LAYER).input
    outputs = custom_objects()["L2Normalize"](dtype="float32", name="embedding")(features)
    return keras.Model(model.inputs, outputs, name=model.name)


def final_model(model, settings: TrainSettings):
    """The embedding model a run saves: ``model`` itself (``--embedding-from projection``) or
    its features of unit length (:func:`features_readout`, ``--embedding-from features``)."""
    return features_readout(model) if settings.embedding_from == "features" else model


class FewShotValidation:
    """Keras callback factory: ``val_fewshot_accuracy`` (5-way 1-shot or fewer ways, fixed
    seeded episodes of the val split), ``val_fewshot_margin`` and ``val_fewshot_score`` (see
    :data:`MARGIN_WEIGHT`) into the epoch's logs."""

    def __new__(cls, export_dir: Path, settings: TrainSettings, keep: list[int], batch: int):
        import keras

        features = settings.embedding_from == "features"

        class _FewShot(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                self.episodes = _val_setup(export_dir, settings, keep, None)
                self.embedder = features_readout(self.model) if features else self.model

            def on_epoch_end(self, epoch, logs=None):
                _, vectors = run_over_split(
                    self.embedder, export_dir, "val", settings, batch_size=batch
                )
                accuracy = np.mean(fewshot.score(vectors, self.episodes, normalize=True))
                margin = _fewshot_margin(vectors, self.episodes)
                if logs is not None:
                    logs["val_fewshot_accuracy"] = float(accuracy)
                    logs["val_fewshot_margin"] = margin
                    logs["val_fewshot_score"] = float(accuracy) + MARGIN_WEIGHT * margin

        return _FewShot()


def split_vectors(model, export_dir: Path, split: str, settings: TrainSettings, batch: int):
    """``(labels, embeddings, media ids)`` of a split, in export order."""
    labels, vectors = run_over_split(model, export_dir, split, settings, batch_size=batch)
    media = [row["media_id"] for row in split_meta(export_dir, split)]
    return labels, vectors, media


def calibrate(model, run_dir: Path, export_dir: Path, settings: TrainSettings, class_names):
    """Calibrates the unknown threshold on val (trained classes) and writes
    ``calibration.json``; returns it."""
    labels, vectors, media = split_vectors(model, export_dir, "val", settings, 64)
    keep = set(kept_labels(class_names, settings))
    rows = [i for i, label in enumerate(labels) if int(label) in keep]
    labels, vectors, media = labels[rows], vectors[rows], [media[i] for i in rows]
    counts = [len(set(m for m, lab in zip(media, labels, strict=True) if lab == c)) for c in keep]
    shots = int(max(1, min(5, sorted(counts)[len(counts) // 2] - 1)))
    result = fewshot.calibrate_threshold(vectors, labels, media, shots=shots, seed=0)
    from dataprep.train.reports import write_json

    write_json(Path(run_dir) / CALIBRATION_FILE, result)
    return result


def read_calibration(run_dir: Path) -> dict[str, Any] | None:
    """The run's ``calibration.json`` (None when absent)."""
    try:
        return json.loads((Path(run_dir) / CALIBRATION_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def fewshot_metrics(
    model,
    export_dir: Path,
    settings: TrainSettings,
    class_names: list[str],
    *,
    split: str = "test",
    ways: int = 5,
    shots: int = 1,
    episodes: int = 600,
    queries: int = 5,
    classes: list[str] | None = None,
    open_set: bool = False,
    threshold: float | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Few-shot accuracy on episodes of ``split`` with its 95% interval and the raw-pixel floor.

    Raises:
        UsageError: for classes not in the export, too few media for the episodes, or
            ``open_set`` without a threshold.
    """
    class_ids = None
    if classes:
        unknown = [c for c in classes if c not in class_names]
        if unknown:
            raise UsageError(
                f"--classes: {unknown[0]!r} is not a class of the run's export "
                f"(classes: {', '.join(class_names)})"
            )
        class_ids = [class_names.index(c) for c in classes]
    labels, vectors = run_over_split(
        model, export_dir, split, settings, batch_size=64, progress=progress
    )
    _, pixels = run_over_split(None, export_dir, split, settings, batch_size=64, pixels=True)
    media = [row["media_id"] for row in split_meta(export_dir, split)]
    drawn = fewshot.draw_episodes(
        labels,
        media,
        ways=ways,
        shots=shots,
        queries=queries,
        episodes=episodes,
        seed=seed,
        classes=class_ids,
        open_set=open_set,
    )
    model_acc = fewshot.mean_ci(fewshot.score(vectors, drawn, normalize=True))
    base_acc = fewshot.mean_ci(fewshot.score(pixels, drawn, normalize=False))
    used = sorted({c for episode in drawn for c in episode.classes})
    result: dict[str, Any] = {
        "split": split,
        "ways": ways,
        "shots": shots,
        "queries": queries,
        "episodes": episodes,
        "seed": seed,
        "classes": [class_names[c] for c in used],
        "accuracy": model_acc["mean"],
        "ci95": model_acc["ci95"],
        "ci95_half_width": model_acc["ci95_half_width"],
        "baseline_accuracy": base_acc["mean"],
        "baseline_ci95": base_acc["ci95"],
        "baseline": "nearest prototype on the loader's pixels (same episodes)",
    }
    if open_set:
        if threshold is None:
            raise UsageError(
                "--open-set needs the run's calibrated threshold (calibration.json) or --threshold"
            )
        rates = fewshot.open_set_rates(vectors, drawn, threshold)
        unknown_classes = sorted({int(labels[i]) for e in drawn for i in e.unknown})
        result["open_set"] = {**rates, "unknown_classes": [class_names[c] for c in unknown_classes]}
    return result
