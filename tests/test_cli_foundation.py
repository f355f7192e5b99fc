from __future__ import annotations

import json
import subprocess
import sys

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
