"""The Ray engine: dataprep's unit functions as Ray tasks, results in input order.

Ray is only the scheduler. Tasks run dataprep's own functions (never Ray's ``read_videos`` or
``write_tfrecords``, whose outputs differ between runs) and return small results; at most
``max_in_flight`` tasks are submitted at once, so neither the object store nor the driver holds
more than that many results. A task whose worker process or node dies is retried by Ray
(``MAX_RETRIES``); a result is used only once, in order, so a retried task cannot commit twice.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from dataprep.engine.base import EngineError, EngineSpec, StagedRows

MAX_RETRIES = 3
# (unit function name, tasks per node id) of the last maps in this process: what ran where.
HISTORY: deque[tuple[str, Counter]] = deque(maxlen=64)
PROBE_TIMEOUT_S = float(os.environ.get("DATAPREP_RAY_PROBE_TIMEOUT", "120"))

# The node check is compiled from source into a module that does not exist on the workers, so
# Ray ships it by value: it runs (and reports) even where ``import dataprep`` fails.
_PROBE_SOURCE = """
def probe(reads, writes):
    import importlib, os, socket
    out = {"host": socket.gethostname(), "import": None, "version": None, "file": None,
           "read": [], "write": []}
    try:
        module = importlib.import_module("dataprep")
        out["version"] = getattr(module, "__version__", None)
        out["file"] = getattr(module, "__file__", None)
    except BaseException as exc:  # noqa: BLE001 - any failure to import is the finding
        out["import"] = f"{type(exc).__name__}: {exc}"
    for path in reads:
        try:
            if os.path.isdir(path):
                os.listdir(path)
            else:
                with open(path, "rb") as handle:
                    handle.read(1)
        except OSError as exc:
            out["read"].append([path, exc.strerror or str(exc)])
    for folder in writes:
        try:
            os.makedirs(folder, exist_ok=True)
            name = os.path.join(folder, f".dataprep-probe-{socket.gethostname()}-{os.getpid()}")
            with open(name, "wb") as handle:
                handle.write(b"ok")
                handle.flush()
                os.fsync(handle.fileno())
            os.remove(name)
        except OSError as exc:
            out["write"].append([folder, exc.strerror or str(exc)])
    return out
