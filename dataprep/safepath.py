"""Paths built from data (class names, task data, export entries) never escape their root."""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

from dataprep.errors import UsageError


def class_name_problem(name: object) -> str | None:
    """Why ``name`` cannot be a class name (it becomes a folder name), or None when it can."""
    if not isinstance(name, str):
        return "must be text"
    if not name.strip():
        return "must not be empty"
    if name in (".", ".."):
        return "must not be '.' or '..'"
    if "/" in name or "\\" in name or (os.altsep and os.altsep in name):
        return "must not contain a path separator"
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in name):
        return "must not contain control characters"
    return None


def check_class_name(name: object, where: str) -> str:
    """Returns ``name`` when it is a valid class name.

    Raises:
        UsageError: naming ``where`` (a file, option or task) and what is wrong.
    """
    problem = class_name_problem(name)
    if problem:
        raise UsageError(f"{where}: class name {name!r} {problem}; rename the class")
    return name  # type: ignore[return-value]


def inside(root: Path, *parts: str) -> Path:
    """``root / parts...``, refused when the result (symlinks resolved) leaves ``root``.

    Raises:
        UsageError: naming the offending path.
    """
    base = Path(root).resolve()
    target = base.joinpath(*parts).resolve()
    if target != base and base not in target.parents:
        raise UsageError(
            f"{Path(root).joinpath(*parts)}: leaves its folder {root}; refusing to write there"
        )
    return target
