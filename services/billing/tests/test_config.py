"""Settings from the environment, and the unsafe combinations refused at start-up."""

from __future__ import annotations

import pytest
from billing_service.config import Settings
from pydantic import ValidationError


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "HOPSHOP_ENV",
        "HOPSHOP_KAFKA_BOOTSTRAP",
        "HOPSHOP_ORDER_URL",
        "HOPSHOP_ISSUER",
        "HOPSHOP_AUTH_URL",
        "BILLING_WORKER",
        "BILLING_WORKER_CLIENT_SECRET",
        "BILLING_DATABASE_URL",
    ):
        monkeypatch.delenv(name, raising=False)


def test_settings_read_the_environment_the_stack_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOPSHOP_ENV", "development")
    monkeypatch.setenv("HOPSHOP_ISSUER", "http://127.0.0.1:9001")
    monkeypatch.setenv("HOPSHOP_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    monkeypatch.setenv("HOPSHOP_ORDER_URL", "http://127.0.0.1:9002")
    monkeypatch.setenv("BILLING_DATABASE_URL", "sqlite:///state/billing.db")
    settings = Settings()
    assert settings.database_url == "sqlite:///state/billing.db"
    assert settings.order_url == "http://127.0.0.1:9002"
    assert settings.kafka_bootstrap == "127.0.0.1:9092"
    assert settings.resolved_token_url == "http://127.0.0.1:9001/token"
    assert settings.runs_worker  # a broker is configured, the worker was not turned off
    monkeypatch.setenv("HOPSHOP_AUTH_URL", "http://auth:8001/")
    assert Settings().resolved_token_url == "http://auth:8001/token"
    assert settings.worker_client_secret.get_secret_value() == "billing-worker-dev-secret"
    assert "billing-worker-dev-secret" not in repr(settings)


def test_defaults_without_the_stack() -> None:
    settings = Settings()
    assert settings.database_url == "sqlite:///var/billing.db"
    assert settings.order_url == "http://127.0.0.1:8002"
    assert not settings.runs_worker  # no broker: the invoice API alone


def test_the_worker_can_be_turned_off_and_not_on_without_a_broker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HOPSHOP_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    monkeypatch.setenv("BILLING_WORKER", "false")
    assert not Settings().runs_worker
    monkeypatch.delenv("HOPSHOP_KAFKA_BOOTSTRAP")
    monkeypatch.setenv("BILLING_WORKER", "true")
    with pytest.raises(ValidationError, match="HOPSHOP_KAFKA_BOOTSTRAP"):
        Settings()


def test_production_refuses_the_public_development_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HOPSHOP_ENV", "production")
    monkeypatch.setenv("HOPSHOP_ISSUER", "https://auth.example")
    monkeypatch.setenv("HOPSHOP_KAFKA_BOOTSTRAP", "kafka:9092")
    with pytest.raises(ValidationError, match="BILLING_WORKER_CLIENT_SECRET") as refused:
        Settings()
    assert "billing-worker-dev-secret" not in str(refused.value)
    monkeypatch.setenv("BILLING_WORKER_CLIENT_SECRET", "billing-worker-dev-secret")
    with pytest.raises(ValidationError, match="BILLING_WORKER_CLIENT_SECRET"):
        Settings()
    monkeypatch.setenv("BILLING_WORKER_CLIENT_SECRET", "s3cr3t-from-a-vault")
    settings = Settings()
    assert settings.runs_worker
    assert settings.worker_client_secret.get_secret_value() == "s3cr3t-from-a-vault"
    # A replica serving only the API never uses the secret, so it need not have one.
    monkeypatch.delenv("BILLING_WORKER_CLIENT_SECRET")
    monkeypatch.setenv("BILLING_WORKER", "false")
    assert not Settings().runs_worker
