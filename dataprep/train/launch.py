"""``train-baseline --workers N``: N worker processes of :mod:`dataprep.train.distributed` on
this machine, with ``TF_CONFIG`` pointing at free localhost ports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

from dataprep.errors import DataprepError, UsageError

ERROR_PREFIX = "dataprep worker error: "  # how a worker reports its error to the launcher


def free_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on localhost."""
    import socket

    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def launch_local(
    workspace_root: Path,
    options,
    workers: int,
    *,
    run_name: str,
    runs_dir: Path | None = None,
    timeout_s: float | None = None,
    log=print,
    shuffle: bool = True,
) -> Path:
    """Runs ``workers`` worker processes on this machine and waits for them.

    The chief's lines go to ``log``; a failing worker stops the others.

    Returns:
        The run folder.

    Raises:
        DataprepError: naming the worker that failed and the last line it wrote.
    """
    if workers < 1:
        raise UsageError(f"--workers {workers}: use 1 or more")
    ports = free_ports(workers)
    hosts = [f"localhost:{port}" for port in ports]
    job = {
        "workspace": str(workspace_root),
        "options": asdict(options),
        "run_name": run_name,
        "runs_dir": str(runs_dir) if runs_dir else None,
        "shuffle": shuffle,
    }
    procs = []
    for index in range(workers):
        env = dict(os.environ)
        env["TF_CONFIG"] = json.dumps(
            {"cluster": {"worker": hosts}, "task": {"type": "worker", "index": index}}
        )
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "dataprep.train.distributed", json.dumps(job)],
                env=env,
                stdout=subprocess.PIPE if index == 0 else subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    return _wait(procs, log, timeout_s, Path(runs_dir or Path(workspace_root) / "runs") / run_name)


def _wait(procs, log, timeout_s, run_dir: Path) -> Path:
    import threading

    errors: dict[int, list[str]] = {i: [] for i in range(len(procs))}

    def drain(index, stream, sink):
        for line in stream:
            sink(line.rstrip("\n"))

    threads = [threading.Thread(target=drain, args=(0, procs[0].stdout, log), daemon=True)]
    for i, proc in enumerate(procs):
        threads.append(
            threading.Thread(target=drain, args=(i, proc.stderr, errors[i].append), daemon=True)
        )
    for thread in threads:
        thread.start()
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    first_failed = None  # the worker that failed first: the others' errors follow from it
    try:
        while any(p.poll() is None for p in procs):
            failed = [i for i, p in enumerate(procs) if p.returncode not in (None, 0)]
            if failed or (deadline and time.monotonic() > deadline):
                first_failed = failed[0] if failed else None
                break
            time.sleep(0.2)
    finally:
        for proc in procs:  # only the processes this launcher started
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for thread in threads:
            thread.join(timeout=5)
    failed = [i for i, proc in enumerate(procs) if proc.returncode != 0]
    if failed:
        if first_failed is None:  # all had exited when the loop looked: any order
            first_failed = failed[0]
        proc = procs[first_failed]
        tail = _worker_message(errors[first_failed])
        kind = UsageError if proc.returncode == UsageError.exit_code else DataprepError
        raise kind(
            f"training worker {first_failed} of {len(procs)} failed (exit {proc.returncode}): "
            f"{tail}"
        )
    return run_dir


def _worker_message(lines: list[str]) -> str:
    """The error a worker reported (TensorFlow's own shutdown lines may come after it)."""

    for line in reversed(lines):
        if line.startswith(ERROR_PREFIX):
            return line.removeprefix(ERROR_PREFIX)
    return next((line for line in reversed(lines) if line.strip()), "no message")
