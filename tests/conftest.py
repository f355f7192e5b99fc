"""Shared fixtures: a fresh workspace and generated media."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("DATAPREP_LOCK_TIMEOUT", "30")

from labelstudio_fixture import labelstudio_server  # noqa: E402, F401


@pytest.fixture
def workspace(tmp_path):
    """An empty workspace in a temporary folder."""
    from dataprep.workspace import init_workspace

    return init_workspace(tmp_path / "ws", classes=["a", "b"])
