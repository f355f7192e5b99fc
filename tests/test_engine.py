"""The engine abstraction without a cluster: settings, and local never importing Ray."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dataprep.engine import EngineSpec


def test_local_engine_never_imports_ray(tmp_path):
    code = (
        "import sys\n"
        "from dataprep import engine\n"
        "from dataprep.testing.engine import chunk_digests\n"
        "spec = engine.resolve(None)\n"
        "assert spec.kind == 'local'\n"
        f"out = list(engine.map_items(chunk_digests, [{str(Path(__file__))!r}] * 2, 1))\n"
        "assert len(out) == 2 and out[0]['rows'] == out[1]['rows']\n"
        "assert 'ray' not in sys.modules, 'local engine imported ray'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_engine_settings_come_from_config_and_options():
    from dataprep.config import validate_config
    from dataprep.engine import resolve
    from dataprep.errors import ConfigError, UsageError

    config = validate_config({"engine": {"kind": "ray", "address": "auto", "num_cpus": 2}})
    assert resolve(config) == EngineSpec(kind="ray", address="auto", num_cpus=2.0)
    assert resolve(config, kind="local").kind == "local"
    with pytest.raises(UsageError, match="--engine 'spark'"):
        resolve(config, kind="spark")
    with pytest.raises(ConfigError, match=r"\[engine\] num_cpus"):
        validate_config({"engine": {"num_cpus": 0}})
