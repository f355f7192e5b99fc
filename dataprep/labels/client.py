"""The one adapter that owns the Label Studio SDK client.

It connects, checks the server and its version, and maps every failure to a one-line
:class:`LabelStudioError` naming the server URL and what to do. The API key is read from the
environment, handed to the SDK and never stored elsewhere, printed, logged or put in a message.

Retries: the SDK itself retries connection failures, dropped connections and HTTP 5xx/429 of
reads (``max_retries``); dataprep adds retries of timed-out reads. Writes are never repeated
blindly: a request that creates something is sent once, and after a failed or timed-out import
the client lists what the project holds and sends only what is still missing
(:meth:`LabelStudioClient.import_tasks`, :meth:`LabelStudioClient.import_predictions`), so a server
that committed an import but answered too slowly gets no duplicates.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar
from urllib.parse import urlparse

from dataprep.errors import UsageError
from dataprep.labels.client_errors import LabelStudioError, ProjectNotFound, map_error

T = TypeVar("T")
#: Per-request SDK options of writes that must not be repeated by the SDK.
ONCE = {"max_retries": 0}
MIN_SERVER_VERSION = (1, 13)  # TimelineLabels and Video frameRate
DEFAULT_ENV = "LABEL_STUDIO_API_KEY"
_IDS_PER_QUERY = 200


def api_key_from_env(env_name: str = DEFAULT_ENV) -> str:
    """The API key from environment variable ``env_name``.

    Raises:
        UsageError: when the variable is unset or empty (the message names the variable only).
    """
    env_name = env_name or DEFAULT_ENV
    key = os.environ.get(env_name, "").strip()
    if not key:
        raise UsageError(
            f"no Label Studio API key: set {env_name} to your access token (Label Studio: "
            "Account & Settings > Access Token); it is read from the environment only"
        )
    return key


def check_url(url: str) -> str:
    """Validates a server URL (http or https with a host) and strips the trailing slash."""
    parsed = urlparse(url or "")
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise UsageError(f"Label Studio URL {url!r} must look like http://host:8080; pass --url")
    if parsed.username or parsed.password:
        raise UsageError(
            "the Label Studio URL must not hold credentials; put the key in the environment "
            f"({DEFAULT_ENV}) and pass --url http://{parsed.hostname}:{parsed.port or 80}"
        )
    return url.rstrip("/")


def _parse_version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text or "")[:3])


class LabelStudioClient:
    """A Label Studio server, as dataprep uses it.

    Args:
        url: server base URL.
        api_key: access token (legacy token or personal access token). Kept only inside the SDK.
        timeout_s: per-request timeout.
        retries: retries after the first try: of connection failures, HTTP 5xx and 429 (by the
            SDK, reads only), of timed-out reads, and of failed imports (after checking what the
            server already holds).
        backoff_s: first wait between dataprep's own tries; doubled each time (the SDK waits
            1 s, 2 s, 4 s... or what the server's Retry-After says).
    """

    def __init__(
        self,
        url: str,
        api_key: str,
        *,
        timeout_s: float = 30.0,
        retries: int = 3,
        backoff_s: float = 0.5,
    ) -> None:
        from label_studio_sdk import LabelStudio
        from label_studio_sdk.core.api_error import ApiError

        self.url = check_url(url)
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self._secret = api_key
        try:
            self._sdk = LabelStudio(
                base_url=self.url, api_key=api_key, timeout=timeout_s, max_retries=retries
            )
        except ApiError as exc:
            raise self._map_error(exc, "reading the API key") from None
        self.server_version: str | None = None

    def __repr__(self) -> str:
        return f"LabelStudioClient(url={self.url!r})"

    # ------------------------------------------------------------------ plumbing

    def _map_error(self, exc: Exception, what: str, tries: int | None = None) -> LabelStudioError:
        return map_error(
            exc,
            what,
            url=self.url,
            secret=self._secret,
            timeout_s=self.timeout_s,
            tries=tries or self.retries + 1,
        )

    @staticmethod
    def _unanswered_read(exc: Exception) -> bool:
        """A read that may be repeated: it timed out or the connection broke (the SDK itself
        retries refused connections, dropped connections, 5xx and 429)."""
        import httpx

        return isinstance(exc, (httpx.TimeoutException, httpx.ReadError, httpx.WriteError))

    @staticmethod
    def _maybe_not_done(exc: Exception) -> bool:
        """A write whose outcome is unknown or that failed for a passing reason: check what the
        server holds before sending the rest again. 4xx refusals are final."""
        import httpx
        from label_studio_sdk.core.api_error import ApiError

        if isinstance(exc, ApiError):
            code = exc.status_code
            return code is not None and (code >= 500 or code == 429)
        return isinstance(exc, httpx.TransportError)

    def call(self, what: str, func: Callable[[], T], *, write: bool = False) -> T:
        """Runs ``func`` (one or more SDK calls) and maps failures to one line.

        Reads (the default) whose reply timed out are tried again with backoff; ``write=True``
        calls are never repeated here (pass :data:`ONCE` to the SDK so it does not either).

        Raises:
            LabelStudioError: with one line naming the URL and what to do.
        """
        import httpx
        from label_studio_sdk.core.api_error import ApiError

        attempt = 0
        while True:
            try:
                return func()
            except (ApiError, httpx.HTTPError) as exc:
                if not write and attempt < self.retries and self._unanswered_read(exc):
                    time.sleep(self.backoff_s * (2**attempt))
                    attempt += 1
                    continue
                raise self._map_error(exc, what, tries=attempt + 1 if write else None) from None
            except (ValueError, TypeError) as exc:  # malformed JSON from a proxy, etc.
                raise self._map_error(exc, what) from None

    def send_missing(
        self,
        what: str,
        items: list[T],
        send: Callable[[list[T]], Any],
        missing: Callable[[list[T]], list[T]],
    ) -> None:
        """Sends ``items`` with one write request, safe to retry.

        When the request fails in a way that may have been committed (timeout, dropped
        connection, 5xx), waits, asks ``missing(items)`` which of them the server still lacks
        (by listing what it holds) and sends only those, up to ``retries`` times. The write is
        never repeated blindly.

        Raises:
            LabelStudioError: on a refusal (4xx), or when items are still missing after all tries.
        """
        import httpx
        from label_studio_sdk.core.api_error import ApiError

        pending = list(items)
        for attempt in range(self.retries + 1):
            try:
                send(pending)
                return
            except (ApiError, httpx.HTTPError) as exc:
                if attempt == self.retries or not self._maybe_not_done(exc):
                    raise self._map_error(exc, what, tries=attempt + 1) from None
            time.sleep(self.backoff_s * (2**attempt))
            pending = missing(pending)
            if not pending:
                return

    # ------------------------------------------------------------------ server and projects

    def check_server(self) -> str:
        """Checks the server answers, accepts the key and is recent enough; returns its version.

        Raises:
            LabelStudioError: when unreachable, the key is refused, or the version is too old.
        """
        version = self.call("reading the server version", lambda: self._sdk.versions.get())
        release = str(getattr(version, "release", "") or "")
        if _parse_version(release) and _parse_version(release)[:2] < MIN_SERVER_VERSION:
            raise LabelStudioError(
                f"Label Studio at {self.url} is version {release}; dataprep needs "
                f"{'.'.join(map(str, MIN_SERVER_VERSION))} or newer (TimelineLabels, frameRate)"
            )
        self.call("checking the API key", lambda: self._sdk.users.whoami())
        self.server_version = release
        return release

    def find_project(self, ref: str) -> Any:
        """The project whose id (digits) or title is ``ref``.

        Raises:
            ProjectNotFound: when none matches (or a title matches several).
        """
        from label_studio_sdk.core.api_error import ApiError

        ref = str(ref).strip()
        if not ref:
            raise UsageError(
                "no project given: pass --project ID|TITLE or set [labelstudio] project"
            )
        if ref.isdigit():
            try:
                return self.call(
                    f"reading project {ref}", lambda: self._sdk.projects.get(id=int(ref))
                )
            except LabelStudioError as exc:
                if "HTTP 404" in str(exc):
                    raise ProjectNotFound(
                        f"Label Studio at {self.url} has no project with id {ref}; check "
                        "--project, or create it with `dataprep labels push --create`"
                    ) from None
                raise
        try:
            projects = self.call(
                "listing projects", lambda: list(self._sdk.projects.list(title=ref, page_size=100))
            )
        except ApiError as exc:  # pragma: no cover - call() maps every ApiError
            raise self._map_error(exc, "listing projects") from None
        matches = [p for p in projects if (p.title or "") == ref]
        if not matches:
            raise ProjectNotFound(
                f"Label Studio at {self.url} has no project titled {ref!r}; create it with "
                "`dataprep labels push --create`, or pass --project ID"
            )
        if len(matches) > 1:
            ids = ", ".join(str(p.id) for p in matches)
            raise ProjectNotFound(
                f"Label Studio at {self.url} has {len(matches)} projects titled {ref!r} "
                f"(ids {ids}); pass --project ID"
            )
        return matches[0]

    def create_project(self, title: str, label_config: str, description: str = "") -> Any:
        """Creates a project with the given labeling config."""
        return self.call(
            f"creating project {title!r}",
            lambda: self._sdk.projects.create(
                title=title,
                label_config=label_config,
                description=description,
                request_options=ONCE,
            ),
            write=True,
        )

    # ------------------------------------------------------------------ tasks

    def list_tasks(self, project_id: int) -> list[dict]:
        """Every task of the project without annotations: ``id``, ``data``, ``updated_at``."""

        def fetch() -> list[dict]:
            pager = self._sdk.tasks.list(project=project_id, fields="task_only", page_size=500)
            return [
                {"id": t.id, "data": dict(t.data or {}), "updated_at": t.updated_at} for t in pager
            ]

        return self.call(f"listing tasks of project {project_id}", fetch)

    def tasks_with_annotations(
        self, project_id: int, task_ids: Iterable[int] | None = None
    ) -> list[dict]:
        """Tasks with their annotations (all tasks, or only ``task_ids``), as plain dicts."""

        def fetch(ids: list[int] | None) -> list[dict]:
            query = None
            if ids is not None:
                query = json.dumps(
                    {
                        "filters": {"conjunction": "and", "items": []},
                        "selectedItems": {"all": False, "included": ids},
                    }
                )
            pager = self._sdk.tasks.list(
                project=project_id, fields="all", query=query, page_size=100
            )
            out = []
            for task in pager:
                out.append(
                    {
                        "id": task.id,
                        "data": dict(task.data or {}),
                        "updated_at": task.updated_at,
                        "annotations": [_plain(a) for a in (task.annotations or [])],
                    }
                )
            return out

        if task_ids is None:
            return self.call(f"reading annotations of project {project_id}", lambda: fetch(None))
        ids = sorted(set(int(i) for i in task_ids))
        out: list[dict] = []
        for start in range(0, len(ids), _IDS_PER_QUERY):
            chunk = ids[start : start + _IDS_PER_QUERY]
            out += self.call(
                f"reading annotations of project {project_id}", lambda chunk=chunk: fetch(chunk)
            )
        return out

    def import_tasks(self, project_id: int, tasks: list[dict], key: str | None = None) -> int:
        """Adds tasks to the project; returns how many were sent.

        With ``key`` (a task data key that is unique per task, e.g. ``media_id``), the import is
        safe to retry: after a failed or timed-out request the project's tasks are listed and
        only tasks whose ``key`` is not there yet are sent again. Without ``key`` the request is
        sent once.
        """
        what = f"importing {len(tasks)} tasks into project {project_id}"

        def send(batch: list[dict]) -> Any:
            return self._sdk.projects.import_tasks(
                id=project_id, request=batch, return_task_ids=True, request_options=ONCE
            )

        if key is None or not all(_data(t).get(key) is not None for t in tasks):
            self.call(what, lambda: send(tasks), write=True)
            return len(tasks)

        def missing(batch: list[dict]) -> list[dict]:
            present = {str(t["data"].get(key)) for t in self.list_tasks(project_id)}
            return [t for t in batch if str(_data(t)[key]) not in present]

        self.send_missing(what, tasks, send, missing)
        return len(tasks)

    def users(self) -> dict[int, str]:
        """User id -> email (or username), to name annotators."""
        users = self.call("listing users", lambda: self._sdk.users.list())
        return {u.id: (u.email or u.username or str(u.id)) for u in users}

    def ensure_local_storage(self, project_id: int, folder: str) -> None:
        """Connects a local-files storage for ``folder`` to the project (never synced: tasks
        are created by dataprep, so syncing would duplicate them). Idempotent."""
        existing = self.call(
            "listing local storages",
            lambda: self._sdk.import_storage.local.list(project=project_id),
        )
        folder = os.path.normpath(folder)
        for storage in existing:
            path = os.path.normpath(storage.path or "")
            if folder == path or folder.startswith(path + os.sep):
                return
        self.call(
            f"connecting local-files storage {folder}",
            lambda: self._sdk.import_storage.local.create(
                project=project_id,
                path=folder,
                use_blob_urls=False,
                title="dataprep media (do not sync)",
                description="Serves media for tasks created by `dataprep labels push`.",
                request_options=ONCE,
            ),
            write=True,
        )

    # ------------------------------------------------------------------ predictions

    def list_predictions(self, project_id: int) -> list[dict]:
        """Every prediction of the project: ``id``, ``task``, ``model_version``, ``score``,
        ``result``."""

        def fetch() -> list[dict]:
            return [
                {
                    "id": p.id,
                    "task": p.task,
                    "model_version": p.model_version,
                    "score": p.score,
                    "result": list(p.result or []),
                }
                for p in self._sdk.predictions.list(project=project_id)
            ]

        return self.call(f"listing predictions of project {project_id}", fetch)

    def import_predictions(self, project_id: int, predictions: list[dict]) -> int:
        """Adds predictions (pre-annotations) to tasks of the project in one request.

        Args:
            project_id: the project.
            predictions: dicts with ``task`` (task id), ``result`` (Label Studio results),
                ``score`` and ``model_version``.

        Returns:
            how many predictions were sent. Safe to retry: after a failed or timed-out request,
            only predictions whose (task, model_version) the project lacks are sent again.
        """
        from label_studio_sdk.types.prediction_request import PredictionRequest

        def send(batch: list[dict]) -> Any:
            requests = [PredictionRequest(**p) for p in batch]
            return self._sdk.projects.import_predictions(
                id=project_id, request=requests, request_options=ONCE
            )

        def missing(batch: list[dict]) -> list[dict]:
            present = {(p["task"], p["model_version"]) for p in self.list_predictions(project_id)}
            return [p for p in batch if (p["task"], p.get("model_version")) not in present]

        what = f"importing {len(predictions)} predictions into project {project_id}"
        self.send_missing(what, predictions, send, missing)
        return len(predictions)

    # ------------------------------------------------------------------ annotations

    def create_annotation(self, task_id: int, result: list[dict], **fields: Any) -> dict:
        """Creates an annotation on a task (what a person does in the UI); returns it."""
        created = self.call(
            f"annotating task {task_id}",
            lambda: self._sdk.annotations.create(
                id=task_id, result=result, request_options=ONCE, **fields
            ),
            write=True,
        )
        return _plain(created)

    def update_annotation(self, annotation_id: int, **fields: Any) -> dict:
        """Changes an annotation (result, ground_truth, was_cancelled...)."""
        updated = self.call(
            f"updating annotation {annotation_id}",
            lambda: self._sdk.annotations.update(id=annotation_id, **fields),
        )
        return _plain(updated)

    def delete_annotation(self, annotation_id: int) -> None:
        """Deletes an annotation."""
        self.call(
            f"deleting annotation {annotation_id}",
            lambda: self._sdk.annotations.delete(id=annotation_id),
        )


def _data(task: dict) -> dict:
    """A task's data: its ``data`` object, or the task itself in the flat import form."""
    data = task.get("data")
    return data if isinstance(data, dict) else task


def _plain(obj: Any) -> dict:
    if isinstance(obj, dict):
        return obj
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")
    return dict(obj)
