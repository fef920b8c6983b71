"""Settings: embedded defaults, FLEET_* variables with nested sections, fleet.toml (its path
from FLEET_CONFIG_FILE), and messages that name the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fleet_tui.config import Settings, load_settings
from fleet_tui.domain.errors import ConfigError
from fleet_tui.domain.models import Tier


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("FLEET_") or name == "DATABASE_URL":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray fleet.toml


def test_defaults_need_no_configuration() -> None:
    settings = load_settings()
    assert settings.database_url is None  # embedded PostgreSQL
    assert settings.governor.tier_limits[Tier.BUILDER] == 1
    assert settings.database.pool_min == 2 and settings.database.pool_max == 10
    assert settings.operator.tier == Tier.SOVEREIGN


def test_nested_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEET_MONITOR__INTERVAL_S", "1.5")
    monkeypatch.setenv("FLEET_GOVERNOR__TIER_LIMITS", '{"builder": 2}')
    monkeypatch.setenv("DATABASE_URL", "postgresql://db.example/fleet")
    settings = load_settings()
    assert settings.monitor.interval_s == 1.5
    assert settings.governor.tier_limits == {Tier.BUILDER: 2}
    assert settings.database_url == "postgresql://db.example/fleet"


def test_fleet_toml_and_its_path_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "fleet.toml").write_text("[retry]\nmax_retries = 5\n")
    assert load_settings().retry.max_retries == 5
    other = tmp_path / "elsewhere.toml"
    other.write_text("[retry]\nmax_retries = 1\n[forge]\nkind = 'github'\n")
    monkeypatch.setenv("FLEET_CONFIG_FILE", str(other))
    settings = load_settings()
    assert settings.retry.max_retries == 1 and settings.forge.kind == "github"
    monkeypatch.setenv("FLEET_RETRY__MAX_RETRIES", "2")  # the environment wins over the file
    assert load_settings().retry.max_retries == 2


@pytest.mark.parametrize("name, value, field", [
    ("FLEET_MONITOR__INTERVAL_S", "-1", "monitor.interval_s"),
    ("FLEET_FORGE__KIND", "gitlab", "forge.kind"),
    ("FLEET_GOVERNOR__TIER_LIMITS", '{"builder": -1}', "governor.tier_limits"),
    ("FLEET_DATABASE__POOL_MIN", "20", "database"),
])
def test_bad_values_name_the_field(monkeypatch: pytest.MonkeyPatch, name: str, value: str, field: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert field in str(info.value)


def test_a_missing_config_file_is_one_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEET_CONFIG_FILE", "/nonexistent/fleet.toml")
    with pytest.raises(ConfigError, match="FLEET_CONFIG_FILE: no such file"):
        load_settings()


SECRETS = {
    "database": {"url": "postgresql://fleet:db-password-1@db.example/fleet"},
    "notifications": {"discord_webhook_url": "https://discord.example/api/webhooks/1/discord-token-2",
                      "telegram_bot_token": "123:telegram-token-3"},
    "outbox": {"nats_url": "nats://user:nats-password-4@nats.example:4222",
               "webhook_urls": ["https://hooks.example/receiver-token-5"],
               "webhook_secret": "webhook-key-6 webhook-key-7"},
    "api": {"events_secret": "whsec_ZXZlbnRzLWtleS04"},
}
SECRET_VALUES = ("db-password-1", "discord-token-2", "telegram-token-3", "nats-password-4",
                 "receiver-token-5", "webhook-key-6", "webhook-key-7", "whsec_ZXZlbnRzLWtleS04")


def test_no_secret_setting_shows_in_reprs_dumps_or_the_config_view() -> None:
    from fleet_tui.engine.api_support import config_view

    settings = Settings(**SECRETS)
    shown = [repr(settings), str(settings), settings.model_dump_json(), json.dumps(config_view(settings))]
    for text in shown:
        assert not [v for v in SECRET_VALUES if v in text], text
    assert config_view(settings)["database"]["url"] == "postgresql://fleet:***@db.example/fleet"
    # the engine still gets the real values
    assert settings.database_url == SECRETS["database"]["url"]
    assert [k.get_secret_value() for k in settings.outbox.webhook_secret] == ["webhook-key-6", "webhook-key-7"]


def test_a_malformed_whsec_key_is_refused_naming_the_field() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(api={"events_secret": "whsec_not*base64"})
    assert "api.events_secret" in str(caught.value) and "base64" in str(caught.value)
