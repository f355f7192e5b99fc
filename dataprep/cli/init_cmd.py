"""``dataprep init``: create a workspace."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dataprep.cli.common import handle_errors


@handle_errors
def init(
    directory: Annotated[Path, typer.Argument(help="Folder for the workspace.")] = Path("."),
    classes: Annotated[
        str | None, typer.Option("--classes", help="Comma-separated class names, e.g. left,right.")
    ] = None,
    label_type: Annotated[
        str, typer.Option("--label-type", help="classification, segments or boxes.")
    ] = "classification",
    name: Annotated[str | None, typer.Option("--name", help="Project name.")] = None,
    exist_ok: Annotated[bool, typer.Option("--exist-ok", help="Do nothing if it exists.")] = False,
) -> None:
    """Create a workspace: dataprep.toml and its folders.

    Example: `dataprep init gestures --classes left,right,up,down`
    """
    from dataprep.safepath import check_class_name
    from dataprep.workspace import init_workspace

    class_list = [c.strip() for c in classes.split(",") if c.strip()] if classes else []
    for class_name in class_list:  # before anything is created
        check_class_name(class_name, "--classes")
    workspace = init_workspace(
        directory, classes=class_list, label_type=label_type, name=name, exist_ok=exist_ok
    )
    typer.echo(
        f"workspace ready: {workspace.root} (edit {workspace.config_path.name} to configure)"
    )


def register(app: typer.Typer) -> None:
    app.command("init")(init)
