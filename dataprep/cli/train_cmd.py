"""``dataprep train-baseline``, ``evaluate`` and ``predict``: the reference trainers."""

from __future__ import annotations

import os
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


def _opt(kind, flag: str, help_text: str, **extra):
    """A ``train-baseline`` option of type ``kind`` (None: take it from ``[train]``)."""
    return Annotated[kind | None, typer.Option(flag, help=help_text, **extra)]


# train-baseline's options, one line each (TrainOptions has the same names)
ExportOpt = _opt(str, "--export", "Export name (exports/NAME) or folder of an export.")
ModelOpt = _opt(str, "--model", "cnn, cnn-bn, cnn-lstm, siamese or siamese-lstm ([train]).")
# cnn-lstm defaults: dataprep.train.options.CLIP_DEFAULTS, MIN_STEPS; callbacks.PATIENCE_STEPS
EpochsOpt = _opt(int, "--epochs", "Most epochs ([train]; cnn-lstm: at least 300 steps).")
BatchOpt = _opt(int, "--batch-size", "Batch size per device ([train]; cnn-lstm: 16).")
LrOpt = _opt(float, "--lr", "Learning rate ([train]; cnn-lstm: 3e-3).")
ImageSizeOpt = _opt(int, "--image-size", "Resize frames to SxS (default: export size).")
ClipLenOpt = _opt(int, "--clip-len", "Frames per clip (<= the export's clip length).")
AugmentOpt = _opt(str, "--augment", "Augmentation of training batches (preset name or YAML).")
PrecisionOpt = _opt(str, "--mixed-precision", "auto (capable GPUs), on or off ([train]).")
XlaOpt = Annotated[bool, typer.Option("--xla", help="Compile the train step with XLA.")]
SeedOpt = _opt(int, "--seed", "Seed everything; bit-for-bit repeatable on CPU.")
RunNameOpt = _opt(str, "--run-name", "Run id (default: UTC time and model).")
PatienceOpt = _opt(
    int, "--patience", "Early stopping: epochs without val_loss gain (and 100 steps or more)."
)
FromConfigOpt = _opt(Path, "--from-config", "Repeat a run: read every option from its config.json.")
LossOpt = _opt(str, "--loss", "Embedding models: triplet, contrastive or prototypical.")
MiningOpt = _opt(str, "--mining", "Triplet mining in each batch: semi-hard, hard.")
MarginOpt = _opt(float, "--margin", "Loss margin (default 0.2 / 1.0).")
EmbeddingDimOpt = _opt(int, "--embedding-dim", "Size of the embedding.")
PerClassOpt = _opt(int, "--per-class", "Examples of each class in a batch.")
ClassAugmentOpt = _opt(
    str, "--class-augment", "none, rotate or dihedral: turned classes train as new classes."
)
EmbeddingFromOpt = _opt(
    str, "--embedding-from", "projection or features (the trunk's, before the projection)."
)
ExcludeOpt = _opt(str, "--exclude-classes", "Classes held out of training: a,b,c.")
InitFromOpt = _opt(str, "--init-from", "Start the trunk from this run.")
FreezeOpt = Annotated[
    bool, typer.Option("--freeze-trunk", help="Train the new head with the trunk frozen.")
]
FineTuneOpt = _opt(int, "--fine-tune-epochs", "Then train everything at lr/10 this long.")
BackboneOpt = _opt(str, "--backbone", "Trunk: none, MobileNetV3Small or EfficientNetB0.")
WeightsOpt = _opt(str, "--weights", "Backbone weights: imagenet, none or PATH.")
WorkersOpt = _opt(
    int,
    "--workers",
    "Data-parallel training on N local worker processes (MultiWorkerMirroredStrategy;"
    " --batch-size per worker). Under TF_CONFIG this process is one worker.",
    min=1,
)


