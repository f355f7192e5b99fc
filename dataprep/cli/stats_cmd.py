"""``dataprep stats``: per-channel mean and std of the frames, for normalization."""

from __future__ import annotations

from typing import Annotated

import typer

from dataprep.cli.common import (
    JobsOpt,
    JsonOpt,
    WorkspaceOpt,
    console,
    handle_errors,
    mean_std_text,
    open_ws,
    print_json,
)
from dataprep.cli.engine_opts import EngineOpt, RayAddressOpt, engine_spec
from dataprep.cli.progress import progress_bar


@handle_errors
def stats(
    split: Annotated[
        str | None,
        typer.Option("--split", help="train (default once splits exist) or all."),
    ] = None,
    jobs: JobsOpt = None,
    engine: EngineOpt = None,
    ray_address: RayAddressOpt = None,
    json_output: JsonOpt = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Compute per-channel mean and std (RGB, 0..1 scale) and write manifests/stats.json.

    Exports embed the file and the tf.data loader standardizes with it. Before splits exist
    all frames are used (and the output says so).

    Example: `dataprep stats --split train`
    """
    from dataprep.stats import compute_stats, stats_path

    ws = open_ws(workspace)
    with progress_bar("stats", "frames") as update:
        result = compute_stats(
            ws,
            split=split,
            jobs=jobs,
            progress=update,
            engine=engine_spec(ws, engine, ray_address),
        )
    if json_output:
        print_json(result)
        return
    console().print(
        f"{result['count_frames']} frames ({result['split']}), {result['count_pixels']:,} pixels: "
        f"{mean_std_text(result)} (0..1 scale) -> {stats_path(ws)}"
    )
    if result.get("note"):
        console().print(f"[yellow]note:[/] {result['note']}")


def register(app: typer.Typer) -> None:
    app.command("stats")(stats)
