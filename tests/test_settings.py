"""Settings: defaults, TOML file, SHOPBOT_* environment and flags, in that order of strength."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.settings import load_settings


def test_defaults_need_no_configuration():
    settings = load_settings()

    assert settings.data_dir == Path(".shopbot")
    assert settings.chroma_url is None
    assert settings.embedding_model == "default"


def test_flags_beat_environment_which_beats_the_config_file(tmp_path, monkeypatch):
    config = tmp_path / "shop.toml"
    config.write_text('data_dir = "/from/file"\nchroma_url = "db.local:8000"\nrrf_k = 30\n')
    monkeypatch.setenv("SHOPBOT_CHROMA_URL", "env-host:9000")

    settings = load_settings(config, data_dir=Path("/from/flag"))

    assert settings.data_dir == Path("/from/flag")
    assert settings.chroma_host_port == ("env-host", 9000)
    assert settings.rrf_k == 30


def test_invalid_values_name_the_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("SHOPBOT_CHROMA_URL", "no-port-here")
    with pytest.raises(ConfigError, match="chroma_url must look like host:port"):
        load_settings()


def test_unknown_keys_and_missing_files_are_reported(tmp_path):
    config = tmp_path / "shop.toml"
    config.write_text("colection = 'typo'\n")
    with pytest.raises(ConfigError, match="colection: Extra inputs are not permitted"):
        load_settings(config)
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "nope.toml")
    config.write_text("this is = = not toml")
    with pytest.raises(ConfigError, match="cannot read config"):
        load_settings(config)
