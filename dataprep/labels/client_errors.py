"""Label Studio failures as one-line :class:`LabelStudioError` messages without the API key."""

from __future__ import annotations

import json
from typing import Any

from dataprep.errors import DataprepError


class LabelStudioError(DataprepError):
    """Label Studio could not be reached, refused the key, or rejected a request."""


class ProjectNotFound(LabelStudioError):
    """No project with the given id or title."""


def scrub(text: str, secret: str | None) -> str:
    """``text`` on one line, with ``secret`` replaced by ``***``."""
    if secret:
        text = str(text).replace(secret, "***")
    return " ".join(str(text).split())


def _detail(body: Any, secret: str | None) -> str:
    if isinstance(body, dict):
        errors = body.get("validation_errors")
        if errors:
            parts = []
            for key, value in errors.items():
                items = value if isinstance(value, list) else [value]
                parts.append(f"{key}: " + "; ".join(str(v) for v in items))
            return scrub("; ".join(parts), secret)[:500]
        for key in ("detail", "message", "error"):
            if body.get(key):
                return scrub(str(body[key]), secret)[:500]
        return scrub(json.dumps(body, default=str), secret)[:500]
    return scrub(str(body or ""), secret)[:500]


def map_error(
    exc: Exception, what: str, *, url: str, secret: str | None, timeout_s: float, tries: int
) -> LabelStudioError:
    """One line for an SDK or network failure while ``what``, naming ``url`` and what to do;
    ``secret`` (the API key) never appears in it."""
    import httpx
    from label_studio_sdk.core.api_error import ApiError

    if isinstance(exc, ApiError):
        code = exc.status_code
        detail = _detail(exc.body, secret)
        if code in (401, 403):
            return LabelStudioError(
                f"Label Studio at {url} refused the API key while {what} (HTTP {code}: "
                f"{detail}); set the key variable to a valid access token (legacy tokens need "
                "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN=true on the server)"
            )
        if code == 404:
            return LabelStudioError(
                f"Label Studio at {url}: not found while {what} (HTTP 404); check "
                "--url and --project"
            )
        if code is not None and (code >= 500 or code == 429):
            return LabelStudioError(
                f"Label Studio at {url} failed while {what} (HTTP {code}) after "
                f"{tries} tries; check the server's log and try again"
            )
        return LabelStudioError(
            f"Label Studio at {url} rejected the request while {what} (HTTP {code}): {detail}"
        )
    if isinstance(exc, httpx.ConnectError):
        reason = "connection refused" if "refused" in str(exc).lower() else scrub(str(exc), secret)
        return LabelStudioError(
            f"cannot connect to Label Studio at {url} ({reason}); is the server "
            "running? Start it with `label-studio start` or pass --url"
        )
    if isinstance(exc, httpx.TimeoutException):
        return LabelStudioError(
            f"Label Studio at {url} did not answer within {timeout_s:g}s while "
            f"{what} ({tries} tries); check the server or raise "
            "[labelstudio] timeout_s"
        )
    if isinstance(exc, httpx.HTTPError):
        return LabelStudioError(
            f"network error talking to Label Studio at {url} while {what}: "
            f"{type(exc).__name__}; try again"
        )
    return LabelStudioError(
        f"unexpected answer from Label Studio at {url} while {what}: "
        f"{type(exc).__name__}: {scrub(str(exc), secret)[:300]}"
    )
