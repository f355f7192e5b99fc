"""The one place files and settings are hashed."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

CHUNK = 1 << 20


def file_sha256(path: Path | str, *, head: int = 0) -> tuple[str, int, bytes]:
    """SHA-256 hex digest of a file's bytes, its size, and its first ``head`` bytes."""
    digest = hashlib.sha256()
    size = 0
    first = b""
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            if size == 0 and head:
                first = chunk[:head]
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size, first


def file_fingerprint(path: Path | str) -> str | None:
    """SHA-256 (16 hex digits) of a file's bytes, or None when it does not exist."""
    try:
        return file_sha256(path)[0][:16]
    except FileNotFoundError:
        return None


def settings_fingerprint(settings: Any, length: int = 16) -> str:
    """A stable fingerprint of a JSON-able settings value (keys sorted)."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]
