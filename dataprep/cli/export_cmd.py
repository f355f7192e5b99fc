"""``dataprep export``: TFRecord shards (or an image folder, or Parquet) + dataset_info.json."""

from __future__ import annotations

from typing import Annotated

import typer

from dataprep.cli.common import (
    JsonOpt,
    OverwriteOpt,
    WorkspaceOpt,
    console,
    handle_errors,
    open_ws,
)
from dataprep.cli.engine_opts import EngineOpt, RayAddressOpt, engine_spec
from dataprep.cli.progress import run_and_report


@handle_errors
def export(
    format: Annotated[  # noqa: A002 - the option's name
        str | None, typer.Option("--format", help="tfrecord, imagefolder or parquet.")
    ] = None,
    unit: Annotated[str | None, typer.Option("--unit", help="frame or clip.")] = None,
    clip_len: Annotated[
        int | None, typer.Option("--clip-len", min=1, help="Frames per clip (T).")
    ] = None,
    clip_stride: Annotated[
        int | None, typer.Option("--clip-stride", min=1, help="Frames between clip starts (S).")
    ] = None,
    shard_size: Annotated[
        str | None, typer.Option("--shard-size", help="Bytes per shard, about; e.g. 128MB.")
    ] = None,
    compression: Annotated[str | None, typer.Option("--compression", help="none or gzip.")] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Folder under exports/ (default FORMAT-UNIT).")
    ] = None,
    unlabelled: Annotated[
        str | None,
        typer.Option("--unlabelled", help="Frames outside every label: drop, or background class."),
    ] = None,
    overwrite: OverwriteOpt = False,
    on_error: Annotated[
        str,
        typer.Option(
            "--on-error",
            help="fail: stop at a frame file that cannot be read (finished shards are kept); "
            "skip: leave that example out, record it and go on.",
        ),
    ] = "fail",
    engine: EngineOpt = None,
    ray_address: RayAddressOpt = None,
    json_output: JsonOpt = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Write the labelled frames or clips of each split to exports/NAME/.

    dataset_info.json is written last: its presence means the export is complete.

    Example: `dataprep export --unit clip --clip-len 16 --clip-stride 8 --compression gzip`
    """
    from dataprep.export.dataset import export_dataset

    ws = open_ws(workspace)
    run_and_report(
        "export",
        "examples",
        export_dataset,
        ws,
        json_output=json_output,
        summary=_print_report,
        ok=lambda report: not report.failed,  # --on-error skip left examples out
        format=format,
        unit=unit,
        clip_len=clip_len,
        clip_stride=clip_stride,
        shard_size=shard_size,
        compression=compression,
        name=name,
        unlabelled=unlabelled,
        overwrite=overwrite,
        on_error=on_error,
        engine=engine_spec(ws, engine, ray_address),
    )


def _print_report(report) -> None:
    from rich.table import Table

    out = console()
    if report.up_to_date:
        out.print(f"{report.path} is up to date (same inputs and settings); nothing to do")
    else:
        mb = report.bytes_written / 1e6
        out.print(
            f"{report.format} export of {report.unit}s -> {report.path}: "
            f"{mb:,.1f} MB in {report.seconds:.1f}s"
        )
    classes = sorted({c for counts in report.by_class.values() for c in counts})
    table = Table("split", "examples", "shards", *classes, title_justify="left")
    for split, count in report.examples.items():
        table.add_row(
            split,
            str(count),
            str(report.shards.get(split, 0)),
            *(str(report.by_class[split].get(c, 0)) for c in classes),
        )
    out.print(table)
    for reason, count in sorted(report.dropped.items()):
        out.print(f"left out: {count} ({reason.replace('_', ' ')})")
    if report.failed:
        out.print(
            f"[yellow]{report.failed} examples left out[/]: frame files could not be read "
            "(see the stage record; `dataprep info`)"
        )
    if report.padded_clips:
        out.print(f"{report.padded_clips} clips of short media padded with their last frame")
    for line in report.warnings:
        out.print(f"[yellow]warning:[/] {line}")


def register(app: typer.Typer) -> None:
    app.command("export")(export)
