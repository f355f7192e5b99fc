"""``dataprep info``: what the workspace holds."""

from __future__ import annotations

import typer

from dataprep.cli.common import (
    JsonOpt,
    WorkspaceOpt,
    console,
    handle_errors,
    mean_std_text,
    open_ws,
    print_json,
)


@handle_errors
def info(json_output: JsonOpt = False, workspace: WorkspaceOpt = None) -> None:
    """Summarize the workspace: media by kind, status and label, durations, resolutions, errors.

    Example: `dataprep info --json | jq .media.by_label`
    """
    from dataprep.info import summarize

    summary = summarize(open_ws(workspace))
    if json_output:
        print_json(summary)
        return
    _print(summary)


def _counts_table(title: str, counts: dict) -> object:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column("value")
    table.add_column("count", justify="right")
    for key, value in counts.items():
        table.add_row(str(key), str(value))
    return table


def _print_stages(stages: list[dict]) -> None:
    from rich.table import Table

    table = Table(
        "stage", "state", "finished", "counts", "settings", title="stages", title_justify="left"
    )
    for stage in stages:
        interrupted = "[red]interrupted[/] (a run did not finish; rerun it to finish the job)"
        if not stage["ran"]:
            state = interrupted if stage.get("interrupted") else "[dim]not run[/]"
            table.add_row(stage["stage"], state, "", "", "")
            continue
        state = "ok"
        if stage.get("interrupted"):
            state = interrupted
        elif stage["stale"]:
            why = [f"{name} changed" for name in stage["changed_inputs"]]
            why += [f"{name} is stale" for name in stage.get("stale_upstream", [])]
            state = f"[yellow]stale[/] ({'; '.join(why)})"
        elif stage["failures"]:
            state = f"[red]{stage['failures']} failed[/]"
        counts = ", ".join(f"{k}={v}" for k, v in stage["counts"].items())
        settings = ", ".join(
            f"{k}={v}" for k, v in stage["settings"].items() if not isinstance(v, (list, dict))
        )
        table.add_row(stage["stage"], state, stage["finished_at"], counts, settings)
    console().print(table)


def _print(summary: dict) -> None:
    from rich.table import Table

    out = console()
    out.print(f"[bold]{summary['project']}[/] at {summary['workspace']}")
    out.print(
        f"classes: {', '.join(summary['classes']) or '(none yet)'}; "
        f"label type: {summary['label_type']}"
    )
    _print_stages(summary["stages"])
    media = summary["media"]
    if media is None:
        out.print("no media yet: run `dataprep ingest PATH`")
        return
    out.print(
        f"{media['media']} media, {media['video_duration_s']:.1f}s of video "
        f"({media['variable_frame_rate_videos']} with variable frame rate)"
    )
    for title in ("by_kind", "by_status", "by_label", "resolutions"):
        out.print(_counts_table(title.replace("_", " "), media[title]))
    if media["errors"]:
        table = Table("media_id", "path", "error", title="errors", title_justify="left")
        for row in media["errors"]:
            table.add_row(row["media_id"], row["path"], row["error"])
        out.print(table)
    _print_frames(summary.get("frames"))
    _print_stats(summary.get("stats"))
    _print_labels(summary.get("labels"))
    _print_splits(summary.get("splits"))
    _print_exports(summary.get("exports"))
    _print_runs(summary.get("runs"))


def _print_stats(stats: dict | None) -> None:
    if not stats:
        return
    console().print(
        f"stats ({stats['split']} frames, {stats['count_frames']}): {mean_std_text(stats)} "
        "on the 0-1 scale"
    )


def _print_labels(labels: dict | None) -> None:
    if not labels:
        return
    console().print(
        f"labels: {labels['media_labelled']} media labelled by {labels['annotators']} "
        f"annotator(s), {labels['annotations']} annotations, {labels['rows']} rows"
        + (f"; last sync {labels['last_sync']}" if labels.get("last_sync") else "")
    )
    if labels.get("resolved_by_label"):
        console().print(_counts_table("resolved labels", labels["resolved_by_label"]))
    if labels.get("labels_not_in_classes"):
        console().print(
            f"[yellow]labels not among the classes:[/] "
            f"{', '.join(map(str, labels['labels_not_in_classes']))}"
        )


def _print_splits(splits: dict | None) -> None:
    from rich.table import Table

    if not splits:
        return
    settings = ", ".join(f"{k}={v}" for k, v in (splits.get("settings") or {}).items())
    console().print(f"splits: {settings}")
    table = Table("split", "media", "groups")
    for name, count in splits["media"].items():
        table.add_row(name, str(count), str(splits["groups"].get(name, "")))
    console().print(table)


def _print_exports(exports: list[dict] | None) -> None:
    from rich.table import Table

    if not exports:
        return
    table = Table(
        "export", "format", "unit", "examples", "state", title="exports", title_justify="left"
    )
    for export in exports:
        examples = ", ".join(f"{k} {v}" for k, v in (export.get("examples") or {}).items())
        if not export.get("complete"):
            state = "[red]incomplete[/]"
        elif export.get("up_to_date") is False:
            state = "[yellow]stale[/] (manifests changed since)"
        else:
            state = "complete"
        table.add_row(
            export["name"],
            str(export.get("format", "")),
            str(export.get("unit", "")),
            examples,
            state,
        )
    console().print(table)


def _print_runs(runs: list[dict] | None) -> None:
    from rich.table import Table

    if not runs:
        return
    table = Table(
        "run", "model", "export", "test accuracy", "state", title="runs", title_justify="left"
    )
    for run in runs:
        accuracy = run.get("test_accuracy")
        table.add_row(
            run["run_id"],
            run.get("model", ""),
            run.get("export", ""),
            "" if accuracy is None else f"{accuracy:.4f}",
            run.get("state", ""),
        )
    console().print(table)


def _print_frames(frames: dict | None) -> None:
    from rich.table import Table

    if not frames:
        return
    console().print(
        f"frames: {frames['frames']} of {frames['media_with_frames']} media "
        f"({'; '.join(frames['settings']) or 'no settings'}), "
        f"{frames['augmented_copies']} augmented copies"
    )
    if frames["failed"]:
        table = Table(
            "media_id",
            "status",
            "error",
            "frames kept",
            title="frame extraction failed",
            title_justify="left",
        )
        for row in frames["failed"]:
            kept = str(row["frames_kept"])
            table.add_row(row["media_id"], row["status"], row["error"] or "", kept)
        console().print(table)


def register(app: typer.Typer) -> None:
    app.command("info")(info)
