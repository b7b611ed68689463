"""Settings: the demo realm's client secrets are refused in production; limits are checked."""

from __future__ import annotations

import pytest
from order_service.config import Settings
from pydantic import ValidationError


def test_development_defaults_to_the_demo_secrets() -> None:
    settings = Settings.model_validate({"env": "development"})
    assert settings.order_secret == "order-dev-secret"
    assert settings.scheduler_secret == "order-scheduler-dev-secret"
    assert settings.payment_timeout == 900
    assert settings.token_url == "http://127.0.0.1:8001/token"


def test_production_refuses_missing_or_demo_secrets() -> None:
    base = {"env": "production", "issuer": "https://auth.example"}
    with pytest.raises(ValidationError, match="ORDER_CLIENT_SECRET"):
        Settings.model_validate(base)
    with pytest.raises(ValidationError, match="ORDER_SCHEDULER_CLIENT_SECRET"):
        Settings.model_validate({**base, "client_secret": "s3cret-order"})
    with pytest.raises(ValidationError, match="ORDER_CLIENT_SECRET"):
        Settings.model_validate(
            {**base, "client_secret": "order-dev-secret", "scheduler_client_secret": "x" * 20}
        )
    settings = Settings.model_validate(
        {**base, "client_secret": "s3cret-order", "scheduler_client_secret": "s3cret-sched"}
    )
    assert settings.order_secret == "s3cret-order"
    assert "s3cret" not in repr(settings)


def test_secrets_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDER_CLIENT_SECRET", "from-env")
    monkeypatch.setenv("ORDER_SCHEDULER_CLIENT_SECRET", "from-env-too")
    monkeypatch.setenv("ORDER_PAYMENT_TIMEOUT", "60")
    monkeypatch.setenv("HOPSHOP_INVENTORY_URL", "http://127.0.0.1:9003")
    settings = Settings()
    assert (settings.order_secret, settings.scheduler_secret) == ("from-env", "from-env-too")
    assert settings.payment_timeout == 60
    assert settings.inventory_url == "http://127.0.0.1:9003"


def test_limits_on_unpaid_orders_default_low_come_from_the_environment_and_are_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    defaults = Settings.model_validate({"env": "development"})
    assert (defaults.max_open_orders, defaults.max_open_units) == (5, 50)
    monkeypatch.setenv("ORDER_MAX_OPEN_ORDERS", "1000")
    monkeypatch.setenv("ORDER_MAX_OPEN_UNITS", "100000")
    limits = Settings().order_limits
    assert (limits.max_orders, limits.max_units) == (1000, 100_000)
    for name in ("max_open_orders", "max_open_units"):
        with pytest.raises(ValidationError, match=name):
            Settings.model_validate({"env": "development", name: 0})
