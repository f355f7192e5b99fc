"""The settings of the ``frames`` stage: which frames, what size, which encoding.

:func:`resolve_settings` applies a command's options over ``[frames]`` of ``dataprep.toml`` and
validates them together with :func:`dataprep.config.effective` (the one place option values are
checked); :class:`FrameSettings` is the result, with the fingerprint that tells whether frames
on disk were made with the same settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dataprep.config import CONFIG_NAME, effective
from dataprep.errors import ConfigError, UsageError
from dataprep.hashing import settings_fingerprint
from dataprep.imageops import SizeSpec, parse_size_spec
from dataprep.sampling import SamplingSpec
from dataprep.workspace import Workspace

FINGERPRINT_VERSION = 1  # bump when the same settings would give different pixels
MODE_PARAMETERS = ("fps", "every", "count")


@dataclass(frozen=True)
class FrameSettings:
    """Everything that decides which pixels end up in the frame files."""

    sampling: SamplingSpec
    size: SizeSpec | None
    format: str
    quality: int

    def describe(self) -> dict[str, Any]:
        return {
            "sampling": self.sampling.describe(),
            "size": self.size.describe() if self.size else "original",
            "format": self.format,
            "quality": self.quality,
            "version": FINGERPRINT_VERSION,
        }

    @property
    def fingerprint(self) -> str:
        return settings_fingerprint(self.describe())

    def label(self) -> str:
        size = self.size.describe() if self.size else "original size"
        return f"{self.sampling.label()}, {size}, {self.format} q{self.quality}"


def resolve_settings(
    workspace: Workspace,
    *,
    sampling: str | None = None,
    fps: float | None = None,
    every: int | None = None,
    count: int | None = None,
    size: str | None = None,
    resize: str | None = None,
    format: str | None = None,  # noqa: A002 - the option's name
    quality: int | None = None,
) -> FrameSettings:
    """Merges explicit options over ``[frames]`` of ``dataprep.toml``.

    A mode parameter given without a mode picks that mode (``fps=2`` means ``sampling="fps"``).

    Raises:
        UsageError: for conflicting or bad options, naming the ``--option``; a
            :class:`~dataprep.errors.ConfigError` naming the file, section and key when the bad
            value came from ``dataprep.toml``.
    """
    fmt = format.lower() if isinstance(format, str) else format
    overrides = {
        "sampling": _sampling_mode(sampling, fps=fps, every=every, count=count),
        "fps": fps,
        "every": every,
        "count": count,
        "size": size,
        "resize": resize,
        "format": "jpg" if fmt == "jpeg" else fmt,
        "quality": quality,
    }
    config = effective(workspace.config, "frames", overrides)
    # Keep only the chosen mode's parameter: other config keys must not change fingerprints.
    mode = config.sampling
    parameter = {mode: getattr(config, mode)} if mode in MODE_PARAMETERS else {}
    spec = SamplingSpec(mode, **parameter)
    size_spec = _size_spec(config.size, config.resize, given=size is not None or bool(resize))
    return FrameSettings(spec, size_spec, config.format, config.quality)


def _sampling_mode(sampling: str | None, **parameters: Any) -> str | None:
    """The sampling mode the options ask for, or None to use ``[frames] sampling``."""
    given = [name for name, value in parameters.items() if value is not None]
    if sampling is None:
        if len(given) > 1:
            raise UsageError(f"choose one of --{' or --'.join(given)}")
        return given[0] if given else None
    if given and given != [sampling]:
        raise UsageError(f"--{given[0]} does not go with sampling mode {sampling!r}")
    return sampling


def _size_spec(size: str, resize: str, *, given: bool) -> SizeSpec | None:
    """``size`` and ``resize`` together (a WxH box needs a box mode); a conflict between two
    values of the file is blamed on the file, not on options nobody passed."""
    try:
        return parse_size_spec(size, resize)
    except UsageError as exc:
        if given:
            raise
        raise ConfigError(
            f"{CONFIG_NAME}: [frames] size = {size!r} with resize = {resize!r}: a WxH size needs "
            "resize fit, crop or stretch; fix it in the file or override it on the command line"
        ) from exc
