from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from dataprep.cli.main import app
from dataprep.testing.media import write_bad_files, write_video

runner = CliRunner()


def test_init_ingest_info_exit_codes(tmp_path):
    ws = tmp_path / "ws"
    result = runner.invoke(app, ["init", str(ws), "--classes", "left,right"])
    assert result.exit_code == 0, result.output
    assert "workspace ready" in result.output

    good = tmp_path / "good"
    write_video(good / "left" / "a.mp4", 6)
    result = runner.invoke(app, ["-w", str(ws), "ingest", str(good), "--label-from-dir", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["added"] == 1

    write_bad_files(tmp_path / "bad")
    result = runner.invoke(app, ["ingest", str(tmp_path / "bad"), "-w", str(ws)])
    assert result.exit_code == 1  # some files rejected
    assert "5 rejected" in result.output and "empty file (0 bytes)" in result.output

    result = runner.invoke(app, ["info", "--json", "-w", str(ws)])
    assert result.exit_code == 0
    summary = json.loads(result.output)
    assert summary["media"]["by_label"] == {"left": 1}
    assert summary["media"]["by_status"] == {"error": 5, "ok": 1}
    assert summary["classes"] == ["left", "right"]


def test_outside_workspace_is_one_line_with_hint(tmp_path, monkeypatch):
    monkeypatch.delenv("DATAPREP_WORKSPACE", raising=False)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "dataprep init" in lines[0]


def test_bad_config_value_is_reported(tmp_path):
    result = runner.invoke(app, ["init", str(tmp_path / "w"), "--label-type", "polygons"])
    assert result.exit_code == 2
    assert "label_type = 'polygons' is not allowed" in result.output


def test_missing_path_and_bad_mode(tmp_path):
    runner.invoke(app, ["init", str(tmp_path / "w")])
    result = runner.invoke(app, ["-w", str(tmp_path / "w"), "ingest", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "no such file or folder" in result.output
    result = runner.invoke(app, ["-w", str(tmp_path / "w"), "ingest", str(tmp_path), "--mode", "x"])
    assert result.exit_code == 2 and "--mode 'x' is not allowed" in result.output


def test_help_does_not_import_heavy_modules():
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from dataprep.cli.main import app\n"
        "result = CliRunner().invoke(app, ['--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'albumentations', 'cv2', 'av', 'pandas',\n"
        "                      'pyarrow', 'label_studio_sdk', 'matplotlib') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


# --- hostile input (issue 11) -------------------------------------------------------------


@pytest.mark.parametrize("classes", ["left,../evil", "..", "a/b", "left,."])
def test_init_refuses_class_names_that_leave_their_folder(tmp_path, classes):
    """Issue 11 item 3 (entry side): one usage line naming --classes; nothing is created."""
    target = tmp_path / "w"
    result = runner.invoke(app, ["init", str(target), "--classes", classes])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --classes: class name ")
    assert not target.exists()


def test_class_names_in_dataprep_toml_are_refused_naming_the_file(tmp_path):
    runner.invoke(app, ["init", str(tmp_path / "w")])
    config = tmp_path / "w" / "dataprep.toml"
    config.write_text(config.read_text().replace("classes = []", 'classes = ["ok", "../evil"]'))
    result = runner.invoke(app, ["-w", str(tmp_path / "w"), "info"])
    assert result.exit_code == 2
    assert str(config) in result.output and "[project] classes" in result.output
    assert "'../evil'" in result.output and "path separator" in result.output


def _media_workspace(tmp_path):
    ws = tmp_path / "ws"
    runner.invoke(app, ["init", str(ws)])
    write_video(tmp_path / "raw" / "a.mp4", 4)
    assert runner.invoke(app, ["-w", str(ws), "ingest", str(tmp_path / "raw")]).exit_code == 0
    return ws


def test_non_finite_ratios_are_refused_and_nothing_is_written(tmp_path):
    """Issue 11 item 9: nan/inf ratios are a usage error; .dataprep/split.json stays as it was."""
    ws = _media_workspace(tmp_path)
    state = ws / ".dataprep" / "split.json"
    for ratios in ("nan,0.5,0.5", "inf,0.5,0.5", "0.8,nan,0.2"):
        result = runner.invoke(app, ["-w", str(ws), "split", "--ratios", ratios, "--reset"])
        assert result.exit_code == 2, result.output
        assert "--ratios" in result.output and "finite" in result.output
        assert not state.exists() and not (ws / "manifests" / "splits.parquet").exists()
    assert runner.invoke(app, ["-w", str(ws), "split", "--ratios", "0.5,0.5,0"]).exit_code == 0
    before = state.read_bytes()
    result = runner.invoke(app, ["-w", str(ws), "split", "--ratios", "nan,0.5,0.5", "--reset"])
    assert result.exit_code == 2 and state.read_bytes() == before


def test_bad_setting_names_the_flag_or_the_file_key(tmp_path):
    """Issue 11 item 13: a value from the command line is blamed on its --option; the same
    value from dataprep.toml on the file, [section] and key (never on a flag nobody passed)."""
    ws = _media_workspace(tmp_path)
    result = runner.invoke(app, ["-w", str(ws), "split", "--group-by", "nosuch"])
    assert result.exit_code == 2 and "--group-by 'nosuch' is not a media column" in result.output
    config = ws / "dataprep.toml"
    config.write_text(config.read_text().replace('group_by = "media"', 'group_by = "nosuch"'))
    result = runner.invoke(app, ["-w", str(ws), "split"])
    assert result.exit_code == 2
    assert f"{config}: [split] group_by = 'nosuch' is not a media column" in result.output
    assert "--group-by" not in result.output

    result = runner.invoke(
        app, ["-w", str(ws), "ingest", str(tmp_path / "raw"), "--max-pixels", "0"]
    )
    assert result.exit_code == 2 and "--max-pixels 0:" in result.output
    config.write_text(config.read_text().replace("max_pixels = 100000000", "max_pixels = 0"))
    result = runner.invoke(app, ["-w", str(ws), "ingest", str(tmp_path / "raw")])
    assert result.exit_code == 2
    assert f"{config}: [ingest] max_pixels" in result.output and "--max-pixels" not in result.output


@pytest.mark.slow
def test_closed_stdout_keeps_the_exit_code(tmp_path):
    """Issue 11 item 12: a reader that went away (``| head -c 10``) is not a failure: a real
    pipe whose read end is closed under a command that exits 1 (some files rejected), and a
    shell pipe into ``head`` under one that succeeds."""
    import os

    ws = tmp_path / "ws"
    runner.invoke(app, ["init", str(ws)])
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "fake.mp4").write_text("not a video\n")  # one rejected file: exit 1
    for args, expected in [(["ingest", str(tmp_path / "bad"), "--json"], 1)]:
        read_end, write_end = os.pipe()
        os.close(read_end)
        try:
            result = subprocess.run(
                [sys.executable, "-m", "dataprep.cli.main", "-w", str(ws), *args],
                stdout=write_end,
                stderr=subprocess.PIPE,
                text=True,
            )
        finally:
            os.close(write_end)
        assert result.returncode == expected, (args, result.stderr)
        assert "BrokenPipe" not in result.stderr and "Exception ignored" not in result.stderr
    shell = subprocess.run(
        f"'{sys.executable}' -m dataprep.cli.main -w '{ws}' info --json | head -c 10; "
        "exit ${PIPESTATUS[0]}",
        shell=True,
        executable="/bin/bash",
        capture_output=True,
        text=True,
    )
    assert shell.returncode == 0 and shell.stdout.startswith("{"), shell.stderr
