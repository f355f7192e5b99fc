"""``dataprep enroll``: add classes to an embedding run's gallery without retraining."""

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
from dataprep.cli.progress import progress_bar


@handle_errors
@silence_native_logs
def enroll(
    run: Annotated[str, typer.Argument(help="Embedding run id (runs/RUN) or run folder.")],
    support: Annotated[
        list[Path] | None,
        typer.Argument(help="Files (with --label) or folders of class sub-folders."),
    ] = None,
    label: Annotated[
        str | None, typer.Option("--label", help="The class of every file given.")
    ] = None,
    split: Annotated[
        str | None, typer.Option("--split", help="Enroll from this split of the run's export.")
    ] = None,
    classes: Annotated[
        str | None, typer.Option("--classes", help="With --split: only these classes (a,b).")
    ] = None,
    shots: Annotated[
        int | None, typer.Option("--shots", min=1, help="With --split: media per class.")
    ] = None,
    json_output: JsonOpt = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Embed examples of new (or known) classes into an embedding run's gallery.

    Videos go through the frame sampling and clip settings the run was trained with. The gallery
    is runs/RUN/gallery.parquet; enrolling the same file for the same class again changes nothing.

    Example: `dataprep enroll RUN support/` (support/<class>/<files>),
    `dataprep enroll RUN a.mp4 b.mp4 --label wave`, `dataprep enroll RUN --split train --shots 5`
    """
    from dataprep.errors import WorkspaceNotFound
    from dataprep.train.gallery import enroll as run_enroll

    try:
        ws = open_ws(workspace)
    except WorkspaceNotFound:
        if workspace is not None:
            raise
        ws = None
    names = [c.strip() for c in (classes or "").split(",") if c.strip()] or None
    with progress_bar("enroll", "files") as update:
        result = run_enroll(
            ws,
            run,
            list(support or []),
            label=label,
            split=split,
            classes=names,
            shots=shots,
            progress=update,
        )
    if json_output:
        print_json(result)
        return
    counts = ", ".join(f"{name} {count}" for name, count in result["classes"].items())
    console().print(
        f"enrolled {result['added']} media ({result['unchanged']} already enrolled) in "
        f"{result['seconds']:.1f}s; gallery: {counts}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    console().print(f"gallery: {result['gallery']}", markup=False, highlight=False, soft_wrap=True)
