"""The one adapter that owns the Label Studio SDK client.

It connects, checks the server and its version, retries transient faults (timeouts, HTTP 5xx and
429) with exponential backoff, and maps every failure to a one-line :class:`LabelStudioError`
naming the server URL and what to do. The API key is read from the environment, handed to the
SDK and never stored elsewhere, printed, logged or put in a message.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar
from urllib.parse import urlparse

from dataprep.errors import DataprepError, UsageError

T = TypeVar("T")
MIN_SERVER_VERSION = (1, 13)  # TimelineLabels and Video frameRate
DEFAULT_ENV = "LABEL_STUDIO_API_KEY"
_IDS_PER_QUERY = 200


class LabelStudioError(DataprepError):
    """Label Studio could not be reached, refused the key, or rejected a request."""


class ProjectNotFound(LabelStudioError):
    """No project with the given id or title."""


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
        retries: retries after the first try for timeouts, HTTP 5xx and 429.
        backoff_s: first wait between tries; doubled each time.
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
                base_url=self.url, api_key=api_key, timeout=timeout_s, max_retries=0
            )
        except ApiError as exc:
            raise self._map_error(exc, "reading the API key") from None
        self.server_version: str | None = None

    def __repr__(self) -> str:
        return f"LabelStudioClient(url={self.url!r})"

    # ------------------------------------------------------------------ plumbing

    def _scrub(self, text: str) -> str:
        if self._secret:
            text = text.replace(self._secret, "***")
        return " ".join(str(text).split())

    def _detail(self, body: Any) -> str:
        if isinstance(body, dict):
            errors = body.get("validation_errors")
            if errors:
                parts = []
                for key, value in errors.items():
                    items = value if isinstance(value, list) else [value]
                    parts.append(f"{key}: " + "; ".join(str(v) for v in items))
                return self._scrub("; ".join(parts))[:500]
            for key in ("detail", "message", "error"):
                if body.get(key):
                    return self._scrub(str(body[key]))[:500]
            return self._scrub(json.dumps(body, default=str))[:500]
        return self._scrub(str(body or ""))[:500]

    def _map_error(self, exc: Exception, what: str) -> LabelStudioError:
        import httpx
        from label_studio_sdk.core.api_error import ApiError

        if isinstance(exc, ApiError):
            code = exc.status_code
            detail = self._detail(exc.body)
            if code in (401, 403):
                return LabelStudioError(
                    f"Label Studio at {self.url} refused the API key while {what} (HTTP {code}: "
                    f"{detail}); set the key variable to a valid access token (legacy tokens need "
                    "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN=true on the server)"
                )
            if code == 404:
                return LabelStudioError(
                    f"Label Studio at {self.url}: not found while {what} (HTTP 404); check "
                    "--url and --project"
                )
            if code is not None and (code >= 500 or code == 429):
                return LabelStudioError(
                    f"Label Studio at {self.url} failed while {what} (HTTP {code}) after "
                    f"{self.retries + 1} tries; check the server's log and try again"
                )
            return LabelStudioError(
                f"Label Studio at {self.url} rejected the request while {what} (HTTP {code}): "
                f"{detail}"
            )
        if isinstance(exc, httpx.ConnectError):
            reason = (
                "connection refused" if "refused" in str(exc).lower() else self._scrub(str(exc))
            )
            return LabelStudioError(
                f"cannot connect to Label Studio at {self.url} ({reason}); is the server "
                "running? Start it with `label-studio start` or pass --url"
            )
        if isinstance(exc, httpx.TimeoutException):
            return LabelStudioError(
                f"Label Studio at {self.url} did not answer within {self.timeout_s:g}s while "
                f"{what} ({self.retries + 1} tries); check the server or raise "
                "[labelstudio] timeout_s"
            )
        if isinstance(exc, httpx.HTTPError):
            return LabelStudioError(
                f"network error talking to Label Studio at {self.url} while {what}: "
                f"{type(exc).__name__}; try again"
            )
        return LabelStudioError(
            f"unexpected answer from Label Studio at {self.url} while {what}: "
            f"{type(exc).__name__}: {self._scrub(str(exc))[:300]}"
        )

    def _transient(self, exc: Exception) -> bool:
        import httpx
        from label_studio_sdk.core.api_error import ApiError

        if isinstance(exc, ApiError):
            return exc.status_code is not None and (
                exc.status_code >= 500 or exc.status_code == 429
            )
        return isinstance(
            exc,
            (httpx.TimeoutException, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError),
        )

    def call(self, what: str, func: Callable[[], T]) -> T:
        """Runs ``func`` (one or more SDK calls), retrying transient faults with backoff.

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
                if attempt < self.retries and self._transient(exc):
                    time.sleep(self.backoff_s * (2**attempt))
                    attempt += 1
                    continue
                raise self._map_error(exc, what) from None
            except (ValueError, TypeError) as exc:  # malformed JSON from a proxy, etc.
                raise self._map_error(exc, what) from None

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
                title=title, label_config=label_config, description=description
            ),
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

    def import_tasks(self, project_id: int, tasks: list[dict]) -> int:
        """Adds tasks to the project; returns how many the server created."""
        response = self.call(
            f"importing {len(tasks)} tasks into project {project_id}",
            lambda: self._sdk.projects.import_tasks(
                id=project_id, request=tasks, return_task_ids=True
            ),
        )
        return int(getattr(response, "task_count", None) or len(tasks))

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
            ),
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
            how many predictions the server created.
        """
        from label_studio_sdk.types.prediction_request import PredictionRequest

        requests = [PredictionRequest(**p) for p in predictions]
        response = self.call(
            f"importing {len(predictions)} predictions into project {project_id}",
            lambda: self._sdk.projects.import_predictions(id=project_id, request=requests),
        )
        return int(getattr(response, "created", None) or len(predictions))

    # ------------------------------------------------------------------ annotations

    def create_annotation(self, task_id: int, result: list[dict], **fields: Any) -> dict:
        """Creates an annotation on a task (what a person does in the UI); returns it."""
        created = self.call(
            f"annotating task {task_id}",
            lambda: self._sdk.annotations.create(id=task_id, result=result, **fields),
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


def _plain(obj: Any) -> dict:
    if isinstance(obj, dict):
        return obj
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")
    return dict(obj)
