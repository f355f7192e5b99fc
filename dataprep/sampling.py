"""Which frames to take from a video: pure functions over presentation timestamps.

Nothing here decodes anything. The decoder (:mod:`dataprep.frames`) demuxes a video once to learn
every frame's presentation timestamp and whether it is a key frame, asks :func:`select_frames`
which frame indices to keep, and then decodes only what those frames need.

Frame indices count frames in presentation order from 0 (the "decoded stream" order), and
timestamps are seconds from the first presented frame. Every mode works on the real timestamps,
so variable frame rate videos are sampled by time, never by assuming a constant rate.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from dataprep.errors import UsageError

Sampling = Literal["fps", "every", "count", "keyframes", "all"]
SAMPLING_MODES: tuple[str, ...] = ("fps", "every", "count", "keyframes", "all")
EPSILON_S = 1e-6  # timestamps closer than this are the same instant (rounding of time bases)


@dataclass(frozen=True)
class SamplingSpec:
    """A sampling mode and the one parameter it uses (fps, every or count)."""

    mode: str
    fps: float | None = None
    every: int | None = None
    count: int | None = None

    def __post_init__(self) -> None:
        # Normalize types so that fps=5 and fps=5.0 are the same settings (same fingerprint).
        for name, kind in (("fps", float), ("every", int), ("count", int)):
            value = getattr(self, name)
            if value is not None:
                try:
                    converted = kind(value)
                except (TypeError, ValueError):
                    raise UsageError(f"--{name} must be a number, not {value!r}") from None
                if converted != value:
                    raise UsageError(f"--{name} must be a whole number, not {value!r}")
                object.__setattr__(self, name, converted)
        if self.mode not in SAMPLING_MODES:
            raise UsageError(
                f"sampling {self.mode!r} is not known; use one of {', '.join(SAMPLING_MODES)}"
            )
        if self.mode == "fps" and not (self.fps and self.fps > 0):
            raise UsageError(f"--fps must be a positive number, not {self.fps!r}")
        if self.mode == "every" and not (self.every and self.every >= 1):
            raise UsageError(f"--every must be a whole number >= 1, not {self.every!r}")
        if self.mode == "count" and not (self.count and self.count >= 1):
            raise UsageError(f"--count must be a whole number >= 1, not {self.count!r}")

    def describe(self) -> dict:
        """The settings that matter for this mode (what the fingerprint hashes)."""
        parameter = {"fps": self.fps, "every": self.every, "count": self.count}.get(self.mode)
        return {"mode": self.mode, "value": parameter}

    def label(self) -> str:
        """Human form, e.g. ``fps=5`` or ``all``."""
        value = self.describe()["value"]
        return self.mode if value is None else f"{self.mode}={value:g}"


def select_frames(
    timestamps_s: Sequence[float],
    spec: SamplingSpec,
    *,
    keyframes: Sequence[bool] | None = None,
    end_s: float | None = None,
) -> list[int]:
    """Chooses frame indices to extract.

    Args:
        timestamps_s: presentation time of every frame, ascending (seconds from the first frame).
        spec: the sampling mode and its parameter.
        keyframes: whether each frame is a key frame (needed for ``keyframes`` mode).
        end_s: when the last frame stops being shown (default: last timestamp plus the median
            frame interval).

    Returns:
        Sorted, distinct frame indices.

    Rules:
        * ``all``: every frame.
        * ``every``: frames 0, N, 2N, ... of the decoded stream.
        * ``fps``: for each instant ``k / F`` (k = 0, 1, ...) before ``end_s``, the frame shown at
          that instant (the last one whose timestamp is not after it); a frame shown at several
          instants is taken once, so the output never holds duplicates.
        * ``count``: ``min(K, frames)`` frames: the frames shown at the centres of K equal time
          slices of ``[0, end_s)``; when a long-lasting frame covers two centres (variable frame
          rate), the later pick moves to the next unused frame so that exactly K distinct
          frames come out.
        * ``keyframes``: the key frames.
    """
    total = len(timestamps_s)
    if total == 0:
        return []
    if spec.mode == "all":
        return list(range(total))
    if spec.mode == "every":
        return list(range(0, total, int(spec.every)))
    if spec.mode == "keyframes":
        if keyframes is None or len(keyframes) != total:
            raise ValueError("keyframes mode needs one key-frame flag per frame")
        return [i for i, key in enumerate(keyframes) if key]
    end_s = video_end_s(timestamps_s) if end_s is None else end_s
    if spec.mode == "fps":
        step = 1.0 / float(spec.fps)
        chosen: list[int] = []
        k = 0
        while True:
            instant = k * step
            if instant >= end_s - EPSILON_S:
                break
            index = shown_at(timestamps_s, instant)
            if not chosen or index != chosen[-1]:
                chosen.append(index)
            k += 1
        return chosen
    if spec.mode == "count":
        wanted = min(int(spec.count), total)
        slice_s = end_s / wanted
        picks = [shown_at(timestamps_s, (k + 0.5) * slice_s) for k in range(wanted)]
        return _distinct(picks, total)
    raise ValueError(f"unknown sampling mode {spec.mode!r}")


def shown_at(timestamps_s: Sequence[float], instant_s: float) -> int:
    """Index of the frame on screen at ``instant_s``: the last one with timestamp <= instant."""
    index = bisect.bisect_right(timestamps_s, instant_s + EPSILON_S) - 1
    return max(index, 0)


def video_end_s(timestamps_s: Sequence[float], last_duration_s: float | None = None) -> float:
    """When the last frame stops being shown: its timestamp plus its duration.

    Without a known duration the median interval between frames stands in (0 for one frame,
    so a one-frame video lasts an instant and still yields its frame).
    """
    if not timestamps_s:
        return 0.0
    if last_duration_s is None or last_duration_s <= 0:
        deltas = sorted(b - a for a, b in zip(timestamps_s, timestamps_s[1:], strict=False))
        last_duration_s = deltas[len(deltas) // 2] if deltas else 0.0
    return float(timestamps_s[-1]) + float(last_duration_s)


def expected_count(
    spec: SamplingSpec, frame_count: int | None, duration_s: float | None
) -> int | None:
    """An estimate of how many frames ``spec`` takes from a video (for progress bars)."""
    if not frame_count:
        return None
    if spec.mode == "all":
        return frame_count
    if spec.mode == "every":
        return -(-frame_count // int(spec.every))
    if spec.mode == "count":
        return min(int(spec.count), frame_count)
    if spec.mode == "fps" and duration_s:
        return min(frame_count, max(1, int(duration_s * float(spec.fps) + 0.999)))
    return None


def _distinct(picks: list[int], total: int) -> list[int]:
    """Makes an ascending pick list strictly increasing inside ``[0, total)``."""
    result = list(picks)
    for i in range(1, len(result)):
        if result[i] <= result[i - 1]:
            result[i] = result[i - 1] + 1
    # Pushed past the end: pull the tail back (there are at least len(result) frames).
    last_allowed = total - 1
    for i in range(len(result) - 1, -1, -1):
        if result[i] > last_allowed:
            result[i] = last_allowed
        last_allowed = result[i] - 1
    return result
