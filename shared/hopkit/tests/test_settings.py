"""The common HOPSHOP_ settings, and the refusal of forwarding in production."""

from __future__ import annotations

import pytest
from hopkit.settings import CommonSettings, Environment, Propagation
from pydantic import ValidationError
from pydantic_settings import SettingsConfigDict


class ServiceSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="DEMO_", extra="ignore", populate_by_name=True)

    database_url: str = "sqlite:///var/demo.db"


def test_common_variables_keep_their_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOPSHOP_ENV", "test")
    monkeypatch.setenv("HOPSHOP_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    monkeypatch.setenv("DEMO_DATABASE_URL", "sqlite:///elsewhere.db")
    settings = ServiceSettings()
    assert settings.env is Environment.TEST
    assert settings.kafka_bootstrap == "127.0.0.1:9092"
    assert settings.database_url == "sqlite:///elsewhere.db"
    assert settings.propagation is Propagation.EXCHANGE  # never forward by default


def test_forwarding_is_refused_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOPSHOP_ENV", "production")
    monkeypatch.setenv("HOPSHOP_PROPAGATION", "forward")
    with pytest.raises(ValidationError, match="HOPSHOP_PROPAGATION=forward"):
        ServiceSettings()


def test_unknown_propagation_mode_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOPSHOP_PROPAGATION", "sometimes")
    with pytest.raises(ValidationError):
        ServiceSettings()
