"""What every trainer command reads: the export's folder and splits, the tf.data pipeline of a
split for a run's settings, and the backend check.

``loop`` (training), ``evaluate`` and ``predict`` all read their examples through
:func:`make_dataset`, so decoding, resizing and normalization are the same code everywhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dataprep.errors import UsageError


def resolve_export(workspace, export: str) -> Path:
    """An export's folder from its name (``exports/<name>``) or a path.

    Raises:
        UsageError: when there is no complete export (no ``dataset_info.json``) there.
    """
    candidates = []
    if workspace is not None:
        candidates.append(workspace.exports_dir / export)
    candidates.append(Path(export).expanduser())
    for folder in candidates:
        if (folder / "dataset_info.json").is_file():
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


def make_dataset(export_dir: Path, split: str, settings: Any, *, training: bool, batch_size: int):
    """The tf.data pipeline of one split for a run's settings (see :func:`dataprep.data.load`).

    ``settings`` is the run's :class:`dataprep.train.options.TrainSettings`.

    Training batches are shuffled (seeded) and augmented with ``--augment``; evaluation batches
    are in file order (one shard after the other, the order of :func:`dataprep.data.iter_examples`,
    so metrics can name each example's media). Clips are cut to the run's ``clip_len`` (their
    first frames).
    """
    from dataprep.data import load

    seed = settings.seed
    deterministic = settings.deterministic_data
    if deterministic is None:
        deterministic = seed is not None
    dataset = load(
        export_dir,
        split,
        batch_size=batch_size,
        augment=settings.augment if training else None,
        normalize=True,
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
    return dataset
