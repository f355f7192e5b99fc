"""``dataprep labels push|sync|import|stats``: annotate in Label Studio, bring labels back."""

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
from dataprep.cli.progress import run_and_report

labels_app = typer.Typer(
    name="labels",
    help="Annotate in Label Studio: push media as tasks, sync annotations into "
    "manifests/labels.parquet, import export files, agreement statistics.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)

UrlOpt = Annotated[
    str | None,
    typer.Option(
        "--url", help="Label Studio URL (default: [labelstudio] url).", show_default=False
    ),
]
ProjectOpt = Annotated[
    str | None,
    typer.Option(
        "--project",
        help="Project id or title (default: [labelstudio] project).",
        show_default=False,
    ),
]
ResolveOpt = Annotated[
    str | None,
    typer.Option(
        "--resolve",
        help="majority, latest or ground-truth: which annotation's labels "
        "are used for training (default: [labelstudio] resolve).",
        show_default=False,
    ),
]
OnErrorOpt = Annotated[
    str,
    typer.Option(
        "--on-error",
        help="fail: stop on a malformed annotation or one wholly outside its media (nothing "
        "written); skip: leave that task out and report it.",
    ),
]
PredictionsOpt = Annotated[
    str | None,
    typer.Option(
        "--predictions",
        metavar="RUN",
        help="Also upload run RUN's predictions (a run id under runs/ or a run folder) "
        "as pre-annotations: model_version = the run id; tasks that already have one "
        "from this run are skipped.",
        show_default=False,
    ),
]
ReplaceOpt = Annotated[
    bool,
    typer.Option(
        "--replace",
        help="Replace all labels. Default: merge by media (labels of media not mentioned "
        "are kept).",
    ),
]


@labels_app.command("push")
@handle_errors
@silence_native_logs  # --predictions loads TensorFlow
def push(
    url: UrlOpt = None,
    project: ProjectOpt = None,
    create: Annotated[
        bool,
        typer.Option(
            "--create",
            help="Create the project (labeling config from the "
            "workspace's classes and label type) if it does not exist.",
        ),
    ] = False,
    media_root: Annotated[
        Path | None,
        typer.Option(
            "--media-root",
            help="Folder Label Studio serves local files from (its "
            "LOCAL_FILES_DOCUMENT_ROOT); media must lie in sub-folders of it.",
        ),
    ] = None,
    media_url_prefix: Annotated[
        str | None,
        typer.Option(
            "--media-url-prefix",
            help="Serve media by URL instead: PREFIX/<path relative to the media root>.",
        ),
    ] = None,
    kind: Annotated[
        str | None,
        typer.Option(
            "--kind", help="video or image: which media to push (a project shows one kind)."
        ),
    ] = None,
    predictions: PredictionsOpt = None,
    suspects_only: Annotated[
        bool,
        typer.Option(
            "--suspects-only",
            help="With --predictions RUN: predictions only for the label suspects of the last "
            "`dataprep audit --run RUN`, for review.",
        ),
    ] = False,
    json_output: JsonOpt = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Create one task per ok media in a Label Studio project; a rerun adds only new media.

    The API key is read from $LABEL_STUDIO_API_KEY (or the variable named by
    [labelstudio] api_key_env), never from a file. With --predictions RUN, each task also gets
    the run's prediction (whole-media Choices, or TimelineLabels segments of same-class clips),
    computed exactly as `dataprep predict` does; box projects are refused.

    Example: `dataprep labels push --project gestures --create --media-root /data`
    """
    from dataprep.labels.push import push as run_push

    run_and_report(
        "push",
        "tasks",
        run_push,
        open_ws(workspace),
        json_output=json_output,
        summary=_print_push,
        url=url,
        project=project,
        create=create,
        media_root=str(media_root) if media_root else None,
        media_url_prefix=media_url_prefix,
        kind=kind,
        predictions=predictions,
        suspects_only=suspects_only,
    )


def _print_push(report) -> None:
    made = " (created)" if report.created_project else ""
    other = report.skipped_other_kind
    console().print(
        f"project {report.project_id} {report.project_title!r}{made} at {report.url}: "
        f"{report.added} tasks added, {report.already_present} already there"
        + (f", {other} other-kind media not pushed" if other else "")
    )
    for line in report.errors:
        console().print(f"[yellow]not pushed:[/] {line}")
    if report.predictions is not None:
        _print_predictions(report.predictions)


def _print_predictions(predictions) -> None:
    out = console()
    out.print(
        f"predictions of run {predictions.run_id!r} ({predictions.target}): "
        f"{predictions.added} added, {predictions.already_present} already there"
    )
    for line in predictions.unmatched_tasks:
        out.print(f"[yellow]no prediction (unmatched task):[/] {line}")
    for line in predictions.errors:
        out.print(f"[yellow]no prediction:[/] {line}")


def _print_conversion(conversion) -> None:
    out = console()
    for title, lines in (
        ("rejected", conversion.rejected),
        ("unmatched", conversion.unmatched),
        ("error", conversion.errors),
        ("ignored", conversion.ignored),
        ("clipped", conversion.clipped),
    ):
        for line in lines:
            out.print(f"[yellow]{title}:[/] {line}")
    unknown = conversion.unknown_labels
    if unknown:
        listed = ", ".join(f"{k!r} ({v} rows)" for k, v in sorted(unknown.items()))
        out.print(
            f"[yellow]warning:[/] labels not among the workspace's classes (kept, "
            f"in_classes=false): {listed}"
        )


def _merge_line(merge) -> str:
    """What happened to the labels already there, in words."""
    if merge.mode == "replace":
        dropped = f", {merge.media_dropped} media no longer labelled" if merge.media_dropped else ""
        return f"replaced all labels (--replace){dropped}"
    return (
        f"merged by media: {merge.media_updated} media updated, labels of {merge.media_kept} "
        f"other media kept ({merge.rows_kept} rows); --replace replaces all"
    )


@labels_app.command("sync")
@handle_errors
def sync(
    url: UrlOpt = None,
    project: ProjectOpt = None,
    resolve: ResolveOpt = None,
    full: Annotated[
        bool,
        typer.Option(
            "--full", help="Re-read every task, not only those changed since the last sync."
        ),
    ] = False,
    on_error: OnErrorOpt = "fail",
    replace: ReplaceOpt = False,
    json_output: JsonOpt = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Pull annotations into manifests/labels.parquet (incremental after the first run).

    Deleted or cancelled annotations disappear; box tracks are interpolated between key frames;
    frame numbers are the decoder's 0-based frame_index.

    Example: `dataprep labels sync --resolve majority`
    """
    from dataprep.labels.sync import sync as run_sync

    ws = open_ws(workspace)

    def summary(report) -> None:
        console().print(
            f"{report.mode} sync of project {report.project_id}: {report.tasks_fetched} of "
            f"{report.tasks_total} tasks fetched, {report.tasks_removed} removed; "
            f"{report.rows} rows ({report.resolved_rows} resolved by {report.policy}) -> "
            f"{ws.manifest_path('labels')}; {_merge_line(report.merge)}"
        )
        _print_conversion(report.conversion)

    run_and_report(
        "sync",
        "tasks",
        run_sync,
        ws,
        json_output=json_output,
        summary=summary,
        url=url,
        project=project,
        resolve=resolve,
        full=full,
        on_error=on_error,
        replace=replace,
    )


@labels_app.command("import")
@handle_errors
def import_(
    export_file: Annotated[Path, typer.Argument(help="Label Studio export (JSON or JSON_MIN).")],
    resolve: ResolveOpt = None,
    on_error: OnErrorOpt = "fail",
    replace: ReplaceOpt = False,
    json_output: JsonOpt = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Convert a Label Studio export file into manifests/labels.parquet.

    Tasks match media by media_id in the task data, else by file name. The labels of the media
    the export mentions are replaced and the others kept, unless --replace. A file that is not
    an export, or holds no annotations, is refused and labels.parquet is left as it was.

    Example: `dataprep labels import project-1-at-2026-01-01.json`
    """
    from dataprep.labels.importer import import_export

    run_and_report(
        "import",
        "tasks",
        import_export,
        open_ws(workspace),
        export_file,
        json_output=json_output,
        summary=_print_import,
        resolve=resolve,
        on_error=on_error,
        replace=replace,
    )


def _print_import(report) -> None:
    console().print(
        f"{report.format} export {report.path}: {report.conversion.tasks} tasks, "
        f"{report.conversion.annotations} annotations -> {report.rows} rows "
        f"({report.resolved_rows} resolved by {report.policy}); {_merge_line(report.merge)}"
    )
    _print_conversion(report.conversion)


@labels_app.command("stats")
@handle_errors
def stats(json_output: JsonOpt = False, workspace: WorkspaceOpt = None) -> None:
    """Label counts and inter-annotator agreement per class (percent, Cohen's and Fleiss' kappa).

    Example: `dataprep labels stats --json | jq .agreement.per_class`
    """
    from dataprep.labels.stats import labels_stats

    summary = labels_stats(open_ws(workspace))
    if json_output:
        print_json(summary)
        return
    _print_stats(summary)


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def _print_stats(summary: dict) -> None:
    from rich.table import Table

    out = console()
    out.print(
        f"{summary['rows']} rows, {summary['media']} media, {summary['annotations']} "
        f"annotations by {len(summary['annotators'])} annotators"
    )
    for kind, counts in summary["resolved_by_class"].items():
        table = Table("class", "count", title=f"resolved {kind} labels", title_justify="left")
        for label, count in counts.items():
            table.add_row(label, str(count))
        out.print(table)
    if summary["labels_not_in_classes"]:
        out.print(f"[yellow]labels not in classes:[/] {summary['labels_not_in_classes']}")
    agreement = summary["agreement"]
    if not agreement["items"]:
        out.print("agreement: no media with two or more annotators")
        return
    table = Table(
        "class",
        "items",
        "% agreement",
        "Fleiss kappa",
        "Cohen kappa (pairs)",
        title="agreement",
        title_justify="left",
    )
    blocks = [("(all)", agreement["overall"])] + list(agreement["per_class"].items())
    for name, block in blocks:
        pairs = ", ".join(f"{k}: {_fmt(v)}" for k, v in block["cohen_kappa"].items())
        table.add_row(
            name,
            str(block["items"]),
            _fmt(block["percent_agreement"]),
            _fmt(block["fleiss_kappa"]),
            pairs or "-",
        )
    out.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(labels_app, name="labels")
