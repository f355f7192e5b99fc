"""The run folder ``runs/<run_id>/``: its creation, ``config.json``, history and metrics.

Everything a run was given goes to ``config.json`` (options as given and as resolved, the command
line that repeats it, the export with its fingerprints, the frame settings ``predict`` repeats,
devices, versions).
"""

from __future__ import annotations

import re
import shutil
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dataprep.errors import UsageError
from dataprep.train import reports
from dataprep.train.inputs import split_examples
from dataprep.train.options import TrainOptions, TrainSettings, command_line

RUN_FILES = {
    "model": "model.keras",
    "checkpoint": "checkpoints/best.keras",
    "history": "history.csv",
    "metrics": "metrics.json",
    "curves": "curves.png",
    "confusion": "confusion.png",
    "tensorboard": "tensorboard",
    "config": "config.json",
}
_RUN_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def new_run_dir(workspace, run_name: str | None, model: str, runs_dir: Path | None = None) -> Path:
    """Creates ``runs/<run_id>/`` (``<run_name>``, or ``<UTC time>-<model>``).

    Raises:
        UsageError: when the name has odd characters or that run already exists.
    """
    base = Path(runs_dir) if runs_dir is not None else workspace.runs_dir
    if run_name is not None:
        if not _RUN_NAME_RE.match(run_name):
            raise UsageError(
                f"--run-name {run_name!r}: use letters, digits, '.', '_' or '-' (up to 100)"
            )
        run_id = run_name
    else:
        run_id = f"{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}-{model}"
    run_dir = base / run_id
    suffix = 1
    while run_name is None and run_dir.exists():
        suffix += 1
        run_dir = base / f"{run_id}-{suffix}"
    try:
        run_dir.mkdir(parents=True)
    except FileExistsError:
        raise UsageError(
            f"run {run_dir} already exists; choose another --run-name or delete that folder"
        ) from None
    return run_dir


def remove_if_unstarted(run_dir: Path) -> None:
    """Removes a run folder that holds nothing but its config (failed before the first epoch).

    A run that trained for a while keeps its folder: checkpoint, TensorBoard logs and config
    stay readable after a crash or Ctrl-C.
    """
    if not (run_dir / RUN_FILES["checkpoint"]).exists():
        shutil.rmtree(run_dir, ignore_errors=True)


def write_run_config(
    run_dir: Path,
    *,
    workspace,
    options: TrainOptions,
    settings: TrainSettings,
    info: dict[str, Any],
    export_dir: Path,
    setup,
    steps_per_epoch: int,
) -> dict[str, Any]:
    """Writes ``config.json`` and returns it."""
    devices = asdict(replace(setup, strategy_object=None))
    devices.pop("strategy_object")
    config = {
        "run_id": run_dir.name,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "options": asdict(options),
        "resolved": asdict(settings),
        "command": command_line(options, settings),
        "export": export_summary(info, export_dir),
        "frames": frame_settings(workspace),
        "input_shape": list(settings.input_shape),
        "global_batch_size": settings.batch_size * setup.replicas,
        "steps_per_epoch": steps_per_epoch,
        "devices": devices,
        "versions": versions(),
    }
    reports.write_json(run_dir / RUN_FILES["config"], config)
    return config


def export_summary(info: dict[str, Any], export_dir: Path) -> dict[str, Any]:
    """The ``export`` block of ``config.json``: what a run read, fingerprints included."""
    return {
        "dir": str(export_dir),
        "name": info.get("name"),
        "format": info.get("format"),
        "unit": info.get("unit"),
        "clip": info.get("clip"),
        "image": info.get("image"),
        "class_names": list(info["class_names"]),
        "examples": {s: split_examples(info, s) for s in ("train", "val", "test")},
        "fingerprints": info.get("fingerprints"),
        "stats": info.get("stats"),
        "augmentation": info.get("augmentation"),
        "dataprep_version": info.get("dataprep_version"),
    }


def frame_settings(workspace) -> dict[str, Any] | None:
    """How the workspace's frames were made, for ``predict`` to repeat on new media.

    Taken from the record of the last ``dataprep frames`` run (the settings actually used, CLI
    options included), else from ``[frames]`` of dataprep.toml. Keys: ``sampling``, ``fps``,
    ``every``, ``count``, ``size`` (``"32"``, ``"64x48"`` or None for original), ``resize``,
    ``format``, ``quality``, ``source``.
    """
    if workspace is None:
        return None
    from dataprep.stages import load_stage

    config = workspace.config.frames
    record = load_stage(workspace, "frames")
    if not record:
        return {**config.model_dump(), "source": "dataprep.toml"}
    settings = record["settings"]
    mode = settings["sampling"]["mode"]
    value = settings["sampling"].get("value")
    size_text = settings.get("size", "original")
    if size_text == "original":
        size, resize = None, "shorter"
    else:
        resize, _, size = size_text.partition("=")
    return {
        "sampling": mode,
        "fps": value if mode == "fps" else None,
        "every": value if mode == "every" else None,
        "count": value if mode == "count" else None,
        "size": size,
        "resize": resize,
        "format": settings["format"],
        "quality": settings["quality"],
        "source": "frames stage record",
    }


def versions() -> dict[str, str]:
    import keras
    import tensorflow as tf

    from dataprep import __version__

    return {
        "dataprep": __version__,
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
        "backend": keras.backend.backend(),
    }


def training_summary(
    history: list[dict[str, float]], settings: TrainSettings, best_epoch: int, seconds: float
) -> dict[str, Any]:
    """The ``training`` block of ``metrics.json``: epochs, best epoch, throughput, seconds."""
    timed = history[1:] or history  # the first epoch includes tracing/compilation
    clips = settings.frames_per_example > 1
    return {
        "epochs_run": len(history),
        "best_epoch": best_epoch,
        "stopped_early": len(history) < settings.epochs,
        "train_images_per_s": sum(r["images_per_s"] for r in timed) / len(timed),
        "train_clips_per_s": sum(r["clips_per_s"] for r in timed) / len(timed) if clips else None,
        "seconds": seconds,
    }


def write_history(run_dir: Path, history: list[dict[str, float]], title: str) -> None:
    """``history.csv`` and ``curves.png``."""
    reports.write_history_csv(run_dir / RUN_FILES["history"], history)
    reports.plot_curves(run_dir / RUN_FILES["curves"], history, title=title)


def run_files(run_dir: Path) -> dict[str, str]:
    """Every file of a run folder by key (``model``, ``metrics``, ``curves``...)."""
    return {key: str(run_dir / name) for key, name in RUN_FILES.items()}
