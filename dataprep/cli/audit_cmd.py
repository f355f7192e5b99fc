"""``dataprep audit``: near-duplicates and leaks, label suspects, bad frames; an HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dataprep.cli.common import (
    JobsOpt,
    JsonOpt,
    WorkspaceOpt,
    console,
    handle_errors,
    open_ws,
    print_json,
    silence_native_logs,
)
from dataprep.cli.progress import progress_bar


@silence_native_logs  # --run loads TensorFlow
@handle_errors
def audit(
    run: Annotated[
        str | None,
        typer.Option(
            "--run",
            help="A trained classifier run (id under runs/ or folder): rank likely label "
            "errors from its out-of-sample probabilities.",
        ),
    ] = None,
    html: Annotated[
        Path | None,
        typer.Option("--html", help="Also write a self-contained HTML report to this file."),
    ] = None,
    dup_distance: Annotated[
        float | None,
        typer.Option("--dup-distance", help="Near-duplicate: most mean structure distance."),
    ] = None,
    dup_colour: Annotated[
        float | None,
        typer.Option("--dup-colour", help="Near-duplicate: most mean colour difference (0..255)."),
    ] = None,
    min_class_media: Annotated[
        int | None,
        typer.Option("--min-class-media", help="Fewer media in a class is a finding."),
    ] = None,
    jobs: JobsOpt = None,
    json_output: JsonOpt = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Audit the data: near-duplicates (and leaks across splits), likely label errors, bad
    frames and media, thin classes and split drift; writes manifests/audit.parquet.

    Example: `dataprep audit --run my-run --html report.html`
    """
    from dataprep.audit.core import audit_workspace

    ws = open_ws(workspace)
    overrides = {
        "dup_distance": dup_distance,
        "dup_colour": dup_colour,
        "min_class_media": min_class_media,
    }
    with progress_bar("audit", "media") as update:
        result = audit_workspace(
            ws,
            run=run,
            overrides=overrides,
            jobs=jobs,
            progress=lambda phase, done, total: update(done, total),
        )
    if html is not None:
        from dataprep.audit.report import write_report

        write_report(ws, result, html)
    if json_output:
        data = result.report.to_dict()
        data["html"] = str(html) if html else None
        print_json(data)
        return
    _print_summary(result.report, html)


def _print_summary(report, html: Path | None) -> None:
    from rich.table import Table

    out = console()
    out.print(
        f"{report.media} media audited: {report.findings} findings -> {report.manifest} "
        f"({report.seconds:.1f} s)"
    )
    table = Table("kind", "findings", "top finding", title="findings", title_justify="left")
    for kind, count in report.by_kind.items():
        top = report.top.get(kind, [{}])[0]
        what = top.get("media_id") or top.get("label") or top.get("split") or ""
        if top.get("other_media_id"):
            what += f" ~ {top['other_media_id']}"
        table.add_row(kind, str(count), f"{what}: {top.get('detail', '')}"[:110])
    out.print(table)
    out.print(
        f"near-duplicate clusters: {report.clusters} ({report.media_in_clusters} media); "
        + (
            f"label suspects scored on {report.scored_media} held-out media of run {report.run}"
            if report.run
            else "no --run: label suspects not checked"
        )
    )
    if report.by_kind.get("leak"):
        out.print(
            "[yellow]leaks:[/] near-duplicates sit in different splits; "
            "`dataprep split --group-by near-duplicates --reset` keeps each cluster in one split"
        )
    if html is not None:
        out.print(f"report: {html}")


def register(app: typer.Typer) -> None:
    app.command("audit")(audit)
