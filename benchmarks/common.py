"""Helpers shared by the benchmark modules."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path


def timed(func: Callable[[], object], repeat: int = 1) -> float:
    """Best wall time of ``repeat`` calls, in seconds."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - started)
    return best


def row(
    benchmark: str,
    measure: str,
    value: float | None,
    unit: str,
    *,
    limit: str | None = None,
    limit_value: float | None = None,
    ratio: float | None = None,
    notes: str = "",
) -> dict:
    """One result row in the runner's format."""
    return {
        "benchmark": benchmark,
        "measure": measure,
        "value": value,
        "unit": unit,
        "limit": limit,
        "limit_value": limit_value,
        "ratio": ratio,
        "notes": notes,
    }


def have_ffmpeg() -> bool:
    return shutil.which("ffmpeg") is not None


def python_peak_rss_mb(code: str, env: dict | None = None) -> tuple[float, float]:
    """Peak memory (MB) and seconds of ``python -c code`` measured in a fresh interpreter."""
    wrapper = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        f"subprocess.run([sys.executable, '-c', {code!r}], check=True)\n"
        "dt = time.perf_counter() - t\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0, dt)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", wrapper], check=True, capture_output=True, text=True, env=env
    ).stdout.split()
    return float(out[-2]), float(out[-1])


def dir_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())
