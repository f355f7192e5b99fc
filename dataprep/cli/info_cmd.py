"""``dataprep info``: what the workspace holds."""

from __future__ import annotations

import typer

from dataprep.cli.common import JsonOpt, WorkspaceOpt, console, handle_errors, open_ws, print_json


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

    table = Table("stage", "state", "finished", "counts", "settings", title="stages",
                  title_justify="left")
    for stage in stages:
        if not stage["ran"]:
            table.add_row(stage["stage"], "[dim]not run[/]", "", "", "")
            continue
        state = "ok"
        if stage["stale"]:
            state = f"[yellow]stale[/] ({', '.join(stage['changed_inputs'])} changed)"
        elif stage["failures"]:
            state = f"[red]{stage['failures']} failed[/]"
        counts = ", ".join(f"{k}={v}" for k, v in stage["counts"].items())
        settings = ", ".join(f"{k}={v}" for k, v in stage["settings"].items()
                             if not isinstance(v, (list, dict)))
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
    _print_runs(summary.get("runs"))


def _print_runs(runs: list[dict] | None) -> None:
    from rich.table import Table

    if not runs:
        return
    table = Table("run", "model", "export", "test accuracy", "state", title="runs",
                  title_justify="left")
    for run in runs:
        accuracy = run.get("test_accuracy")
        table.add_row(run["run_id"], run.get("model", ""), run.get("export", ""),
                      "" if accuracy is None else f"{accuracy:.4f}", run.get("state", ""))
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
        table = Table("media_id", "status", "error", "frames kept", title="frame extraction failed",
                      title_justify="left")
        for row in frames["failed"]:
            kept = str(row["frames_kept"])
            table.add_row(row["media_id"], row["status"], row["error"] or "", kept)
        console().print(table)


def register(app: typer.Typer) -> None:
    app.command("info")(info)