@handle_errors
@silence_native_logs
def train_baseline(
    export: ExportOpt = None,
    model: ModelOpt = None,
    epochs: EpochsOpt = None,
    batch_size: BatchOpt = None,
    lr: LrOpt = None,
    image_size: ImageSizeOpt = None,
    clip_len: ClipLenOpt = None,
    augment: AugmentOpt = None,
    mixed_precision: PrecisionOpt = None,
    xla: XlaOpt = False,
    seed: SeedOpt = None,
    run_name: RunNameOpt = None,
    patience: PatienceOpt = None,
    from_config: FromConfigOpt = None,
    loss: LossOpt = None,
    mining: MiningOpt = None,
    margin: MarginOpt = None,
    embedding_dim: EmbeddingDimOpt = None,
    per_class: PerClassOpt = None,
    class_augment: ClassAugmentOpt = None,
    embedding_from: EmbeddingFromOpt = None,
    exclude_classes: ExcludeOpt = None,
    init_from: InitFromOpt = None,
    freeze_trunk: FreezeOpt = False,
    fine_tune_epochs: FineTuneOpt = None,
    backbone: BackboneOpt = None,
    weights: WeightsOpt = None,
    workers: WorkersOpt = None,
    json_output: JsonOpt = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Train a reference model on an export; write model, metrics and plots to runs/RUN_ID/.

    cnn: the tutorial CNN (79,626 parameters at 32x32x3, 10 classes); cnn-bn: batch norm,
    dropout, augmentation, weight decay, cosine schedule; cnn-lstm: each frame with its
    difference from the previous one through a small convolutional trunk (where and what),
    their changes, an LSTM over the clip, clip-consistent augmentation (needs an export with
    --unit clip; its defaults: batch 16, lr 3e-3, at least 300 steps). siamese /
    siamese-lstm: the cnn-bn / cnn-lstm encoder to an L2-normalized embedding, trained with a
    triplet or contrastive loss; new classes are added later with `dataprep enroll`.

    Example: `dataprep train-baseline --export gestures-clips --model cnn-lstm --seed 0`
    """
    from dataclasses import fields

    from dataprep.errors import UsageError
    from dataprep.train.loop import TrainOptions, options_from_config

    given = dict(locals())  # the command's options, by name (before any other local)
    if from_config is not None:
        options = options_from_config(from_config, run_name)
    elif export is None:
        raise UsageError("--export is required (an export name or folder), or --from-config")
    else:
        options = TrainOptions(**{f.name: given[f.name] for f in fields(TrainOptions)})
    ws = _workspace_or_none(workspace)

    def log(line: str) -> None:
        if not json_output:
            console().print(line, markup=False, highlight=False, soft_wrap=True)

    if workers is not None or os.environ.get("TF_CONFIG"):
        _train_on_workers(ws, options, workers, log, json_output)
        return
    _train_here(ws, options, log, json_output)


def _train_here(ws, options, log, json_output: bool) -> None:
    from dataclasses import asdict

    from dataprep.train.loop import train_baseline as run

    with progress_bar("epoch", "batches") as update:
        result = run(ws, options, log=log, progress=update)
    if json_output:
        print_json(asdict(result))
        return
    what = result.metrics.get("episode", "")
    console().print(f"test_accuracy {result.metrics['test_accuracy']:.4f} {what}".rstrip())
    for key in ("curves", "confusion", "model", "metrics"):
        console().print(
            f"{key}: {result.files[key]}", markup=False, highlight=False, soft_wrap=True
        )


@handle_errors
@silence_native_logs
def evaluate(
    run: Annotated[str, typer.Argument(help="Run id (runs/RUN) or run folder.")],
    split: Annotated[str, typer.Option("--split", help="train, val or test.")] = "test",
    ways: Annotated[
        int | None, typer.Option("--ways", min=2, help="Few-shot: classes per episode.")
    ] = None,
    shots: Annotated[int, typer.Option("--shots", min=1, help="Few-shot: examples per class.")] = 1,
    episodes: Annotated[int, typer.Option("--episodes", min=1, help="Few-shot: episodes.")] = 600,
    queries: Annotated[
        int, typer.Option("--queries", min=1, help="Few-shot: queries per class and episode.")
    ] = 5,
    classes: Annotated[
        str | None, typer.Option("--classes", help="Few-shot: draw the ways from a,b,c only.")
    ] = None,
    open_set: Annotated[
        bool, typer.Option("--open-set", help="Few-shot: also score unknown-class queries.")
    ] = False,
    threshold: Annotated[
        float | None, typer.Option("--threshold", help="Unknown beyond this distance.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Few-shot: episode seed.")] = 0,
    json_output: JsonOpt = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Re-compute a run's metrics and confusion plot on a split of its export.

    With --ways (embedding runs): mean accuracy over few-shot episodes with a 95% interval, next
    to the same episodes on raw pixels (baseline_accuracy); --open-set adds the rates of unknown
    queries rejected and known queries accepted at the calibrated threshold.

    Example: `dataprep evaluate 20250101-120000-cnn-lstm --split val`,
    `dataprep evaluate RUN --ways 5 --shots 1 --episodes 600`
    """
    from dataprep.train.evaluate import FewShotRequest, evaluate_run

    request = None
    if ways is not None:
        names = tuple(c.strip() for c in (classes or "").split(",") if c.strip())
        request = FewShotRequest(
            ways=ways,
            shots=shots,
            episodes=episodes,
            queries=queries,
            classes=names,
            open_set=open_set,
            threshold=threshold,
            seed=seed,
        )
    with progress_bar(f"evaluate {split}", "examples") as update:
        metrics = evaluate_run(
            _workspace_or_none(workspace), run, split=split, fewshot=request, progress=update
        )
    if json_output:
        print_json(metrics)
        return
    if "ways" in metrics:
        _print_fewshot(metrics)
        return
    _print_metrics(metrics)


def _print_fewshot(metrics: dict) -> None:
    out = console()
    low, high = metrics["ci95"]
    base_low, base_high = metrics["baseline_ci95"]
    out.print(
        f"{metrics['split']} {metrics['ways']}-way {metrics['shots']}-shot accuracy "
        f"{metrics['accuracy']:.4f} (95% CI {low:.4f}-{high:.4f}) over {metrics['episodes']} "
        f"episodes; raw pixels {metrics['baseline_accuracy']:.4f} "
        f"({base_low:.4f}-{base_high:.4f})",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    out.print(
        "classes: " + ", ".join(metrics["classes"]), markup=False, highlight=False, soft_wrap=True
    )
    rates = metrics.get("open_set")
    if rates:
        rejected = rates["unknown_rejected"]
        rejected = "-" if rejected is None else f"{rejected:.4f}"
        out.print(
            f"open set at threshold {rates['threshold']:.4f}: known accepted "
            f"{rates['known_accepted']:.4f}, unknown rejected {rejected} "
            f"({', '.join(rates['unknown_classes']) or 'no unknown classes'})",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    for key, path in metrics.get("files", {}).items():
        out.print(f"{key}: {path}", markup=False, highlight=False, soft_wrap=True)


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
    threshold: Annotated[
        float | None,
        typer.Option("--threshold", help="Embedding runs: unknown beyond this distance."),
    ] = None,
    json_output: JsonOpt = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Classify new videos and images the way the run's training data was prepared.

    Frames are sampled, resized, encoded and normalized as for the export; a video gets
    probabilities per clip (or frame) and for the whole video (the mean). An embedding run
    answers with the nearest enrolled class (its gallery), or "unknown" beyond the threshold.

    Example: `dataprep predict RUN new/clip.mp4 --top-k 2`
    """
    from dataprep.errors import EXIT_FAILED, EXIT_PARTIAL
    from dataprep.train.predict import predict_paths

    with progress_bar("predict", "files") as update:
        results = predict_paths(
            _workspace_or_none(workspace),
            run,
            paths,
            top_k=top_k,
            threshold=threshold,
            progress=update,
        )
    failed = [item for item in results if "error" in item]
    if json_output:
        print_json(results)
    else:
        _print_predictions(results)
    for item in failed:  # each one line naming its file; the others were answered
        typer.echo(f"error: {item['error']}", err=True)
    if failed:
        raise typer.Exit(EXIT_PARTIAL if len(failed) < len(results) else EXIT_FAILED)


def _print_predictions(results: list[dict]) -> None:
    out = console()
    for item in results:
        if "error" in item:
            continue
        if "distance" in item:  # an embedding run's gallery answer
            top = ", ".join(f"{name} {d:.3f}" for name, d in item["top_k"])
            out.print(
                f"{item['path']}: {item['prediction']} (distance {item['distance']:.3f}, "
                f"threshold {item['threshold']:.3f}; nearest: {top})",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
            continue
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


def _train_on_workers(ws, options, workers, log, json_output: bool) -> None:
    """``--workers N`` or ``TF_CONFIG``: docs/scaling.md, multi-worker training."""
    import json

    from dataprep.train.distributed import train_distributed

    run_dir = train_distributed(ws, options, workers=workers, log=log)
    if run_dir is None:  # not the chief: it writes nothing
        return
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    if json_output:
        print_json(metrics)
        return
    console().print(f"test_accuracy {metrics['test_accuracy']:.4f}")
    console().print(f"run folder: {run_dir}", markup=False, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    from dataprep.cli.enroll_cmd import enroll

    app.command("train-baseline")(train_baseline)
    app.command("evaluate")(evaluate)
    app.command("predict")(predict)
    app.command("enroll")(enroll)
