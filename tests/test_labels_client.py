"""Network faults through the real SDK: retries with backoff, one-line errors, no key leaks.

Reads are retried by the SDK (5xx, 429, refused connections) and by dataprep (timeouts); the
retry safety of writes is tested against a real server in test_labels_retry.py.

A small real HTTP server on 127.0.0.1 plays a Label Studio that fails in chosen ways (5xx,
slowness, refused keys) — faults a healthy server cannot be made to produce on demand.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from dataprep.errors import UsageError
from dataprep.labels.client import LabelStudioClient, LabelStudioError, api_key_from_env, check_url

KEY = "secret-key-0123456789"


class FaultyServer:
    """Answers ``/api/version`` and ``/api/current-user/whoami`` after ``failures`` faults."""

    def __init__(self, fault: str, failures: int) -> None:
        self.fault, self.failures, self.requests = fault, failures, []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):  # noqa: N802 - http.server's naming
                owner.requests.append((self.path, self.headers.get("Authorization")))
                if len(owner.requests) <= owner.failures:
                    if owner.fault == "slow":
                        time.sleep(0.6)
                    elif owner.fault == "unauthorized":
                        return self._reply(401, {"detail": f"Invalid token {KEY}"})
                    elif owner.fault == "missing":
                        return self._reply(404, {"detail": "Not found."})
                    else:
                        return self._reply(503, {"detail": "overloaded"})
                if self.path.startswith("/api/version"):
                    return self._reply(200, {"release": "1.23.2"})
                return self._reply(200, {"id": 1, "email": "a@example.com"})

            def _reply(self, code, body):
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(autouse=True)
def _fast_sdk_backoff(monkeypatch):
    """The SDK retries 5xx and refused connections itself, waiting 1 s, 2 s, ...; shorten it."""
    from label_studio_sdk.core import http_client

    monkeypatch.setattr(http_client, "INITIAL_RETRY_DELAY_SECONDS", 0.01)


def _client(url, **kwargs):
    return LabelStudioClient(url, KEY, backoff_s=0.01, **kwargs)


def test_5xx_is_retried_with_backoff_then_succeeds():
    with FaultyServer("5xx", failures=2) as server:
        assert _client(server.url, retries=3).check_server() == "1.23.2"
    versions = [p for p, _ in server.requests if p.startswith("/api/version")]
    assert len(versions) == 3
    assert all(auth == f"Token {KEY}" for _, auth in server.requests)


def test_5xx_after_all_retries_is_one_line():
    with FaultyServer("5xx", failures=99) as server, pytest.raises(LabelStudioError) as error:
        _client(server.url, retries=2).check_server()
    message = str(error.value)
    assert "HTTP 503" in message and "3 tries" in message and server.url in message
    assert "\n" not in message and len(server.requests) == 3


def test_timeouts_are_retried_then_reported():
    with FaultyServer("slow", failures=1) as server:
        assert _client(server.url, retries=2, timeout_s=0.3).check_server() == "1.23.2"
    with FaultyServer("slow", failures=99) as server, pytest.raises(LabelStudioError) as error:
        _client(server.url, retries=1, timeout_s=0.2).check_server()
    assert "did not answer within 0.2s" in str(error.value) and server.url in str(error.value)


def test_refused_key_and_not_found_never_echo_the_key():
    with (
        FaultyServer("unauthorized", failures=99) as server,
        pytest.raises(LabelStudioError) as error,
    ):
        _client(server.url).check_server()
    message = str(error.value)
    assert "refused the API key" in message and "HTTP 401" in message
    assert KEY not in message and "***" in message  # the server echoed it; we scrub it
    assert len(server.requests) == 1  # 401 is not retried
    with FaultyServer("missing", failures=99) as server, pytest.raises(LabelStudioError) as error:
        _client(server.url).check_server()
    assert "HTTP 404" in str(error.value)


def test_key_and_url_validation(monkeypatch):
    monkeypatch.delenv("MY_LS_KEY", raising=False)
    with pytest.raises(UsageError, match="set MY_LS_KEY"):
        api_key_from_env("MY_LS_KEY")
    monkeypatch.setenv("MY_LS_KEY", " k ")
    assert api_key_from_env("MY_LS_KEY") == "k"
    with pytest.raises(UsageError, match="must look like"):
        check_url("localhost:8080")
    with pytest.raises(UsageError, match="must not hold credentials") as error:
        check_url("http://admin:hunter2@localhost:8080")
    assert "hunter2" not in str(error.value)
    client = _client("http://127.0.0.1:9/")
    assert KEY not in repr(client) and client.url == "http://127.0.0.1:9"
