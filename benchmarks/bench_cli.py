"""Start-up time of `dataprep --help` against the 1.5 s limit and a bare interpreter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from common import row, timed

LIMIT_S = 1.5


def run(workdir: Path, quick: bool) -> list[dict]:
    repeat = 3 if quick else 7
    help_s = timed(
        lambda: subprocess.run(
            [sys.executable, "-m", "dataprep.cli.main", "--help"], check=True, capture_output=True
        ),
        repeat=repeat,
    )
    bare_s = timed(
        lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), repeat=repeat
    )
    return [
        row(
            "cli",
            f"dataprep --help (best of {repeat})",
            help_s,
            "s",
            limit="limit",
            limit_value=LIMIT_S,
            ratio=help_s / LIMIT_S,
            notes=f"bare python start-up {bare_s:.3f}s; TensorFlow is not imported",
        ),
    ]
