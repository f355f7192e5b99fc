"""A rich progress bar with a rate and an ETA, silent off a terminal or with --quiet."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import typer

from dataprep.cli.common import err_console, print_json, quiet
from dataprep.errors import EXIT_OK, EXIT_PARTIAL


@contextlib.contextmanager
def progress_bar(description: str, unit: str = "files") -> Iterator[Callable[..., None]]:
    """Yields ``update(done, total, **fields)``; draws nothing when output is not interactive."""
    if quiet():
        yield lambda *args, **kwargs: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=err_console(), transient=False) as bar:
        task = bar.add_task(description, total=None, rate="")

        def update(done: int, total: int | None = None, **_: object) -> None:
            speed = bar.tasks[0].speed
            rate = f"{speed:,.1f} {unit}/s" if speed else ""
            bar.update(task, completed=done, total=total, rate=rate)

        yield update


def run_and_report(
    name: str,
    unit: str,
    run: Callable[..., Any],
    /,
    *args: Any,
    json_output: bool,
    summary: Callable[[Any], None],
    ok: Callable[[Any], bool] = lambda report: report.ok,
    **options: Any,
) -> NoReturn:
    """The tail every data-writing command shares: ``run(*args, progress=..., **options)`` under
    a progress bar, then its report as JSON (``--json``) or through ``summary``, then exit 0, or
    1 (partial) when ``ok(report)`` is false. The first three are positional-only, so that
    ``options`` may hold a ``name`` or a ``unit`` of the stage's own.
    """
    with progress_bar(name, unit) as update:
        report = run(*args, progress=update, **options)
    if json_output:
        print_json(report.to_dict())
    else:
        summary(report)
    raise typer.Exit(EXIT_OK if ok(report) else EXIT_PARTIAL)
