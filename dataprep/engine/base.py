"""The engine's shared types: its settings, its error, and rows a worker staged on disk.

Apart from :mod:`dataprep.engine` so that the Ray executor and the package both import them
without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dataprep.errors import DataprepError

ENGINE_CHOICES: tuple[str, ...] = ("local", "ray")
WHOLE_RESULT = "*"  # rows_key of a unit function whose whole result is a list of rows


class EngineError(DataprepError):
    """The Ray engine cannot run: Ray missing, cluster unreachable, a node failing a check,
    or a worker lost more often than Ray retries."""


@dataclass(frozen=True)
class EngineSpec:
    """The effective ``[engine]`` settings of one command."""

    kind: str = "local"
    address: str = ""
    num_cpus: float = 1.0
    memory_mb: int = 0
    max_in_flight: int = 0
    ship_package: bool = False


@dataclass(frozen=True)
class StagedRows:
    """Rows a Ray worker wrote to ``path`` (Parquet) instead of returning them."""

    path: str
    count: int

    def load(self) -> list[dict[str, Any]]:
        """The rows, read back (plain Python values, as the unit function returned them)."""
        import pyarrow.parquet as pq

        return pq.read_table(self.path).to_pylist()


def rows_of(value) -> list[dict[str, Any]]:
    """The rows of a result field, whether returned in place or staged by the Ray engine."""
    return value.load() if isinstance(value, StagedRows) else value
