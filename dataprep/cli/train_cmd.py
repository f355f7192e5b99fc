"""``dataprep train-baseline``, ``evaluate`` and ``predict``: the reference trainers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dataprep.cli.common import (
    JsonOpt,
    WorkspaceOpt,
    console,
    handle_errors,
    open_ws,
    print_json,
    silence_native_logs,
)
from dataprep.cli.progress import progress_bar


def _workspace_or_none(workspace: Path | None):
    from dataprep.errors import WorkspaceNotFound

    try:
        return open_ws(workspace)
    except WorkspaceNotFound:
        if workspace is not None:
            raise
        return None


@handle_errors
@silence_native_logs
def train_baseline(
    export: Annotated[
        str | None,
        typer.Option("--export", help="Export name (exports/NAME) or folder of an export."),
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="cnn, cnn-bn or cnn-lstm (default: [train]).")
    ] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", help="Most epochs.")] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", help="Batch size per device.")
    ] = None,
    lr: Annotated[float | None, typer.Option("--lr", help="Learning rate.")] = None,
    image_size: Annotated[
        int | None,
        typer.Option("--image-size", help="Resize frames to SxS (default: export size)."),
    ] = None,
    clip_len: Annotated[
        int | None,
        typer.Option("--clip-len", help="Frames per clip (<= the export's clip length)."),
    ] = None,
    augment: Annotated[
        str | None,
        typer.Option("--augment", help="Augmentation of training batches (preset name or YAML)."),
    ] = None,
    mixed_precision: Annotated[
        str | None,
        typer.Option(
            "--mixed-precision", help="auto (capable GPUs), on or off (default: [train])."
        ),
    ] = None,
    xla: Annotated[bool, typer.Option("--xla", help="Compile the train step with XLA.")] = False,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Seed everything; bit-for-bit repeatable on CPU.")
    ] = None,
    run_name: Annotated[
        str | None, typer.Option("--run-name", help="Run id (default: UTC time and model).")
    ] = None,
    patience: Annotated[
        int | None,
        typer.Option("--patience", help="Early stopping: epochs without val_loss gain."),
    ] = None,
    from_config: Annotated[
        Path | None,
        typer.Option("--from-config", help="Repeat a run: read every option from its config.json."),
    ] = None,
    json_output: JsonOpt = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Train a reference model on an export; write model, metrics and plots to runs/RUN_ID/.

    cnn: the tutorial CNN (79,626 parameters at 32x32x3, 10 classes); cnn-bn: batch norm,
    dropout, augmentation, weight decay, cosine schedule; cnn-lstm: cnn-bn per frame, LSTM over
    the clip (needs an export with --unit clip).

    Example: `dataprep train-baseline --export gestures-clips --model cnn-lstm --seed 0`
    """
    from dataclasses import asdict

    from dataprep.errors import UsageError
    from dataprep.train.loop import TrainOptions, options_from_config
    from dataprep.train.loop import train_baseline as run

    if from_config is not None:
        options = options_from_config(from_config, run_name)
    elif export is None:
        raise UsageError("--export is required (an export name or folder), or --from-config")
    else:
        options = TrainOptions(
            export=export,
            model=model,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            image_size=image_size,
            clip_len=clip_len,
            augment=augment,
            mixed_precision=mixed_precision,
            xla=xla,
            seed=seed,
            run_name=run_name,
            patience=patience,
        )
    ws = _workspace_or_none(workspace)

    def log(line: str) -> None:
        if not json_output:
            console().print(line, markup=False, highlight=False, soft_wrap=True)

    with progress_bar("epoch", "batches") as update:
        result = run(ws, options, log=log, progress=update)
    if json_output:
        print_json(asdict(result))
        return
    console().print(f"test_accuracy {result.metrics['test_accuracy']:.4f}")
    for key in ("curves", "confusion", "model", "metrics"):
        console().print(
            f"{key}: {result.files[key]}", markup=False, highlight=False, soft_wrap=True
        )


@handle_errors
@silence_native_logs
def evaluate(
    run: Annotated[str, typer.Argument(help="Run id (runs/RUN) or run folder.")],
    split: Annotated[str, typer.Option("--split", help="train, val or test.")] = "test",
    json_output: JsonOpt = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Re-compute a run's metrics and confusion plot on a split of its export.

    Example: `dataprep evaluate 20250101-120000-cnn-lstm --split val`
    """
    from dataprep.train.evaluate import evaluate_run

    with progress_bar(f"evaluate {split}", "examples") as update:
        metrics = evaluate_run(_workspace_or_none(workspace), run, split=split, progress=update)
    if json_output:
        print_json(metrics)
        return
    _print_metrics(metrics)


def _print_metrics(metrics: dict) -> None:
    from rich.table import Table

    out = console()
    out.print(
        f"{metrics['split']} accuracy {metrics['accuracy']:.4f} on {metrics['examples']} "
        f"examples, macro F1 {metrics['macro_f1']:.4f}"
    )
    if "top_k" in metrics:
        out.print("top-k: " + ", ".join(f"top-{k} {v:.4f}" for k, v in metrics["top_k"].items()))
    if "media_vote" in metrics:
        vote = metrics["media_vote"]
        out.print(
            f"per-media majority vote: accuracy {vote['accuracy']:.4f} on {vote['media']} media"
        )
    table = Table("class", "precision", "recall", "F1", "support")
    for name, row in metrics["per_class"].items():
        table.add_row(
            name,
            f"{row['precision']:.3f}",
            f"{row['recall']:.3f}",
            f"{row['f1']:.3f}",
            str(row["support"]),
        )
    out.print(table)
    for key, path in metrics.get("files", {}).items():
        out.print(f"{key}: {path}", markup=False, highlight=False, soft_wrap=True)


@handle_errors
@silence_native_logs
def predict(
    run: Annotated[str, typer.Argument(help="Run id (runs/RUN) or run folder.")],
    paths: Annotated[list[Path], typer.Argument(help="Videos or images (outside the workspace).")],
    top_k: Annotated[int, typer.Option("--top-k", min=1, help="Classes to show per item.")] = 3,
    json_output: JsonOpt = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Classify new videos and images the way the run's training data was prepared.

    Frames are sampled, resized, encoded and normalized as for the export; a video gets
    probabilities per clip (or frame) and for the whole video (the mean).

    Example: `dataprep predict RUN new/clip.mp4 --top-k 2`
    """
    from dataprep.train.predict import predict_paths

    with progress_bar("predict", "files") as update:
        results = predict_paths(
            _workspace_or_none(workspace), run, paths, top_k=top_k, progress=update
        )
    if json_output:
        print_json(results)
        return
    out = console()
    for item in results:
        top = ", ".join(f"{name} {p:.3f}" for name, p in item["top_k"])
        out.print(
            f"{item['path']}: {top}  ({len(item['clips'])} {item['unit']}"
            f"{'' if len(item['clips']) == 1 else 's'})",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        if len(item["clips"]) > 1:
            for clip in item["clips"]:
                top = ", ".join(f"{name} {p:.3f}" for name, p in clip["top_k"])
                out.print(
                    f"  frames {clip['start_frame']}-{clip['end_frame']}: {top}",
                    markup=False,
                    highlight=False,
                    soft_wrap=True,
                )


def register(app: typer.Typer) -> None:
    app.command("train-baseline")(train_baseline)
    app.command("evaluate")(evaluate)
    app.command("predict")(predict)
