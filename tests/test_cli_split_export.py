"""Wiring of `dataprep split` and `dataprep export`: options, messages, exit codes, info."""

from __future__ import annotations

import json

import pytest
from export_fixtures import build_workspace
from typer.testing import CliRunner

from dataprep.cli.main import app


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return build_workspace(tmp_path_factory.mktemp("cli"), segments=False)


def test_split_export_and_info(ws):
    runner = CliRunner()
    result = runner.invoke(
        app, ["-w", str(ws.root), "split", "--ratios", "0.5,0.25,0.25", "--seed", "4"]
    )
    assert result.exit_code == 0, result.output
    assert "frames per class" in result.output and "train" in result.output

    result = runner.invoke(
        app,
        [
            "-w",
            str(ws.root),
            "export",
            "--unit",
            "clip",
            "--clip-len",
            "4",
            "--clip-stride",
            "2",
            "--compression",
            "gzip",
            "--name",
            "c",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["unit"] == "clip" and sum(report["examples"].values()) > 0
    assert (ws.exports_dir / "c" / "dataset_info.json").exists()

    again = runner.invoke(
        app,
        [
            "-w",
            str(ws.root),
            "export",
            "--unit",
            "clip",
            "--clip-len",
            "4",
            "--clip-stride",
            "2",
            "--compression",
            "gzip",
            "--name",
            "c",
        ],
    )
    assert again.exit_code == 0 and "up to date" in again.output

    info = runner.invoke(app, ["-w", str(ws.root), "info", "--json"])
    assert info.exit_code == 0, info.output
    summary = json.loads(info.output)
    assert summary["splits"]["media"]["train"] >= 1
    assert summary["exports"][0]["name"] == "c" and summary["exports"][0]["complete"]


def test_bad_options_give_one_line_and_usage_exit_code(ws):
    runner = CliRunner()
    result = runner.invoke(app, ["-w", str(ws.root), "export", "--format", "csv"])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and "tfrecord" in result.output
    first = runner.invoke(
        app, ["-w", str(ws.root), "split", "--ratios", "0.5,0.25,0.25", "--seed", "4", "--json"]
    )
    assert first.exit_code == 0, first.output
    result = runner.invoke(app, ["-w", str(ws.root), "split", "--seed", "9"])
    assert result.exit_code == 2
    assert "--reset" in result.output and result.output.strip().count("\n") == 0
