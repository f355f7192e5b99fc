"""``dataprep ingest``: find, hash, probe and record media."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dataprep.cli.common import (
    JobsOpt,
    JsonOpt,
    OnErrorOpt,
    WorkspaceOpt,
    console,
    handle_errors,
    open_ws,
)
from dataprep.cli.engine_opts import EngineOpt, RayAddressOpt, engine_spec
from dataprep.cli.progress import run_and_report


@handle_errors
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to ingest.")],
    recursive: Annotated[
        bool | None, typer.Option("--recursive/--no-recursive", help="Descend into sub-folders.")
    ] = None,
    label_from_dir: Annotated[
        bool | None,
        typer.Option(
            "--label-from-dir/--no-label-from-dir",
            help="Use each file's parent folder name as its label.",
        ),
    ] = None,
    mode: Annotated[
        str | None,
        typer.Option(
            "--mode", help="copy (into media/), link (hard link) or reference (in place)."
        ),
    ] = None,
    max_pixels: Annotated[
        int | None,
        typer.Option(
            "--max-pixels",
            help="Refuse images (and video frames) above this many pixels, read from the "
            "header before decoding (default: [ingest] max_pixels, 100 megapixels).",
        ),
    ] = None,
    on_error: OnErrorOpt = "skip",
    jobs: JobsOpt = None,
    engine: EngineOpt = None,
    ray_address: RayAddressOpt = None,
    json_output: JsonOpt = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Find videos and images under PATHS by content, hash, probe and record them.

    Bad files get an error row and, with the default `--on-error skip`, never stop the run.
    Exit code 0: all ingested; 1: some files were rejected (listed in the summary).

    Example: `dataprep ingest raw/ --label-from-dir --mode link`
    """
    from dataprep.ingest import ingest as run_ingest

    ws = open_ws(workspace)
    run_and_report(
        "ingest",
        "files",
        run_ingest,
        ws,
        paths,
        json_output=json_output,
        summary=_print_summary,
        recursive=recursive,
        label_from_dir=label_from_dir,
        mode=mode,
        max_pixels=max_pixels,
        on_error=on_error,
        engine=engine_spec(ws, engine, ray_address),
        jobs=jobs,
    )


def _print_summary(report) -> None:
    from rich.table import Table

    mb = report.bytes_read / 1e6
    rate = mb / report.seconds if report.seconds else 0.0
    console().print(
        f"{report.files} files: {report.added} new media, {report.duplicates} duplicates, "
        f"{report.unchanged} unchanged, {len(report.errors)} rejected, {len(report.skipped)} "
        f"skipped (not media); read {mb:,.1f} MB in {report.seconds:.1f}s ({rate:,.1f} MB/s)"
    )
    if report.errors:
        table = Table("rejected file", "why", title="Rejected", title_justify="left")
        for path, reason in report.errors:
            table.add_row(path, reason)
        console().print(table)
    for line in report.label_conflicts:
        console().print(f"[yellow]warning:[/] {line}")


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest)
