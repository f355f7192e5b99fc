"""``dataprep split``: grouped, stratified, stable train/val/test assignment."""

from __future__ import annotations

from typing import Annotated

import typer

from dataprep.cli.common import JsonOpt, WorkspaceOpt, console, handle_errors, open_ws, print_json


@handle_errors
def split(
    ratios: Annotated[
        str | None, typer.Option("--ratios", help="train,val,test fractions, e.g. 0.8,0.1,0.1.")
    ] = None,
    group_by: Annotated[
        str | None,
        typer.Option(
            "--group-by",
            help="media, folder (source folder), near-duplicates (clusters found by "
            "`dataprep audit`) or a media column: everything of one group lands in one split.",
        ),
    ] = None,
    stratify: Annotated[
        bool | None,
        typer.Option("--stratify/--no-stratify", help="Balance each class across splits."),
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed of the group hash.")] = None,
    reset: Annotated[
        bool,
        typer.Option(
            "--reset",
            help="Reassign every media (needed to change settings; this changes the test set).",
        ),
    ] = False,
    json_output: JsonOpt = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Assign media to train/val/test without leakage; writes manifests/splits.parquet.

    All media of a group land in one split; adding media never moves existing ones.

    Example: `dataprep split --ratios 0.7,0.15,0.15 --group-by folder`
    """
    from dataprep.split import split_media

    ws = open_ws(workspace)
    report = split_media(
        ws, ratios=ratios, group_by=group_by, stratify=stratify, seed=seed, reset=reset
    )
    if json_output:
        print_json(report.to_dict())
        return
    _print_report(report)


def _print_report(report) -> None:
    from rich.table import Table

    out = console()
    out.print(
        f"{sum(report.media.values())} media in {sum(report.groups.values())} groups "
        f"(group by {report.settings['group_by']}): {report.kept} groups kept, "
        f"{report.placed} placed -> {report.path}"
    )
    classes = sorted({c for counts in report.by_class.values() for c in counts})
    counts = report.frames_by_class or report.by_class
    what = "frames" if report.frames_by_class else "media"
    classes = sorted({c for split_counts in counts.values() for c in split_counts} | set(classes))
    table = Table(
        "split", "groups", "media", *classes, title=f"{what} per class", title_justify="left"
    )
    for split in ("train", "val", "test"):
        table.add_row(
            split,
            str(report.groups[split]),
            str(report.media[split]),
            *(str(counts[split].get(c, 0)) for c in classes),
        )
    out.print(table)
    for line in report.warnings:
        out.print(f"[yellow]warning:[/] {line}")


def register(app: typer.Typer) -> None:
    app.command("split")(split)
