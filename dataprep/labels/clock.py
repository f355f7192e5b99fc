"""Label Studio video frames and times against the decoder's 0-based ``frame_index``.

Label Studio counts video frames from 1 (its frame 1 is time 0); manifests use the decoder's
0-based ``frame_index``. A :class:`FrameClock` does the mapping: by arithmetic for constant frame
rate media, through the decoder's timestamps for variable frame rate media. The ``raw_*`` methods
do not clamp, so annotations outside the video can be told from annotations inside it.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Any

from dataprep.errors import DataprepError


class ConversionError(DataprepError):
    """A Label Studio result cannot be converted (malformed, outside its media, or a video
    without a frame rate)."""


def finite(value: Any, what: str) -> float:
    """``value`` as a finite float.

    Raises:
        ConversionError: naming ``what`` when it is not a number, NaN or infinite.
    """
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConversionError(f"{what} {value!r} is not a number") from None
    if not math.isfinite(number):
        raise ConversionError(f"{what} {value!r} is not a finite number")
    return number


@dataclass(frozen=True)
class FrameClock:
    """Maps Label Studio video frames and times to the decoder's 0-based ``frame_index``.

    Attributes:
        fps: the frame rate Label Studio was told (the task's ``fps``: the media's probed rate).
        frame_count: frames in the video (decoder count), or None when unknown.
        timestamps_s: for variable frame rate videos, every frame's presentation time in seconds
            from the first frame, in decode order; None for constant frame rate.
    """

    fps: float
    frame_count: int | None = None
    timestamps_s: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if not self.fps or self.fps <= 0 or not math.isfinite(self.fps):
            raise ConversionError(f"frame rate {self.fps!r} is not a positive number")

    @property
    def last_index(self) -> int | None:
        if self.timestamps_s is not None:
            return len(self.timestamps_s) - 1
        return None if self.frame_count is None else self.frame_count - 1

    def _clamp(self, index: int) -> int:
        index = max(index, 0)
        last = self.last_index
        return min(index, last) if last is not None and last >= 0 else index

    def contains(self, index: int) -> bool:
        """Whether decoder frame ``index`` exists (unknown frame counts bound only below)."""
        last = self.last_index
        return index >= 0 and (last is None or index <= last)

    def index_from_time(self, time_s: float) -> int:
        """The decoder frame shown at ``time_s`` (nearest frame start; ties go to the earlier)."""
        return self._clamp(self.raw_index_from_time(time_s))

    def raw_index_from_time(self, time_s: float) -> int:
        """Like :meth:`index_from_time`, but a time before the first or after the last frame
        gives an index outside the video (extrapolated at ``fps``)."""
        if self.timestamps_s is None:
            return int(math.floor(time_s * self.fps + 0.5 - 1e-9))
        stamps = self.timestamps_s
        if not stamps:
            return int(math.floor(time_s * self.fps + 0.5 - 1e-9))
        if time_s < stamps[0]:
            return int(math.floor((time_s - stamps[0]) * self.fps + 0.5 - 1e-9))
        end = self.end_time_of(len(stamps) - 1)
        if time_s >= end:
            return len(stamps) + int(math.floor((time_s - end) * self.fps + 1e-9))
        pos = bisect.bisect_left(stamps, time_s)
        if pos >= len(stamps):
            return len(stamps) - 1
        if pos <= 0:
            return 0
        before, after = stamps[pos - 1], stamps[pos]
        return pos - 1 if time_s - before <= after - time_s else pos

    def index_from_ls_frame(self, ls_frame: int | float, time_s: float | None = None) -> int:
        """Decoder ``frame_index`` of Label Studio frame ``ls_frame`` (1-based), clamped to the
        video.

        Constant frame rate: ``ls_frame - 1``. Variable frame rate: through the timestamps, using
        the result's own ``time`` when given, else ``(ls_frame - 1) / fps`` (the time Label
        Studio's player seeks to for that frame).
        """
        return self._clamp(self.raw_index_from_ls_frame(ls_frame, time_s))

    def raw_index_from_ls_frame(self, ls_frame: int | float, time_s: float | None = None) -> int:
        """Like :meth:`index_from_ls_frame` without clamping: frames outside the video give
        indices below 0 or above :attr:`last_index`."""
        if self.timestamps_s is None:
            return int(round(float(ls_frame))) - 1
        if time_s is None:
            time_s = (float(ls_frame) - 1) / self.fps
        return self.raw_index_from_time(float(time_s))

    def ls_frame_of(self, frame_index: int) -> int:
        """Label Studio's 1-based frame number for decoder ``frame_index`` (the inverse of
        :meth:`index_from_ls_frame`).

        Constant frame rate: ``frame_index + 1``. Variable frame rate: the Label Studio frame
        whose time ``(ls_frame - 1) / fps`` is nearest the frame's timestamp.
        """
        if self.timestamps_s is None:
            return int(frame_index) + 1
        return int(math.floor(self.time_of(frame_index) * self.fps + 0.5)) + 1

    def time_of(self, frame_index: int) -> float:
        """Presentation time in seconds of decoder frame ``frame_index``."""
        if self.timestamps_s is not None:
            return float(self.timestamps_s[self._clamp(frame_index)])
        return frame_index / self.fps

    def raw_time_of(self, frame_index: int) -> float:
        """Like :meth:`time_of`, extrapolated at ``fps`` for indices outside the video."""
        stamps = self.timestamps_s
        if stamps is None or not stamps:
            return frame_index / self.fps
        if frame_index < 0:
            return stamps[0] + frame_index / self.fps
        if frame_index >= len(stamps):
            return stamps[-1] + (frame_index - len(stamps) + 1) / self.fps
        return float(stamps[frame_index])

    def end_time_of(self, frame_index: int) -> float:
        """When decoder frame ``frame_index`` stops being shown."""
        if self.timestamps_s is not None:
            nxt = frame_index + 1
            if nxt < len(self.timestamps_s):
                return float(self.timestamps_s[nxt])
            return float(self.timestamps_s[self._clamp(frame_index)]) + 1.0 / self.fps
        return (frame_index + 1) / self.fps

    def span(self) -> str:
        """The video's Label Studio frames, for messages: ``frames 1..N``."""
        last = self.last_index
        return f"frames 1..{last + 1}" if last is not None else "frames from 1"
