from __future__ import annotations

import pytest

from dataprep.config import Config, dump_config, load_config, parse_size, validate_config
from dataprep.errors import ConfigError


def test_defaults_round_trip_through_toml(tmp_path):
    path = tmp_path / "dataprep.toml"
    config = Config()
    config.project.classes = ["left", "right"]
    path.write_text(dump_config(config))
    assert load_config(path) == config


def test_unknown_key_is_named():
    with pytest.raises(ConfigError, match=r"unknown key \[frames\] fsp"):
        validate_config({"frames": {"fsp": 5}})


def test_bad_choice_names_key_and_allowed_values():
    with pytest.raises(ConfigError) as info:
        validate_config({"frames": {"format": "gif"}})
    message = str(info.value)
    assert "[frames] format = 'gif' is not allowed" in message
    assert "'jpg'" in message and "'webp'" in message


def test_out_of_range_value():
    with pytest.raises(ConfigError, match=r"\[frames\] quality"):
        validate_config({"frames": {"quality": 0}})


def test_duplicate_class_rejected():
    with pytest.raises(ConfigError, match="listed twice"):
        validate_config({"project": {"classes": ["a", "a"]}})


def test_bad_ratios_rejected():
    with pytest.raises(ConfigError, match="ratios"):
        validate_config({"split": {"ratios": [0.5, 0.5, 0.5]}})


def test_invalid_toml_names_file(tmp_path):
    path = tmp_path / "dataprep.toml"
    path.write_text("[project\nname=")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)


@pytest.mark.parametrize(
    ("text", "expected"), [("224", (224, None)), ("320x240", (320, 240)), (" 64 X 48 ", (64, 48))]
)
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "0", "x4", "12x", "-3", "abc"])
def test_parse_size_rejects(text):
    with pytest.raises(ValueError):
        parse_size(text)
