"""Session fixture: a real Label Studio server (installed into its own virtualenv on first use).

The virtualenv is ``<repo>/.cache/labelstudio-venv`` (``$DATAPREP_LS_VENV`` overrides it); the
server runs on 127.0.0.1 and a free port with a temporary data folder, and is stopped at the end.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def labelstudio_server(tmp_path_factory):
    """A started :class:`dataprep.testing.labelstudio.LabelStudioServer`."""
    from dataprep.testing.labelstudio import start_server

    server = start_server(REPO, tmp_path_factory.mktemp("labelstudio"))
    try:
        yield server
    finally:
        server.stop()
