"""A small unit function for engine tests: rows from one file, computed where the task runs."""

from __future__ import annotations

import hashlib
import os
import socket
import time
from pathlib import Path
from typing import Any

CHUNK = 4096


def chunk_digests(
    path: str, delay_s: float = 0.0, started_dir: str | None = None
) -> dict[str, Any]:
    """SHA-256 of each 4 KiB chunk of ``path`` as rows, with the host and pid that read it.

    Args:
        path: the file to read.
        delay_s: seconds to sleep first (keeps a task in flight long enough to kill its worker).
        started_dir: when given, an empty file ``<pid>-<ns>`` is created there on start.
    """
    if started_dir:
        (Path(started_dir) / f"{os.getpid()}-{time.time_ns()}").touch()
    time.sleep(delay_s)
    rows = []
    with open(path, "rb") as handle:
        for index, block in enumerate(iter(lambda: handle.read(CHUNK), b"")):
            digest = hashlib.sha256(block).hexdigest()
            rows.append({"chunk": index, "size": len(block), "sha256": digest})
    return {"path": path, "host": socket.gethostname(), "pid": os.getpid(), "rows": rows}
