"""Label Studio writes are safe to retry: a REAL server behind a small real HTTP proxy that lets
the server commit an import and then holds the answer back past the client's timeout (what a
slow server or a reverse proxy's 504 does). The client must not send the import again blindly:
it lists the project's tasks and sends only media still missing, so no task is duplicated.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

import pytest

from dataprep.ingest import ingest
from dataprep.labels.client import LabelStudioError
from dataprep.labels.push import connect, push
from dataprep.testing.media import write_video
from dataprep.workspace import init_workspace, open_workspace

pytestmark = pytest.mark.labelstudio

IMPORT = re.compile(r"^/api/projects/\d+/import")
TIMEOUT_S = 4.0


class StallingProxy:
    """Forwards every request to ``upstream``; the import POSTs are handled by ``mode``:

    - ``slow``: forwarded (the server commits), answer held back past the client's timeout;
    - ``partial-slow``: only the first task of the body is forwarded, answer held back;
    - ``drop``: not forwarded, answered with HTTP 502.

    ``stalls`` import POSTs are treated so; later ones pass through. ``imports`` records the
    media ids each import POST carried.
    """

    def __init__(self, upstream: str, mode: str, stalls: int = 1) -> None:
        self.upstream = urlparse(upstream)
        self.mode, self.stalls, self.imports = mode, stalls, []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args):  # keep test output quiet (and the key out of logs)
                pass

            def _forward(self, body: bytes | None):
                connection = http.client.HTTPConnection(
                    owner.upstream.hostname, owner.upstream.port, timeout=120
                )
                headers = {k: v for k, v in self.headers.items() if k.lower() != "content-length"}
                if body is not None:
                    headers["Content-Length"] = str(len(body))
                connection.request(self.command, self.path, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
                connection.close()
                return response.status, response.getheaders(), data

            def _reply(self, status, headers, data):
                self.send_response(status)
                for key, value in headers:
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                stall = False
                if self.command == "POST" and IMPORT.match(self.path):
                    tasks = json.loads(body)
                    owner.imports.append([t["media_id"] for t in tasks])
                    stall = len(owner.imports) <= owner.stalls
                    if stall and owner.mode == "drop":
                        return self._reply(502, [], b'{"detail": "bad gateway"}')
                    if stall and owner.mode == "partial-slow":
                        body = json.dumps(tasks[:1]).encode()
                answer = self._forward(body)
                if stall:
                    time.sleep(TIMEOUT_S + 2)  # committed; the client has given up by now
                # after a stall the client has closed the connection: writing may fail
                with contextlib.suppress(OSError):
                    self._reply(*answer)

            do_GET = do_POST = do_PATCH = do_DELETE = _handle  # noqa: N815 - http.server names

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def _workspace(tmp_path: Path, server, monkeypatch, proxy_url: str, videos: int = 3):
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", server.token)
    folder = server.document_root / uuid.uuid4().hex[:8]
    for i in range(videos):
        write_video(folder / f"r{i}.mp4", 4 + i, fps=10.0)
    ws = init_workspace(tmp_path / "ws", classes=["cat", "dog"])
    ingest(ws, [folder], mode="reference", jobs=1)
    config = ws.config.model_copy(deep=True)
    config.labelstudio.url = proxy_url
    config.labelstudio.media_root = str(server.document_root)
    config.labelstudio.project = f"retry-{uuid.uuid4().hex[:8]}"
    config.labelstudio.timeout_s = TIMEOUT_S
    config.labelstudio.retries = 2
    ws.save_config(config)
    return open_workspace(ws.root)


def _media_ids_in_project(ws, project_id: int) -> Counter:
    client = connect(ws, ws.config.labelstudio.url)
    return Counter(t["data"]["media_id"] for t in client.list_tasks(project_id))


def test_import_committed_but_answered_too_slowly_is_not_repeated(
    tmp_path, labelstudio_server, monkeypatch
):
    with StallingProxy(labelstudio_server.url, "slow") as proxy:
        ws = _workspace(tmp_path, labelstudio_server, monkeypatch, proxy.url)
        report = push(ws, create=True)
        in_project = _media_ids_in_project(ws, report.project_id)
    assert len(proxy.imports) == 1  # the timed-out import was not sent again
    assert report.added == 3 and report.ok
    assert sorted(in_project.values()) == [1, 1, 1]  # no duplicate tasks
    assert labelstudio_server.token not in json.dumps(report.to_dict())
    for path in ws.root.rglob("*"):
        if path.is_file():
            assert labelstudio_server.token.encode() not in path.read_bytes(), path


def test_partly_committed_import_sends_only_the_missing_media(
    tmp_path, labelstudio_server, monkeypatch
):
    with StallingProxy(labelstudio_server.url, "partial-slow") as proxy:
        ws = _workspace(tmp_path, labelstudio_server, monkeypatch, proxy.url)
        report = push(ws, create=True)
        in_project = _media_ids_in_project(ws, report.project_id)
    first, second = proxy.imports
    assert len(first) == 3 and len(second) == 2 and first[0] not in second
    assert set(second) | {first[0]} == set(first)
    assert report.added == 3 and sorted(in_project.values()) == [1, 1, 1]


def test_failed_imports_are_one_line_without_the_key_and_a_rerun_finishes(
    tmp_path, labelstudio_server, monkeypatch
):
    with StallingProxy(labelstudio_server.url, "drop", stalls=99) as proxy:
        ws = _workspace(tmp_path, labelstudio_server, monkeypatch, proxy.url)
        with pytest.raises(LabelStudioError) as error:
            push(ws, create=True)
        message = str(error.value)
        assert "HTTP 502" in message and proxy.url in message and "3 tries" in message
        assert "\n" not in message and labelstudio_server.token not in message
        # each retry first listed the project: nothing was there, so all media were re-sent
        assert [len(batch) for batch in proxy.imports] == [3, 3, 3]
        proxy.stalls = 0
        again = push(open_workspace(ws.root))
        in_project = _media_ids_in_project(ws, again.project_id)
    assert again.added == 3 and sorted(in_project.values()) == [1, 1, 1]
