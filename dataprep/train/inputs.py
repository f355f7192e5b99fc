"""What every trainer command reads: the export's folder and splits, the tf.data pipeline of a
split for a run's settings, and the backend check.

``loop`` (training), ``evaluate`` and ``predict`` all read their examples through
:func:`make_dataset`, so decoding, resizing and normalization are the same code everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dataprep.errors import UsageError


def resolve_export(workspace, export: str) -> Path:
    """An export's folder from its name (``exports/<name>``) or a path.

    Raises:
        UsageError: when there is no complete export (no ``dataset_info.json``) there.
    """
    from dataprep.data.info import info_path

    candidates = []
    if workspace is not None:
        candidates.append(workspace.exports_dir / export)
    candidates.append(Path(export).expanduser())
    for folder in candidates:
        if info_path(folder).is_file():
            return folder.resolve()
    where = " or ".join(str(c) for c in candidates)
    raise UsageError(
        f"no complete export at {where} (dataset_info.json missing); run `dataprep export` "
        f"first, or pass --export with an export name or folder"
    )


def split_examples(info: dict[str, Any], split: str) -> int:
    """Examples of ``split`` according to ``dataset_info.json`` (0 when it has none)."""
    return int(((info.get("splits") or {}).get(split) or {}).get("examples") or 0)


def check_backend(command: str) -> None:
    """The CLI commands run on the TensorFlow backend (their input is a tf.data pipeline).

    Raises:
        UsageError: when ``KERAS_BACKEND`` selects another backend.
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        raise UsageError(
            f"{command} runs with the TensorFlow backend (KERAS_BACKEND is "
            f"{keras.backend.backend()!r}); unset KERAS_BACKEND, or see benchmarks/gpu_check.py "
            f"for training on JAX/PyTorch with dataprep.data.iter_numpy"
        )


def input_parallelism(training: bool) -> int | None:
    """tf.data parallelism for a trainer's dataset: the CPU count with autotuning off, except
    for training on a GPU, whose iterator lives for the whole run (``repeat``) and keeps what
    autotuning gives there. An autotuned iterator's destructor waits for the autotune thread's
    timed wait (10-40 s stalls at the end of an epoch, issue 13); validation gets a new
    iterator every epoch."""
    import os

    import tensorflow as tf

    if training and tf.config.list_logical_devices("GPU"):
        return None
    return max(2, os.cpu_count() or 2)


def augmentation(settings: Any, class_names: list[str]):
    """``(albumentations pipeline or None, flip or None, notes)`` for a run's ``--augment``,
    label-safe (:func:`dataprep.flips.label_safe` with the workspace's ``flip_map``)."""
    if not settings.augment:
        return None, None, []
    from dataprep.augment import load_pipeline, pipeline_from_dict, pipeline_to_dict
    from dataprep.flips import label_safe

    data = pipeline_to_dict(load_pipeline(settings.augment))
    rest, probability, table, notes = label_safe(data, settings.flip_map, class_names)
    pipeline = pipeline_from_dict(rest, source=str(settings.augment)) if rest else None
    return pipeline, ((probability, tuple(table)) if probability > 0 else None), notes


def make_dataset(
    export_dir: Path,
    split: str,
    settings: Any,
    *,
    training: bool,
    batch_size: int,
    repeat: bool = False,
):
    """The tf.data pipeline of one split for a run's settings (see :func:`dataprep.data.load`).

    ``settings`` is the run's :class:`dataprep.train.options.TrainSettings`.

    Training batches are shuffled (seeded) and augmented with ``--augment``; evaluation batches
    are in file order (one shard after the other, the order of :func:`dataprep.data.iter_examples`,
    so metrics can name each example's media). Clips are cut to the run's ``clip_len`` (their
    first frames). ``repeat``: the batches of one pass, again and again (reshuffled), for
    ``fit(steps_per_epoch=...)``, which then keeps one iterator for the whole run.
    """
    from dataprep.data import load, read_info

    seed = settings.seed
    deterministic = settings.deterministic_data
    if deterministic is None:
        deterministic = seed is not None
    pipeline, flip = None, None
    if training:
        pipeline, flip, _ = augmentation(settings, list(read_info(export_dir)["class_names"]))
    dataset = load(
        export_dir,
        split,
        batch_size=batch_size,
        augment=pipeline,
        flip=flip,
        parallelism=input_parallelism(training),
        normalize=getattr(settings, "normalize", True),
        shuffle=training,
        repeat=False,
        image_size=settings.image_size,
        seed=seed,
        deterministic=deterministic or not training,
        cycle_length=None if training else 1,
    )
    clip_len = settings.clip_len
    if settings.unit == "clip" and clip_len:
        dataset = dataset.map(lambda images, labels: (images[:, :clip_len], labels))
    return dataset.repeat() if repeat else dataset


def run_over_split(
    model,
    export_dir: Path,
    split: str,
    settings: Any,
    *,
    batch_size: int,
    progress: Callable[[int, int], None] | None = None,
    pixels: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """The model's outputs over a split in export order (``model`` None: no outputs).

    Returns:
        ``(labels [N], outputs [N, ...])``; with ``pixels`` the outputs are the loader's images
        flattened (the raw-pixel features of the few-shot baseline).

    Raises:
        CorruptShardError: naming the shard file and record when the export is damaged.
        UsageError: when the split has no examples.
    """
    from dataprep.data import naming_corrupt_shards, read_info

    dataset = make_dataset(export_dir, split, settings, training=False, batch_size=batch_size)
    labels, outputs = [], []
    total = split_examples(read_info(export_dir), split)
    done = 0
    with naming_corrupt_shards(export_dir, split):
        for images, batch_labels in dataset:
            if pixels:
                flat = np.asarray(images, dtype=np.float32).reshape(len(batch_labels), -1)
                outputs.append(flat)
            else:
                outputs.append(np.asarray(model(images, training=False), dtype=np.float32))
            labels.append(np.asarray(batch_labels))
            done += len(labels[-1])
            if progress:
                progress(done, total)
    if not labels:
        raise UsageError(f"split {split!r} of export {export_dir} has no examples")
    return np.concatenate(labels), np.concatenate(outputs)


def split_meta(export_dir: Path, split: str) -> list[dict[str, Any]]:
    """Per-example ``media_id`` and first frame of a split, in file order (the eval order)."""
    from dataprep.data import iter_examples

    return [
        {
            "media_id": ex.get("media_id"),
            "start_frame": ex.get("start_frame", ex.get("frame_index")),
            "copy_index": ex.get("copy_index", 0),
        }
        for ex in iter_examples(export_dir, split)
    ]