"""


def _probe_function() -> Callable:
    namespace: dict[str, Any] = {"__name__": "dataprep_engine_probe"}
    exec(compile(_PROBE_SOURCE, "<dataprep engine probe>", "exec"), namespace)  # noqa: S102
    return namespace["probe"]


def _chunks(items: Iterator, size: int) -> Iterator[list]:
    """Lists of ``size`` items, made one at a time (``items`` may be a generator)."""
    while chunk := list(itertools.islice(items, size)):
        yield chunk


def _run_chunk(
    func: Callable, chunk: list, staging: str | None, name: str, rows_key: str | int | None
) -> dict[str, Any]:
    """The Ray task: ``func`` over one chunk; rows staged to Parquet when asked."""
    import ray

    from dataprep.engine.base import WHOLE_RESULT

    results = [func(item) for item in chunk]
    if rows_key and staging:
        for index, result in enumerate(results):
            path = Path(staging) / f"{name}-{index}.parquet"
            if rows_key == WHOLE_RESULT and isinstance(result, list) and result:
                results[index] = _stage(result, path)
            elif isinstance(rows_key, int) and isinstance(result, tuple) and result[rows_key]:
                parts = list(result)
                parts[rows_key] = _stage(result[rows_key], path)
                results[index] = tuple(parts)
            elif isinstance(result, dict) and result.get(rows_key):
                result[rows_key] = _stage(result[rows_key], path)
    return {"node": ray.get_runtime_context().get_node_id(), "results": results}


def _stage(rows: list[dict[str, Any]], path: Path) -> StagedRows:
    import pyarrow as pa
    import pyarrow.parquet as pq

    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(pa.Table.from_pylist(rows), tmp)
    os.replace(tmp, path)
    return StagedRows(str(path), len(rows))


class RayExecutor:
    """Maps unit functions over items as Ray tasks (see :func:`dataprep.engine.open_engine`)."""

    kind = "ray"

    def __init__(self, spec: EngineSpec):
        self.spec = spec
        self.tasks_per_node: Counter[str] = Counter()
        self._staging: str | None = None

    @classmethod
    @contextlib.contextmanager
    def connect(cls, spec: EngineSpec) -> Iterator[RayExecutor]:
        """Joins ``spec.address`` (or starts Ray on this machine); leaves what it started."""
        try:
            import ray
        except ImportError:
            raise EngineError(
                "--engine ray needs Ray on this machine: pip install 'dataprep[ray]'"
            ) from None
        started = False
        if not ray.is_initialized():
            _init(ray, spec)
            started = True
        try:
            yield cls(spec)
        finally:
            if started:
                ray.shutdown()

    # -- start-up checks --------------------------------------------------------------------

    def check_nodes(self, *, reads: list[str], writes: list[str]) -> list[dict[str, Any]]:
        """Runs the probe once on every alive node with CPUs.

        Raises:
            EngineError: naming the first node that cannot import dataprep, read one of
                ``reads`` or write into one of ``writes``.
        """
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        nodes = [n for n in ray.nodes() if n.get("Alive") and n["Resources"].get("CPU", 0) > 0]
        if not nodes:
            raise EngineError("the Ray cluster has no alive node with CPUs; start workers first")
        probe = ray.remote(num_cpus=0, max_retries=1)(_probe_function())
        refs = [
            probe.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)
            ).remote(reads, writes)
            for n in nodes
        ]
        ready, waiting = ray.wait(refs, num_returns=len(refs), timeout=PROBE_TIMEOUT_S)
        if waiting:
            node = nodes[refs.index(waiting[0])]
            raise EngineError(
                f"Ray node {_node_name(node)} did not answer the start-up check within "
                f"{PROBE_TIMEOUT_S:.0f} s; check that it is healthy (ray status)"
            )
        reports = ray.get(refs)
        for node, report in zip(nodes, reports, strict=True):
            _raise_on_problem(node, report)
        return reports

    # -- staging of rows --------------------------------------------------------------------

    @contextlib.contextmanager
    def staging(self, folder: str | Path | None) -> Iterator[None]:
        """Rows of this run are staged under ``folder/<run id>`` (removed at the end;
        leftovers of killed runs are removed at the start, under the workspace lock)."""
        if folder is None:
            yield
            return
        root = Path(folder)
        shutil.rmtree(root, ignore_errors=True)
        run_dir = root / uuid.uuid4().hex[:12]
        run_dir.mkdir(parents=True, exist_ok=True)
        self._staging = str(run_dir)
        try:
            yield
        finally:
            self._staging = None
            shutil.rmtree(root, ignore_errors=True)

    # -- the map ----------------------------------------------------------------------------

    def map(
        self,
        func: Callable,
        items: Iterable,
        *,
        chunksize: int = 1,
        rows_key: str | int | None = None,
        jobs: int | None = None,
    ) -> Iterator:
        """``func`` over ``items`` as Ray tasks of ``chunksize`` items, results in input order.

        Raises:
            EngineError: a task was lost more often than Ray retries it (``MAX_RETRIES``).
            The unit function's own exception, when it raised one.
        """
        import ray

        del jobs  # the cluster's CPUs decide
        chunks = _chunks(iter(items), max(1, chunksize))  # taken as the window moves on
        task = ray.remote(_run_chunk).options(**self._task_options())
        window = self.spec.max_in_flight or max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))
        staging = self._staging if rows_key else None
        self.tasks_per_node = Counter()
        HISTORY.append((_function_name(func), self.tasks_per_node))
        pending: deque = deque()
        try:
            for index, chunk in enumerate(chunks):
                pending.append(task.remote(func, chunk, staging, f"{index:09d}", rows_key))
                if len(pending) >= window:
                    yield from self._collect(pending.popleft(), func)
            while pending:
                yield from self._collect(pending.popleft(), func)
        finally:  # the consumer stopped early (an error, --on-error fail): stop the rest
            for ref in pending:
                with contextlib.suppress(Exception):
                    ray.cancel(ref)

    def _task_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "num_cpus": self.spec.num_cpus,
            "max_retries": MAX_RETRIES,
            "retry_exceptions": False,
            "scheduling_strategy": "SPREAD",
        }
        if self.spec.memory_mb:
            options["memory"] = self.spec.memory_mb * 1024 * 1024
        return options

    def _collect(self, ref, func: Callable) -> list:
        import ray

        try:
            payload = ray.get(ref)
        except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError) as exc:
            raise EngineError(
                f"a Ray worker running {_function_name(func)} was lost "
                f"{MAX_RETRIES + 1} times ({type(exc).__name__}); rerun the command to finish "
                "(finished items are kept)"
            ) from None
        except ray.exceptions.RayTaskError as exc:
            cause = exc.cause if getattr(exc, "cause", None) is not None else exc
            raise cause from None
        self.tasks_per_node[payload["node"]] += 1
        return payload["results"]


def _init(ray, spec: EngineSpec) -> None:
    runtime_env = None
    if spec.ship_package:
        import dataprep

        runtime_env = {"py_modules": [dataprep]}
    try:
        ray.init(
            address=spec.address or None,
            include_dashboard=False,
            log_to_driver=False,
            logging_level="ERROR",
            configure_logging=True,
            runtime_env=runtime_env,
        )
    except (ConnectionError, ValueError, RuntimeError) as exc:
        where = spec.address or "this machine"
        raise EngineError(
            f"cannot start or join the Ray cluster at {where} ({str(exc).splitlines()[0]}); "
            "check [engine] address (or --ray-address) and that the cluster is up"
        ) from None


def _function_name(func: Callable) -> str:
    inner = getattr(func, "func", func)  # functools.partial
    return getattr(inner, "__name__", repr(inner))


def _node_name(node: dict[str, Any]) -> str:
    return f"{node.get('NodeManagerAddress', '?')} (node {node['NodeID'][:8]})"


def _raise_on_problem(node: dict[str, Any], report: dict[str, Any]) -> None:
    where = f"Ray node {_node_name(node)} on host {report['host']}"
    if report["import"]:
        raise EngineError(
            f"{where} cannot import dataprep ({report['import']}); install dataprep in the "
            "worker image or set [engine] ship_package = true (docs/scaling.md)"
        )
    if report["read"]:
        path, reason = report["read"][0]
        raise EngineError(
            f"{where} cannot read {path} ({reason}); media must be on storage every node mounts "
            "at the same path (docs/scaling.md)"
        )
    if report["write"]:
        folder, reason = report["write"][0]
        raise EngineError(
            f"{where} cannot write into {folder} ({reason}); the workspace must be on storage "
            "every node mounts read-write at the same path (docs/scaling.md)"
        )
