"""Benchmark runner: discovers ``benchmarks/bench_*.py``, prints a table and writes JSON.

Each module exposes ``run(workdir: Path, quick: bool) -> list[dict]`` whose rows have
``benchmark, measure, value, unit, limit, limit_value, ratio, notes``. Figures are ratios against
a limit or a peer measured in the same run on the same machine; absolute numbers are for context.

Usage: ``python3 benchmarks/run.py [--quick] [--only ingest,frames] [--out FILE]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the bench modules share benchmarks/common.py


def _modules(only: set[str] | None):
    for path in sorted(HERE.glob("bench_*.py")):
        name = path.stem.removeprefix("bench_")
        if only and name not in only:
            continue
        spec = importlib.util.spec_from_file_location(f"benchmarks.{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield name, module


def machine() -> dict:
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def print_table(rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        "benchmark",
        "measure",
        "value",
        "unit",
        "limit / peer",
        "limit value",
        "ratio",
        "notes",
        title="dataprep benchmarks",
    )
    for row in rows:
        table.add_row(
            row["benchmark"],
            row["measure"],
            _fmt(row.get("value")),
            row.get("unit", ""),
            row.get("limit") or "-",
            _fmt(row.get("limit_value")),
            _fmt(row.get("ratio")),
            row.get("notes", ""),
        )
    Console(width=200).print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small inputs (a smoke run)")
    parser.add_argument("--only", help="comma-separated benchmark names (e.g. ingest,frames)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "latest.json")
    parser.add_argument("--workdir", type=Path, help="where inputs are generated (default: temp)")
    args = parser.parse_args(argv)
    only = set(args.only.split(",")) if args.only else None
    rows: list[dict] = []
    failures = 0
    with tempfile.TemporaryDirectory(prefix="dataprep-bench-", dir=args.workdir) as tmp:
        for name, module in _modules(only):
            started = time.monotonic()
            print(f"running {name} ...", file=sys.stderr, flush=True)
            try:
                workdir = Path(tmp) / name
                workdir.mkdir()
                rows.extend(module.run(workdir, args.quick))
            except Exception:  # noqa: BLE001 - report and go on with the other benchmarks
                failures += 1
                traceback.print_exc()
                rows.append(
                    {
                        "benchmark": name,
                        "measure": "FAILED",
                        "value": None,
                        "unit": "",
                        "limit": None,
                        "limit_value": None,
                        "ratio": None,
                        "notes": "see the traceback above",
                    }
                )
            print(f"  {name}: {time.monotonic() - started:.1f}s", file=sys.stderr)
    print_table(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"machine": machine(), "quick": args.quick, "rows": rows}, indent=2, default=str)
    )
    print(f"wrote {args.out}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
