"""A rich progress bar with a rate and an ETA, silent off a terminal or with --quiet."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from dataprep.cli.common import err_console, quiet


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
