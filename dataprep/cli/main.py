"""The ``dataprep`` console script: the root Typer app and its command modules."""

from __future__ import annotations

import importlib
from typing import Annotated

import typer

from dataprep import __version__
from dataprep.cli.common import WorkspaceOpt, flush_stdout, protect_stdout, set_global

app = typer.Typer(
    name="dataprep",
    help="From raw videos and images to labelled, normalized, augmented training data "
    "and a trained baseline model.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)

# One module per command group; each has ``register(app)``. Order is the help's order.
COMMAND_MODULES = [
    "dataprep.cli.init_cmd",
    "dataprep.cli.ingest_cmd",
    "dataprep.cli.info_cmd",
    "dataprep.cli.frames_cmd",
    "dataprep.cli.stats_cmd",
    "dataprep.cli.augment_cmd",
    "dataprep.cli.labels_cmd",
    "dataprep.cli.split_cmd",
    "dataprep.cli.audit_cmd",
    "dataprep.cli.export_cmd",
    "dataprep.cli.train_cmd",
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dataprep {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """dataprep: prepare video and image datasets for deep learning."""
    set_global(debug=debug, quiet=quiet, workspace=workspace)


for _module in COMMAND_MODULES:
    importlib.import_module(_module).register(app)


def main() -> None:
    """The console script: stdout is made safe against a closed pipe first, so that
    ``dataprep export ... | head -1`` keeps the exit code of the work, for every command."""
    protect_stdout()
    try:
        app()
    finally:
        flush_stdout()


if __name__ == "__main__":
    main()
