"""``--engine`` and ``--ray-address``: where a stage's per-item work runs (docs/scaling.md)."""

from __future__ import annotations

from typing import Annotated

import typer

EngineOpt = Annotated[
    str | None,
    typer.Option(
        "--engine",
        help="local (this machine, default) or ray (a Ray cluster; pip install 'dataprep[ray]'). "
        "Default: [engine] kind of dataprep.toml.",
        show_default=False,
    ),
]
RayAddressOpt = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        help="Ray cluster to use with --engine ray: auto, ray://HOST:10001, or empty to start "
        "Ray here. Default: [engine] address.",
        show_default=False,
    ),
]


def engine_spec(workspace, engine: str | None, ray_address: str | None):
    """The effective engine of a command: ``[engine]`` with the options applied."""
    from dataprep.engine import resolve

    return resolve(workspace.config, kind=engine, address=ray_address)
