"""``dataprep augment`` (materialize augmented copies) and ``dataprep preview`` (contact sheet)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dataprep.cli.common import (
    JobsOpt,
    JsonOpt,
    OnErrorOpt,
    OverwriteOpt,
    WorkspaceOpt,
    console,
    handle_errors,
    open_ws,
    print_failed,
    print_json,
)
from dataprep.cli.engine_opts import EngineOpt, RayAddressOpt, engine_spec
from dataprep.cli.progress import run_and_report

PipelineOpt = Annotated[
    str | None,
    typer.Option(
        "--pipeline",
        "-p",
        help="Preset (light, medium, heavy) or an albumentations YAML/JSON file.",
    ),
]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="Draw seed (default: [augment] seed).")]


@handle_errors
def augment(
    pipeline: PipelineOpt = None,
    copies: Annotated[
        int | None, typer.Option("--copies", "-n", help="Copies per frame (1 or more).")
    ] = None,
    seed: SeedOpt = None,
    jobs: JobsOpt = None,
    overwrite: OverwriteOpt = False,
    on_error: OnErrorOpt = "skip",
    engine: EngineOpt = None,
    ray_address: RayAddressOpt = None,
    json_output: JsonOpt = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Write N augmented copies of every extracted frame (rows flagged augmented, copy_index 1..N).

    Copy k of a media uses one random draw for all its frames. Copies keep the media_id of
    their source, so they stay in its split and never reach validation or test data. A media whose
    frames cannot be read is recorded and skipped (`--on-error fail` stops there); exit code 1
    when some media failed (listed).

    Example: `dataprep augment --pipeline medium --copies 2`
    """
    from dataprep.augment_stage import augment_frames

    ws = open_ws(workspace)
    run_and_report(
        "augment",
        "images",
        augment_frames,
        ws,
        json_output=json_output,
        summary=_print_summary,
        pipeline=pipeline,
        copies=copies,
        seed=seed,
        jobs=jobs,
        overwrite=overwrite,
        on_error=on_error,
        engine=engine_spec(ws, engine, ray_address),
    )


def _print_summary(report) -> None:
    rate = report.written / report.seconds if report.seconds else 0.0
    console().print(
        f"{report.media} media, pipeline {report.pipeline}, {report.copies} copies: wrote "
        f"{report.written} images ({rate:,.1f}/s), kept {report.kept}, removed {report.removed}; "
        f"{report.rows} augmented rows in the manifest"
        + (f" ({report.mirrored} mirrored)" if report.mirrored else "")
    )
    for note in report.notes:
        console().print(f"flips: {note}")
    print_failed(report.failed)


@handle_errors
def preview(
    pipeline: PipelineOpt = None,
    media: Annotated[
        list[str] | None, typer.Option("--media", "-m", help="Media id to show (repeatable).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="PNG file (default preview.png).")
    ] = None,
    per_media: Annotated[
        int, typer.Option("--frames-per-media", min=1, help="Frames per row.")
    ] = 6,
    max_media: Annotated[int, typer.Option("--max-media", min=1, help="Media rows at most.")] = 8,
    seed: SeedOpt = None,
    json_output: JsonOpt = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Write a PNG contact sheet: sampled frames per media, original next to augmented.

    `--pipeline none` shows originals only.

    Example: `dataprep preview --pipeline heavy --out sheet.png`
    """
    from dataprep.preview import make_preview

    ws = open_ws(workspace)
    result = make_preview(
        ws,
        pipeline=pipeline,
        media_ids=media,
        out=out,
        per_media=per_media,
        max_media=max_media,
        seed=seed,
    )
    if json_output:
        print_json(result)
        return
    console().print(
        f"wrote {result['path']} ({result['width']}x{result['height']}): {result['media']} media, "
        f"{result['frames']} frames, pipeline {result['pipeline'] or 'none'}"
    )


def register(app: typer.Typer) -> None:
    app.command("augment")(augment)
    app.command("preview")(preview)
