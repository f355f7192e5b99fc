"""Where per-item work runs: this machine (``local``, the default) or a Ray cluster (``ray``).

Stages keep their per-item work in top-level, picklable *unit functions* (``inspect_file``,
``extract_media``, ``_chunk_sums``...) that take plain inputs and return small results (rows,
paths, integer sums; never decoded arrays). An engine maps such a function over a list of items
and yields the results **in input order**, so the driver commits exactly as it does with the
local pool and the outputs do not depend on the engine::

    from dataprep import engine

    spec = engine.resolve(workspace.config, kind="ray")           # [engine] + --engine
    with engine.open_engine(spec, jobs=jobs, reads=[first_media], writes=[frames_dir]) as ex:
        for result in ex.map(extract_media, jobs_list, rows_key="rows"):
            ...commit result...

``local`` never imports Ray. ``ray`` connects to ``[engine] address`` (or starts a Ray instance
on this machine), checks every node first (imports dataprep, reads ``reads``, writes into
``writes``; a node that cannot is named) and runs each item as a Ray task with a bounded number
in flight. With ``rows_key`` the worker writes the rows of its result to a staged Parquet file
on the shared file system and sends back only its path (:class:`StagedRows`); ``rows_key`` is
a key of a dict result, an index into a tuple result, or ``WHOLE_RESULT`` (the result is the
list of rows). The staging folder is removed when the ``open_engine`` block ends: a driver
that commits later takes the files over (:class:`dataprep.manifest_merge.PartStore`) and merges
them into its manifest without reading the rows (:func:`dataprep.manifest_merge.merge_manifest`);
:func:`rows_of` reads one result's rows back where a caller needs them in memory.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from dataprep.engine.base import (
    ENGINE_CHOICES,
    WHOLE_RESULT,
    EngineError,
    EngineSpec,
    StagedRows,
    rows_of,
)

__all__ = [
    "ENGINE_CHOICES",
    "WHOLE_RESULT",
    "EngineError",
    "EngineSpec",
    "LocalExecutor",
    "StagedRows",
    "open_engine",
    "resolve",
    "rows_of",
    "sample",
]


def resolve(config=None, *, kind: str | None = None, address: str | None = None) -> EngineSpec:
    """``[engine]`` of ``dataprep.toml`` with ``--engine`` / ``--ray-address`` applied.

    Raises:
        UsageError / ConfigError: an engine kind that is neither ``local`` nor ``ray``.
    """
    from dataclasses import asdict

    from dataprep.config import Config, effective

    merged = effective(
        config or Config(),
        "engine",
        {"kind": kind, "address": address},
        flags={"kind": "--engine", "address": "--ray-address"},
    )
    return EngineSpec(
        **{key: value for key, value in merged.model_dump().items() if key in asdict(EngineSpec())}
    )


def sample(paths: Iterable[str | Path], k: int = 8) -> list[str]:
    """Up to ``k`` of ``paths`` spread evenly (first and last included): what the node check
    reads, so that checking stays cheap for a million media."""
    paths = [str(p) for p in paths]
    if len(paths) <= k:
        return paths
    step = (len(paths) - 1) / (k - 1)
    return sorted({paths[round(i * step)] for i in range(k)})


class LocalExecutor:
    """Runs items on this machine through :func:`dataprep.parallel.map_items`."""

    kind = "local"

    def __init__(self, jobs: int | None):
        self.jobs = jobs

    def map(
        self,
        func: Callable,
        items: Iterable,
        *,
        chunksize: int = 1,
        rows_key: str | int | None = None,
        jobs: int | None = None,
    ) -> Iterator:
        """``func`` over ``items`` in input order (``rows_key`` is accepted and ignored)."""
        from dataprep.parallel import map_items

        del rows_key
        yield from map_items(func, list(items), jobs or self.jobs, chunksize=chunksize)


@contextlib.contextmanager
def open_engine(
    spec: EngineSpec | None = None,
    *,
    jobs: int | None = None,
    reads: Iterable[str | Path] = (),
    writes: Iterable[str | Path] = (),
    staging_dir: str | Path | None = None,
):
    """An executor for one stage run (see the module docstring).

    Args:
        spec: the engine; None is local.
        jobs: local worker processes (the local engine only).
        reads: paths every Ray node must be able to read (checked before any work is sent).
        writes: folders every Ray node must be able to write into (checked likewise).
        staging_dir: where workers stage rows for ``rows_key`` (default: the first of
            ``writes``, under ``.staging``); removed at the end.

    Raises:
        EngineError: Ray is not installed, the cluster cannot be reached, or a node fails a check.
    """
    spec = spec or EngineSpec()
    if spec.kind == "local":
        yield LocalExecutor(jobs)
        return
    from dataprep.engine.ray_engine import RayExecutor

    with RayExecutor.connect(spec) as executor:
        writes = [str(p) for p in writes]
        executor.check_nodes(reads=[str(p) for p in reads], writes=writes)
        staging = staging_dir or (Path(writes[0]) / ".staging" if writes else None)
        with executor.staging(staging):
            yield executor


def map_items(
    func: Callable,
    items: list,
    jobs: int | None,
    *,
    engine: EngineSpec | None = None,
    chunksize: int = 1,
) -> Iterator:
    """One-call form of :func:`open_engine` + ``map`` (no path checks, no staging)."""
    with open_engine(engine, jobs=jobs) as executor:
        yield from executor.map(func, items, chunksize=chunksize)
