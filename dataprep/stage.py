"""The one skeleton every writing stage follows.

::

    with run_stage(workspace, "frames", on_error=on_error) as run:   # lock + "running" marker
        plan = ...                                                    # what is left to do
        for result in work(plan):                                     # per item
            if result failed:
                run.item_failed(item_id, reason)   # recorded; raises ItemFailed under "fail"
            ...commit the item...
            run.checkpoint(save_manifests)         # when due: a kill loses the items since
        save manifests
        run.finish(settings=..., counts=...)      # stage record, marker removed

* **One per-item error policy.** ``on_error="skip"`` records a failed item (file, media, shard)
  and goes on; ``"fail"`` stops at the first one, after the items committed so far were saved by
  the stage (the caller's ``finally`` or checkpoint). The same words on every command
  (``--on-error fail|skip``); the policy is written into the stage record.
* **Checkpoints cost a bounded share.** One is due 5 s after the last, or later when saving took
  long: never sooner than ``SAVE_SHARE_FACTOR`` times the last save's duration after it, so
  rewriting a manifest of millions of rows takes at most about a tenth of the stage's time,
  whatever its size (a 30 s save: a checkpoint every 5 minutes). Setting
  ``DATAPREP_CHECKPOINT_SECONDS`` fixes the interval instead (0: after every item).
* **Interrupted is visible.** Entering the context writes ``.dataprep/stages/<stage>.running``
  (pid, start time). :meth:`StageRun.finish` writes the record and removes the marker; a run that
  raised after it changed something, or was killed, leaves the marker, and ``dataprep info``
  reports the stage as interrupted until a rerun finishes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from dataprep.atomic import atomic_write_text
from dataprep.errors import DataprepError, UsageError
from dataprep.stages import interrupted, record_stage, running_marker  # noqa: F401
from dataprep.workspace import Workspace

OnError = Literal["fail", "skip"]
ON_ERROR_CHOICES: tuple[str, ...] = ("fail", "skip")
ENV_CHECKPOINT = "DATAPREP_CHECKPOINT_SECONDS"


class ItemFailed(DataprepError):
    """One item failed under ``--on-error fail``; the items before it are kept."""


SAVE_SHARE_FACTOR = 9.0  # wait 9x the last save's time: saves take at most ~10% of the stage


def checkpoint_seconds() -> float:
    """Seconds between checkpoints of a long stage (env ``DATAPREP_CHECKPOINT_SECONDS``, 5)."""
    return float(os.environ.get(ENV_CHECKPOINT, "5"))


def checkpoint_adaptive() -> bool:
    """Whether the interval grows with the time saves take (unless the env var fixes it)."""
    return ENV_CHECKPOINT not in os.environ


def check_on_error(value: str) -> OnError:
    """Validates an ``--on-error`` value."""
    if value not in ON_ERROR_CHOICES:
        raise UsageError(f"--on-error {value!r} is not allowed; use fail or skip")
    return value  # type: ignore[return-value]


class StageReport:
    """Shared by the reports of stages with per-media failures (a dataclass with ``failed`` and
    ``seconds`` fields): ``ok`` when nothing failed; ``to_dict`` with the seconds rounded."""

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)  # type: ignore[call-overload] - subclasses are dataclasses
        data["seconds"] = round(self.seconds, 3)
        return data


@dataclass
class StageRun:
    """A stage in progress: its error policy, failures, checkpoint clock and record."""

    workspace: Workspace
    stage: str
    on_error: OnError = "skip"
    failures: list[dict[str, Any]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    checkpoint_s: float = field(default_factory=checkpoint_seconds)
    adaptive: bool = field(default_factory=checkpoint_adaptive)
    changed: bool = False
    finished: bool = False
    clock: Callable[[], float] = time.monotonic
    _last_checkpoint: float | None = None
    _last_save_s: float = 0.0

    def __post_init__(self) -> None:
        if self._last_checkpoint is None:
            self._last_checkpoint = self.clock()

    def mark_changed(self) -> None:
        """Notes that the workspace was modified (an interruption from now on is reported)."""
        self.changed = True

    def item_failed(self, item: str, reason: str, **extra: Any) -> None:
        """Records that ``item`` failed with ``reason``.

        Raises:
            ItemFailed: under ``on_error="fail"``, naming the item, after recording it.
        """
        self.failures.append({"item": item, "error": reason, **extra})
        if self.on_error == "fail":
            raise ItemFailed(
                f"{item}: {reason}; fix or remove it, or pass --on-error skip to record it "
                "and go on (the items before it are kept)"
            )

    @property
    def checkpoint_interval(self) -> float:
        """Seconds from one checkpoint to the next: the configured interval, or (``adaptive``)
        longer when the last save took long (``SAVE_SHARE_FACTOR`` times its duration)."""
        if not self.adaptive:
            return self.checkpoint_s
        return max(self.checkpoint_s, SAVE_SHARE_FACTOR * self._last_save_s)

    def checkpoint_due(self) -> bool:
        """True when the last checkpoint is older than :attr:`checkpoint_interval`."""
        return self.clock() - self._last_checkpoint >= self.checkpoint_interval

    def checkpoint(self, save: Callable[[], Any]) -> bool:
        """Calls ``save`` when a checkpoint is due, timing it; True when it did."""
        if not self.checkpoint_due():
            return False
        began = self.clock()
        save()
        self._last_checkpoint = self.clock()
        self._last_save_s = self._last_checkpoint - began
        return True

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started

    def finish(
        self,
        *,
        settings: dict[str, Any],
        counts: dict[str, Any],
        inputs: tuple[str, ...] | None = None,
    ) -> dict[str, Any]:
        """Writes the stage record (with the error policy) and clears the running marker."""
        record = record_stage(
            self.workspace,
            self.stage,
            settings={**settings, "on_error": self.on_error},
            counts=counts,
            failures=self.failures,
            inputs=inputs,
        )
        self.finished = True
        with contextlib.suppress(FileNotFoundError):
            running_marker(self.workspace, self.stage).unlink()
        return record


@contextlib.contextmanager
def run_stage(
    workspace: Workspace, stage: str, *, on_error: str = "skip", lock: bool = True
) -> Iterator[StageRun]:
    """Runs the body as stage ``stage`` under the workspace lock (see the module docstring)."""
    run = StageRun(workspace, stage, check_on_error(on_error))
    with workspace.lock() if lock else contextlib.nullcontext():
        marker = running_marker(workspace, stage)
        previous = marker.exists()
        started_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        atomic_write_text(
            marker, json.dumps({"stage": stage, "pid": os.getpid(), "started_at": started_at})
        )
        try:
            yield run
        finally:
            if not run.finished and not run.changed and not previous:
                with contextlib.suppress(FileNotFoundError):
                    marker.unlink()
